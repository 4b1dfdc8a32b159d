//! Server configuration: command-line flags (clap) over an optional TOML file
//! (serde) over defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::shard::ShardConfig;

/// `cadence`: stream hinted MP4/MOV/3GP files over RTSP/RTP.
#[derive(Debug, Parser)]
#[command(name = "cadence", version, about)]
pub struct Cli {
    /// Server options.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// A subcommand instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print each system setting and limit that caps capacity, with the
    /// recommended value.
    CheckSystem,
}

/// Flags of the server. Unset flags come from `--config`, then defaults.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Number of shard threads, each pinned to its own CPU [default: every CPU].
    #[arg(long)]
    pub cores: Option<usize>,
    /// Folder of media files to serve [default: ./media].
    #[arg(long)]
    pub media: Option<PathBuf>,
    /// RTSP listen address [default: 0.0.0.0:8554].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// TOML configuration file (same keys as the flags, with underscores).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace, or a tracing filter [default: info].
    #[arg(long)]
    pub log_level: Option<String>,
    /// Seconds without RTSP or RTCP activity before a session is dropped [default: 60].
    #[arg(long)]
    pub session_timeout: Option<u64>,
    /// UDP port of shard 0's RTP socket; shard i uses base+2i and base+2i+1,
    /// or a free pair when taken [default: 6970].
    #[arg(long)]
    pub udp_port_base: Option<u16>,
    /// Per-connection TCP interleaved backlog, bytes; a client that stops
    /// reading is dropped beyond it [default: 4194304].
    #[arg(long)]
    pub tcp_backlog: Option<usize>,
    /// Folder where schedules built for un-hinted files are kept between runs.
    #[arg(long)]
    pub hint_cache: Option<PathBuf>,
    /// Largest |Scale| of trick play (RFC 2326 §12.34), 1..=1000; larger
    /// requests get this [default: 8].
    #[arg(long)]
    pub max_scale: Option<f64>,
    /// Largest Speed of delivery (RFC 2326 §12.35), 1..=64; the smallest is
    /// its inverse [default: 4].
    #[arg(long)]
    pub max_speed: Option<f64>,
}

