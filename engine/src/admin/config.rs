//! Admin endpoint settings: the flags, the TOML keys (flattened into the
//! server's `FileConfig` in `config.rs`) and the resolved configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::auth::{AdminAuth, Secret};

/// Default time the admin server waits for the shards before a 503.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Admin flags; flatten into the server's flags with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, Args)]
pub struct AdminArgs {
    /// Serve the admin HTTP API (metrics, sessions, server status) on
    /// ADDR:PORT [default: off].
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin: Option<SocketAddr>,
    /// File holding the admin bearer token (first line).
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// The admin keys of the TOML file, part of the server's `FileConfig`.
/// `Debug` redacts the secrets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKeys {
    /// See `--admin`.
    pub admin: Option<SocketAddr>,
    /// Bearer token (`Authorization: Bearer <token>`).
    pub admin_token: Option<Secret>,
    /// See `--admin-token-file`.
    pub admin_token_file: Option<PathBuf>,
    /// Basic auth user name.
    pub admin_user: Option<String>,
    /// Basic auth password.
    pub admin_password: Option<Secret>,
    /// File holding the Basic auth password (first line).
    pub admin_password_file: Option<PathBuf>,
    /// Time to wait for the shards before answering 503, ms
    /// [default: 2000].
    pub admin_timeout_ms: Option<u64>,
}

/// Resolved admin settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Accepted credentials; none configured = open (warned about unless
    /// the address is loopback).
    pub auth: AdminAuth,
    /// Longest wait for a backend call before 503.
    pub timeout: Duration,
}

impl AdminConfig {
    /// An open (no auth) admin server on `addr` with the default timeout.
    pub fn new(addr: SocketAddr) -> AdminConfig {
        AdminConfig {
            addr,
            auth: AdminAuth::default(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Flags over file keys; `Ok(None)` when no address is set (off).
    /// Secret files are read here (first line, without the line end).
    /// Errors: a token given twice, a user without a password or the
    /// reverse, an empty secret, an unreadable file, a zero timeout.
    pub fn resolve(args: &AdminArgs, keys: &AdminKeys) -> Result<Option<AdminConfig>, String> {
        let Some(addr) = args.admin.or(keys.admin) else {
            return Ok(None);
        };
        let token_file = args
            .admin_token_file
            .clone()
            .or(keys.admin_token_file.clone());
        let token = match (&keys.admin_token, token_file) {
            (Some(_), Some(_)) => {
                return Err("give admin_token or admin_token_file, not both".into())
            }
            (Some(t), None) => Some(t.clone()),
            (None, Some(f)) => Some(read_secret(&f)?),
            (None, None) => None,
        };
        let password = match (&keys.admin_password, &keys.admin_password_file) {
            (Some(_), Some(_)) => {
                return Err("give admin_password or admin_password_file, not both".into())
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(f)) => Some(read_secret(f)?),
            (None, None) => None,
        };
        let basic = match (keys.admin_user.clone(), password) {
            (Some(u), Some(p)) if !u.is_empty() && !u.contains(':') => Some((u, p)),
            (Some(_), Some(_)) => return Err("admin_user must be non-empty and hold no ':'".into()),
            (Some(_), None) => return Err("admin_user needs admin_password".into()),
            (None, Some(_)) => return Err("admin_password needs admin_user".into()),
            (None, None) => None,
        };
        if token.as_ref().is_some_and(Secret::is_empty)
            || basic.as_ref().is_some_and(|(_, p)| p.is_empty())
        {
            return Err("admin secrets must not be empty".into());
        }
        let timeout_ms = keys
            .admin_timeout_ms
            .unwrap_or(DEFAULT_TIMEOUT.as_millis() as u64);
        if timeout_ms == 0 {
            return Err("admin_timeout_ms must be at least 1".into());
        }
        Ok(Some(AdminConfig {
            addr,
            auth: AdminAuth { token, basic },
            timeout: Duration::from_millis(timeout_ms),
        }))
    }
}

fn read_secret(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Secret::new(text.lines().next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_keys() {
        let keys: AdminKeys = toml::from_str(
            "admin = \"127.0.0.1:9090\"\nadmin_token = \"tok\"\nadmin_user = \"ops\"\nadmin_password = \"pw\"\n",
        )
        .expect("keys");
        assert!(!format!("{keys:?}").contains("tok\""));
        assert!(!format!("{keys:?}").contains("pw"));
        let c = AdminConfig::resolve(&AdminArgs::default(), &keys)
            .expect("valid")
            .expect("on");
        assert_eq!(c.addr, "127.0.0.1:9090".parse().expect("addr"));
        assert_eq!(c.auth.token, Some(Secret::new("tok")));
        assert_eq!(c.auth.basic, Some(("ops".into(), Secret::new("pw"))));
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);

        let dir = std::env::temp_dir().join(format!("cadence-admin-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("token");
        std::fs::write(&f, "from-file\n").expect("write");
        let args = AdminArgs {
            admin: None,
            admin_token_file: Some(f),
        };
        let only_addr = AdminKeys {
            admin: keys.admin,
            ..Default::default()
        };
        let c = AdminConfig::resolve(&args, &only_addr)
            .expect("valid")
            .expect("on");
        assert_eq!(c.auth.token, Some(Secret::new("from-file")));
        assert!(AdminConfig::resolve(&args, &keys).is_err(), "token twice");
        let _ = std::fs::remove_dir_all(dir);

        let no_pw = AdminKeys {
            admin_password: None,
            ..keys.clone()
        };
        assert!(AdminConfig::resolve(&AdminArgs::default(), &no_pw).is_err());
        assert!(toml::from_str::<AdminKeys>("admin_bogus = 1").is_err());
        assert_eq!(
            AdminConfig::resolve(&AdminArgs::default(), &AdminKeys::default()),
            Ok(None)
        );
    }
}
