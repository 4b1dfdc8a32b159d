//! A small RTSP 1.0 connection for tests: requests are built and replies parsed with
//! `rtsp-types`; a reader thread splits the byte stream into replies and interleaved
//! `$`-framed data (RFC 2326 §10.12), stamping each data frame with its arrival time.
//!
//! Every reply to a request made with [`RtspConn::request`] must echo the request's CSeq; a
//! missing or different CSeq panics (the contract requires CSeq on every reply).

use rtsp_types::{headers, HeaderName, Message, Method, ParseError, Request, Url, Version};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How long a request waits for its reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed RTSP reply.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Body bytes (SDP for DESCRIBE).
    pub body: Vec<u8>,
}

impl Reply {
    /// First header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A one-line description for assertion messages.
    pub fn summary(&self) -> String {
        let hs: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        format!("{} {} [{}]", self.status, self.reason, hs.join(" | "))
    }
}

/// An interleaved data frame as it arrived on the RTSP connection.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Interleaved channel id.
    pub channel: u8,
    /// Arrival time at the reader thread.
    pub at: Instant,
    /// The frame body (an RTP or RTCP packet).
    pub data: Vec<u8>,
}

/// What the reader thread hands over.
#[derive(Debug)]
enum Event {
    Reply(Reply),
    /// The peer closed the connection, or the bytes could not be parsed.
    Closed(String),
}

/// One RTSP connection to the server.
pub struct RtspConn {
    stream: TcpStream,
    replies: Receiver<Event>,
    frames: Option<Receiver<Frame>>,
    cseq: u32,
    /// Sent as `Session:` on every request when set.
    pub session: Option<String>,
}

impl RtspConn {
    /// Connects to `addr` and starts the reader thread.
    pub fn connect(addr: SocketAddr) -> RtspConn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        let reader = stream.try_clone().expect("clone tcp stream");
        let (reply_tx, replies) = channel();
        let (frame_tx, frames) = channel();
        std::thread::Builder::new()
            .name("rtsp-reader".into())
            .spawn(move || read_loop(reader, reply_tx, frame_tx))
            .expect("spawn reader");
        RtspConn {
            stream,
            replies,
            frames: Some(frames),
            cseq: 0,
            session: None,
        }
    }

    /// Takes the receiver of interleaved data frames (once).
    pub fn take_frames(&mut self) -> Receiver<Frame> {
        self.frames.take().expect("frames receiver already taken")
    }

    /// Sends `method url` with `extra` headers (plus CSeq, User-Agent and Session when set)
    /// and waits for the reply; panics if the reply does not echo the CSeq.
    pub fn request(&mut self, method: Method, url: &str, extra: &[(&str, &str)]) -> Reply {
        self.try_request(method, url, extra)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`request`](Self::request) but returns an error text instead of panicking when
    /// the connection closes or no reply arrives in time.
    pub fn try_request(
        &mut self,
        method: Method,
        url: &str,
        extra: &[(&str, &str)],
    ) -> Result<Reply, String> {
        self.cseq += 1;
        let cseq = self.cseq.to_string();
        let mname: String = <&str>::from(&method).to_string();
        let mut b = Request::builder(method, Version::V1_0)
            .header(headers::CSEQ, cseq.as_str())
            .header(headers::USER_AGENT, "cadence-enginetests");
        if url != "*" {
            let u = Url::parse(url).unwrap_or_else(|e| panic!("bad test url {url}: {e}"));
            b = b.request_uri(u);
        }
        if let Some(s) = &self.session {
            if !extra.iter().any(|(n, _)| n.eq_ignore_ascii_case("session")) {
                b = b.header(headers::SESSION, s.as_str());
            }
        }
        for (n, v) in extra {
            let name = HeaderName::try_from(n.to_string()).expect("ascii header name");
            b = b.header(name, *v);
        }
        let req = b.empty();
        let mut bytes = Vec::new();
        req.write(&mut bytes).expect("serialize request");
        self.send_raw(&bytes)
            .map_err(|e| format!("{mname} {url}: write failed: {e}"))?;
        let reply = self
            .read_reply()
            .map_err(|e| format!("{mname} {url}: {e}"))?;
        match reply.header("CSeq") {
            Some(c) if c.trim() == cseq => Ok(reply),
            other => Err(format!(
                "{mname} {url}: reply CSeq {other:?} does not echo request CSeq {cseq}: {}",
                reply.summary()
            )),
        }
    }

    /// Writes raw bytes on the connection.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Waits for the next reply (any CSeq).
    pub fn read_reply(&mut self) -> Result<Reply, String> {
        match self.replies.recv_timeout(REPLY_TIMEOUT) {
            Ok(Event::Reply(r)) => Ok(r),
            Ok(Event::Closed(why)) => Err(format!("no reply: {why}")),
            Err(RecvTimeoutError::Timeout) => Err(format!("no reply within {REPLY_TIMEOUT:?}")),
            Err(RecvTimeoutError::Disconnected) => Err("no reply: reader ended".into()),
        }
    }

    /// True if the server closes the connection within `within` (no reply counts as open).
    pub fn closed_within(&mut self, within: Duration) -> bool {
        matches!(self.replies.recv_timeout(within), Ok(Event::Closed(_)))
    }

    /// Closes the write half (the reader sees the server's close later).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