/// The TOML file's keys (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--cores`.
    pub cores: Option<usize>,
    /// See `--media`.
    pub media: Option<PathBuf>,
    /// See `--listen`.
    pub listen: Option<SocketAddr>,
    /// See `--log-level`.
    pub log_level: Option<String>,
    /// See `--session-timeout`.
    pub session_timeout: Option<u64>,
    /// See `--udp-port-base`.
    pub udp_port_base: Option<u16>,
    /// See `--tcp-backlog`.
    pub tcp_backlog: Option<usize>,
    /// See `--hint-cache`.
    pub hint_cache: Option<PathBuf>,
    /// See `--max-scale`.
    pub max_scale: Option<f64>,
    /// See `--max-speed`.
    pub max_speed: Option<f64>,
    /// UDP send slots per shard (packets in flight) [default: 8192].
    pub send_slots: Option<usize>,
    /// Pacer tick in µs, 100..=1000 [default: 500].
    pub tick_us: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Shard count.
    pub cores: usize,
    /// Media folder.
    pub media: PathBuf,
    /// Log filter.
    pub log_level: String,
    /// Hint cache folder.
    pub hint_cache: Option<PathBuf>,
    /// Shard settings.
    pub shard: ShardConfig,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The `--config` file is not valid TOML for our keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// The defaults (no flags, no file) with `cpus` shards.
    pub fn defaults(cpus: usize) -> Config {
        let args = ServeArgs {
            cores: Some(cpus.clamp(1, 255)),
            ..ServeArgs::default()
        };
        match Config::resolve(&args, cpus) {
            Ok(c) => c,
            // Unreachable: the defaults are valid.
            Err(_) => Config {
                cores: 1,
                media: PathBuf::from("media"),
                log_level: "info".into(),
                hint_cache: None,
                shard: ShardConfig::default(),
            },
        }
    }

    /// Resolves flags over the config file over defaults. `available_cpus` is
    /// the default shard count.
    pub fn resolve(args: &ServeArgs, available_cpus: usize) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let defaults = ShardConfig::default();
        let cores = args.cores.or(file.cores).unwrap_or(available_cpus.max(1));
        if cores == 0 || cores > 255 {
            return Err(ConfigError::Invalid(format!(
                "--cores must be 1..=255, got {cores}"
            )));
        }
        let tick_us = file.tick_us.unwrap_or(defaults.tick_us);
        if !(100..=1000).contains(&tick_us) {
            return Err(ConfigError::Invalid(format!(
                "tick_us must be 100..=1000, got {tick_us}"
            )));
        }
        let session_timeout_s = args
            .session_timeout
            .or(file.session_timeout)
            .unwrap_or(defaults.session_timeout_s);
        if session_timeout_s == 0 {
            return Err(ConfigError::Invalid(
                "--session-timeout must be at least 1 s".into(),
            ));
        }
        let limit = |name: &str, value: Option<f64>, default: u32, max: f64| match value {
            None => Ok(default),
            Some(v) if v.is_finite() && (1.0..=max).contains(&v) => Ok((v * 1000.0).round() as u32),
            Some(v) => Err(ConfigError::Invalid(format!(
                "--{name} must be 1..={max}, got {v}"
            ))),
        };
        let rate_limits = crate::session::RateLimits {
            max_scale_milli: limit(
                "max-scale",
                args.max_scale.or(file.max_scale),
                defaults.rate_limits.max_scale_milli,
                1000.0,
            )?,
            max_speed_milli: limit(
                "max-speed",
                args.max_speed.or(file.max_speed),
                defaults.rate_limits.max_speed_milli,
                64.0,
            )?,
        };
        Ok(Config {
            cores,
            media: args
                .media
                .clone()
                .or(file.media)
                .unwrap_or_else(|| PathBuf::from("media")),
            log_level: args
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            hint_cache: args.hint_cache.clone().or(file.hint_cache),
            shard: ShardConfig {
                listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
                udp_port_base: args
                    .udp_port_base
                    .or(file.udp_port_base)
                    .unwrap_or(defaults.udp_port_base),
                tick_us,
                session_timeout_s,
                tcp_backlog_bytes: args
                    .tcp_backlog
                    .or(file.tcp_backlog)
                    .unwrap_or(defaults.tcp_backlog_bytes),
                send_slots: file
                    .send_slots
                    .unwrap_or(defaults.send_slots)
                    .clamp(64, 1 << 20),
                rate_limits,
                ..defaults
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_defaults() {
        let dir = std::env::temp_dir().join(format!("cadence-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "cores = 3\nsession_timeout = 30\nlisten = \"127.0.0.1:9000\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(path.clone()),
            session_timeout: Some(5),
            ..Default::default()
        };
        let c = Config::resolve(&args, 8).expect("valid");
        assert_eq!(c.cores, 3);
        assert_eq!(c.shard.session_timeout_s, 5);
        assert_eq!(c.shard.listen, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(c.media, PathBuf::from("media"));

        std::fs::write(&path, "cores = 3\nbogus = 1\n").expect("write");
        assert!(matches!(
            Config::resolve(&args, 8),
            Err(ConfigError::Parse { .. })
        ));
        let zero = ServeArgs {
            cores: Some(0),
            ..Default::default()
        };
        assert!(matches!(
            Config::resolve(&zero, 8),
            Err(ConfigError::Invalid(_))
        ));
        std::fs::write(&path, "max_scale = 16\nmax_speed = 2.5\n").expect("write");
        let c = Config::resolve(&args, 8).expect("valid");
        assert_eq!(c.shard.rate_limits.max_scale_milli, 16_000);
        assert_eq!(c.shard.rate_limits.max_speed_milli, 2_500);
        for bad in [0.5, f64::NAN, 65.0] {
            let a = ServeArgs {
                max_speed: Some(bad),
                ..Default::default()
            };
            assert!(
                matches!(Config::resolve(&a, 8), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
