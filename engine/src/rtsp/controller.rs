//! The RTSP session state machine (RFC 2326 §10 and Appendix A), sans-IO:
//! the handle stage of the request pipeline.
//!
//! [`Controller::handle`] takes one request, its [`RequestCtx`], the
//! [`Route`] the pipeline mapped it to and the client's [`Identity`], and
//! returns a [`Handled`]: the response to send, or a request that must wait
//! for its file to be compiled. Session changes are reported as [`Effect`]s
//! for the endpoint to act on (pacing, RTCP BYE, lifecycle events). It never
//! touches a socket or a clock, so it is tested with simulated time.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};

use cadence_hinting::FileSchedule;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtsp_types::headers::{NptRange, NptTime};
use rtsp_types::headers::{
    Range, Transports, CACHE_CONTROL, CONTENT_BASE, CONTENT_TYPE, CSEQ, PUBLIC, RANGE, REQUIRE,
    RTP_INFO, SCALE, SESSION, SPEED, TRANSPORT, USER_AGENT,
};
use rtsp_types::{Method, Request, StatusCode, Version};
use slab::Slab;

use super::conn_sessions::ConnSessions;
use super::interner::Interner;
use super::response::{self, RtspResponse, PUBLIC_METHODS};
use super::transport::{self, Offer};
use super::url::url_stem;
use crate::catalog::{Catalog, CatalogError, Lookup};
use crate::pipeline::{CloseReason, Identity, Route};
use crate::sdp;
use crate::session::{
    rate, trick, ConnId, PlayError, PlayRate, RateLimits, Scale, Session, SessionId, SessionMeta,
    SessionState, Speed, TrackStream, TrackTransport,
};

/// Settings of a shard's controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Index of the shard (top byte of its session IDs).
    pub shard: usize,
    /// Session timeout in seconds, announced in `Session: id;timeout=N`.
    pub session_timeout_s: u64,
    /// The shard's UDP RTP port (RTCP is the next port).
    pub server_rtp_port: u16,
    /// Limits on PLAY's Scale and Speed (RFC 2326 §12.34, §12.35).
    pub rate_limits: RateLimits,
    /// Addresses a SETUP may send RTP to other than the client's own
    /// (`destination=`, RFC 2326 §12.39); everything else gets 403, so that
    /// a server cannot be used to flood a third party.
    pub allow_destination: Arc<Vec<ipnet::IpNet>>,
}

/// Context of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestCtx {
    /// The connection the request arrived on (on the shard that received it).
    pub conn: ConnId,
    /// Client address of that connection (after PROXY protocol, when used).
    pub peer: SocketAddr,
    /// Our address on that connection.
    pub local: SocketAddr,
    /// Shard clock, µs.
    pub now_us: u64,
    /// Wall clock, µs since the Unix epoch.
    pub unix_us: u64,
    /// True when another shard forwarded this request to us: the connection
    /// is not ours, so TCP interleaved transport cannot be set up on it.
    pub forwarded: bool,
}

/// A session change the endpoint must act on, in order.
#[derive(Debug)]
pub enum Effect {
    /// A SETUP created the session with this slab key.
    Opened(usize),
    /// The session started or resumed playing: put it on the pacer.
    Playing(usize),
    /// The session stopped playing (PAUSE).
    Paused(usize),
    /// The session was removed: send RTCP BYE on its tracks, report it closed.
    Closed(Box<Session>, CloseReason),
}

/// What the handle stage made of a request.
#[derive(Debug)]
pub enum Handled {
    /// Send this response (then close the connection when `close`).
    Respond {
        /// The response, without `CSeq` and `Server` (the pipeline adds them).
        response: RtspResponse,
        /// Close the connection once it is written (after a 400).
        close: bool,
        /// Why the request was refused, for the log, when it was.
        refusal: Option<String>,
    },
    /// The request needs the schedules of this catalog path, which is not
    /// compiled yet: park it and handle it again once it is.
    Defer(String),
}

/// A failed request: status code and a reason for the log.
#[derive(Debug)]
struct Fail(StatusCode, String);

/// The outcome of one method: a response, a refusal, or a wait.
enum Outcome {
    Ok(RtspResponse),
    Fail(Fail),
    Defer(String),
}

impl From<Fail> for Outcome {
    fn from(f: Fail) -> Self {
        Outcome::Fail(f)
    }
}

/// `?` for methods: a `Fail` or a deferral ends the method.
macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(Stop::Fail(f)) => return Outcome::Fail(f),
            Err(Stop::Defer(p)) => return Outcome::Defer(p),
        }
    };
}

