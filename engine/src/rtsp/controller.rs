//! The RTSP session state machine (RFC 2326 §10 and Appendix A), sans-IO.
//!
//! [`Controller::handle`] takes one parsed request plus its context (which
//! connection, peer address, shard clock in µs) and returns the response and
//! the [`Effect`]s the shard must carry out. It never touches a socket or a
//! clock, so it is tested with simulated time.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use cadence_hinting::FileSchedule;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtsp_types::headers::{NptRange, NptTime};
use rtsp_types::headers::{
    Range, Transports, ALLOW, CONTENT_BASE, CONTENT_TYPE, CSEQ, PUBLIC, RANGE, RTP_INFO, SERVER,
    SESSION, TRANSPORT,
};
use rtsp_types::{Method, Request, Response, StatusCode, Version};
use slab::Slab;

use super::transport::{self, Offer};
use super::url::{parse_target, Target};
use crate::catalog::{Catalog, CatalogError, Lookup};
use crate::sdp;
use crate::session::{
    ConnId, PlayClock, ReceptionReport, Session, SessionId, SessionState, TrackStream,
    TrackTransport,
};

/// Methods we implement, for OPTIONS' `Public` and 405's `Allow`.
pub const PUBLIC_METHODS: &str =
    "DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, OPTIONS, GET_PARAMETER, SET_PARAMETER";

/// Value of the `Server` header.
pub const SERVER_NAME: &str = concat!("Cadence/", env!("CARGO_PKG_VERSION"));

/// Settings of a shard's controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Index of the shard (top byte of its session IDs).
    pub shard: usize,
    /// Session timeout in seconds, announced in `Session: id;timeout=N`.
    pub session_timeout_s: u64,
    /// The shard's UDP RTP port (RTCP is the next port).
    pub server_rtp_port: u16,
}

/// Context of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestCtx {
    /// The connection the request arrived on (on the shard that received it).
    pub conn: ConnId,
    /// Client address of that connection.
    pub peer: SocketAddr,
    /// Our address on that connection.
    pub local: SocketAddr,
    /// Shard clock, µs.
    pub now_us: u64,
    /// True when another shard forwarded this request to us: the connection
    /// is not ours, so TCP interleaved transport cannot be set up on it.
    pub forwarded: bool,
}

/// Something the shard must do after a request.
#[derive(Debug)]
pub enum Effect {
    /// The session (slab key) started or resumed playing: put it on the pacer.
    Schedule(usize),
    /// The session was removed: send RTCP BYE on its tracks, then drop it.
    Teardown(Box<Session>),
    /// The request names a session of another shard: forward it there (the
    /// response in the [`Reply`] is a placeholder and must not be sent).
    Forward(usize),
    /// The request needs the schedule of this catalog path, which is being
    /// compiled off the shard: park the request (and the rest of its
    /// connection's input) and handle it again once the file is ready (the
    /// response is a placeholder and must not be sent).
    Defer(String),
    /// Close the connection after sending the response.
    Close,
}

/// A response and its effects.
#[derive(Debug)]
pub struct Reply {
    /// The response to send.
    pub response: Response<Vec<u8>>,
    /// Effects, in order.
    pub effects: Vec<Effect>,
}

/// A failed request: status code and a reason for the log.
#[derive(Debug)]
struct Fail(StatusCode, String);

/// The status a [`Fail`] carries when the request must wait for its file's
/// schedule to be compiled off the shard; never sent. The reason is the
/// catalog path.
const DEFER: StatusCode = StatusCode::Continue;

type Outcome = Result<(Response<Vec<u8>>, Vec<Effect>), Fail>;

/// The shard's sessions and the RTSP logic that steers them.
pub struct Controller {
    config: ControllerConfig,
    catalog: Arc<Catalog>,
    /// Sessions by slab key (the pacer's handle).
    pub sessions: Slab<Session>,
    by_id: HashMap<SessionId, usize>,
    by_ssrc: HashMap<u32, (usize, usize)>,
    rng: StdRng,
    admitting: bool,
    sdp_cache: HashMap<(String, IpAddr), Vec<u8>>,
}

