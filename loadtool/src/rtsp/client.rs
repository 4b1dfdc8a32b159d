//! The RTSP 1.0 player state machine of one session (RFC 2326): OPTIONS,
//! DESCRIBE, SETUP per track, PLAY, keep-alives, TEARDOWN.
//!
//! It does no I/O: it turns responses into the next request's bytes and into
//! events (a track was set up, the session plays), so that one worker thread can
//! drive thousands of sessions from its event loop.

use rtsp_types::headers::rtp_info::RtpInfos;
use rtsp_types::headers::{
    Public, Session, ACCEPT, CONTENT_BASE, CONTENT_LOCATION, CSEQ, RANGE, SESSION, TRANSPORT,
    USER_AGENT,
};
use rtsp_types::{Method, Request, Response, StatusCode, Url, Version};

use super::sdp::{parse_presentation, Presentation};
use super::transport::{parse_reply, request_value, Lower, TransportReply};

/// User-Agent sent with every request.
pub const USER_AGENT_VALUE: &str = concat!("cadence-loadtool/", env!("CARGO_PKG_VERSION"));

/// Session timeout assumed when the server's Session header gives none
/// (RFC 2326 §12.37: 60 s).
pub const DEFAULT_TIMEOUT_S: u64 = 60;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing sent yet.
    Idle,
    /// OPTIONS sent.
    Options,
    /// DESCRIBE sent.
    Describe,
    /// SETUP of track `n` (0-based) sent.
    Setup(usize),
    /// PLAY sent.
    Play,
    /// PLAY answered: media flows; keep-alives may be in flight.
    Playing,
    /// TEARDOWN sent.
    Teardown,
    /// TEARDOWN answered (or nothing to tear down).
    Done,
}

/// A server reply that ends the session.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// A request was answered with a non-2xx status.
    #[error("{method} answered {code}")]
    Status {
        /// The request's method (`DESCRIBE`, `SETUP`, …).
        method: String,
        /// RTSP status code (RFC 2326 §7.1.1).
        code: u16,
    },
    /// A reply lacks what the protocol requires, or does not parse.
    #[error("malformed {method} reply: {detail}")]
    Malformed {
        /// The request's method.
        method: String,
        /// What is wrong.
        detail: String,
    },
}

/// `RTP-Info` of one track in the PLAY reply (RFC 2326 §12.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpInfoEntry {
    /// Track index (position in [`Presentation::tracks`]).
    pub track: usize,
    /// Sequence number of the first packet.
    pub seq: Option<u16>,
    /// RTP timestamp of the start of the range.
    pub rtptime: Option<u32>,
}

/// What one response changed.
#[derive(Debug, Default)]
pub struct Output {
    /// Bytes of the next request to send.
    pub send: Option<Vec<u8>>,
    /// A track was set up: its index and the server's Transport reply.
    pub setup: Option<(usize, TransportReply)>,
    /// PLAY was answered: the session plays. Carries RTP-Info.
    pub playing: Option<Vec<RtpInfoEntry>>,
    /// TEARDOWN was answered.
    pub torn_down: bool,
}

/// One player session.
#[derive(Debug)]
pub struct Client {
    url: Url,
    lower: Lower,
    phase: Phase,
    cseq: u32,
    /// Requests sent and not answered yet: (CSeq, method).
    inflight: Vec<(u32, Method)>,
    session: Option<String>,
    timeout_s: u64,
    presentation: Option<Presentation>,
    keepalive: Method,
}

