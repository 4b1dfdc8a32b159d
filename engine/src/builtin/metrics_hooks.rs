//! Metrics, a built-in extension: counts every request by method and
//! status, authentication failures by reason class, admission refusals, and
//! sessions by transport and state into the shard's lock-free
//! [`ShardMetrics`] block (the pacer's packet counters are added by the
//! shard once per tick).

use std::collections::HashMap;
use std::sync::Arc;

use crate::metrics::{AuthFailure, EndReason, RtspMethod, ShardMetrics, Transport};
use crate::pipeline::{Exchange, Extension, Identity, RequestInfo, SessionEvent};
use crate::session::{SessionId, SessionState};

/// One shard's metrics hooks.
pub struct MetricsHooks {
    metrics: Arc<ShardMetrics>,
    /// The transport and state each of the shard's sessions is counted in.
    counted: HashMap<SessionId, (Transport, SessionState)>,
}

impl MetricsHooks {
    /// Hooks counting into `metrics` (the shard's own block).
    pub fn new(metrics: Arc<ShardMetrics>) -> Self {
        MetricsHooks {
            metrics,
            counted: HashMap::new(),
        }
    }

    fn moved(&mut self, id: SessionId, to: SessionState) {
        if let Some((t, state)) = self.counted.get_mut(&id) {
            self.metrics.session_state(*t, *state, to);
            *state = to;
        }
    }
}

/// The reason class of a 401 or 403, from the refusal's log reason.
pub fn auth_failure(status: u16, reason: &str, identity: &Identity) -> Option<AuthFailure> {
    let r = reason.to_ascii_lowercase();
    match status {
        401 => Some(match identity {
            Identity::Failed { stale: true, .. } => AuthFailure::StaleNonce,
            _ if r.contains("no credentials") => AuthFailure::NoCredentials,
            _ if r.contains("authorization header") => AuthFailure::Malformed,
            Identity::Anonymous => AuthFailure::NoCredentials,
            _ => AuthFailure::BadCredentials,
        }),
        403 if r.contains("subnet") => Some(AuthFailure::AddressDenied),
        403 if r.contains("expired") => Some(AuthFailure::Expired),
        403 if r.contains("sign") || r.contains("forged") => Some(AuthFailure::BadSignature),
        403 => Some(AuthFailure::NotAuthorized),
        _ => None,
    }
}

impl Extension for MetricsHooks {
    fn name(&self) -> &str {
        "metrics"
    }

    fn post_process(&mut self, req: &RequestInfo<'_>, exchange: &Exchange<'_>) {
        let status = u16::from(exchange.response.status());
        self.metrics
            .rtsp_request(RtspMethod::from_rtsp(req.method()), status);
        if let Some(why) = auth_failure(status, exchange.refusal.unwrap_or(""), exchange.identity) {
            self.metrics.auth_failure(why);
        }
        if status == 453 {
            self.metrics.admission_refusal();
        }
    }

    fn session_event(&mut self, event: &SessionEvent<'_>) {
        match event {
            SessionEvent::Opened(s) => {
                let t = Transport::of(s);
                self.metrics.session_started(t);
                self.counted.insert(s.id(), (t, SessionState::Ready));
            }
            SessionEvent::Playing(s) => self.moved(s.id(), SessionState::Playing),
            SessionEvent::Paused(s) => self.moved(s.id(), SessionState::Ready),
            SessionEvent::Closed(summary) => {
                if let Some((t, state)) = self.counted.remove(&summary.id) {
                    self.metrics
                        .session_ended(t, state, EndReason::from(summary.reason));
                }
            }
        }
    }
}
