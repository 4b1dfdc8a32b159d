//! Server configuration: command-line flags (clap) over an optional TOML file
//! (serde) over defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::catalog::CompileLimits;
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
    /// Add or change a user in a DSS qtusers file (password from the
    /// terminal without echo, or the first line of stdin).
    Passwd(crate::access::cli::PasswdArgs),
    /// Print a signed URL (the key is the server's url_secret_file).
    SignUrl(crate::access::cli::SignUrlArgs),
    /// Validate a configuration file (and the access-control files it
    /// names); exit 0 when it is usable, 2 with the error otherwise.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
}

/// Flags of the server. Unset flags come from `--config`, then defaults.
#[derive(Debug, Clone, Args, Default)]
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
    /// Seconds a connection may take to send a complete request (from
    /// connecting, or from the first byte of a request); then 408 and close
    /// [default: 10].
    #[arg(long)]
    pub request_timeout: Option<u64>,
    /// Seconds a connection that holds no session may stay silent before it
    /// is closed [default: 60].
    #[arg(long)]
    pub idle_timeout: Option<u64>,
    /// Most RTSP connections per client address, all shards together; 0 for
    /// no cap [default: 1000].
    #[arg(long)]
    pub max_connections_per_ip: Option<u32>,
    /// Most concurrent sessions, all shards together; beyond it a new SETUP
    /// gets 453 (0: no limit) [default: 0].
    #[arg(long)]
    pub max_sessions: Option<usize>,
    /// Most RTP bandwidth, Mbit/s, all shards together; beyond it a new
    /// SETUP gets 453 (0: no limit) [default: 0].
    #[arg(long)]
    pub max_bandwidth_mbps: Option<u64>,
    /// Bounded send-ahead, ms (0..=50): a tick with less than the shard's
    /// average work also sends packets due up to this much later, so bursts
    /// spread into idle time; 0 sends nothing before its tick [default: 0,
    /// off until a benchmark on a quiet host shows it wins].
    #[arg(long)]
    pub send_ahead_ms: Option<u64>,
    /// Work budget of one submitting io_uring_enter, µs (0..=100000): a
    /// tick's sends are submitted in chunks of about this much work; 0
    /// submits the whole batch in one call [default: 0, off until a
    /// benchmark on a quiet host shows it wins; 500 is the value to try].
    #[arg(long)]
    pub submit_budget_us: Option<u64>,
    /// Longest run of control work (accepts, RTSP requests, RTCP) in one
    /// shard loop turn before the due RTP packets are sent, µs (0..=100000;
    /// 0: a turn handles every ready completion first) [default: 0, off
    /// until a benchmark shows it wins; 500 is the value to try].
    #[arg(long)]
    pub control_slice_us: Option<u64>,
    /// When at a limit, answer DESCRIBE with 302 to these peers in turn
    /// (`rtsp://host:port`, repeatable).
    #[arg(long)]
    pub redirect_when_full: Vec<String>,
    /// Addresses (CIDR) a SETUP's `destination=` may send RTP to besides the
    /// client's own (repeatable); any other gets 403.
    #[arg(long)]
    pub allow_destination: Vec<String>,
    /// Peers (CIDR) allowed to start connections with a PROXY protocol v1/v2
    /// header giving the real client (repeatable); a header from anyone else
    /// is refused.
    #[arg(long)]
    pub trusted_proxies: Vec<String>,
    /// Also accept RTSP-over-HTTP tunnels on ADDR:PORT (repeatable; the RTSP
    /// port takes them too).
    #[arg(long, value_name = "ADDR:PORT")]
    pub http_tunnel: Vec<SocketAddr>,
    /// Access log flags.
    #[command(flatten)]
    pub access_log: crate::access_log::AccessLogArgs,
    /// Admin endpoint flags.
    #[command(flatten)]
    pub admin: crate::admin::AdminArgs,
    /// Largest |Scale| of trick play (RFC 2326 §12.34), 1..=1000; larger
    /// requests get this [default: 8].
    #[arg(long)]
    pub max_scale: Option<f64>,
    /// Largest Speed of delivery (RFC 2326 §12.35), 1..=64; the smallest is
    /// its inverse [default: 4].
    #[arg(long)]
    pub max_speed: Option<f64>,
    /// Compile budgets and schedule memory.
    #[command(flatten)]
    pub compile: CompileArgs,
}

