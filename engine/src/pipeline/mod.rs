//! The request pipeline: one fixed sequence of stages that every RTSP
//! request passes through, each stage an extension point (the module roles
//! of Darwin Streaming Server, as Rust traits).
//!
//! # Stages, in order
//! 1. **filter** ([`Extension::filter`]): sees the raw request first and may
//!    answer it itself.
//! 2. **route** ([`Extension::route`]): the built-in router maps the URL to
//!    a [`Route`] (catalog path, track, query); hooks may rewrite it, or
//!    answer 301/302 with a `Location`.
//! 3. **authenticate** ([`Authenticator`]): at most one per server; turns
//!    credentials into an [`Identity`], and writes the challenges of a 401.
//! 4. **authorize** ([`Extension::authorize`]): every authorizer runs, in
//!    registration order, and all must allow; any may answer 401 (the
//!    authenticator's challenge), 403, 453 or any response.
//! 5. **handle**: the built-in RTSP methods ([`crate::rtsp::Controller`]).
//! 6. **post-process** ([`Extension::post_process`]): sees the request, the
//!    response and the identity, whichever stage answered.
//!
//! Session lifecycle events ([`SessionEvent`]: opened, playing, paused,
//! closed with its final counters) go to the same extensions. No hook runs
//! per RTP packet.
//!
//! # Threading rules
//! Each shard owns one instance of every extension, built by a factory when
//! the shard starts, and calls it on the shard thread between pacing ticks.
//! So hooks need no locks for their own state, and must never block: no file
//! or network I/O, no sleeping, no lock another thread holds for long, no
//! long computation. Slow work goes to [`Offload`] (a pool of threads off the
//! shards); state shared across shards lives in atomics or in immutable
//! snapshots swapped on reload.
//!
//! A request naming another shard's session is forwarded to that shard
//! before the pipeline runs, and runs the whole pipeline there. A request
//! whose file is still being compiled waits after the authorize stage and
//! resumes at the handle stage once the file is ready.

mod events;
mod extension;
mod offload;
mod request;

pub use events::{media_and_codec, CloseReason, SessionEvent, SessionSummary, TrackSummary};
pub use extension::{Authenticator, Exchange, Extension, Flow, Verdict};
pub use offload::{Offload, OffloadPool};
pub use request::{session_id, Identity, RequestInfo, Route, ShardLoad};

use crate::rtsp::response::{self, RtspResponse};

/// A refusal from a stage: the response to send and why, for the log.
#[derive(Debug)]
pub struct Refusal {
    /// The response.
    pub response: RtspResponse,
    /// Why (never a secret).
    pub reason: String,
    /// The stage that refused (`"filter"`, `"route"`, `"authorize"`).
    pub stage: &'static str,
}

/// Context handed to extension factories when a shard starts.
#[derive(Debug, Clone)]
pub struct ExtensionContext {
    /// Index of the shard the instance is for.
    pub shard: usize,
    /// Number of shards.
    pub shards: usize,
    /// Where to hand slow work.
    pub offload: Offload,
}

/// Builds one shard's instance of an extension.
pub type ExtensionFactory = dyn Fn(&ExtensionContext) -> Box<dyn Extension> + Send + Sync;
/// Builds one shard's instance of the authenticator.
pub type AuthenticatorFactory = dyn Fn(&ExtensionContext) -> Box<dyn Authenticator> + Send + Sync;

/// One shard's pipeline: its extension instances, in registration order,
/// and its authenticator.
#[derive(Default)]
pub struct Pipeline {
    extensions: Vec<Box<dyn Extension>>,
    authenticator: Option<Box<dyn Authenticator>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "extensions",
                &self.extensions.iter().map(|e| e.name()).collect::<Vec<_>>(),
            )
            .field(
                "authenticator",
                &self.authenticator.as_ref().map(|a| a.name()),
            )
            .finish()
    }
}

impl Pipeline {
    /// A pipeline with no extension: every request goes straight from the
    /// built-in router to the handler.
    pub fn new() -> Self {
        Pipeline::default()
    }

