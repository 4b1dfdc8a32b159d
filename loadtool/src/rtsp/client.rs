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

    /// Starts the session without OPTIONS: the DESCRIBE request (keep-alives
    /// are then OPTIONS, as the server's methods are not known).
    pub fn start_with_describe(&mut self) -> Vec<u8> {
        self.phase = Phase::Describe;
        let url = self.url.clone();
        self.request(
            Method::Describe,
            &url,
            &[(ACCEPT, "application/sdp".to_string())],
        )
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
        let cseq = response
            .header(&CSEQ)
            .and_then(|v| v.as_str().trim().parse::<u32>().ok());
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
            Method::GetParameter | Method::Options if !ok => {
                if response.status() == StatusCode::SessionNotFound {
                    return Err(status_error());
                }
                // GET_PARAMETER refused: fall back to OPTIONS.
                self.keepalive = Method::Options;
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

    fn request(
        &mut self,
        method: Method,
        url: &Url,
        headers: &[(rtsp_types::HeaderName, String)],
    ) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::framing::{next_frame, Frame};

    fn response(text: &str) -> Response<Vec<u8>> {
        match next_frame(text.as_bytes()) {
            Ok(Some((Frame::Response(r), _))) => r,
            other => panic!("not a response: {other:?}"),
        }
    }

    fn request_line(bytes: &[u8]) -> String {
        let text = String::from_utf8_lossy(bytes);
        text.lines().next().unwrap_or("").to_string()
    }

    fn header(bytes: &[u8], name: &str) -> Option<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\na=control:*\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=3\r\n\
m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/44100/2\r\na=control:trackID=4\r\n";

    fn describe_reply(cseq: u32, base: &str) -> String {
        format!(
            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: {base}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
            SDP.len()
        )
    }

    #[test]
    fn session_without_options_starts_with_describe() {
        let url = Url::parse("rtsp://127.0.0.1:8554/sample.mp4").unwrap();
        let mut c = Client::new(url, Lower::Udp { rtp_port: 40000 });
        let describe = c.start_with_describe();
        assert_eq!(
            request_line(&describe),
            "DESCRIBE rtsp://127.0.0.1:8554/sample.mp4 RTSP/1.0"
        );
        assert_eq!(header(&describe, "CSeq").as_deref(), Some("1"));
        assert_eq!(c.phase(), Phase::Describe);
        let out = c
            .on_response(&response(&describe_reply(
                1,
                "rtsp://127.0.0.1:8554/sample.mp4/",
            )))
            .unwrap();
        let setup = out.send.unwrap();
        assert!(
            request_line(&setup).starts_with("SETUP rtsp://127.0.0.1:8554/sample.mp4/trackID=3 ")
        );
    }

    #[test]
    fn dss_style_session_over_udp() {
        let url = Url::parse("rtsp://127.0.0.1:8554/sample.mp4").unwrap();
        let mut c = Client::new(url, Lower::Udp { rtp_port: 40000 });
        let options = c.start();
        assert_eq!(
            request_line(&options),
            "OPTIONS rtsp://127.0.0.1:8554/sample.mp4 RTSP/1.0"
        );
        assert_eq!(header(&options, "CSeq").as_deref(), Some("1"));

        let out = c
            .on_response(&response("RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: DESCRIBE, SETUP, TEARDOWN, PLAY, GET_PARAMETER\r\n\r\n"))
            .unwrap();
        let describe = out.send.unwrap();
        assert!(request_line(&describe).starts_with("DESCRIBE rtsp://127.0.0.1:8554/sample.mp4 "));
        assert_eq!(
            header(&describe, "Accept").as_deref(),
            Some("application/sdp")
        );

        let out = c
            .on_response(&response(&describe_reply(
                2,
                "rtsp://127.0.0.1:8554/sample.mp4/",
            )))
            .unwrap();
        let setup = out.send.unwrap();
        assert!(
            request_line(&setup).starts_with("SETUP rtsp://127.0.0.1:8554/sample.mp4/trackID=3 ")
        );
        assert_eq!(
            header(&setup, "Transport").as_deref(),
            Some("RTP/AVP;unicast;client_port=40000-40001")
        );
        assert_eq!(header(&setup, "Session"), None);

        let out = c
            .on_response(&response(
                "RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 8877;timeout=20\r\n\
Transport: RTP/AVP;unicast;client_port=40000-40001;server_port=6970-6971;ssrc=0000BEEF\r\n\r\n",
            ))
            .unwrap();
        let (track, reply) = out.setup.unwrap();
        assert_eq!(track, 0);
        assert_eq!(reply.ssrc, Some(0xBEEF));
        assert_eq!(c.timeout_s(), 20);
        let setup2 = out.send.unwrap();
        assert!(request_line(&setup2).contains("trackID=4"));
        assert_eq!(header(&setup2, "Session").as_deref(), Some("8877"));

        let out = c
            .on_response(&response(
                "RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 8877\r\n\
Transport: RTP/AVP;unicast;server_port=6970-6971;ssrc=0000CAFE\r\n\r\n",
            ))
            .unwrap();
        assert_eq!(out.setup.unwrap().1.ssrc, Some(0xCAFE));
        let play = out.send.unwrap();
        assert_eq!(
            request_line(&play),
            "PLAY rtsp://127.0.0.1:8554/sample.mp4/ RTSP/1.0"
        );
        assert_eq!(header(&play, "Range").as_deref(), Some("npt=0.000-"));
        assert_eq!(c.phase(), Phase::Play);

        let out = c
            .on_response(&response(
                "RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: 8877\r\n\
RTP-Info: url=rtsp://127.0.0.1:8554/sample.mp4/trackID=3;seq=100;rtptime=5,url=rtsp://127.0.0.1:8554/sample.mp4/trackID=4;seq=200;rtptime=6\r\n\r\n",
            ))
            .unwrap();
        let info = out.playing.unwrap();
        assert_eq!(info.len(), 2);
        assert_eq!(
            (info[1].track, info[1].seq, info[1].rtptime),
            (1, Some(200), Some(6))
        );
        assert_eq!(c.phase(), Phase::Playing);

        // Keep-alive: GET_PARAMETER, since OPTIONS listed it; one at a time.
        let ka = c.keepalive().unwrap();
        assert!(request_line(&ka).starts_with("GET_PARAMETER rtsp://127.0.0.1:8554/sample.mp4/ "));
        assert!(c.keepalive().is_none());
        c.on_response(&response(
            "RTSP/1.0 200 OK\r\nCSeq: 6\r\nSession: 8877\r\n\r\n",
        ))
        .unwrap();

        let td = c.teardown().unwrap();
        assert!(request_line(&td).starts_with("TEARDOWN "));
        let out = c
            .on_response(&response("RTSP/1.0 200 OK\r\nCSeq: 7\r\n\r\n"))
            .unwrap();
        assert!(out.torn_down);
        assert_eq!(c.phase(), Phase::Done);
    }

    #[test]
    fn interleaved_setup_and_keepalive_fallback() {
        let url = Url::parse("rtsp://h:554/a").unwrap();
        let mut c = Client::new(url, Lower::Tcp);
        c.start();
        // OPTIONS refused: the client still DESCRIBEs, and keeps alive with OPTIONS.
        c.on_response(&response("RTSP/1.0 501 Not Implemented\r\nCSeq: 1\r\n\r\n"))
            .unwrap();
        let out = c
            .on_response(&response(&describe_reply(2, "rtsp://h:554/a/")))
            .unwrap();
        let setup = out.send.unwrap();
        assert_eq!(
            header(&setup, "Transport").as_deref(),
            Some("RTP/AVP/TCP;unicast;interleaved=0-1")
        );
        let out = c
            .on_response(&response(
                "RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: s1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
            ))
            .unwrap();
        assert_eq!(
            header(&out.send.unwrap(), "Transport").as_deref(),
            Some("RTP/AVP/TCP;unicast;interleaved=2-3")
        );
        let out = c
            .on_response(&response(
                "RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: s1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n",
            ))
            .unwrap();
        assert!(out.setup.unwrap().1.tcp);
        c.on_response(&response(
            "RTSP/1.0 200 OK\r\nCSeq: 5\r\nSession: s1\r\n\r\n",
        ))
        .unwrap();
        let ka = c.keepalive().unwrap();
        assert!(request_line(&ka).starts_with("OPTIONS "));
    }

    #[test]
    fn errors_by_status_and_malformed_replies() {
        let url = Url::parse("rtsp://h/a").unwrap();
        let mut c = Client::new(url.clone(), Lower::Tcp);
        c.start();
        c.on_response(&response("RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"))
            .unwrap();
        let e = c
            .on_response(&response("RTSP/1.0 404 Not Found\r\nCSeq: 2\r\n\r\n"))
            .unwrap_err();
        assert_eq!(
            e,
            ClientError::Status {
                method: "DESCRIBE".into(),
                code: 404
            }
        );

        let mut c = Client::new(url.clone(), Lower::Tcp);
        c.start();
        c.on_response(&response("RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"))
            .unwrap();
        let bad_sdp = "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 7\r\n\r\ngarbage";
        assert!(matches!(
            c.on_response(&response(bad_sdp)),
            Err(ClientError::Malformed { .. })
        ));

        let mut c = Client::new(url, Lower::Udp { rtp_port: 5000 });
        c.start();
        c.on_response(&response("RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"))
            .unwrap();
        c.on_response(&response(&describe_reply(2, "rtsp://h/a/")))
            .unwrap();
        // SETUP without a Session header.
        let e = c
            .on_response(&response(
                "RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;server_port=1-2\r\n\r\n",
            ))
            .unwrap_err();
        assert!(matches!(e, ClientError::Malformed { ref method, .. } if method == "SETUP"));
    }

    #[test]
    fn replies_to_unknown_cseq_are_ignored_and_server_requests_answered() {
        let mut c = Client::new(Url::parse("rtsp://h/a").unwrap(), Lower::Tcp);
        c.start();
        let out = c
            .on_response(&response("RTSP/1.0 200 OK\r\nCSeq: 99\r\n\r\n"))
            .unwrap();
        assert!(out.send.is_none());
        assert_eq!(c.inflight(), 1);
        let req = match next_frame(b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n\r\n") {
            Ok(Some((Frame::Request(r), _))) => r,
            other => panic!("{other:?}"),
        };
        let answer = String::from_utf8(c.answer_server_request(&req)).unwrap();
        assert!(answer.starts_with("RTSP/1.0 200 "), "{answer:?}");
        assert!(answer.contains("CSeq: 7"));
    }
}