/// Flags of the compile budgets and the schedule memory limit (see
/// [`crate::catalog::CompileLimits`]); config keys are the same with
/// underscores.
#[derive(Debug, Clone, Args, Default)]
pub struct CompileArgs {
    /// Most RTP packets in one file's schedule, all tracks together; a file
    /// with more gets 500 [default: 33554432].
    #[arg(long)]
    pub max_packets_per_file: Option<u64>,
    /// Bytes of sample tables, packet plans and schedule a compile may build
    /// per byte of the file, beyond a 64 MiB allowance [default: 8].
    #[arg(long)]
    pub max_schedule_bytes_per_file_byte: Option<u64>,
    /// Most samples of one track (as 'stsz' declares them) [default: 8388608].
    #[arg(long)]
    pub max_samples_per_track: Option<u32>,
    /// Most tracks ('trak' boxes) of one file [default: 256].
    #[arg(long)]
    pub max_tracks_per_file: Option<u32>,
    /// Wall-clock limit of one file's compile, ms; 0 for none [default: 30000].
    #[arg(long)]
    pub compile_timeout_ms: Option<u64>,
    /// Most MiB of compiled schedules in memory, all files together; unused
    /// ones are evicted (least recently used first) to make room, and a file
    /// that does not fit beside those in use gets 503; 0 for no limit
    /// [default: 0].
    #[arg(long, value_name = "MIB")]
    pub schedule_memory_mb: Option<f64>,
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
    /// See `--send-ahead-ms`.
    pub send_ahead_ms: Option<u64>,
    /// See `--submit-budget-us`.
    pub submit_budget_us: Option<u64>,
    /// See `--control-slice-us`.
    pub control_slice_us: Option<u64>,
    /// See `--request-timeout`.
    pub request_timeout: Option<u64>,
    /// See `--idle-timeout`.
    pub idle_timeout: Option<u64>,
    /// See `--max-connections-per-ip`.
    pub max_connections_per_ip: Option<u32>,
    /// See `--max-sessions`.
    pub max_sessions: Option<usize>,
    /// See `--max-bandwidth-mbps`.
    pub max_bandwidth_mbps: Option<u64>,
    /// See `--redirect-when-full`.
    pub redirect_when_full: Option<Vec<String>>,
    /// See `--allow-destination`.
    pub allow_destination: Option<Vec<String>>,
    /// See `--trusted-proxies`.
    pub trusted_proxies: Option<Vec<String>>,
    /// See `--http-tunnel`.
    pub http_tunnel: Option<Vec<SocketAddr>>,
    /// See `--access-log`.
    pub access_log: Option<PathBuf>,
    /// See `--access-log-format`.
    pub access_log_format: Option<crate::access_log::LogFormat>,
    /// See `--access-log-max-bytes`.
    pub access_log_max_bytes: Option<u64>,
    /// See `--access-log-keep`.
    pub access_log_keep: Option<u32>,
    /// Access log records queued before more are dropped (and counted).
    pub access_log_queue: Option<usize>,
    /// See `--admin`.
    pub admin: Option<SocketAddr>,
    /// Bearer token of the admin API.
    pub admin_token: Option<crate::admin::Secret>,
    /// See `--admin-token-file`.
    pub admin_token_file: Option<PathBuf>,
    /// Basic-auth user of the admin API.
    pub admin_user: Option<String>,
    /// Basic-auth password of the admin API.
    pub admin_password: Option<crate::admin::Secret>,
    /// File holding the Basic-auth password of the admin API.
    pub admin_password_file: Option<PathBuf>,
    /// How long the admin API waits for the shards, ms.
    pub admin_timeout_ms: Option<u64>,
    /// `[auth]`: users, groups, access files, signed URLs, subnet rules.
    pub auth: Option<crate::access::AuthConfig>,
    /// See `--max-packets-per-file`.
    pub max_packets_per_file: Option<u64>,
    /// See `--max-schedule-bytes-per-file-byte`.
    pub max_schedule_bytes_per_file_byte: Option<u64>,
    /// See `--max-samples-per-track`.
    pub max_samples_per_track: Option<u32>,
    /// See `--max-tracks-per-file`.
    pub max_tracks_per_file: Option<u32>,
    /// See `--compile-timeout-ms`.
    pub compile_timeout_ms: Option<u64>,
    /// See `--schedule-memory-mb`.
    pub schedule_memory_mb: Option<f64>,
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
    /// Access control (`[auth]`).
    pub auth: crate::access::AuthConfig,
    /// Server-wide limits.
    pub limits: LimitsConfig,
    /// Compile budgets and schedule memory limit (reloadable).
    pub compile: CompileLimits,
    /// The access log, when on.
    pub access_log: Option<crate::access_log::AccessLogConfig>,
    /// The admin endpoint, when on.
    pub admin: Option<crate::admin::AdminConfig>,
    /// The flags this configuration was resolved from (for reload).
    pub args: ServeArgs,
}

