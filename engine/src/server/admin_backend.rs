//! The admin API's view of the shards, by message passing: the admin thread
//! asks every shard for its sessions or to end one, and waits with a
//! timeout, so a stuck shard yields 503 instead of a hung admin server.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::ServerLoad;
use crate::admin::{AdminBackend, KillResult, RateMeter, ServerInfo, SessionInfo};
use crate::metrics::ServerMetrics;
use crate::pipeline::CloseReason;
use crate::session::SessionId;
use crate::shard::{ShardHandle, ShardMsg};

/// The shards, for the admin API.
pub(super) struct Backend {
    shards: Vec<ShardHandle>,
    metrics: Arc<ServerMetrics>,
    cpus: Vec<Option<usize>>,
    load: Arc<ServerLoad>,
    timeout: Duration,
    started: SystemTime,
    rates: Mutex<RateMeter>,
}

impl Backend {
    pub(super) fn new(
        shards: Vec<ShardHandle>,
        metrics: Arc<ServerMetrics>,
        cpus: Vec<Option<usize>>,
        load: Arc<ServerLoad>,
        timeout: Duration,
    ) -> Self {
        Backend {
            shards,
            metrics,
            cpus,
            load,
            timeout,
            started: SystemTime::now(),
            rates: Mutex::new(RateMeter::new(Duration::from_secs(1))),
        }
    }
}

impl AdminBackend for Backend {
    fn sessions(&self) -> Vec<SessionInfo> {
        let (tx, rx) = mpsc::channel();
        let mut asked = 0;
        for s in &self.shards {
            if s.send(ShardMsg::ListSessions { reply: tx.clone() }) {
                asked += 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + self.timeout;
        let mut all = Vec::new();
        for _ in 0..asked {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(mut v) => all.append(&mut v),
                Err(_) => break,
            }
        }
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    fn kill(&self, id: &str) -> KillResult {
        let Some(sid) = SessionId::parse(id) else {
            return KillResult::NotFound;
        };
        let Some(shard) = self.shards.get(sid.shard()) else {
            return KillResult::NotFound;
        };
        let (tx, rx) = mpsc::channel();
        if !shard.send(ShardMsg::EndSession {
            id: sid,
            reason: CloseReason::AdminKill,
            reply: tx,
        }) {
            return KillResult::NotFound;
        }
        match rx.recv_timeout(self.timeout) {
            Ok(true) => KillResult::Killed,
            _ => KillResult::NotFound,
        }
    }

    fn server(&self) -> ServerInfo {
        let mut rates = match self.rates.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let mut info =
            ServerInfo::from_metrics(&self.metrics, self.started, &self.cpus, &mut rates);
        info.rtsp_connections = self.load.connections() as u64;
        info
    }
}
