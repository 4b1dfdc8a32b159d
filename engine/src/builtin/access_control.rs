//! Access control, the built-in authenticator (DSS's access module as a
//! pipeline extension): client-subnet rules, signed URLs, per-folder
//! `qtaccess` files with `qtusers`/`qtgroups`, Basic and Digest
//! (see [`crate::access`] for the rules themselves).
//!
//! - **route stage** ([`AccessRouter`]): access, users and groups files are
//!   never served: 404.
//! - **authenticate**: [`crate::access::AccessRules::decide`] runs once per
//!   request; its grant becomes the [`Identity`].
//! - **authorize** (the authenticator's own): the same decision allows, or
//!   answers 401 with its challenge, 403 or 404.
//!
//! A request on an existing session of the shard (its `Session` header) and
//! for that session's file carries the authorization the session was set up
//! with: it is checked again only when it brings credentials, and a stale
//! Digest nonce then does not end a session that is playing. This is what
//! keeps signed-URL sessions and long Digest sessions alive across PLAY,
//! keep-alives and TEARDOWN.
//!
//! The rules are an immutable snapshot shared by every shard and swapped on
//! reload ([`AccessControl::swap`]).

use std::sync::Arc;

use arc_swap::ArcSwap;
use rtsp_types::headers::AUTHORIZATION;
use rtsp_types::StatusCode;

use crate::access::{AccessRequest, AccessRules, Decision, Refusal};
use crate::pipeline::{Authenticator, Extension, Flow, Identity, RequestInfo, Route, Verdict};
use crate::rtsp::response;

/// The shared, swappable rules.
pub type SharedRules = Arc<ArcSwap<AccessRules>>;

/// One shard's access-control authenticator.
pub struct AccessControl {
    rules: SharedRules,
    /// The decision of the request in flight (authenticate then authorize
    /// run back to back for one request on this shard).
    pending: Option<Decision>,
}

impl AccessControl {
    /// An authenticator over `rules`.
    pub fn new(rules: SharedRules) -> Self {
        AccessControl {
            rules,
            pending: None,
        }
    }

    /// Replaces the rules every shard uses (on reload).
    pub fn swap(shared: &SharedRules, rules: AccessRules) {
        shared.store(Arc::new(rules));
    }

    fn decide(&self, req: &RequestInfo<'_>, route: &Route) -> Decision {
        let rules = self.rules.load();
        let query = route.query_pairs();
        rules.decide(&AccessRequest {
            path: &route.path,
            method: req.method().into(),
            uri: req.url(),
            authorization: req.header(&AUTHORIZATION),
            peer: req.peer.ip(),
            query: &query,
            now_unix_s: req.unix_us / 1_000_000,
        })
    }
}

/// True when `req` names one of the shard's sessions and its file.
fn on_own_session(req: &RequestInfo<'_>, route: &Route) -> bool {
    req.session
        .is_some_and(|s| route.path.is_empty() || s.path() == route.path)
}

fn session_identity(req: &RequestInfo<'_>) -> Identity {
    match req.session.and_then(|s| {
        let m = s.meta();
        Some((
            m.user.as_deref()?.to_string(),
            m.realm.as_deref().unwrap_or_default().to_string(),
        ))
    }) {
        Some((name, realm)) => Identity::User { name, realm },
        None => Identity::Anonymous,
    }
}

impl Authenticator for AccessControl {
    fn name(&self) -> &str {
        "access"
    }

    fn authenticate(&mut self, req: &RequestInfo<'_>, route: &Route) -> Identity {
        self.pending = None;
        if route.path.is_empty() {
            // `OPTIONS *` and the like name no file.
            return Identity::Anonymous;
        }
        let credentials = req.header(&AUTHORIZATION).is_some();
        if on_own_session(req, route) && !credentials {
            return session_identity(req);
        }
        let decision = self.decide(req, route);
        if on_own_session(req, route) {
            if let Decision::Challenge {
                reason: Refusal::StaleNonce { .. },
                ..
            } = decision
            {
                // Right credentials, old nonce: the session stays authorized.
                return session_identity(req);
            }
        }
        let identity = match &decision {
            Decision::Allow(grant) => match (&grant.user, &grant.realm) {
                (Some(name), realm) => Identity::User {
                    name: name.clone(),
                    realm: realm.clone().unwrap_or_default(),
                },
                (None, _) => Identity::Anonymous,
            },
            Decision::Challenge { reason, .. } => Identity::Failed {
                stale: matches!(reason, Refusal::StaleNonce { .. }),
                reason: reason.to_string(),
            },
            Decision::Forbidden { reason } | Decision::NotFound { reason } => Identity::Failed {
                reason: reason.to_string(),
                stale: false,
            },
        };
        self.pending = Some(decision);
        identity
    }

    fn challenge(&mut self, req: &RequestInfo<'_>, route: &Route, _id: &Identity) -> Vec<String> {
        match self.pending.take() {
            Some(Decision::Challenge {
                www_authenticate, ..
            }) => www_authenticate,
            // An extension asked for credentials on a file the rules leave
            // open: challenge as the rules would for a protected one.
            _ => match self.decide(req, route) {
                Decision::Challenge {
                    www_authenticate, ..
                } => www_authenticate,
                _ => Vec::new(),
            },
        }
    }

    fn authorize(&mut self, _req: &RequestInfo<'_>, _route: &Route, _id: &Identity) -> Verdict {
        match &self.pending {
            None | Some(Decision::Allow(_)) => {
                self.pending = None;
                Verdict::Allow
            }
            // The challenge stays pending for `challenge`.
            Some(Decision::Challenge { reason, .. }) => Verdict::Unauthorized {
                reason: reason.to_string(),
            },
            Some(Decision::Forbidden { reason }) => {
                let reason = reason.to_string();
                self.pending = None;
                Verdict::Deny {
                    status: StatusCode::Forbidden,
                    reason,
                }
            }
            Some(Decision::NotFound { reason }) => {
                let reason = reason.to_string();
                self.pending = None;
                Verdict::Deny {
                    status: StatusCode::NotFound,
                    reason,
                }
            }
        }
    }
}

/// The route-stage half: access, users and groups files are never served.
#[derive(Clone)]
pub struct AccessRouter {
    rules: SharedRules,
}

impl AccessRouter {
    /// A router over `rules`.
    pub fn new(rules: SharedRules) -> Self {
        AccessRouter { rules }
    }
}

impl Extension for AccessRouter {
    fn name(&self) -> &str {
        "access-files"
    }

    fn route(&mut self, _req: &RequestInfo<'_>, route: &mut Route) -> Flow {
        if !route.path.is_empty() && self.rules.load().is_protected_file(&route.path) {
            return Flow::Respond(response::refusal(StatusCode::NotFound));
        }
        Flow::Continue
    }
}