/// Server-wide limits (reloadable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Most concurrent sessions (0: none).
    pub max_sessions: usize,
    /// Most RTP bandwidth, Mbit/s (0: none).
    pub max_bandwidth_mbps: u64,
    /// Peers a full node redirects DESCRIBE to, `rtsp://host:port`.
    pub redirect_when_full: Vec<String>,
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
                auth: crate::access::AuthConfig::default(),
                limits: LimitsConfig::default(),
                compile: CompileLimits::default(),
                access_log: None,
                admin: None,
                args: ServeArgs::default(),
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
                    message: one_line_toml_error(&text, &e),
                })?
            }
            None => FileConfig::default(),
        };
        let compile = resolve_compile(&args.compile, &file)?;
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
        let send_ahead_ms = args
            .send_ahead_ms
            .or(file.send_ahead_ms)
            .unwrap_or(defaults.send_ahead_us / 1000);
        if send_ahead_ms > 50 {
            return Err(ConfigError::Invalid(format!(
                "send_ahead_ms must be 0..=50, got {send_ahead_ms}"
            )));
        }
        let submit_budget_us = args
            .submit_budget_us
            .or(file.submit_budget_us)
            .unwrap_or(defaults.submit_budget_us);
        if submit_budget_us > 100_000 {
            return Err(ConfigError::Invalid(format!(
                "submit_budget_us must be 0..=100000, got {submit_budget_us}"
            )));
        }
        let control_slice_us = args
            .control_slice_us
            .or(file.control_slice_us)
            .unwrap_or(defaults.control_slice_us);
        if control_slice_us > 100_000 {
            return Err(ConfigError::Invalid(format!(
                "control_slice_us must be 0..=100000, got {control_slice_us}"
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
        let request_timeout_s = args
            .request_timeout
            .or(file.request_timeout)
            .unwrap_or(defaults.request_timeout_us / 1_000_000);
        let idle_timeout_s = args
            .idle_timeout
            .or(file.idle_timeout)
            .unwrap_or(defaults.idle_timeout_us / 1_000_000);
        if request_timeout_s == 0 || idle_timeout_s == 0 {
            return Err(ConfigError::Invalid(
                "--request-timeout and --idle-timeout must be at least 1 s".into(),
            ));
        }
        let redirect_when_full = if args.redirect_when_full.is_empty() {
            file.redirect_when_full.unwrap_or_default()
        } else {
            args.redirect_when_full.clone()
        };
        for peer in &redirect_when_full {
            let ok = url::Url::parse(peer)
                .map(|u| u.scheme() == "rtsp" && u.host().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "redirect_when_full: {peer:?} is not an rtsp://host[:port] URL"
                )));
            }
        }
        let limits = LimitsConfig {
            max_sessions: args.max_sessions.or(file.max_sessions).unwrap_or(0),
            max_bandwidth_mbps: args
                .max_bandwidth_mbps
                .or(file.max_bandwidth_mbps)
                .unwrap_or(0),
            redirect_when_full,
        };
        let allow_destination = if args.allow_destination.is_empty() {
            file.allow_destination.clone().unwrap_or_default()
        } else {
            args.allow_destination.clone()
        };
        let allow_destination = allow_destination
            .iter()
            .map(|c| {
                parse_net(c).map_err(|e| ConfigError::Invalid(format!("allow_destination: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let access_log = crate::access_log::AccessLogConfig::resolve(
            &args.access_log,
            &crate::access_log::AccessLogKeys {
                access_log: file.access_log.clone(),
                access_log_format: file.access_log_format,
                access_log_max_bytes: file.access_log_max_bytes,
                access_log_keep: file.access_log_keep,
                access_log_queue: file.access_log_queue,
            },
        )
        .map_err(ConfigError::Invalid)?;
        let admin = crate::admin::AdminConfig::resolve(
            &args.admin,
            &crate::admin::AdminKeys {
                admin: file.admin,
                admin_token: file.admin_token.clone(),
                admin_token_file: file.admin_token_file.clone(),
                admin_user: file.admin_user.clone(),
                admin_password: file.admin_password.clone(),
                admin_password_file: file.admin_password_file.clone(),
                admin_timeout_ms: file.admin_timeout_ms,
            },
        )
        .map_err(ConfigError::Invalid)?;
        let trusted = if args.trusted_proxies.is_empty() {
            file.trusted_proxies.clone().unwrap_or_default()
        } else {
            args.trusted_proxies.clone()
        };
        let trusted_proxies = crate::proxy_protocol::TrustedProxies::parse(&trusted)
            .map_err(|e| ConfigError::Invalid(format!("trusted_proxies: {e}")))?;
        let http_tunnel = if args.http_tunnel.is_empty() {
            file.http_tunnel.clone().unwrap_or_default()
        } else {
            args.http_tunnel.clone()
        };
        let auth = file.auth.unwrap_or_default();
        auth.validate()
            .map_err(|e| ConfigError::Invalid(format!("[auth] {e}")))?;
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
            auth,
            limits,
            compile,
            access_log,
            admin,
            args: args.clone(),
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
                send_ahead_us: send_ahead_ms * 1000,
                submit_budget_us,
                control_slice_us,
                session_timeout_s,
                tcp_backlog_bytes: args
                    .tcp_backlog
                    .or(file.tcp_backlog)
                    .unwrap_or(defaults.tcp_backlog_bytes),
                send_slots: file
                    .send_slots
                    .unwrap_or(defaults.send_slots)
                    .clamp(64, 1 << 20),
                request_timeout_us: request_timeout_s.saturating_mul(1_000_000),
                idle_timeout_us: idle_timeout_s.saturating_mul(1_000_000),
                max_connections_per_ip: args
                    .max_connections_per_ip
                    .or(file.max_connections_per_ip)
                    .unwrap_or(defaults.max_connections_per_ip),
                rate_limits,
                allow_destination: std::sync::Arc::new(allow_destination),
                trusted_proxies: std::sync::Arc::new(trusted_proxies),
                http_tunnel,
                ..defaults
            },
        })
    }
}

