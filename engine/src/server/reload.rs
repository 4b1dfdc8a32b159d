//! Reload on SIGHUP: the configuration file is read again and what can
//! change live is applied without dropping a session or closing a
//! connection: the log filter, the limits, the access-control rules (with
//! the users, groups and access files they name), the compile budgets and
//! schedule memory limit, and the files of the media folder. A configuration that does not validate changes nothing; the
//! running one stays, and the error (key, line) is logged. Settings that
//! need a restart (cores, listen address, ports…) are reported as such.

use std::sync::Arc;

use super::{load_access_rules, LogLevelHook, RunningServer};
use crate::access::AccessRules;
use crate::builtin::{AccessControl, LimitSettings, SharedRules};
use crate::catalog::Catalog;
use crate::config::Config;

/// What a running server can change.
pub(super) struct Live {
    pub(super) config: Config,
    pub(super) access: SharedRules,
    pub(super) limits: Arc<LimitSettings>,
    pub(super) catalog: Arc<dyn Catalog>,
    pub(super) log_level: Option<Box<LogLevelHook>>,
    pub(super) shards: Vec<crate::shard::ShardHandle>,
    pub(super) ops: Arc<super::ops::Ops>,
}

/// Why a reload was refused (the running configuration stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration file does not validate.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// The access-control files cannot be used.
    #[error("{0}")]
    Access(String),
    /// The log filter does not parse.
    #[error("log_level: {0}")]
    LogLevel(String),
}

impl RunningServer {
    /// Re-reads the configuration the server started from (its flags and
    /// `--config` file) and applies it; logs the outcome.
    pub fn reload_from_file(&self) {
        let args = match self.live.lock() {
            Ok(l) => l.config.args.clone(),
            Err(_) => return,
        };
        let cpus = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(1);
        let result = Config::resolve(&args, cpus)
            .map_err(ReloadError::from)
            .and_then(|c| self.reload(&c));
        match result {
            Ok(changes) if changes.is_empty() => tracing::info!("reload: nothing changed"),
            Ok(changes) => tracing::info!(changes = %changes.join("; "), "reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "reload refused; the running configuration stays")
            }
        }
    }

    /// Applies `new`: validates everything first, then changes the log
    /// filter, the limits, the access rules and the media files. Returns
    /// what changed. Errors: [`ReloadError`] (nothing was changed).
    pub fn reload(&self, new: &Config) -> Result<Vec<String>, ReloadError> {
        let mut live = self
            .live
            .lock()
            .map_err(|_| ReloadError::Access("reload state poisoned".into()))?;
        // Validate all before applying any.
        let rules: AccessRules =
            load_access_rules(new).map_err(|e| ReloadError::Access(e.to_string()))?;
        if new.log_level != live.config.log_level {
            if let Some(hook) = &live.log_level {
                hook(&new.log_level).map_err(ReloadError::LogLevel)?;
            }
        }
        let mut changes = Vec::new();
        for (what, old, now) in restart_only(&live.config, new) {
            tracing::warn!(setting = what, running = %old, file = %now, "reload: this setting needs a restart");
        }
        if new.log_level != live.config.log_level {
            changes.push(format!("log_level = {}", new.log_level));
        }
        if new.limits != live.config.limits {
            live.limits.set(
                new.limits.max_sessions,
                new.limits.max_bandwidth_mbps,
                new.limits.redirect_when_full.clone(),
            );
            changes.push(format!(
                "max_sessions = {}, max_bandwidth_mbps = {}, redirect_when_full = {:?}",
                new.limits.max_sessions,
                new.limits.max_bandwidth_mbps,
                new.limits.redirect_when_full
            ));
        }
        if new.compile != live.config.compile {
            live.catalog.set_limits(&new.compile);
            changes.push(format!("compile limits: {:?}", new.compile));
        }
        AccessControl::swap(&live.access, rules);
        changes.push("access rules reloaded".into());
        if let Some(note) = live.ops.reload(new) {
            changes.push(note);
        }
        if let Some(r) =
            super::watch::rescan_and_notify(&live.catalog, &live.shards, &live.ops.metrics)
        {
            if !(r.added.is_empty() && r.removed.is_empty() && r.changed.is_empty()) {
                changes.push(format!(
                    "media: {} added, {} removed, {} changed",
                    r.added.len(),
                    r.removed.len(),
                    r.changed.len()
                ));
            }
        }
        let mut kept = new.clone();
        // What needs a restart keeps its running value.
        kept.cores = live.config.cores;
        kept.media = live.config.media.clone();
        kept.shard = live.config.shard.clone();
        kept.hint_cache = live.config.hint_cache.clone();
        live.config = kept;
        Ok(changes)
    }
}

/// Settings that differ but only take effect after a restart:
/// `(key, running, new)`.
fn restart_only(old: &Config, new: &Config) -> Vec<(&'static str, String, String)> {
    let mut v = Vec::new();
    // `key => field path`: compares the field of both configurations.
    macro_rules! check {
        ($($key:literal => $($field:ident).+;)+) => {$(
            let (a, b) = (format!("{:?}", old.$($field).+), format!("{:?}", new.$($field).+));
            if a != b {
                v.push(($key, a, b));
            }
        )+};
    }
    check! {
        "cores" => cores;
        "media" => media;
        "listen" => shard.listen;
        "udp_port_base" => shard.udp_port_base;
        "session_timeout" => shard.session_timeout_s;
        "tcp_backlog" => shard.tcp_backlog_bytes;
        "max_connections_per_ip" => shard.max_connections_per_ip;
        "request_timeout" => shard.request_timeout_us;
        "idle_timeout" => shard.idle_timeout_us;
        "allow_destination" => shard.allow_destination;
        "trusted_proxies" => shard.trusted_proxies;
        "http_tunnel" => shard.http_tunnel;
        "hint_cache" => hint_cache;
    }
    let admin = |c: &Config| format!("{:?}", c.admin.as_ref().map(|a| a.addr));
    if admin(old) != admin(new) {
        v.push(("admin", admin(old), admin(new)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_names_each_changed_setting() {
        let old = Config::defaults(2);
        assert!(restart_only(&old, &old.clone()).is_empty());
        let mut new = old.clone();
        new.cores = 1;
        new.shard.listen = "127.0.0.1:9554".parse().expect("addr");
        new.shard.request_timeout_us += 1;
        new.limits.max_sessions = 5; // live: not reported
        let keys: Vec<&str> = restart_only(&old, &new).iter().map(|c| c.0).collect();
        assert_eq!(keys, ["cores", "listen", "request_timeout"]);
    }
}