/// Most cached descriptions per shard; the cache starts over beyond it.
const SDP_CACHE_ENTRIES: usize = 4096;

impl Controller {
    /// A controller with no sessions; `seed` seeds SSRC, sequence, timestamp
    /// and session-ID randomness.
    pub fn new(config: ControllerConfig, catalog: Arc<Catalog>, seed: u64) -> Self {
        Controller {
            config,
            catalog,
            sessions: Slab::new(),
            by_id: HashMap::new(),
            by_ssrc: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            admitting: true,
            sdp_cache: HashMap::new(),
        }
    }

    /// Whether new sessions are accepted (see [`Controller::set_admitting`]).
    pub fn admitting(&self) -> bool {
        self.admitting
    }

    /// Accepts (true) or refuses (false) new sessions: a SETUP that would
    /// create a session gets 453 Not Enough Bandwidth while the shard cannot
    /// keep its sessions on time (RFC 2326 §11.3.5). Existing sessions are
    /// unaffected.
    pub fn set_admitting(&mut self, admitting: bool) {
        self.admitting = admitting;
    }

    /// The settings.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Slab key of the session with public ID `id`.
    pub fn key_of(&self, id: SessionId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// Handles one request. Never panics on any input.
    pub fn handle(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>) -> Reply {
        let cseq = req.header(&CSEQ).map(|v| v.as_str().trim().to_string());
        let outcome = match (&cseq, req.version()) {
            (None, _) => Err(Fail(StatusCode::BadRequest, "missing CSeq".into())),
            (_, Version::V1_0) => self.dispatch(ctx, req),
            (_, _) => Err(Fail(
                StatusCode::RTSPVersionNotSupported,
                "only RTSP/1.0".into(),
            )),
        };
        let (mut response, effects) = match outcome {
            Ok(ok) => ok,
            Err(Fail(DEFER, path)) => (empty(StatusCode::Ok), vec![Effect::Defer(path)]),
            Err(Fail(status, why)) => {
                tracing::debug!(peer = %ctx.peer, method = ?req.method(), %status, why, "request refused");
                let mut r = empty(status);
                if status == StatusCode::MethodNotAllowed {
                    r.insert_header(ALLOW, PUBLIC_METHODS);
                }
                let close = status == StatusCode::BadRequest;
                (
                    r,
                    if close {
                        vec![Effect::Close]
                    } else {
                        Vec::new()
                    },
                )
            }
        };
        if let Some(cseq) = cseq {
            response.insert_header(CSEQ, cseq);
        }
        response.insert_header(SERVER, SERVER_NAME);
        Reply { response, effects }
    }

    fn dispatch(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>) -> Outcome {
        // Requests that name a session of another shard are forwarded there.
        if let Some(id) = self.session_header(req)? {
            if id.shard() != self.config.shard && !ctx.forwarded {
                return Ok((empty(StatusCode::Ok), vec![Effect::Forward(id.shard())]));
            }
            if let Some(&key) = self.by_id.get(&id) {
                self.sessions[key].last_activity_us = ctx.now_us;
            }
        }
        match req.method() {
            Method::Options => {
                let mut r = empty(StatusCode::Ok);
                r.insert_header(PUBLIC, PUBLIC_METHODS);
                Ok((r, Vec::new()))
            }
            Method::Describe => self.describe(ctx, req),
            Method::Setup => self.setup(ctx, req),
            Method::Play => self.play(ctx, req),
            Method::Pause => self.pause(ctx, req),
            Method::Teardown => self.teardown(req),
            Method::GetParameter | Method::SetParameter => {
                let mut r = empty(StatusCode::Ok);
                if let Some(id) = self.session_header(req)? {
                    self.lookup(id)?;
                    r.insert_header(SESSION, id.to_string());
                }
                Ok((r, Vec::new()))
            }
            Method::Announce | Method::Record | Method::Redirect | Method::PlayNotify => Err(Fail(
                StatusCode::MethodNotAllowed,
                "server does not record or redirect".into(),
            )),
            Method::Extension(m) => Err(Fail(StatusCode::NotImplemented, format!("method {m}"))),
        }
    }

    /// The parsed `Session` header: `Ok(None)` when absent, 454 when it is not
    /// one of our IDs.
    fn session_header(&self, req: &Request<Vec<u8>>) -> Result<Option<SessionId>, Fail> {
        let Some(v) = req.header(&SESSION) else {
            return Ok(None);
        };
        let raw = v.as_str().split(';').next().unwrap_or("").trim();
        SessionId::parse(raw).map(Some).ok_or_else(|| {
            Fail(
                StatusCode::SessionNotFound,
                format!("bad session id {raw:?}"),
            )
        })
    }

    fn lookup(&self, id: SessionId) -> Result<usize, Fail> {
        self.by_id
            .get(&id)
            .copied()
            .ok_or_else(|| Fail(StatusCode::SessionNotFound, format!("no session {id}")))
    }

    fn target(req: &Request<Vec<u8>>) -> Result<Target, Fail> {
        let url = req
            .request_uri()
            .ok_or_else(|| Fail(StatusCode::BadRequest, "no request URL".into()))?;
        parse_target(url.path()).ok_or_else(|| Fail(StatusCode::BadRequest, "bad URL path".into()))
    }

    fn load(&self, path: &str) -> Result<Arc<FileSchedule>, Fail> {
        let ready = match self.catalog.lookup(path) {
            Lookup::Ready(result) => result,
            Lookup::Pending => return Err(Fail(DEFER, path.to_string())),
        };
        ready.map_err(|e| match e {
            CatalogError::NotFound(_) => Fail(StatusCode::NotFound, e.to_string()),
            CatalogError::Unsupported { .. } => {
                Fail(StatusCode::UnsupportedMediaType, e.to_string())
            }
            CatalogError::Corrupt { .. } => Fail(StatusCode::InternalServerError, e.to_string()),
        })
    }

    fn describe(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>) -> Outcome {
        let target = Self::target(req)?;
        if target.track_id.is_some() {
            return Err(Fail(StatusCode::NotFound, "DESCRIBE of a track URL".into()));
        }
        let file = self.load(&target.path)?;
        let sdp = self.description(&file, &target.path, ctx.local.ip())?;
        let mut base = req
            .request_uri()
            .map(|u| u.as_str().to_string())
            .unwrap_or_default();
        if !base.ends_with('/') {
            base.push('/');
        }
        let mut r = Response::builder(Version::V1_0, StatusCode::Ok)
            .header(CONTENT_TYPE, "application/sdp")
            .header(CONTENT_BASE, base)
            .build(sdp);
        r.insert_header(rtsp_types::headers::CACHE_CONTROL, "no-cache");
        Ok((r, Vec::new()))
    }

    /// The SDP of `file` served as `path` on our address `ip`, built once and
    /// then taken from a per-shard cache (a compiled file never changes).
    fn description(
        &mut self,
        file: &FileSchedule,
        path: &str,
        ip: IpAddr,
    ) -> Result<Vec<u8>, Fail> {
        let key = (path.to_string(), ip);
        if let Some(sdp) = self.sdp_cache.get(&key) {
            return Ok(sdp.clone());
        }
        let sdp = sdp::describe(file, path, ip)
            .map_err(|e| Fail(StatusCode::InternalServerError, e.to_string()))?
            .into_bytes();
        if self.sdp_cache.len() >= SDP_CACHE_ENTRIES {
            self.sdp_cache.clear();
        }
        self.sdp_cache.insert(key, sdp.clone());
        Ok(sdp)
    }

    fn setup(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>) -> Outcome {
        let target = Self::target(req)?;
        let offers: Transports = req
            .typed_header::<Transports>()
            .map_err(|_| Fail(StatusCode::BadRequest, "malformed Transport".into()))?
            .ok_or_else(|| Fail(StatusCode::BadRequest, "missing Transport".into()))?;
        let offer = transport::choose(&offers).ok_or_else(|| {
            Fail(
                StatusCode::UnsupportedTransport,
                "no usable transport".into(),
            )
        })?;
        if ctx.forwarded && matches!(offer, Offer::Interleaved(_)) {
            return Err(Fail(
                StatusCode::UnsupportedTransport,
                "TCP interleaved needs the session's own connection".into(),
            ));
        }
        let existing = match self.session_header(req)? {
            Some(id) => Some(self.lookup(id)?),
            None => None,
        };
        let file = match existing {
            Some(key) => {
                let s = &self.sessions[key];
                if s.path != target.path {
                    return Err(Fail(
                        StatusCode::AggregateOperationNotAllowed,
                        "one session streams one file".into(),
                    ));
                }
                if s.state == SessionState::Playing {
                    return Err(Fail(
                        StatusCode::MethodNotValidInThisState,
                        "SETUP while playing".into(),
                    ));
                }
                s.file.clone()
            }
            None => self.load(&target.path)?,
        };
        let track = match target.track_id {
            Some(id) => file.tracks.iter().position(|t| t.track_id == id),
            // A track-less URL is fine for a one-track file.
            None if file.tracks.len() == 1 => Some(0),
            None => None,
        }
        .ok_or_else(|| Fail(StatusCode::NotFound, "no such track".into()))?;

        let key = match existing {
            Some(key) => key,
            None if !self.admitting => {
                return Err(Fail(
                    StatusCode::NotEnoughBandwidth,
                    "shard is behind; refusing new sessions".into(),
                ))
            }
            None => self.new_session(ctx, &target.path, file.clone()),
        };
        let index = self.sessions[key].tracks.len();
        let (transport, reply) = match offer {
            Offer::Udp {
                rtp_port,
                rtcp_port,
            } => {
                let rtp = SocketAddr::new(ctx.peer.ip(), rtp_port);
                let rtcp = SocketAddr::new(ctx.peer.ip(), rtcp_port);
                (TrackTransport::Udp { rtp, rtcp }, None)
            }
            Offer::Interleaved(channels) => {
                let (a, b) = channels.unwrap_or((index as u8 * 2, index as u8 * 2 + 1));
                let t = TrackTransport::Interleaved {
                    conn: ctx.conn,
                    rtp_channel: a,
                    rtcp_channel: b,
                };
                (t, Some((a, b)))
            }
        };
        // Re-SETUP of a track replaces its transport but keeps its SSRC.
        let ssrc = match self.sessions[key]
            .tracks
            .iter()
            .position(|t| t.track == track)
        {
            Some(i) => {
                self.sessions[key].tracks[i].transport = transport;
                self.sessions[key].tracks[i].ssrc
            }
            None => {
                let ssrc = self.fresh_ssrc();
                let stream = TrackStream {
                    track,
                    ssrc,
                    next_seq: self.rng.gen(),
                    ts_base: self.rng.gen(),
                    cursor: 0,
                    end: file.tracks[track].packets.len(),
                    transport,
                    packets_sent: 0,
                    octets_sent: 0,
                    last_rtp_time: 0,
                    reception: ReceptionReport::default(),
                };
                let s = &mut self.sessions[key];
                s.tracks.push(stream);
                self.by_ssrc.insert(ssrc, (key, s.tracks.len() - 1));
                ssrc
            }
        };
        let value = match (offer, reply) {
            (
                Offer::Udp {
                    rtp_port,
                    rtcp_port,
                },
                _,
            ) => transport::udp_reply(
                SocketAddr::new(ctx.peer.ip(), rtp_port),
                rtcp_port,
                self.config.server_rtp_port,
                ctx.local.ip(),
                ssrc,
            ),
            (_, Some((a, b))) => transport::interleaved_reply(a, b, ssrc),
            (_, None) => transport::interleaved_reply(0, 1, ssrc),
        };
        let s = &self.sessions[key];
        let mut r = empty(StatusCode::Ok);
        r.insert_header(TRANSPORT, value);
        r.insert_header(SESSION, self.session_value(s.id));
        Ok((r, Vec::new()))
    }

    fn new_session(&mut self, ctx: &RequestCtx, path: &str, file: Arc<FileSchedule>) -> usize {
        let id = loop {
            let id = SessionId::new(self.config.shard, self.rng.gen());
            if !self.by_id.contains_key(&id) {
                break id;
            }
        };
        let key = self.sessions.insert(Session {
            id,
            path: path.to_string(),
            file,
            tracks: Vec::with_capacity(2),
            state: SessionState::Ready,
            clock: None,
            paused_npt_us: None,
            last_activity_us: ctx.now_us,
            next_sr_us: ctx.now_us,
            epoch: 0,
            conn: Some(ctx.conn),
            bye_sent: false,
        });
        self.by_id.insert(id, key);
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

    fn session_of(&self, req: &Request<Vec<u8>>) -> Result<usize, Fail> {
        // No Session header: the client is in the Init state, where PLAY,
        // PAUSE and TEARDOWN are not valid (RFC 2326 Appendix A.2).
        let id = self.session_header(req)?.ok_or_else(|| {
            Fail(
                StatusCode::MethodNotValidInThisState,
                "no Session header: no SETUP yet".into(),
            )
        })?;
        self.lookup(id)
    }

    /// Checks that an aggregate request names the session's file (460 for a
    /// track URL of a multi-track session).
    fn check_aggregate(&self, key: usize, req: &Request<Vec<u8>>) -> Result<(), Fail> {
        let target = Self::target(req)?;
        let s = &self.sessions[key];
        if target.path != s.path && !(target.path.is_empty() && target.track_id.is_none()) {
            return Err(Fail(
                StatusCode::NotFound,
                "URL does not name the session's file".into(),
            ));
        }
        if target.track_id.is_some() && s.tracks.len() > 1 {
            return Err(Fail(
                StatusCode::OnlyAggregateOperationAllowed,
                "per-track PLAY/PAUSE on a multi-track session".into(),
            ));
        }
        Ok(())
    }

    fn play(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>) -> Outcome {
        let key = self.session_of(req)?;
        self.check_aggregate(key, req)?;
        let range = parse_npt_range(req)?;
        let now = ctx.now_us;
        let s = &mut self.sessions[key];
        if s.tracks.is_empty() {
            return Err(Fail(
                StatusCode::MethodNotValidInThisState,
                "no track set up".into(),
            ));
        }
        let duration = s.file.duration_us;
        let (start_us, end_us) = match range {
            Some((start, end)) => {
                if start > duration || end.is_some_and(|e| e <= start) {
                    return Err(Fail(StatusCode::InvalidRange, format!("npt {start} µs")));
                }
                (Some(start), end)
            }
            None => (None, None),
        };
        let (start, pacing_start) = match (start_us, s.state, s.paused_npt_us) {
            // Seek, or first PLAY: start at the sync sample at or before the
            // requested npt.
            (Some(t), _, _) => seek(s, t, end_us),
            // Resume after PAUSE where the cursors stopped.
            (None, SessionState::Ready, Some(p)) => (p, p),
            // Already playing and no Range: keep going (RFC 2326 §10.5).
            (None, SessionState::Playing, _) => {
                let npt = s.clock.map(|c| c.npt_at(now)).unwrap_or(0);
                (npt, npt)
            }
            (None, SessionState::Ready, None) => seek(s, 0, None),
        };
        let was_playing = s.state == SessionState::Playing && start_us.is_none();
        if !was_playing {
            s.clock = Some(PlayClock {
                npt_start_us: pacing_start,
                wall_start_us: now,
            });
            s.state = SessionState::Playing;
            s.paused_npt_us = None;
            s.epoch = s.epoch.wrapping_add(1);
            s.bye_sent = false;
        }
        let mut infos = Vec::with_capacity(s.tracks.len());
        let base = req
            .request_uri()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .unwrap_or_default();
        for t in &s.tracks {
            let sched = &s.file.tracks[t.track];
            let rtptime = sched
                .packets
                .get(t.cursor)
                .or(sched.packets.last())
                .map(|p| t.rtp_timestamp(p))
                .unwrap_or(t.ts_base);
            infos.push(format!(
                "url={base}/trackID={};seq={};rtptime={}",
                sched.track_id, t.next_seq, rtptime
            ));
        }
        let range_value = match end_us {
            Some(e) => format!("npt={}-{}", sdp::npt_seconds(start), sdp::npt_seconds(e)),
            None => format!(
                "npt={}-{}",
                sdp::npt_seconds(start),
                sdp::npt_seconds(duration)
            ),
        };
        let id = s.id;
        let mut r = empty(StatusCode::Ok);
        r.insert_header(RANGE, range_value);
        r.insert_header(RTP_INFO, infos.join(","));
        r.insert_header(SESSION, self.session_value(id));
        Ok((r, vec![Effect::Schedule(key)]))
    }

    fn pause(&mut self, ctx: &RequestCtx, req: &Request<Vec<u8>>) -> Outcome {
        let key = self.session_of(req)?;
        self.check_aggregate(key, req)?;
        let s = &mut self.sessions[key];
        if s.tracks.is_empty() {
            return Err(Fail(
                StatusCode::MethodNotValidInThisState,
                "no track set up".into(),
            ));
        }
        if s.state == SessionState::Playing {
            let npt = s.clock.map(|c| c.npt_at(ctx.now_us)).unwrap_or(0);
            s.paused_npt_us = Some(npt);
            s.clock = None;
            s.state = SessionState::Ready;
            s.epoch = s.epoch.wrapping_add(1);
        }
        let id = s.id;
        let mut r = empty(StatusCode::Ok);
        r.insert_header(SESSION, self.session_value(id));
        Ok((r, Vec::new()))
    }

    fn teardown(&mut self, req: &Request<Vec<u8>>) -> Outcome {
        let key = self.session_of(req)?;
        let session = self.remove(key);
        let mut r = empty(StatusCode::Ok);
        r.insert_header(SESSION, session.id.to_string());
        Ok((r, vec![Effect::Teardown(Box::new(session))]))
    }

    /// Removes the session with slab key `key` and returns it.
    pub fn remove(&mut self, key: usize) -> Session {
        let s = self.sessions.remove(key);
        self.by_id.remove(&s.id);
        for t in &s.tracks {
            self.by_ssrc.remove(&t.ssrc);
        }
        s
    }

    /// Removes and returns every session idle (no RTSP request, no RTCP) for
    /// longer than the session timeout at shard clock `now_us`.
    pub fn expire(&mut self, now_us: u64) -> Vec<Session> {
        let limit = self.config.session_timeout_s.saturating_mul(1_000_000);
        let idle: Vec<usize> = self
            .sessions
            .iter()
            .filter(|(_, s)| now_us.saturating_sub(s.last_activity_us) > limit)
            .map(|(k, _)| k)
            .collect();
        idle.into_iter().map(|k| self.remove(k)).collect()
    }

    /// Removes and returns the sessions whose RTP flows over connection
    /// `conn` (TCP interleaved), after that connection closed.
    pub fn connection_closed(&mut self, conn: ConnId) -> Vec<Session> {
        let bound: Vec<usize> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.tracks.iter().any(|t| {
                    matches!(t.transport, TrackTransport::Interleaved { conn: c, .. } if c == conn)
                })
            })
            .map(|(k, _)| k)
            .collect();
        bound.into_iter().map(|k| self.remove(k)).collect()
    }