/// The compile budgets and schedule memory limit: flags over keys over
/// defaults. Errors: a count of 0, a memory limit that is negative or not a
/// number.
fn resolve_compile(args: &CompileArgs, file: &FileConfig) -> Result<CompileLimits, ConfigError> {
    let d = CompileLimits::default();
    let positive = |name: &str, v: u64| {
        if v == 0 {
            Err(ConfigError::Invalid(format!("--{name} must be at least 1")))
        } else {
            Ok(v)
        }
    };
    let mb = args
        .schedule_memory_mb
        .or(file.schedule_memory_mb)
        .unwrap_or(0.0);
    if !mb.is_finite() || mb < 0.0 || mb > (1u64 << 40) as f64 {
        return Err(ConfigError::Invalid(format!(
            "--schedule-memory-mb must be 0 (no limit) or a positive number of MiB, got {mb}"
        )));
    }
    Ok(CompileLimits {
        max_packets_per_file: positive(
            "max-packets-per-file",
            args.max_packets_per_file
                .or(file.max_packets_per_file)
                .unwrap_or(d.max_packets_per_file),
        )?,
        max_schedule_bytes_per_file_byte: positive(
            "max-schedule-bytes-per-file-byte",
            args.max_schedule_bytes_per_file_byte
                .or(file.max_schedule_bytes_per_file_byte)
                .unwrap_or(d.max_schedule_bytes_per_file_byte),
        )?,
        max_samples_per_track: positive(
            "max-samples-per-track",
            u64::from(
                args.max_samples_per_track
                    .or(file.max_samples_per_track)
                    .unwrap_or(d.max_samples_per_track),
            ),
        )? as u32,
        max_tracks_per_file: positive(
            "max-tracks-per-file",
            u64::from(
                args.max_tracks_per_file
                    .or(file.max_tracks_per_file)
                    .unwrap_or(d.max_tracks_per_file),
            ),
        )? as u32,
        compile_timeout_ms: args
            .compile_timeout_ms
            .or(file.compile_timeout_ms)
            .unwrap_or(d.compile_timeout_ms),
        schedule_memory_bytes: (mb * (1u64 << 20) as f64).round() as u64,
    })
}

