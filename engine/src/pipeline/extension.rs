//! The extension traits: one method per stage, each with a no-op default, so
//! an extension implements only the stages it cares about.

use rtsp_types::StatusCode;

use super::events::SessionEvent;
use super::request::{Identity, RequestInfo, Route};
use crate::rtsp::response::RtspResponse;

/// What a filter or route hook decides.
#[derive(Debug)]
pub enum Flow {
    /// Go on to the next hook and stage.
    Continue,
    /// Answer the request with this response; later hooks of the stage and
    /// the later stages up to post-process are skipped. `CSeq` and `Server`
    /// are added by the pipeline.
    Respond(RtspResponse),
}

/// What an authorizer decides.
#[derive(Debug)]
pub enum Verdict {
    /// This authorizer lets the request through (every authorizer must).
    Allow,
    /// The request needs (other) credentials: the pipeline answers 401 with
    /// the authenticator's challenges. `reason` goes to the log.
    Unauthorized {
        /// Why, for the log (never a secret).
        reason: String,
    },
    /// The request is refused with `status` (403 Forbidden, 404 Not Found,
    /// 453 Not Enough Bandwidth…). `reason` goes to the log.
    Deny {
        /// The RTSP status to answer.
        status: StatusCode,
        /// Why, for the log (never a secret).
        reason: String,
    },
    /// The request is answered with this response (a redirect, say).
    Respond(RtspResponse),
}

/// What post-process hooks see of a finished request.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The route, when the request got that far.
    pub route: Option<&'a Route>,
    /// The identity the authenticator established (anonymous when the
    /// request did not get that far).
    pub identity: &'a Identity,
    /// The response sent.
    pub response: &'a RtspResponse,
    /// Why the request was refused, when a stage refused it (for the log).
    pub refusal: Option<&'a str>,
    /// The stage that answered: `"filter"`, `"route"`, `"authorize"` or
    /// `"handle"`.
    pub answered_by: &'static str,
}

/// An extension: hooks into the request pipeline and the session
/// lifecycle. Every method has a no-op default.
///
/// Threading: each shard has its own instance (built by the factory given
/// to [`crate::server::ServerBuilder::extension_with`]), and every method
/// runs on that shard's thread, between packet ticks. A hook must never block:
/// no file or network I/O, no waiting on a lock held elsewhere, no long
/// computation. Hand slow work to [`super::Offload`].
pub trait Extension: Send {
    /// A short name, for logs.
    fn name(&self) -> &str;

    /// Filter stage: sees every request first, before routing. May answer it
    /// (a health check, a refusal of a client class).
    fn filter(&mut self, _req: &RequestInfo<'_>) -> Flow {
        Flow::Continue
    }

    /// Route stage: `route` holds the catalog path, track and query the
    /// URL maps to; the hook may rewrite them, or answer (301/302 with a
    /// `Location`, see [`crate::rtsp::response::redirect`]).
    fn route(&mut self, _req: &RequestInfo<'_>, _route: &mut Route) -> Flow {
        Flow::Continue
    }

    /// Authorize stage: every extension's authorizer runs, in registration
    /// order, and all must allow. `identity` is what the authenticator
    /// established.
    fn authorize(
        &mut self,
        _req: &RequestInfo<'_>,
        _route: &Route,
        _identity: &Identity,
    ) -> Verdict {
        Verdict::Allow
    }

    /// Post-process stage: sees the request, its response and identity once
    /// the response is built (for logging and counting). Runs for every
    /// request, whichever stage answered it.
    fn post_process(&mut self, _req: &RequestInfo<'_>, _exchange: &Exchange<'_>) {}

    /// A session of this shard was opened, started or resumed playing,
    /// paused (or reached the end of its range), or closed. No hook runs per
    /// RTP packet.
    fn session_event(&mut self, _event: &SessionEvent<'_>) {}
}

/// The authenticate stage: at most one per server. It turns the request's
/// credentials into an [`Identity`], and writes the challenges of a 401
/// when an authorizer asks for credentials.
pub trait Authenticator: Send {
    /// A short name, for logs.
    fn name(&self) -> &str;

    /// Checks the request's credentials (e.g. its `Authorization` header,
    /// RFC 2617 / RFC 7616) for `route`.
    fn authenticate(&mut self, req: &RequestInfo<'_>, route: &Route) -> Identity;

    /// The `WWW-Authenticate` values of the 401 answering `req` (RFC 7235
    /// §4.1), one per offered scheme; `identity` tells a stale nonce apart.
    fn challenge(
        &mut self,
        req: &RequestInfo<'_>,
        route: &Route,
        identity: &Identity,
    ) -> Vec<String>;

    /// The authenticator's own authorizer, run first in the authorize stage
    /// (an access module both checks credentials and decides who may see
    /// what, as DSS's did). Allows by default.
    fn authorize(
        &mut self,
        _req: &RequestInfo<'_>,
        _route: &Route,
        _identity: &Identity,
    ) -> Verdict {
        Verdict::Allow
    }
}
