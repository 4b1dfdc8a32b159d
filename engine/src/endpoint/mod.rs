//! The endpoint: everything a shard decides, without I/O (as quinn-proto's
//! `Endpoint`). It composes the request pipeline, the RTSP controller, the
//! pacer, outgoing RTCP and the shard's timers, and is driven by the shard
//! runtime with bytes, requests and the clock:
//!
//! - [`Endpoint::handle`] runs one request through the pipeline and answers
//!   a [`Dispatch`]: a response, a request to forward to another shard, or
//!   one to park until its file is compiled ([`Endpoint::resume`]);
//! - [`Endpoint::tick`] paces every due RTP packet into a [`PacketSink`];
//! - [`Endpoint::on_rtcp`] takes the clients' RTCP;
//! - [`Endpoint::poll_timers`] runs sender reports, session timeouts and
//!   admission control, and [`Endpoint::next_deadline`] says when to call
//!   it (and `tick`) next;
//! - [`Endpoint::drain_rtcp`] hands over the RTCP packets to send.
//!
//! Session lifecycle events go to the pipeline's extensions as they happen.

mod bye;
mod rtcp_out;
mod timers;

use std::net::SocketAddr;
use std::sync::Arc;

use rtsp_types::{Request, StatusCode};

use crate::catalog::Catalog;
use crate::log_limit::LogLimiter;
use crate::pacer::{Pacer, PacketSink, TickStats};
use crate::pipeline::{
    CloseReason, Exchange, Identity, Pipeline, Refusal, RequestInfo, Route, SessionEvent,
    SessionSummary, ShardLoad,
};
use crate::rtcp;
use crate::rtsp::response::{self, RtspResponse};
use crate::rtsp::url::route_of;
use crate::rtsp::{Controller, ControllerConfig, Effect, Handled, RequestCtx};
use crate::session::{ConnId, RateLimits, Session, SessionId};

pub use bye::BYE_GRACE_US;
pub use rtcp_out::{RtcpOutbox, RtcpPacket, RTCP_MAX};
pub use timers::TimerEvents;

/// Settings of one shard's endpoint. Times in µs.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Index of the shard (top byte of its session IDs).
    pub shard: usize,
    /// Session timeout, seconds.
    pub session_timeout_s: u64,
    /// The shard's UDP RTP port (announced in SETUP replies).
    pub server_rtp_port: u16,
    /// Pacer tick, µs.
    pub tick_us: u64,
    /// Bounded send-ahead, µs (see [`crate::pacer::Pacer::send_ahead_us`]).
    pub send_ahead_us: u64,
    /// RTCP sender report interval, µs (RFC 3550 §6.2; 5 s).
    pub sr_interval_us: u64,
    /// Period of housekeeping (timeouts, reports, admission), µs.
    pub housekeeping_us: u64,
    /// Lateness above which the shard counts as behind and refuses new
    /// sessions until it catches up, µs.
    pub overload_late_us: u64,
    /// Period of the shard's statistics log line, µs.
    pub stats_interval_us: u64,
    /// Limits on PLAY's Scale and Speed (`max_scale`, `max_speed`).
    pub rate_limits: RateLimits,
    /// See [`crate::rtsp::ControllerConfig::allow_destination`].
    pub allow_destination: Arc<Vec<ipnet::IpNet>>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            shard: 0,
            session_timeout_s: 60,
            server_rtp_port: 6970,
            tick_us: 500,
            send_ahead_us: 0,
            sr_interval_us: 5_000_000,
            housekeeping_us: 100_000,
            overload_late_us: 100_000,
            stats_interval_us: 10_000_000,
            rate_limits: RateLimits::default(),
            allow_destination: Arc::default(),
        }
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Dispatch {
    /// Send this response on the request's connection (then close it when
    /// `close`). `CSeq` and `Server` are set.
    Respond {
        /// The response.
        response: RtspResponse,
        /// Close the connection once the response is written.
        close: bool,
    },
    /// The request names a session of shard `shard`: send it there.
    Forward {
        /// The owning shard.
        shard: usize,
        /// The request, unchanged.
        request: Request<Vec<u8>>,
    },
    /// The request needs catalog path `path`, which is being compiled off
    /// the shard: keep `parked` (and hold back the connection's later input)
    /// and pass it to [`Endpoint::resume`] once the file is ready.
    Defer {
        /// Catalog path to compile.
        path: String,
        /// The request and what the pipeline made of it so far.
        parked: Parked,
    },
}