/// A CIDR (`10.0.0.0/8`) or a single address.
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or CIDR"))
}

/// A TOML error on one line: `line L, column C: message` (the parser's
/// own rendering spans several lines, which a log line must not).
fn one_line_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().replace('\n', " ");
    let Some(span) = e.span() else {
        return message;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    // Name the key: the `key =` of that line, under its `[table]`.
    let lines: Vec<&str> = text.lines().collect();
    let key = lines
        .get(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let table = lines[..(line - 1).min(lines.len())]
        .iter()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix('[').map(|t| {
                t.trim_start_matches('[')
                    .trim_end_matches(']')
                    .trim()
                    .to_string()
            })
        });
    match (key, table) {
        (Some(k), Some(t)) => format!("line {line}, column {column}, key {t}.{k}: {message}"),
        (Some(k), None) => format!("line {line}, column {column}, key {k}: {message}"),
        _ => format!("line {line}, column {column}: {message}"),
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
        std::fs::write(
            &path,
            "max_packets_per_file = 100\ncompile_timeout_ms = 0\nschedule_memory_mb = 1.5\n",
        )
        .expect("write");
        let flags = ServeArgs {
            compile: CompileArgs {
                max_packets_per_file: Some(7),
                max_tracks_per_file: Some(3),
                ..Default::default()
            },
            ..args.clone()
        };
        let c = Config::resolve(&flags, 8).expect("valid");
        assert_eq!(c.compile.max_packets_per_file, 7);
        assert_eq!(c.compile.max_tracks_per_file, 3);
        assert_eq!(c.compile.compile_timeout_ms, 0);
        assert_eq!(c.compile.schedule_memory_bytes, 3 << 19);
        assert_eq!(
            c.compile.max_samples_per_track,
            CompileLimits::default().max_samples_per_track
        );
        for bad in ["max_tracks_per_file = 0\n", "schedule_memory_mb = -1\n"] {
            std::fs::write(&path, bad).expect("write");
            assert!(
                matches!(Config::resolve(&args, 8), Err(ConfigError::Invalid(_))),
                "{bad}"
            );
        }
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