impl Drop for RtspConn {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn read_loop(mut s: TcpStream, replies: Sender<Event>, frames: Sender<Frame>) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Parse everything complete in the buffer.
        loop {
            if buf.is_empty() {
                break;
            }
            match Message::<Vec<u8>>::parse(&buf) {
                Ok((msg, used)) => {
                    let at = Instant::now();
                    buf.drain(..used);
                    match msg {
                        Message::Response(r) => {
                            let reply = Reply {
                                status: r.status().into(),
                                reason: r.reason_phrase().to_string(),
                                headers: r
                                    .headers()
                                    .map(|(n, v)| (n.as_str().to_string(), v.as_str().to_string()))
                                    .collect(),
                                body: r.body().clone(),
                            };
                            let _ = replies.send(Event::Reply(reply));
                        }
                        Message::Data(d) => {
                            let _ = frames.send(Frame {
                                channel: d.channel_id(),
                                at,
                                data: d.into_body(),
                            });
                        }
                        Message::Request(_) => {}
                    }
                }
                Err(ParseError::Incomplete(_)) => break,
                Err(ParseError::Error) => {
                    let head: Vec<u8> = buf.iter().take(120).copied().collect();
                    let _ = replies.send(Event::Closed(format!(
                        "unparseable bytes from server: {:?}",
                        String::from_utf8_lossy(&head)
                    )));
                    return;
                }
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                let _ = replies.send(Event::Closed("connection closed by server".into()));
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => {
                let _ = replies.send(Event::Closed(format!("read error: {e}")));
                return;
            }
        }
    }
}

/// Splits a header value like `RTP/AVP;unicast;client_port=5000-5001;ssrc=1A2B3C4D` into
/// `(key, Some(value))` pairs (keys lower-cased).
pub fn params(value: &str) -> Vec<(String, Option<String>)> {
    value
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (p.to_ascii_lowercase(), None),
        })
        .collect()
}

/// Value of parameter `key` in a `;`-separated header value.
pub fn param(value: &str, key: &str) -> Option<String> {
    params(value)
        .into_iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v)
}

/// Start of an `npt=START-[END]` range, seconds.
pub fn npt_start(range: &str) -> Option<f64> {
    let r = range.trim().strip_prefix("npt=")?;
    let (start, _) = r.split_once('-')?;
    start.trim().parse().ok()
}

/// End of an `npt=START-END` range, seconds (None if open).
pub fn npt_end(range: &str) -> Option<f64> {
    let r = range.trim().strip_prefix("npt=")?;
    let (_, end) = r.split_once('-')?;
    end.trim().parse().ok()
}

/// One entry of an RTSP 1.0 RTP-Info header (RFC 2326 §12.33).
#[derive(Clone, Debug)]
pub struct RtpInfo {
    /// `url=` as sent.
    pub url: String,
    /// `seq=`: sequence number of the first packet sent after this PLAY.
    pub seq: Option<u16>,
    /// `rtptime=`: RTP timestamp that corresponds to the Range start.
    pub rtptime: Option<u32>,
}

/// Parses `url=...;seq=N;rtptime=T, url=...`.
pub fn rtp_info(value: &str) -> Vec<RtpInfo> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| RtpInfo {
            url: param(e, "url").unwrap_or_default(),
            seq: param(e, "seq").and_then(|v| v.parse().ok()),
            rtptime: param(e, "rtptime").and_then(|v| v.parse().ok()),
        })
        .collect()
}