    /// Records a client's RTCP report block about our SSRC `source`, and counts
    /// it as session activity. Returns false when no session has that SSRC.
    pub fn on_report_block(
        &mut self,
        source: u32,
        fraction_lost: u8,
        cumulative_lost: u32,
        jitter: u32,
        now_us: u64,
    ) -> bool {
        let Some(&(key, track)) = self.by_ssrc.get(&source) else {
            return false;
        };
        let Some(s) = self.sessions.get_mut(key) else {
            return false;
        };
        s.last_activity_us = now_us;
        if let Some(t) = s.tracks.get_mut(track) {
            t.reception.fraction_lost = fraction_lost;
            t.reception.cumulative_lost = cumulative_lost;
            t.reception.jitter = jitter;
            t.reception.reports = t.reception.reports.saturating_add(1);
        }
        true
    }

    /// Slab key and track index of the session track with our SSRC `ssrc`.
    pub fn track_of_ssrc(&self, ssrc: u32) -> Option<(usize, usize)> {
        self.by_ssrc.get(&ssrc).copied()
    }
}

/// Positions every track's cursor for a PLAY from npt `t_us` (to `end_us`).
/// Decoding must start on a key frame: in the first track whose samples are
/// not all sync samples (the video track), playback starts at the last sync
/// sample presented at or before `t_us`; the other tracks start at that
/// sample's presentation time. Returns `(range_start, pacing_start)`: the
/// presentation npt reported in `Range` (µs), and the send time (µs) that the
/// pacing clock starts from (earlier with B-frames, where a key frame is sent
/// ahead of its presentation).
fn seek(s: &mut Session, t_us: u64, end_us: Option<u64>) -> (u64, u64) {
    let file = &s.file;
    let mut range_start = t_us;
    let mut video_cursor = None;
    let video = s.tracks.iter().position(|t| {
        file.tracks[t.track]
            .packets
            .iter()
            .any(|p| p.flags.sample_start() && !p.flags.sync())
    });
    if let Some(v) = video {
        let sched = &file.tracks[s.tracks[v].track];
        let key = sched
            .packets
            .iter()
            .enumerate()
            .filter(|(_, p)| p.flags.sync())
            .take_while(|(_, p)| p.send_time_us <= t_us)
            .filter(|(_, p)| sched.presentation_us(p) <= t_us)
            .last()
            .or_else(|| {
                sched
                    .packets
                    .iter()
                    .enumerate()
                    .find(|(_, p)| p.flags.sync())
            });
        if let Some((i, p)) = key {
            range_start = sched.presentation_us(p);
            video_cursor = Some((v, i));
        }
    }
    let mut pacing_start = u64::MAX;
    for (k, t) in s.tracks.iter_mut().enumerate() {
        let sched = &file.tracks[t.track];
        t.cursor = match video_cursor {
            Some((v, i)) if v == k => i,
            _ => sched.first_at_or_after(range_start),
        };
        t.end = match end_us {
            Some(e) => sched.first_at_or_after(e).max(t.cursor),
            None => sched.packets.len(),
        };
        if let Some(p) = sched.packets.get(t.cursor) {
            pacing_start = pacing_start.min(p.send_time_us);
        }
    }
    if pacing_start == u64::MAX {
        pacing_start = range_start;
    }
    (range_start, pacing_start)
}

