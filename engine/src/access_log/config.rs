//! Access log settings: the flags, the TOML keys (for the lead to merge
//! into `config.rs`) and the resolved configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::format::LogFormat;

/// Rotated files kept by default (`FILE.1` … `FILE.5`).
pub const DEFAULT_KEEP: u32 = 5;
/// Records the queue holds by default before it drops (and counts) more.
pub const DEFAULT_QUEUE: usize = 16_384;
/// Largest allowed `access_log_keep`.
pub const MAX_KEEP: u32 = 1000;
/// Largest allowed `access_log_queue`.
pub const MAX_QUEUE: usize = 1 << 20;

/// Access log flags; flatten into the server's flags with
/// `#[command(flatten)]`.
#[derive(Debug, Clone, Default, Args)]
pub struct AccessLogArgs {
    /// Write an access log line per client session (and per refused
    /// request) to FILE [default: off].
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// Access log line format: w3c (DSS's W3C extended format) or json [default: w3c].
    #[arg(long, value_enum)]
    pub access_log_format: Option<LogFormat>,
    /// Rotate the access log when it would exceed this many bytes; 0 = never [default: 0].
    #[arg(long, value_name = "BYTES")]
    pub access_log_max_bytes: Option<u64>,
    /// Rotated access logs kept (FILE.1 newest … FILE.N oldest) [default: 5].
    #[arg(long, value_name = "N")]
    pub access_log_keep: Option<u32>,
}

/// The access log keys of the TOML file (same names as the flags, with
/// underscores, plus `access_log_queue`). The lead copies these fields into
/// `FileConfig`; this struct exists to deserialize and test them alone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogKeys {
    /// See `--access-log`.
    pub access_log: Option<PathBuf>,
    /// See `--access-log-format` (`"w3c"` or `"json"`).
    pub access_log_format: Option<LogFormat>,
    /// See `--access-log-max-bytes`.
    pub access_log_max_bytes: Option<u64>,
    /// See `--access-log-keep`.
    pub access_log_keep: Option<u32>,
    /// Records queued for the logger thread before new ones are dropped
    /// and counted, 1..=1048576 [default: 16384]. Read at start only.
    pub access_log_queue: Option<usize>,
}

/// Resolved access log settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// The log file.
    pub path: PathBuf,
    /// Line format.
    pub format: LogFormat,
    /// Size, bytes, past which the file is rotated before the next line;
    /// 0 = never.
    pub max_bytes: u64,
    /// Rotated files kept: `FILE.1` (newest) … `FILE.keep`; 0 = the file is
    /// simply started anew.
    pub keep: u32,
    /// Queue capacity, records.
    pub queue: usize,
    /// Minimum time between two trouble reports in the server log.
    pub report_interval: Duration,
}

impl AccessLogConfig {
    /// W3C lines to `path`, no size rotation, default keep and queue, a
    /// report at most every 10 s.
    pub fn new(path: PathBuf) -> AccessLogConfig {
        AccessLogConfig {
            path,
            format: LogFormat::W3c,
            max_bytes: 0,
            keep: DEFAULT_KEEP,
            queue: DEFAULT_QUEUE,
            report_interval: Duration::from_secs(10),
        }
    }

    /// Flags over file keys over defaults; `Ok(None)` when no file is set
    /// (logging off). Errors name the key that is out of range.
    pub fn resolve(
        args: &AccessLogArgs,
        keys: &AccessLogKeys,
    ) -> Result<Option<AccessLogConfig>, String> {
        let Some(path) = args.access_log.clone().or(keys.access_log.clone()) else {
            return Ok(None);
        };
        let mut c = AccessLogConfig::new(path);
        c.format = args
            .access_log_format
            .or(keys.access_log_format)
            .unwrap_or_default();
        c.max_bytes = args
            .access_log_max_bytes
            .or(keys.access_log_max_bytes)
            .unwrap_or(0);
        c.keep = args
            .access_log_keep
            .or(keys.access_log_keep)
            .unwrap_or(DEFAULT_KEEP);
        if c.keep > MAX_KEEP {
            return Err(format!(
                "access_log_keep must be 0..={MAX_KEEP}, got {}",
                c.keep
            ));
        }
        c.queue = keys.access_log_queue.unwrap_or(DEFAULT_QUEUE);
        if c.queue == 0 || c.queue > MAX_QUEUE {
            return Err(format!(
                "access_log_queue must be 1..={MAX_QUEUE}, got {}",
                c.queue
            ));
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_flags_win() {
        let keys: AccessLogKeys = toml::from_str(
            "access_log = \"/var/log/a.log\"\naccess_log_format = \"json\"\naccess_log_max_bytes = 1000\naccess_log_keep = 2\n",
        )
        .expect("keys");
        let args = AccessLogArgs {
            access_log_keep: Some(9),
            ..Default::default()
        };
        let c = AccessLogConfig::resolve(&args, &keys)
            .expect("valid")
            .expect("on");
        assert_eq!(c.path, PathBuf::from("/var/log/a.log"));
        assert_eq!(c.format, LogFormat::Json);
        assert_eq!(c.max_bytes, 1000);
        assert_eq!(c.keep, 9);
        assert!(toml::from_str::<AccessLogKeys>("access_log_bogus = 1").is_err());
        assert!(toml::from_str::<AccessLogKeys>("access_log_format = \"xml\"").is_err());
        assert_eq!(
            AccessLogConfig::resolve(&AccessLogArgs::default(), &AccessLogKeys::default()),
            Ok(None)
        );
        let bad = AccessLogKeys {
            access_log_queue: Some(0),
            ..keys
        };
        assert!(AccessLogConfig::resolve(&args, &bad).is_err());
    }
}
