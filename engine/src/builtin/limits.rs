//! Server-wide limits, a built-in extension: `max_sessions` and
//! `max_bandwidth_mbps`, as DSS's maximum_connections and maximum_bandwidth.
//! Beyond a limit a SETUP that would open a session gets 453 Not Enough
//! Bandwidth; with `redirect_when_full`, a DESCRIBE is answered 302 to the
//! next peer in round-robin, same path and query. Playing sessions are never
//! touched. The limits change live on reload.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rtsp_types::{Method, StatusCode};

use crate::pipeline::{Extension, Flow, Identity, RequestInfo, Route, SessionEvent, Verdict};
use crate::rtsp::response;
use crate::server::ServerLoad;

/// The limits, shared by every shard and changed on reload.
#[derive(Debug, Default)]
pub struct LimitSettings {
    max_sessions: AtomicUsize,
    max_bandwidth_bps: AtomicU64,
    redirect: ArcSwap<Vec<String>>,
    next_peer: AtomicUsize,
}

impl LimitSettings {
    /// Sets the limits: sessions (0: none), bandwidth in Mbit/s (0: none),
    /// and the peers to redirect to when full (`rtsp://host:port`).
    pub fn set(&self, max_sessions: usize, max_bandwidth_mbps: u64, redirect: Vec<String>) {
        self.max_sessions.store(max_sessions, Ordering::Relaxed);
        self.max_bandwidth_bps.store(
            max_bandwidth_mbps.saturating_mul(1_000_000),
            Ordering::Relaxed,
        );
        self.redirect.store(Arc::new(redirect));
    }

    /// Why the server is full, if it is.
    fn full(&self, load: &ServerLoad) -> Option<String> {
        let max = self.max_sessions.load(Ordering::Relaxed);
        let sessions = load.sessions();
        if max > 0 && sessions >= max {
            return Some(format!("max_sessions reached ({sessions} of {max})"));
        }
        let max_bps = self.max_bandwidth_bps.load(Ordering::Relaxed);
        // The measured rate lags new sessions and dips between key frames;
        // the committed rate does not.
        let bps = load.send_rate_bps().max(load.committed_bps());
        if max_bps > 0 && bps >= max_bps {
            return Some(format!(
                "max_bandwidth_mbps reached ({:.1} of {} Mbit/s)",
                bps as f64 / 1e6,
                max_bps / 1_000_000
            ));
        }
        None
    }

    /// The next peer to redirect to, round-robin.
    fn next_redirect(&self) -> Option<String> {
        let peers = self.redirect.load();
        if peers.is_empty() {
            return None;
        }
        let i = self.next_peer.fetch_add(1, Ordering::Relaxed) % peers.len();
        peers.get(i).cloned()
    }
}

/// One shard's instance of the limits extension.
#[derive(Clone)]
pub struct Limits {
    settings: Arc<LimitSettings>,
    load: Arc<ServerLoad>,
}

impl Limits {
    /// The extension over shared `settings`, counting sessions in `load`.
    pub fn new(settings: Arc<LimitSettings>, load: Arc<ServerLoad>) -> Self {
        Limits { settings, load }
    }
}

impl Extension for Limits {
    fn name(&self) -> &str {
        "limits"
    }

    fn route(&mut self, req: &RequestInfo<'_>, _route: &mut Route) -> Flow {
        if *req.method() != Method::Describe {
            return Flow::Continue;
        }
        if self.settings.full(&self.load).is_none() {
            return Flow::Continue;
        }
        let Some(peer) = self.settings.next_redirect() else {
            return Flow::Continue;
        };
        let Some(url) = req.request.request_uri() else {
            return Flow::Continue;
        };
        let mut location = format!("{}{}", peer.trim_end_matches('/'), url.path());
        if let Some(q) = url.query() {
            location.push('?');
            location.push_str(q);
        }
        Flow::Respond(response::redirect(StatusCode::Found, &location))
    }

    fn authorize(&mut self, req: &RequestInfo<'_>, _route: &Route, _id: &Identity) -> Verdict {
        if !req.creates_session() {
            return Verdict::Allow;
        }
        match self.settings.full(&self.load) {
            Some(reason) => Verdict::Deny {
                status: StatusCode::NotEnoughBandwidth,
                reason,
            },
            None => Verdict::Allow,
        }
    }

    fn session_event(&mut self, event: &SessionEvent<'_>) {
        match event {
            SessionEvent::Opened(_) => self.load.session(true),
            SessionEvent::Closed(_) => self.load.session(false),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bandwidth_counts_the_committed_rate_before_the_measured_one() {
        let limits = LimitSettings::default();
        limits.set(0, 1, Vec::new());
        let load = ServerLoad::new(2);
        assert_eq!(limits.full(&load), None);
        // Sessions admitted in one burst: nothing measured yet.
        load.set_shard_committed(0, 600_000);
        load.set_shard_committed(1, 300_000);
        assert_eq!(limits.full(&load), None);
        load.set_shard_committed(1, 400_000);
        assert!(limits
            .full(&load)
            .is_some_and(|r| r.contains("max_bandwidth_mbps")));
        // A measured rate above the limit counts too.
        load.set_shard_committed(0, 0);
        load.set_shard_committed(1, 0);
        load.set_shard_rate(0, 1_200_000);
        assert!(limits.full(&load).is_some());
    }
}