/// Parses `Range: npt=a-[b]` into µs. `Ok(None)` when absent or `npt=now-`;
/// 457 for a non-npt or malformed range.
fn parse_npt_range(req: &Request<Vec<u8>>) -> Result<Option<(u64, Option<u64>)>, Fail> {
    let range = match req.typed_header::<Range>() {
        Ok(Some(r)) => r,
        Ok(None) => return Ok(None),
        Err(_) => return Err(Fail(StatusCode::InvalidRange, "malformed Range".into())),
    };
    let npt = match range {
        Range::Npt(n) => n,
        _ => return Err(Fail(StatusCode::InvalidRange, "only npt ranges".into())),
    };
    let us = |t: NptTime| -> Option<Option<u64>> {
        match t {
            NptTime::Now => Some(None),
            NptTime::Seconds(s, ns) => Some(Some(
                s.checked_mul(1_000_000)? + u64::from(ns.unwrap_or(0) / 1000),
            )),
            NptTime::Hms(h, m, s, ns) => {
                let secs = h.checked_mul(3600)? + u64::from(m) * 60 + u64::from(s);
                Some(Some(
                    secs.checked_mul(1_000_000)? + u64::from(ns.unwrap_or(0) / 1000),
                ))
            }
        }
    };
    let bad = || Fail(StatusCode::InvalidRange, "npt out of range".into());
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

fn empty(status: StatusCode) -> Response<Vec<u8>> {
    Response::builder(Version::V1_0, status).build(Vec::new())
}