enum Stop {
    Fail(Fail),
    Defer(String),
}

impl From<Fail> for Stop {
    fn from(f: Fail) -> Self {
        Stop::Fail(f)
    }
}

/// The shard's sessions and the RTSP logic that steers them.
pub struct Controller {
    config: ControllerConfig,
    catalog: Arc<dyn Catalog>,
    sessions: Slab<Session>,
    by_id: HashMap<SessionId, usize>,
    by_ssrc: HashMap<u32, (usize, usize)>,
    by_conn: HashMap<ConnId, ConnSessions>,
    rng: StdRng,
    /// Descriptions by (catalog path, our address); the weak reference
    /// names the compiled file they describe, so a file that changed (a new
    /// schedule) is described again.
    sdp_cache: HashMap<(String, IpAddr), (Weak<FileSchedule>, Vec<u8>)>,
    /// Per catalog path, which tracks carry toffset (see `toffset_tracks`).
    toffset_cache: HashMap<String, (Weak<FileSchedule>, Arc<[bool]>)>,
    /// Catalog paths, URL stems and User-Agents, shared by the sessions
    /// that have the same.
    strings: Interner,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("shard", &self.config.shard)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Most cached descriptions per shard; the cache starts over beyond it.
const SDP_CACHE_ENTRIES: usize = 4096;

impl Controller {
    /// A controller with no sessions; `seed` seeds SSRC, sequence, timestamp
    /// and session-ID randomness.
    pub fn new(config: ControllerConfig, catalog: Arc<dyn Catalog>, seed: u64) -> Self {
        Controller {
            config,
            catalog,
            sessions: Slab::new(),
            by_id: HashMap::new(),
            by_ssrc: HashMap::new(),
            by_conn: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            sdp_cache: HashMap::new(),
            strings: Interner::default(),
            toffset_cache: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when the shard has no session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The session with slab key `key`.
    pub fn session(&self, key: usize) -> Option<&Session> {
        self.sessions.get(key)
    }

    /// Every session with its slab key.
    pub fn sessions(&self) -> impl Iterator<Item = (usize, &Session)> {
        self.sessions.iter()
    }

    /// The sessions, for the pacer (which only advances track cursors).
    pub(crate) fn sessions_mut(&mut self) -> &mut Slab<Session> {
        &mut self.sessions
    }

    /// True when connection `conn` created a session that still exists (or
    /// carries one's interleaved data).
    pub fn conn_has_sessions(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    /// Slab key of the session with public ID `id`.
    pub fn key_of(&self, id: SessionId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// The shard a request must be forwarded to: the owner of the session
    /// its `Session` header names, when that is another shard and the
    /// request was not forwarded already.
    pub fn forward_target(&self, ctx: &RequestCtx, req: &Request<Vec<u8>>) -> Option<usize> {
        if ctx.forwarded {
            return None;
        }
        let id = crate::pipeline::session_id(req)?;
        (id.shard() != self.config.shard).then_some(id.shard())
    }

    /// The handle stage: runs the request's method. Session changes are
    /// appended to `effects`. Never panics on any input.
    pub fn handle(
        &mut self,
        ctx: &RequestCtx,
        req: &Request<Vec<u8>>,
        route: &Route,
        identity: &Identity,
        effects: &mut Vec<Effect>,
    ) -> Handled {
        let outcome = if req.header(&CSEQ).is_none() {
            Outcome::Fail(Fail(StatusCode::BadRequest, "missing CSeq".into()))
        } else if req.version() != Version::V1_0 {
            Outcome::Fail(Fail(
                StatusCode::RTSPVersionNotSupported,
                "only RTSP/1.0".into(),
            ))
        } else if let Some(options) = req.header(&REQUIRE) {
            // We implement no option tags (RFC 2326 §12.32).
            self.touch(ctx, req);
            let options = options.as_str().trim();
            return Handled::Respond {
                response: response::option_not_supported(options),
                close: false,
                refusal: Some(format!("unsupported Require: {options}")),
            };
        } else {
            self.touch(ctx, req);
            self.dispatch(ctx, req, route, identity, effects)
        };
        match outcome {
            Outcome::Ok(response) => Handled::Respond {
                response,
                close: false,
                refusal: None,
            },
            Outcome::Defer(path) => Handled::Defer(path),
            Outcome::Fail(Fail(status, why)) => Handled::Respond {
                response: response::refusal(status),
                close: status == StatusCode::BadRequest,
                refusal: Some(why),
            },
        }
    }

    /// Counts the request as activity of the session it names, or (for a
    /// request without `Session` header, such as a keep-alive OPTIONS or
    /// GET_PARAMETER) of every session its connection created, as live555
    /// and DSS servers do.
    fn touch(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>) {
        match crate::pipeline::session_id(req) {
            Some(id) => {
                if let Some(&key) = self.by_id.get(&id) {
                    self.sessions[key].touch(ctx.now_us);
                }
            }
            None if !ctx.forwarded => {
                if let Some(keys) = self.by_conn.get(&ctx.conn) {
                    for key in keys.iter() {
                        if let Some(s) = self.sessions.get_mut(key) {
                            s.touch(ctx.now_us);
                        }
                    }
                }
            }
            None => {}
        }
    }

    fn dispatch(
        &mut self,
        ctx: &RequestCtx,
        req: &Request<Vec<u8>>,
        route: &Route,
        identity: &Identity,
        effects: &mut Vec<Effect>,
    ) -> Outcome {
        match req.method() {
            Method::Options => {
                let mut r = response::status(StatusCode::Ok);
                r.insert_header(PUBLIC, PUBLIC_METHODS);
                Outcome::Ok(r)
            }
            Method::Describe => self.describe(ctx, req, route),
            Method::Setup => self.setup(ctx, req, route, identity, effects),
            Method::Play => self.play(ctx, req, route, effects),
            Method::Pause => self.pause(ctx, req, route, effects),
            Method::Teardown => self.teardown(req, effects),
            Method::GetParameter | Method::SetParameter => {
                let mut r = response::status(StatusCode::Ok);
                if req.header(&SESSION).is_some() {
                    let key = attempt!(self.session_of(req));
                    r.insert_header(SESSION, self.sessions[key].id().to_string());
                }
                Outcome::Ok(r)
            }
            Method::Announce | Method::Record | Method::Redirect | Method::PlayNotify => {
                Outcome::Fail(Fail(
                    StatusCode::MethodNotAllowed,
                    "server does not record or redirect".into(),
                ))
            }
            Method::Extension(m) => {
                Outcome::Fail(Fail(StatusCode::NotImplemented, format!("method {m}")))
            }
        }
    }

    /// The session the request's `Session` header names: 454 when the header
    /// is malformed or names no session of ours, 455 when it is absent (the
    /// client is in the Init state, RFC 2326 Appendix A.2).
    fn session_of(&self, req: &Request<Vec<u8>>) -> Result<usize, Stop> {
        let Some(v) = req.header(&SESSION) else {
            return Err(Fail(
                StatusCode::MethodNotValidInThisState,
                "no Session header: no SETUP yet".into(),
            )
            .into());
        };
        let raw = v.as_str().split(';').next().unwrap_or("").trim();
        let id = SessionId::parse(raw).ok_or_else(|| {
            Fail(
                StatusCode::SessionNotFound,
                format!("bad session id {raw:?}"),
            )
        })?;
        self.by_id
            .get(&id)
            .copied()
            .ok_or_else(|| Fail(StatusCode::SessionNotFound, format!("no session {id}")).into())
    }

    fn load(&self, path: &str) -> Result<Arc<FileSchedule>, Stop> {
        let ready = match self.catalog.lookup(path) {
            Lookup::Ready(result) => result,
            Lookup::Pending => return Err(Stop::Defer(path.to_string())),
        };
        ready.map_err(|e| {
            Stop::Fail(match e {
                CatalogError::NotFound(_) => Fail(StatusCode::NotFound, e.to_string()),
                CatalogError::Unsupported { .. } => {
                    Fail(StatusCode::UnsupportedMediaType, e.to_string())
                }
                CatalogError::Corrupt { .. } | CatalogError::OverBudget { .. } => {
                    Fail(StatusCode::InternalServerError, e.to_string())
                }
                CatalogError::NoScheduleMemory { .. } => {
                    Fail(StatusCode::ServiceUnavailable, e.to_string())
                }
            })
        })
    }

    fn describe(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>, route: &Route) -> Outcome {
        if route.track_id.is_some() || route.path.is_empty() {
            return Fail(StatusCode::NotFound, "DESCRIBE of a track URL".into()).into();
        }
        let file = attempt!(self.load(&route.path));
        let mut sdp = attempt!(self.description(&file, &route.path, ctx.local.ip()));
        let stem = req.request_uri().map(url_stem).unwrap_or_default();
        if !route.query.is_empty() {
            // Absolute control URLs that carry the query: every client then
            // sends it on SETUP and PLAY as it is (see `url::route_of`).
            sdp = absolute_controls(&sdp, &stem, &route.query);
        }
        let mut r = response::status(StatusCode::Ok);
        r.insert_header(CONTENT_TYPE, "application/sdp");
        r.insert_header(CONTENT_BASE, format!("{stem}/"));
        r.insert_header(CACHE_CONTROL, "no-cache");
        Outcome::Ok(r.replace_body(sdp))
    }

    /// The SDP of `file` served as `path` on our address `ip`, built once per
    /// compiled file and then taken from a per-shard cache.
    fn description(
        &mut self,
        file: &Arc<FileSchedule>,
        path: &str,
        ip: IpAddr,
    ) -> Result<Vec<u8>, Stop> {
        let key = (path.to_string(), ip);
        if let Some((of, sdp)) = self.sdp_cache.get(&key) {
            if std::ptr::eq(of.as_ptr(), Arc::as_ptr(file)) {
                return Ok(sdp.clone());
            }
        }
        let properties = self
            .config
            .rate_limits
            .media_properties(trick::file_max_scale_milli(file));
        let toffset = self.toffset_tracks(path, file);
        let sdp = sdp::describe(file, path, ip, Some(&properties), &toffset)
            .map_err(|e| Fail(StatusCode::InternalServerError, e.to_string()))?
            .into_bytes();
        if self.sdp_cache.len() >= SDP_CACHE_ENTRIES {
            self.sdp_cache.clear();
        }
        self.sdp_cache
            .insert(key, (Arc::downgrade(file), sdp.clone()));
        Ok(sdp)
    }

    /// Which tracks of `file` carry the RFC 5450 transmission time offset
    /// (those reordered by B-frames), computed once per compiled file.
    fn toffset_tracks(&mut self, path: &str, file: &Arc<FileSchedule>) -> Arc<[bool]> {
        if let Some((of, flags)) = self.toffset_cache.get(path) {
            if std::ptr::eq(of.as_ptr(), Arc::as_ptr(file)) {
                return flags.clone();
            }
        }
        let flags: Arc<[bool]> = file.tracks.iter().map(sdp::needs_toffset).collect();
        if self.toffset_cache.len() >= SDP_CACHE_ENTRIES {
            self.toffset_cache.clear();
        }
        self.toffset_cache
            .insert(path.to_string(), (Arc::downgrade(file), flags.clone()));
        flags
    }

    fn setup(
        &mut self,
        ctx: &RequestCtx,
        req: &Request<Vec<u8>>,
        route: &Route,
        identity: &Identity,
        effects: &mut Vec<Effect>,
    ) -> Outcome {
        let offers: Transports = match req.typed_header::<Transports>() {
            Ok(Some(t)) => t,
            Ok(None) => return Fail(StatusCode::BadRequest, "missing Transport".into()).into(),
            Err(_) => return Fail(StatusCode::BadRequest, "malformed Transport".into()).into(),
        };
        let Some(offer) = transport::choose(&offers) else {
            return Fail(
                StatusCode::UnsupportedTransport,
                "no usable transport".into(),
            )
            .into();
        };
        if ctx.forwarded && matches!(offer, Offer::Interleaved(_)) {
            return Fail(
                StatusCode::UnsupportedTransport,
                "TCP interleaved needs the session's own connection".into(),
            )
            .into();
        }
        let existing = if req.header(&SESSION).is_some() {
            Some(attempt!(self.session_of(req)))
        } else {
            None
        };
        let file = match existing {
            Some(key) => {
                let s = &self.sessions[key];
                if !route.path.is_empty() && s.path() != route.path {
                    return Fail(
                        StatusCode::AggregateOperationNotAllowed,
                        "one session streams one file".into(),
                    )
                    .into();
                }
                if s.state() == SessionState::Playing {
                    return Fail(
                        StatusCode::MethodNotValidInThisState,
                        "SETUP while playing".into(),
                    )
                    .into();
                }
                s.file().clone()
            }
            None => attempt!(self.load(&route.path)),
        };
        let track = match route.track_id {
            Some(id) => file.tracks.iter().position(|t| t.track_id == id),
            // A track-less URL is fine for a one-track file.
            None if file.tracks.len() == 1 => Some(0),
            None => None,
        };
        let Some(track) = track else {
            return Fail(StatusCode::NotFound, "no such track".into()).into();
        };
        // Which set-up stream this SETUP makes or replaces.
        let (stream, count) = match existing {
            Some(key) => {
                let s = &self.sessions[key];
                (s.stream_of(track), s.tracks().len())
            }
            None => (None, 0),
        };
        let index = stream.unwrap_or(count);
        let transport = match offer {
            Offer::Udp {
                rtp_port,
                rtcp_port,
                ref destination,
            } => {
                let ip = match self.destination(ctx, destination.as_deref()) {
                    Ok(ip) => ip,
                    Err(f) => return f.into(),
                };
                TrackTransport::Udp {
                    rtp: SocketAddr::new(ip, rtp_port),
                    rtcp: SocketAddr::new(ip, rtcp_port),
                }
            }
            Offer::Interleaved(channels) => {
                let (a, b) = match channels.or_else(|| default_channels(index)) {
                    Some(c) => c,
                    None => {
                        return Fail(
                            StatusCode::UnsupportedTransport,
                            "no interleaved channel left for this track".into(),
                        )
                        .into()
                    }
                };
                let taken = existing.is_some_and(|key| {
                    self.sessions[key].tracks().iter().enumerate().any(|(i, t)| {
                        Some(i) != stream
                            && matches!(t.transport(), TrackTransport::Interleaved { rtp_channel, rtcp_channel, .. }
                                if [*rtp_channel, *rtcp_channel].iter().any(|c| *c == a || *c == b))
                    })
                });
                if taken {
                    return Fail(
                        StatusCode::UnsupportedTransport,
                        "interleaved channels already in use by another track".into(),
                    )
                    .into();
                }
                TrackTransport::Interleaved {
                    conn: ctx.conn,
                    rtp_channel: a,
                    rtcp_channel: b,
                }
            }
        };
        let key = match existing {
            Some(key) => key,
            None => {
                let key = self.new_session(ctx, req, route, identity, file.clone());
                effects.push(Effect::Opened(key));
                key
            }
        };
        // Re-SETUP of a track replaces its transport but keeps its SSRC.
        let ssrc = match stream {
            Some(i) => {
                let s = &mut self.sessions[key];
                s.set_transport(i, transport);
                s.tracks()[i].ssrc()
            }
            None => {
                let ssrc = self.fresh_ssrc();
                let (seq, ts_base) = (self.rng.gen(), self.rng.gen());
                let packets = file.tracks[track].packets.len();
                let path = self.sessions[key].path().to_string();
                let toffset = self
                    .toffset_tracks(&path, &file)
                    .get(track)
                    .copied()
                    .unwrap_or(false);
                let s = &mut self.sessions[key];
                let i = s.add_track(
                    TrackStream::new(track, ssrc, seq, ts_base, packets, transport)
                        .with_toffset(toffset),
                );
                self.by_ssrc.insert(ssrc, (key, i));
                ssrc
            }
        };
        let value = match transport {
            TrackTransport::Udp { rtp, rtcp } => transport::udp_reply(
                rtp,
                rtcp.port(),
                self.config.server_rtp_port,
                ctx.local.ip(),
                ssrc,
            ),
            TrackTransport::Interleaved {
                rtp_channel,
                rtcp_channel,
                ..
            } => transport::interleaved_reply(rtp_channel, rtcp_channel, ssrc),
        };
        let mut r = response::status(StatusCode::Ok);
        r.insert_header(TRANSPORT, value);
        r.insert_header(SESSION, self.session_value(self.sessions[key].id()));
        Outcome::Ok(r)
    }

    /// Where UDP RTP goes: the client's own address, or a `destination=`
    /// that `allow_destination` lists (403 otherwise, and for a host name:
    /// a server must not be made to flood a third party, RFC 2326 §12.39).
    fn destination(&self, ctx: &RequestCtx, asked: Option<&str>) -> Result<IpAddr, Fail> {
        let own = unmapped(ctx.peer.ip());
        let Some(asked) = asked else {
            return Ok(own);
        };
        let ip: IpAddr = asked.trim().parse().map_err(|_| {
            Fail(
                StatusCode::Forbidden,
                format!("Transport destination {asked:?} is not an address"),
            )
        })?;
        let ip = unmapped(ip);
        if ip == own
            || self
                .config
                .allow_destination
                .iter()
                .any(|n| n.contains(&ip))
        {
            return Ok(ip);
        }
        Err(Fail(
            StatusCode::Forbidden,
            format!(
                "Transport destination {ip} is not the client ({own}) and not in allow_destination"
            ),
        ))
    }

    fn new_session(
        &mut self,
        ctx: &RequestCtx,
        req: &Request<Vec<u8>>,
        route: &Route,
        identity: &Identity,
        file: Arc<FileSchedule>,
    ) -> usize {
        let id = loop {
            let id = SessionId::new(self.config.shard, self.rng.gen());
            if !self.by_id.contains_key(&id) {
                break id;
            }
        };
        let meta = SessionMeta {
            peer: ctx.peer,
            local: ctx.local,
            uri_stem: self
                .strings
                .get(&req.request_uri().map(url_stem).unwrap_or_default()),
            uri_query: (!route.query.is_empty()).then(|| route.query.as_str().into()),
            user_agent: req
                .header(&USER_AGENT)
                .map(|v| self.strings.get(v.as_str())),
            user: identity.user().map(Box::from),
            realm: identity.realm().map(Box::from),
            started_unix_us: ctx.unix_us,
            started_us: ctx.now_us,
        };
        let key = self.sessions.insert(Session::new(
            id,
            self.strings.get(&route.path),
            file,
            ctx.conn,
            meta,
            ctx.now_us,
        ));
        self.by_id.insert(id, key);
        if !ctx.forwarded {
            match self.by_conn.entry(ctx.conn) {
                Entry::Occupied(mut e) => e.get_mut().push(key),
                Entry::Vacant(e) => {
                    e.insert(ConnSessions::new(key));
                }
            }
        }
        key
    }

    fn fresh_ssrc(&mut self) -> u32 {
        loop {
            let ssrc: u32 = self.rng.gen();
            if ssrc != 0 && !self.by_ssrc.contains_key(&ssrc) {
                return ssrc;
            }
        }
    }

    fn session_value(&self, id: SessionId) -> String {
        format!("{id};timeout={}", self.config.session_timeout_s)
    }

    /// The session of an aggregate request (PLAY, PAUSE): it must name the
    /// session's file (404) and, for a multi-track session, not one track
    /// (460).
    fn aggregate_session(&self, req: &Request<Vec<u8>>, route: &Route) -> Result<usize, Stop> {
        let key = self.session_of(req)?;
        let s = &self.sessions[key];
        if route.path != s.path() && !(route.path.is_empty() && route.track_id.is_none()) {
            return Err(Fail(
                StatusCode::NotFound,
                "URL does not name the session's file".into(),
            )
            .into());
        }
        if route.track_id.is_some() && s.tracks().len() > 1 {
            return Err(Fail(
                StatusCode::OnlyAggregateOperationAllowed,
                "per-track PLAY/PAUSE on a multi-track session".into(),
            )
            .into());
        }
        Ok(key)
    }

    fn play(
        &mut self,
        ctx: &RequestCtx,
        req: &Request<Vec<u8>>,
        route: &Route,
        effects: &mut Vec<Effect>,
    ) -> Outcome {
        let key = attempt!(self.aggregate_session(req, route));
        let range = attempt!(parse_npt_range(req));
        let (scale, speed) = attempt!(parse_rate(req));
        let (start, end) = match range {
            Some((s, e)) => (Some(s), e),
            None => (None, None),
        };
        let s = &mut self.sessions[key];
        let requested = PlayRate {
            scale: scale.unwrap_or(Scale::ONE),
            speed: speed.unwrap_or(Speed::ONE),
        };
        let file_max = requested.is_trick().then(|| s.max_trick_scale()).flatten();
        let rate = rate::negotiate(requested, file_max, &self.config.rate_limits);
        let epoch = s.epoch();
        let played = match s.play(ctx.now_us, start, end, rate) {
            Ok(p) => p,
            Err(PlayError::NoTracks) => {
                return Fail(
                    StatusCode::MethodNotValidInThisState,
                    "no track set up".into(),
                )
                .into()
            }
            Err(PlayError::InvalidRange) => {
                return Fail(
                    StatusCode::InvalidRange,
                    format!("npt {} µs", start.unwrap_or(0)),
                )
                .into()
            }
        };
        if s.epoch() != epoch {
            effects.push(Effect::Playing(key));
        }
        let stem = req.request_uri().map(url_stem).unwrap_or_default();
        let query = if route.query.is_empty() {
            String::new()
        } else {
            format!("?{}", route.query)
        };
        let file = s.file();
        let infos: Vec<String> = s
            .tracks()
            .iter()
            .map(|t| {
                let sched = &file.tracks[t.track()];
                let rtptime = sched
                    .packets
                    .get(t.cursor())
                    .or(sched.packets.last())
                    .map(|p| t.rtp_timestamp(p))
                    .unwrap_or(t.ts_base());
                format!(
                    "url={stem}/trackID={}{query};seq={};rtptime={}",
                    sched.track_id,
                    t.next_seq(),
                    rtptime
                )
            })
            .collect();
        let range_value = format!(
            "npt={}-{}",
            sdp::npt_seconds(played.start_us),
            sdp::npt_seconds(played.end_us.unwrap_or(file.duration_us))
        );
        let id = s.id();
        let mut r = response::status(StatusCode::Ok);
        r.insert_header(RANGE, range_value);
        // The rate used (RFC 2326 §12.34: the reply MUST carry the scale
        // chosen), whenever asked for or not 1, as gst-rtsp-server does;
        // trick play states its Speed too: GStreamer's rtspsrc takes the
        // reply's Speed as the rate of its output (Scale only without it),
        // and any rate but the delivery rate makes its sinks drop every key
        // frame as late.
        let used = s.rate();
        if scale.is_some() || used.scale != Scale::ONE {
            r.insert_header(SCALE, used.scale.to_string());
        }
        if speed.is_some() || used.speed != Speed::ONE || used.is_trick() {
            r.insert_header(SPEED, used.speed.to_string());
        }
        r.insert_header(RTP_INFO, infos.join(","));
        r.insert_header(SESSION, self.session_value(id));
        Outcome::Ok(r)
    }

    fn pause(
        &mut self,
        ctx: &RequestCtx,
        req: &Request<Vec<u8>>,
        route: &Route,
        effects: &mut Vec<Effect>,
    ) -> Outcome {
        let key = attempt!(self.aggregate_session(req, route));
        let s = &mut self.sessions[key];
        if s.tracks().is_empty() {
            return Fail(
                StatusCode::MethodNotValidInThisState,
                "no track set up".into(),
            )
            .into();
        }
        if s.pause(ctx.now_us) {
            effects.push(Effect::Paused(key));
        }
        let id = s.id();
        let mut r = response::status(StatusCode::Ok);
        r.insert_header(SESSION, self.session_value(id));
        Outcome::Ok(r)
    }

    fn teardown(&mut self, req: &Request<Vec<u8>>, effects: &mut Vec<Effect>) -> Outcome {
        let key = attempt!(self.session_of(req));
        let session = self.remove(key);
        let mut r = response::status(StatusCode::Ok);
        r.insert_header(SESSION, session.id().to_string());
        effects.push(Effect::Closed(Box::new(session), CloseReason::Teardown));
        Outcome::Ok(r)
    }

    /// Removes the session with slab key `key` and returns it.
    /// Panics never: an unknown key is a logic error reported by `None`.
    pub fn take(&mut self, key: usize) -> Option<Session> {
        if !self.sessions.contains(key) {
            return None;
        }
        Some(self.remove(key))
    }

    fn remove(&mut self, key: usize) -> Session {
        let s = self.sessions.remove(key);
        self.by_id.remove(&s.id());
        for t in s.tracks() {
            self.by_ssrc.remove(&t.ssrc());
        }
        if let Some(keys) = self.by_conn.get_mut(&s.conn()) {
            if keys.remove(key) {
                self.by_conn.remove(&s.conn());
            }
        }
        s
    }

    /// Removes every session idle (no RTSP request, no RTCP) for longer than
    /// the session timeout at shard clock `now_us`, appending them to
    /// `effects` as closed by [`CloseReason::Timeout`].
    pub fn expire(&mut self, now_us: u64, effects: &mut Vec<Effect>) {
        let limit = self.config.session_timeout_s.saturating_mul(1_000_000);
        let idle: Vec<usize> = self
            .sessions
            .iter()
            .filter(|(_, s)| now_us.saturating_sub(s.last_activity_us()) > limit)
            .map(|(k, _)| k)
            .collect();
        for k in idle {
            let s = self.remove(k);
            effects.push(Effect::Closed(Box::new(s), CloseReason::Timeout));
        }
    }

    /// Removes the sessions whose RTP flows over connection `conn` (TCP
    /// interleaved), after that connection closed, appending them to
    /// `effects` as closed for `reason`. UDP sessions created on it stay:
    /// their client may come back on another connection.
    pub fn connection_closed(
        &mut self,
        conn: ConnId,
        reason: CloseReason,
        effects: &mut Vec<Effect>,
    ) {
        let Some(keys) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        for key in keys.iter() {
            let bound = self.sessions.get(key).is_some_and(|s| {
                s.tracks().iter().any(|t| {
                    matches!(t.transport(), TrackTransport::Interleaved { conn: c, .. } if *c == conn)
                })
            });
            if bound {
                let s = self.remove(key);
                effects.push(Effect::Closed(Box::new(s), reason));
            }
        }
        self.by_conn.remove(&conn);
    }

    /// Records a client's RTCP report block (about our SSRC `block.source`),
    /// and counts it as session activity. Returns false when no session has
    /// that SSRC.
    pub fn on_report_block(&mut self, block: &crate::rtcp::ReportBlockInfo, now_us: u64) -> bool {
        let Some(&(key, track)) = self.by_ssrc.get(&block.source) else {
            return false;
        };
        let Some(s) = self.sessions.get_mut(key) else {
            return false;
        };
        s.record_reception(track, block, now_us);
        true
    }

    /// Slab key and track index of the session track with our SSRC `ssrc`.
    pub fn track_of_ssrc(&self, ssrc: u32) -> Option<(usize, usize)> {
        self.by_ssrc.get(&ssrc).copied()
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Interleaved channels for the `index`-th set-up track when the client
/// left them to us: `2i` and `2i+1`, while they fit in a byte.
fn default_channels(index: usize) -> Option<(u8, u8)> {
    let rtp = u8::try_from(index.checked_mul(2)?).ok()?;
    Some((rtp, rtp.checked_add(1)?))
}

/// Rewrites the `a=control:` lines of a cached description into absolute
/// URLs on `stem` that carry `query`.
fn absolute_controls(sdp: &[u8], stem: &str, query: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(sdp);
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        match bare.strip_prefix("a=control:") {
            Some("*") => out.push_str(&format!("a=control:{stem}?{query}\r\n")),
            Some(track) => out.push_str(&format!("a=control:{stem}/{track}?{query}\r\n")),
            None => out.push_str(line),
        }
    }
    out.into_bytes()
}

/// Parses the `Scale` and `Speed` headers (RFC 2326 §12.34, §12.35), when
/// present; 400 for a value that is not a decimal number, or zero.
fn parse_rate(req: &Request<Vec<u8>>) -> Result<(Option<Scale>, Option<Speed>), Stop> {
    let bad =
        |e: crate::session::RateError| Stop::Fail(Fail(StatusCode::BadRequest, e.to_string()));
    let scale = req
        .header(&SCALE)
        .map(|v| rate::parse_scale(v.as_str()))
        .transpose()
        .map_err(bad)?;
    let speed = req
        .header(&SPEED)
        .map(|v| rate::parse_speed(v.as_str()))
        .transpose()
        .map_err(bad)?;
    Ok((scale, speed))
}

/// Parses `Range: npt=a-[b]` into µs. `Ok(None)` when absent or `npt=now-`;
/// 457 for a non-npt, malformed or out-of-range range.
fn parse_npt_range(req: &Request<Vec<u8>>) -> Result<Option<(u64, Option<u64>)>, Stop> {
    let range = match req.typed_header::<Range>() {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(_) => return Err(Fail(StatusCode::InvalidRange, "malformed Range".into()).into()),
    };
    let npt = match range {
        Range::Npt(n) => n,
        _ => return Err(Fail(StatusCode::InvalidRange, "only npt ranges".into()).into()),
    };
    let us = |t: NptTime| -> Option<Option<u64>> {
        let (secs, ns) = match t {
            NptTime::Now => return Some(None),
            NptTime::Seconds(s, ns) => (s, ns),
            NptTime::Hms(h, m, s, ns) => (
                h.checked_mul(3600)?
                    .checked_add(u64::from(m).checked_mul(60)?)?
                    .checked_add(u64::from(s))?,
                ns,
            ),
        };
        Some(Some(
            secs.checked_mul(1_000_000)?
                .checked_add(u64::from(ns.unwrap_or(0) / 1000))?,
        ))
    };
    let bad = || Stop::Fail(Fail(StatusCode::InvalidRange, "npt out of range".into()));
    match npt {
        NptRange::Empty => Ok(None),
        NptRange::From(a) => match us(a).ok_or_else(bad)? {
            Some(a) => Ok(Some((a, None))),
            None => Ok(None),
        },
        NptRange::FromTo(a, b) => {
            let a = us(a).ok_or_else(bad)?.unwrap_or(0);
            let b = us(b).ok_or_else(bad)?;
            Ok(Some((a, b)))
        }
        NptRange::To(b) => Ok(Some((0, us(b).ok_or_else(bad)?))),
    }
}