/// A request waiting for its file: it resumes at the handle stage.
#[derive(Debug)]
pub struct Parked {
    request: Request<Vec<u8>>,
    route: Route,
    identity: Identity,
}

/// One shard's sans-IO state.
pub struct Endpoint {
    config: EndpointConfig,
    controller: Controller,
    pacer: Pacer,
    pipeline: Pipeline,
    effects: Vec<Effect>,
    rtcp: RtcpOutbox,
    byes: bye::PendingByes,
    timers: timers::Timers,
    refusal_log: LogLimiter,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("shard", &self.config.shard)
            .field("sessions", &self.controller.len())
            .field("pipeline", &self.pipeline)
            .finish()
    }
}

impl Endpoint {
    /// An endpoint with no sessions, starting at shard clock `now_us`; `seed`
    /// seeds the session randomness (SSRCs, sequence numbers, IDs).
    pub fn new(
        config: EndpointConfig,
        catalog: Arc<dyn Catalog>,
        pipeline: Pipeline,
        seed: u64,
        now_us: u64,
    ) -> Self {
        let controller = Controller::new(
            ControllerConfig {
                shard: config.shard,
                session_timeout_s: config.session_timeout_s,
                server_rtp_port: config.server_rtp_port,
                rate_limits: config.rate_limits,
                allow_destination: config.allow_destination.clone(),
            },
            catalog,
            seed,
        );
        Endpoint {
            pacer: Pacer::new(now_us, config.tick_us).with_send_ahead(config.send_ahead_us),
            timers: timers::Timers::new(&config, now_us),
            config,
            controller,
            pipeline,
            effects: Vec::with_capacity(8),
            rtcp: RtcpOutbox::default(),
            byes: bye::PendingByes::default(),
            refusal_log: LogLimiter::new(20, 1_000_000),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// The controller (sessions, read-only).
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The pacer.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// RTP send rate of the shard over the last housekeeping window, bit/s
    /// (headers and payloads).
    pub fn send_rate_bps(&self) -> u64 {
        self.timers.send_rate_bps()
    }

    /// Committed rate of the shard, bit/s: the sum over its sessions (set up,
    /// playing or paused) of their file's nominal bit rate, file size × 8 ÷
    /// duration (an upper bound of the RTP payload rate: the file also holds
    /// its index and hint samples). Used with the measured send rate for
    /// `max_bandwidth_mbps`, so sessions admitted in one burst count before
    /// their packets do. O(sessions); called on the housekeeping tick.
    pub fn committed_bps(&self) -> u64 {
        self.controller
            .sessions()
            .map(|(_, s)| nominal_bps(s.file()))
            .fold(0u64, u64::saturating_add)
    }

    /// The shard's load, as extensions see it.
    pub fn load(&self) -> ShardLoad {
        ShardLoad {
            sessions: self.controller.len(),
            behind: self.timers.behind(),
        }
    }

    /// Runs `request` through the pipeline: forwarding, filter, route,
    /// authenticate, authorize, handle, post-process. Session changes take
    /// effect at once (pacing, RTCP BYE, lifecycle events).
    pub fn handle(&mut self, ctx: &RequestCtx, request: Request<Vec<u8>>) -> Dispatch {
        if let Some(shard) = self.controller.forward_target(ctx, &request) {
            return Dispatch::Forward { shard, request };
        }
        let info = request_info(&self.controller, self.load(), ctx, &request);
        let early = self.pipeline.filter(&info).and_then(|()| {
            let mut route = match request.request_uri() {
                None => Route::default(),
                Some(url) => route_of(url).ok_or_else(|| Refusal {
                    response: response::refusal(StatusCode::BadRequest),
                    reason: "request URL is not valid UTF-8".into(),
                    stage: "route",
                })?,
            };
            self.pipeline.route(&info, &mut route)?;
            let identity = self.pipeline.authenticate(&info, &route);
            self.pipeline.authorize(&info, &route, &identity)?;
            Ok((route, identity))
        });
        match early {
            Ok((route, identity)) => self.run_handler(
                ctx,
                Parked {
                    request,
                    route,
                    identity,
                },
            ),
            Err(refusal) => {
                let close = refusal.response.status() == StatusCode::BadRequest;
                self.answer(
                    ctx,
                    &request,
                    None,
                    &Identity::Anonymous,
                    refusal.response,
                    Some(&refusal.reason),
                    refusal.stage,
                    close,
                )
            }
        }
    }

    /// Handles a parked request again, now that its file is compiled (or
    /// failed to): the handle and post-process stages.
    pub fn resume(&mut self, ctx: &RequestCtx, parked: Parked) -> Dispatch {
        self.run_handler(ctx, parked)
    }

    fn run_handler(&mut self, ctx: &RequestCtx, parked: Parked) -> Dispatch {
        let mut effects = std::mem::take(&mut self.effects);
        let handled = self.controller.handle(
            ctx,
            &parked.request,
            &parked.route,
            &parked.identity,
            &mut effects,
        );
        self.apply(&mut effects, ctx.now_us, ctx.unix_us);
        self.effects = effects;
        match handled {
            Handled::Defer(path) => Dispatch::Defer { path, parked },
            Handled::Respond {
                response,
                close,
                refusal,
            } => self.answer(
                ctx,
                &parked.request,
                Some(&parked.route),
                &parked.identity,
                response,
                refusal.as_deref(),
                "handle",
                close,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        ctx: &RequestCtx,
        request: &Request<Vec<u8>>,
        route: Option<&Route>,
        identity: &Identity,
        mut response: RtspResponse,
        refusal: Option<&str>,
        stage: &'static str,
        close: bool,
    ) -> Dispatch {
        let cseq = request
            .header(&rtsp_types::headers::CSEQ)
            .map(|v| v.as_str().trim().to_string());
        response::finish(&mut response, cseq.as_deref());
        if let Some(reason) = refusal {
            if let Some(suppressed) = self.refusal_log.allow(ctx.now_us) {
                tracing::info!(
                    shard = self.config.shard,
                    peer = %ctx.peer,
                    method = ?request.method(),
                    status = u16::from(response.status()),
                    stage,
                    reason,
                    suppressed,
                    "request refused"
                );
            }
        }
        let info = request_info(&self.controller, self.load(), ctx, request);
        let exchange = Exchange {
            route,
            identity,
            response: &response,
            refusal,
            answered_by: stage,
        };
        self.pipeline.post_process(&info, &exchange);
        Dispatch::Respond { response, close }
    }

    /// Acts on the controller's session changes: pacing, BYE, events.
    fn apply(&mut self, effects: &mut Vec<Effect>, now_us: u64, unix_us: u64) {
        for effect in effects.drain(..) {
            match effect {
                Effect::Opened(key) => {
                    if let Some(s) = self.controller.session(key) {
                        self.pipeline.session_event(&SessionEvent::Opened(s));
                    }
                }
                Effect::Playing(key) => {
                    if let Some(s) = self.controller.session(key) {
                        self.pacer.schedule(key, s);
                        self.pipeline.session_event(&SessionEvent::Playing(s));
                    }
                }
                Effect::Paused(key) => {
                    if let Some(s) = self.controller.session(key) {
                        self.pipeline.session_event(&SessionEvent::Paused(s));
                    }
                }
                Effect::Closed(mut s, reason) => self.close(&mut s, reason, now_us, unix_us),
            }
        }
    }

    fn close(&mut self, s: &mut Session, reason: CloseReason, now_us: u64, unix_us: u64) {
        if s.take_bye() {
            self.rtcp.bye(s, unix_us);
        }
        match reason {
            CloseReason::Teardown | CloseReason::Disconnect | CloseReason::ServerStop => {
                tracing::debug!(shard = self.config.shard, session = %s.id(), reason = reason.as_str(), "session closed")
            }
            _ => {
                tracing::info!(shard = self.config.shard, session = %s.id(), reason = reason.as_str(), "session closed")
            }
        }
        let summary = SessionSummary::of(s, self.config.shard, now_us, reason);
        self.pipeline.session_event(&SessionEvent::Closed(&summary));
    }

    /// Runs one pacer tick at shard clock `now_us` into `sink`; a session
    /// that sent the end of its PLAY range goes back to Ready, and its BYE
    /// follows [`BYE_GRACE_US`] later (in trick play, at the range's end on
    /// the wall clock), from [`Endpoint::poll_timers`]. `_unix_us` (the
    /// wall clock) is kept for callers; the tick itself writes no RTCP.
    pub fn tick(&mut self, now_us: u64, _unix_us: u64, sink: &mut impl PacketSink) -> TickStats {
        let stats = self
            .pacer
            .tick(now_us, self.controller.sessions_mut(), sink);
        self.timers.count_tick(&stats);
        for i in 0..self.pacer.finished.len() {
            let key = self.pacer.finished[i];
            let Some(s) = self.controller.sessions_mut().get_mut(key) else {
                continue;
            };
            let range_end = s.range_end_wall_us();
            s.finish_range(now_us);
            self.byes.push(key, s, now_us, range_end);
            if let Some(s) = self.controller.session(key) {
                self.pipeline.session_event(&SessionEvent::Paused(s));
            }
        }
        stats
    }

    /// Takes an RTCP compound packet from a client (receiver reports count
    /// as session activity). False when it is malformed.
    pub fn on_rtcp(&mut self, data: &[u8], now_us: u64) -> bool {
        let controller = &mut self.controller;
        rtcp::for_each_report_block(data, |b| {
            controller.on_report_block(&b, now_us);
        })
        .is_ok()
    }

    /// The RTSP connection `conn` closed: its interleaved sessions end for
    /// `reason`.
    pub fn connection_closed(
        &mut self,
        conn: ConnId,
        reason: CloseReason,
        now_us: u64,
        unix_us: u64,
    ) {
        let mut effects = std::mem::take(&mut self.effects);
        self.controller
            .connection_closed(conn, reason, &mut effects);
        self.apply(&mut effects, now_us, unix_us);
        self.effects = effects;
    }

    /// Ends the session `id` (an operator's request): BYE, closed event.
    /// False when it is not one of this shard's.
    pub fn end_session(
        &mut self,
        id: SessionId,
        reason: CloseReason,
        now_us: u64,
        unix_us: u64,
    ) -> bool {
        let Some(key) = self.controller.key_of(id) else {
            return false;
        };
        let Some(mut s) = self.controller_take(key) else {
            return false;
        };
        self.close(&mut s, reason, now_us, unix_us);
        true
    }

    /// The files at catalog paths `paths` were rewritten in place: every
    /// session still playing the old version ends (BYE, closed event with
    /// [`CloseReason::FileChanged`]); sessions already on the new version
    /// stay.
    pub fn files_changed(&mut self, paths: &[String], now_us: u64, unix_us: u64) {
        let catalog = self.controller.catalog().clone();
        let stale: Vec<usize> = self
            .controller
            .sessions()
            .filter(|(_, s)| paths.iter().any(|p| p == s.path()))
            .filter(|(_, s)| match catalog.lookup(s.path()) {
                crate::catalog::Lookup::Ready(Ok(f)) => !Arc::ptr_eq(&f, s.file()),
                _ => true,
            })
            .map(|(k, _)| k)
            .collect();
        for key in stale {
            if let Some(mut s) = self.controller_take(key) {
                tracing::warn!(shard = self.config.shard, session = %s.id(), path = s.path(), "file changed while served: ending its session");
                self.close(&mut s, CloseReason::FileChanged, now_us, unix_us);
            }
        }
    }

    /// Ends every session (the server stops).
    pub fn shutdown(&mut self, now_us: u64, unix_us: u64) {
        let keys: Vec<usize> = self.controller.sessions().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(mut s) = self.controller_take(key) {
                self.close(&mut s, CloseReason::ServerStop, now_us, unix_us);
            }
        }
    }

    fn controller_take(&mut self, key: usize) -> Option<Session> {
        self.controller.take(key)
    }

    /// Shard clock (µs) by which [`Endpoint::tick`] or
    /// [`Endpoint::poll_timers`] must run next; `None` when nothing is due
    /// until some input arrives.
    pub fn next_deadline(&self, now_us: u64) -> Option<u64> {
        let pacing = self.pacer.next_deadline(now_us);
        let timers = self.timers.next_deadline(!self.controller.is_empty());
        [pacing, timers, self.byes.next_deadline()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs what is due at shard clock `now_us` (wall clock `unix_us`):
    /// the BYEs of finished ranges, session timeouts, sender reports,
    /// admission control. Returns which periodic events fired (the shard
    /// logs its statistics on [`TimerEvents::stats`]).
    pub fn poll_timers(&mut self, now_us: u64, unix_us: u64) -> TimerEvents {
        self.byes.send_due(
            now_us,
            unix_us,
            self.controller.sessions_mut(),
            &mut self.rtcp,
        );
        let events = self.timers.poll(now_us, self.config.shard);
        if events.housekeeping {
            let mut effects = std::mem::take(&mut self.effects);
            self.controller.expire(now_us, &mut effects);
            self.apply(&mut effects, now_us, unix_us);
            self.effects = effects;
            let interval = self.config.sr_interval_us;
            let rtcp = &mut self.rtcp;
            for (_, s) in self.controller.sessions_mut().iter_mut() {
                if s.take_report_due(now_us, interval) {
                    rtcp.sender_reports(s, now_us, unix_us);
                }
            }
        }
        events
    }

    /// Hands every RTCP packet waiting to be sent to `send`, in order.
    pub fn drain_rtcp(&mut self, send: impl FnMut(&RtcpPacket)) {
        self.rtcp.drain(send);
    }

    /// Number of RTCP packets waiting.
    pub fn rtcp_pending(&self) -> usize {
        self.rtcp.len()
    }
}

/// What the stages see of `request`: its context and the session it names.
fn request_info<'a>(
    controller: &'a Controller,
    load: ShardLoad,
    ctx: &RequestCtx,
    request: &'a Request<Vec<u8>>,
) -> RequestInfo<'a> {
    let session = crate::pipeline::session_id(request)
        .and_then(|id| controller.key_of(id))
        .and_then(|k| controller.session(k));
    RequestInfo {
        request,
        shard: controller.config().shard,
        peer: ctx.peer,
        local: ctx.local,
        now_us: ctx.now_us,
        unix_us: ctx.unix_us,
        session,
        load,
    }
}

/// Builds the [`RequestCtx`] of a request arriving on connection `conn`.
pub fn request_ctx(
    conn: ConnId,
    peer: SocketAddr,
    local: SocketAddr,
    now_us: u64,
    unix_us: u64,
    forwarded: bool,
) -> RequestCtx {
    RequestCtx {
        conn,
        peer,
        local,
        now_us,
        unix_us,
        forwarded,
    }
}

/// Nominal bit rate of a file, bit/s: size × 8 ÷ duration (0 for a file
/// without duration).
fn nominal_bps(file: &cadence_hinting::FileSchedule) -> u64 {
    if file.duration_us == 0 {
        return 0;
    }
    let bits = u128::from(file.map.len() as u64) * 8 * 1_000_000;
    u64::try_from(bits / u128::from(file.duration_us)).unwrap_or(u64::MAX)
}