    /// Appends an extension (its hooks run after those added before).
    pub fn push(&mut self, extension: Box<dyn Extension>) -> &mut Self {
        self.extensions.push(extension);
        self
    }

    /// Sets the authenticator (replacing any).
    pub fn set_authenticator(&mut self, authenticator: Box<dyn Authenticator>) -> &mut Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// Names of the extensions, in order.
    pub fn names(&self) -> Vec<String> {
        self.extensions
            .iter()
            .map(|e| e.name().to_string())
            .collect()
    }

    /// Runs the filter stage: the first hook that answers wins.
    pub fn filter(&mut self, req: &RequestInfo<'_>) -> Result<(), Refusal> {
        for e in &mut self.extensions {
            if let Flow::Respond(response) = e.filter(req) {
                return Err(Refusal {
                    reason: format!("answered by filter {}", e.name()),
                    response,
                    stage: "filter",
                });
            }
        }
        Ok(())
    }

    /// Runs the route stage's hooks on the built-in router's `route`.
    pub fn route(&mut self, req: &RequestInfo<'_>, route: &mut Route) -> Result<(), Refusal> {
        for e in &mut self.extensions {
            if let Flow::Respond(response) = e.route(req, route) {
                return Err(Refusal {
                    reason: format!("answered by router {}", e.name()),
                    response,
                    stage: "route",
                });
            }
        }
        Ok(())
    }

    /// Runs the authenticate stage (anonymous without an authenticator).
    pub fn authenticate(&mut self, req: &RequestInfo<'_>, route: &Route) -> Identity {
        match &mut self.authenticator {
            Some(a) => a.authenticate(req, route),
            None => Identity::Anonymous,
        }
    }

    /// Runs the authorize stage: the authenticator's authorizer, then every
    /// extension's, in order; the first that does not allow answers.
    pub fn authorize(
        &mut self,
        req: &RequestInfo<'_>,
        route: &Route,
        identity: &Identity,
    ) -> Result<(), Refusal> {
        if let Some(a) = &mut self.authenticator {
            let verdict = a.authorize(req, route, identity);
            let name = a.name().to_string();
            self.refuse(verdict, &name, req, route, identity)?;
        }
        for i in 0..self.extensions.len() {
            let verdict = self.extensions[i].authorize(req, route, identity);
            let name = self.extensions[i].name().to_string();
            self.refuse(verdict, &name, req, route, identity)?;
        }
        Ok(())
    }

    fn refuse(
        &mut self,
        verdict: Verdict,
        name: &str,
        req: &RequestInfo<'_>,
        route: &Route,
        identity: &Identity,
    ) -> Result<(), Refusal> {
        let refusal = |response, reason: String| Refusal {
            response,
            reason: format!("{name}: {reason}"),
            stage: "authorize",
        };
        match verdict {
            Verdict::Allow => Ok(()),
            Verdict::Deny { status, reason } => Err(refusal(response::refusal(status), reason)),
            Verdict::Respond(r) => Err(refusal(r, "answered".into())),
            Verdict::Unauthorized { reason } => {
                let challenges = match &mut self.authenticator {
                    Some(a) => a.challenge(req, route, identity),
                    None => Vec::new(),
                };
                let response = if challenges.is_empty() {
                    // Nobody can authenticate the client: refuse outright.
                    response::refusal(rtsp_types::StatusCode::Forbidden)
                } else {
                    response::unauthorized(&challenges)
                };
                Err(refusal(response, reason))
            }
        }
    }

    /// Runs the post-process stage.
    pub fn post_process(&mut self, req: &RequestInfo<'_>, exchange: &Exchange<'_>) {
        for e in &mut self.extensions {
            e.post_process(req, exchange);
        }
    }

    /// Delivers a session event to every extension.
    pub fn session_event(&mut self, event: &SessionEvent<'_>) {
        for e in &mut self.extensions {
            e.session_event(event);
        }
    }
}
