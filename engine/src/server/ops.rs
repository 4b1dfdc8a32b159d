//! The operating side of a server, all off the shards: the metrics
//! registry (over every shard's lock-free counters), the access-log thread
//! and the admin HTTP server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::admin_backend::Backend;
use super::{ServerError, ServerLoad};
use crate::access_log::{AccessLog, AccessLogCollector, AccessLogSender};
use crate::admin::AdminServer;
use crate::config::Config;
use crate::metrics::{ServerMetrics, ShardMetrics};
use crate::shard::ShardHandle;

/// Metrics, access log and admin API of a running server.
pub(super) struct Ops {
    pub(super) metrics: Arc<ServerMetrics>,
    pub(super) shard_metrics: Vec<Arc<ShardMetrics>>,
    pub(super) access_log: Mutex<Option<AccessLog>>,
    admin: Mutex<Option<AdminServer>>,
}

impl Ops {
    /// The metrics of `shards` shards and, when configured, the access log
    /// (its file is opened here, so a bad path fails the start).
    pub(super) fn start(config: &Config, shards: usize) -> Result<Ops, ServerError> {
        let shard_metrics: Vec<Arc<ShardMetrics>> = (0..shards)
            .map(|i| Arc::new(ShardMetrics::new(i)))
            .collect();
        let mut metrics = ServerMetrics::new(shard_metrics.clone());
        let access_log = match &config.access_log {
            Some(cfg) => {
                let log = AccessLog::start(cfg.clone()).map_err(|e| {
                    ServerError::Startup(format!(
                        "cannot open the access log {}: {e}",
                        cfg.path.display()
                    ))
                })?;
                metrics
                    .registry_mut()
                    .register_collector(Box::new(AccessLogCollector(log.counters())));
                Some(log)
            }
            None => None,
        };
        Ok(Ops {
            metrics: Arc::new(metrics),
            shard_metrics,
            access_log: Mutex::new(access_log),
            admin: Mutex::new(None),
        })
    }

    /// A sender to the access log, when there is one.
    pub(super) fn access_log_sender(&self) -> Option<AccessLogSender> {
        self.access_log
            .lock()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.sender()))
    }

    /// Starts the admin server when configured.
    pub(super) fn start_admin(
        &self,
        config: &Config,
        shards: Vec<ShardHandle>,
        cpus: Vec<Option<usize>>,
        load: Arc<ServerLoad>,
    ) -> Result<(), ServerError> {
        let Some(cfg) = config.admin.clone() else {
            return Ok(());
        };
        let timeout = cfg.timeout;
        let backend = Arc::new(Backend::new(
            shards,
            self.metrics.clone(),
            cpus,
            load,
            timeout,
        ));
        let server =
            AdminServer::start(cfg.clone(), backend, self.metrics.clone()).map_err(|e| {
                ServerError::Startup(format!("cannot start the admin API on {}: {e}", cfg.addr))
            })?;
        tracing::info!(addr = %server.local_addr(), "admin API listening");
        if let Ok(mut a) = self.admin.lock() {
            *a = Some(server);
        }
        Ok(())
    }

    /// Reopens the access log (after logrotate moved it) and applies a
    /// changed access-log configuration.
    pub(super) fn reload(&self, config: &Config) -> Option<String> {
        let mut log = self.access_log.lock().ok()?;
        let log = log.as_mut()?;
        log.reopen();
        if let Some(cfg) = &config.access_log {
            log.reconfigure(cfg.clone());
        }
        Some("access log reopened".into())
    }

    /// Stops the admin server and flushes the access log (after the shards
    /// stopped, so their last lines are in).
    pub(super) fn stop(&self) {
        if let Some(a) = self.admin.lock().ok().and_then(|mut a| a.take()) {
            a.shutdown();
        }
        if let Some(l) = self.access_log.lock().ok().and_then(|mut l| l.take()) {
            if !l.shutdown(Duration::from_secs(5)) {
                tracing::warn!("the access log did not flush within 5 s");
            }
        }
    }
}