impl Client {
    /// A session that will play `url`, receiving media over `lower`.
    pub fn new(url: Url, lower: Lower) -> Self {
        Self {
            url,
            lower,
            phase: Phase::Idle,
            cseq: 0,
            inflight: Vec::new(),
            session: None,
            timeout_s: DEFAULT_TIMEOUT_S,
            presentation: None,
            keepalive: Method::Options,
        }
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The presentation (tracks) once DESCRIBE was answered.
    pub fn presentation(&self) -> Option<&Presentation> {
        self.presentation.as_ref()
    }

    /// Session timeout in seconds (the Session header's `timeout=`, else 60).
    pub fn timeout_s(&self) -> u64 {
        self.timeout_s
    }

    /// The URL this session plays.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// How media travels.
    pub fn lower(&self) -> Lower {
        self.lower
    }

    /// Number of requests awaiting a reply.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Starts the session: the OPTIONS request.
    pub fn start(&mut self) -> Vec<u8> {
        self.phase = Phase::Options;
        let url = self.url.clone();
        self.request(Method::Options, &url, &[])
    }

    /// A keep-alive request (GET_PARAMETER when the server's OPTIONS reply
    /// listed it, else OPTIONS), when playing and no keep-alive is pending.
    pub fn keepalive(&mut self) -> Option<Vec<u8>> {
        if self.phase != Phase::Playing || !self.inflight.is_empty() {
            return None;
        }
        let url = self.aggregate_url();
        let method = self.keepalive.clone();
        Some(self.request(method, &url, &[]))
    }

    /// The TEARDOWN request, or `None` when there is no server session to tear
    /// down (the session then is [`Phase::Done`]).
    pub fn teardown(&mut self) -> Option<Vec<u8>> {
        if self.session.is_none() || matches!(self.phase, Phase::Teardown | Phase::Done) {
            self.phase = Phase::Done;
            return None;
        }
        self.phase = Phase::Teardown;
        let url = self.aggregate_url();
        Some(self.request(Method::Teardown, &url, &[]))
    }

    /// The answer to a request the server sent to us (RFC 2326 allows
    /// OPTIONS, GET_PARAMETER, SET_PARAMETER, ANNOUNCE, REDIRECT from server
    /// to client): 200 for OPTIONS / GET_PARAMETER, 501 otherwise.
    pub fn answer_server_request<B>(&self, request: &Request<B>) -> Vec<u8> {
        let status = match request.method() {
            Method::Options | Method::GetParameter => StatusCode::Ok,
            _ => StatusCode::NotImplemented,
        };
        let mut builder = Response::builder(Version::V1_0, status);
        if let Some(cseq) = request.header(&CSEQ) {
            builder = builder.header(CSEQ, cseq.as_str());
        }
        if let Some(session) = &self.session {
            builder = builder.header(SESSION, session.as_str());
        }
        let mut out = Vec::with_capacity(96);
        // Writing into a Vec cannot fail.
        let _ = builder.empty().write(&mut out);
        out
    }

    /// Accounts a response from the server.
    pub fn on_response(&mut self, response: &Response<Vec<u8>>) -> Result<Output, ClientError> {
        let cseq = response.header(&CSEQ).and_then(|v| v.as_str().trim().parse::<u32>().ok());
        let position = match cseq {
            Some(c) => self.inflight.iter().position(|(n, _)| *n == c),
            // No CSeq: a server of the old school answering in order.
            None if !self.inflight.is_empty() => Some(0),
            None => None,
        };
        let Some(position) = position else {
            // A reply to nothing we sent: ignore it.
            return Ok(Output::default());
        };
        let (_, method) = self.inflight.remove(position);
        let ok = response.status().is_success();
        let status_error = || ClientError::Status {
            method: <&str>::from(&method).to_string(),
            code: u16::from(response.status()),
        };
        let mut out = Output::default();
        match method {
            Method::Options if self.phase == Phase::Options => {
                if ok {
                    if let Ok(Some(public)) = response.typed_header::<Public>() {
                        if public.contains(&Method::GetParameter) {
                            self.keepalive = Method::GetParameter;
                        }
                    }
                }
                // A server that rejects OPTIONS may still DESCRIBE.
                self.phase = Phase::Describe;
                let url = self.url.clone();
                out.send = Some(self.request(
                    Method::Describe,
                    &url,
                    &[(ACCEPT, "application/sdp".to_string())],
                ));
            }
            Method::Describe => {
                if !ok {
                    return Err(status_error());
                }
                let base = [&CONTENT_BASE, &CONTENT_LOCATION]
                    .iter()
                    .find_map(|h| response.header(h))
                    .and_then(|v| Url::parse(v.as_str().trim()).ok())
                    .unwrap_or_else(|| self.url.clone());
                let presentation = parse_presentation(response.body(), &base).map_err(|e| {
                    ClientError::Malformed {
                        method: "DESCRIBE".into(),
                        detail: e.to_string(),
                    }
                })?;
                self.presentation = Some(presentation);
                out.send = Some(self.setup_request(0));
            }
            Method::Setup => {
                if !ok {
                    return Err(status_error());
                }
                let Phase::Setup(track) = self.phase else {
                    return Ok(out);
                };
                let malformed = |detail: String| ClientError::Malformed {
                    method: "SETUP".into(),
                    detail,
                };
                match response.typed_header::<Session>() {
                    Ok(Some(session)) => {
                        self.session.get_or_insert_with(|| session.0.clone());
                        if let Some(timeout) = session.1.filter(|t| *t > 0) {
                            self.timeout_s = timeout;
                        }
                    }
                    Ok(None) if self.session.is_some() => {}
                    Ok(None) => return Err(malformed("no Session header".into())),
                    Err(_) => return Err(malformed("Session header does not parse".into())),
                }
                let reply = parse_reply(response).map_err(|e| malformed(e.to_string()))?;
                out.setup = Some((track, reply));
                let tracks = self.presentation.as_ref().map_or(0, |p| p.tracks.len());
                out.send = Some(if track + 1 < tracks {
                    self.setup_request(track + 1)
                } else {
                    self.phase = Phase::Play;
                    let url = self.aggregate_url();
                    self.request(Method::Play, &url, &[(RANGE, "npt=0.000-".to_string())])
                });
            }
            Method::Play => {
                if !ok {
                    return Err(status_error());
                }
                self.phase = Phase::Playing;
                out.playing = Some(self.rtp_info(response));
            }
            Method::Teardown => {
                self.phase = Phase::Done;
                if !ok {
                    return Err(status_error());
                }
                out.torn_down = true;
            }
            // Keep-alive replies.
            Method::GetParameter | Method::Options => {
                if !ok {
                    if response.status() == StatusCode::SessionNotFound {
                        return Err(status_error());
                    }
                    // GET_PARAMETER refused: fall back to OPTIONS.
                    self.keepalive = Method::Options;
                }
            }
            _ => {}
        }
        Ok(out)
    }

    fn setup_request(&mut self, track: usize) -> Vec<u8> {
        self.phase = Phase::Setup(track);
        let url = self
            .presentation
            .as_ref()
            .and_then(|p| p.tracks.get(track))
            .map_or_else(|| self.url.clone(), |t| t.url.clone());
        let transport = request_value(self.lower, track);
        self.request(Method::Setup, &url, &[(TRANSPORT, transport)])
    }

    fn aggregate_url(&self) -> Url {
        self.presentation
            .as_ref()
            .map_or_else(|| self.url.clone(), |p| p.aggregate.clone())
    }

    fn rtp_info(&self, response: &Response<Vec<u8>>) -> Vec<RtpInfoEntry> {
        let Some(presentation) = &self.presentation else {
            return Vec::new();
        };
        let Ok(Some(infos)) = response.typed_header::<RtpInfos>() else {
            return Vec::new();
        };
        let Ok(RtpInfos::V1(infos)) = infos.try_into_v1() else {
            return Vec::new();
        };
        let mut entries = Vec::with_capacity(infos.len());
        for (i, info) in infos.iter().enumerate() {
            let by_url = presentation.tracks.iter().position(|t| {
                t.url == info.uri
                    || (!t.control.is_empty() && info.uri.as_str().ends_with(t.control.as_str()))
            });
            let track = match by_url {
                Some(t) => t,
                None if infos.len() == presentation.tracks.len() => i,
                None => continue,
            };
            entries.push(RtpInfoEntry {
                track,
                seq: info.seq,
                rtptime: info.rtptime,
            });
        }
        entries
    }

    fn request(&mut self, method: Method, url: &Url, headers: &[(rtsp_types::HeaderName, String)]) -> Vec<u8> {
        self.cseq += 1;
        let mut builder = Request::builder(method.clone(), Version::V1_0)
            .request_uri(url.clone())
            .header(CSEQ, self.cseq.to_string())
            .header(USER_AGENT, USER_AGENT_VALUE);
        if let Some(session) = &self.session {
            builder = builder.header(SESSION, session.as_str());
        }
        for (name, value) in headers {
            builder = builder.header(name.clone(), value.as_str());
        }
        self.inflight.push((self.cseq, method));
        let mut out = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = builder.empty().write(&mut out);
        out
    }
}
