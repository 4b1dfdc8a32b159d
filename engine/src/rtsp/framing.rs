//! Splitting a connection's input into RTSP requests, interleaved binary data
//! (RFC 2326 §10.12) and HTTP tunnel request heads, incrementally.
//!
//! [`Framer`] is the per-connection decoder: the shard [`Framer::push`]es
//! every received chunk and calls [`Framer::next_frame`] until it returns `None`.
//! The end of a header block is found by a scan that remembers where it
//! stopped, so every received byte is examined a bounded number of times
//! (once by the scan, once by the final parse): the cost is linear in the
//! bytes received however they are split (see [`Framer::scanned_bytes`]).
//! The complete message is then parsed once, by `rtsp-types` for RTSP and by
//! `httparse` for HTTP. An idle connection's framer holds no heap memory: its
//! buffer is released whenever every buffered byte has been consumed.
//!
//! Limits ([`Limits`]) bound the request line, the header block, the number
//! of header fields and the body; each overrun is a distinct
//! [`FramingError`] with its RTSP status (RFC 2326 §7.1.1: 400, 413, 414).

use rtsp_types::Message;

use crate::rtsp::response::SERVER_NAME;
use crate::tunnel::http::{self, HttpRequestHead, HttpVersion};

pub use rtsp_types::Request;

/// Default limit on the header block (request line, header fields and the
/// blank line that ends them), in bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default limit on the request line (or status line), in bytes, CRLF
/// included; a longer one is 414 Request-URI Too Large.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;
/// Default limit on the number of header fields of one message.
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default limit on a message body (Content-Length), in bytes.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// Largest RTSP message the default limits admit, in bytes (header block plus
/// body). The shard uses a multiple of it to bound what it buffers while a
/// request is parked.
pub const MAX_MESSAGE: usize = DEFAULT_MAX_HEADER_BYTES + DEFAULT_MAX_BODY;

/// Size limits applied while framing, in bytes (and fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header block (start line + fields + blank line), bytes.
    pub max_header_bytes: usize,
    /// Largest request or status line, CRLF included, bytes.
    pub max_request_line: usize,
    /// Most header fields in one message (continuation lines not counted).
    pub max_headers: usize,
    /// Largest RTSP body (Content-Length), bytes. Not applied to HTTP
    /// tunnel heads, whose POST Content-Length is a dummy.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// One unit of connection input, as [`Framer::next_frame`] returns it.
#[derive(Debug)]
pub enum Frame {
    /// A complete RTSP request (body included).
    Request(Request<Vec<u8>>),
    /// An interleaved `$` frame from the client (RTCP receiver reports),
    /// RFC 2326 §10.12.
    Data {
        /// Interleaved channel.
        channel: u8,
        /// Frame payload.
        payload: Vec<u8>,
    },
    /// A response from the client (clients answer our requests; ignored).
    Response,
    /// An HTTP/1.0 or HTTP/1.1 `GET` or `POST` head, the first message of the
    /// connection: an RTSP-over-HTTP tunnel half (see [`crate::tunnel`]).
    /// The framer stops framing after it; bytes after the head (a POST's
    /// base64 body) stay buffered for [`Framer::take_buffered`].
    Http(HttpRequestHead),
    /// An HTTP/1.x head with another method (`HEAD`, `PUT`, `OPTIONS`, …):
    /// answer with [`crate::tunnel::TunnelError::response_bytes`] (405 or
    /// 501) and close. The framer stops framing after it.
    HttpUnsupported(HttpRequestHead),
    /// Input that is not acceptable: answer [`Rejection::response_bytes`] and
    /// close. The framer discards everything after it.
    Malformed(Rejection),
}

/// Why input was rejected, with what to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// What was wrong.
    pub error: FramingError,
    /// The CSeq of the rejected request, when its header was seen.
    pub cseq: Option<u32>,
    /// The input was an HTTP head: answer in HTTP/1.0, not RTSP/1.0.
    pub http: bool,
}

impl Rejection {
    /// Status code to answer (RFC 2326 §7.1.1 / RFC 1945 §9).
    pub fn status(&self) -> u16 {
        self.error.status()
    }

    /// The complete reply: `RTSP/1.0 <status> <reason>` with CSeq (when
    /// known), Server and `Connection: close`; or the HTTP/1.0 equivalent
    /// for HTTP input. The connection is to be closed after it.
    pub fn response_bytes(&self) -> Vec<u8> {
        let status = self.status();
        if self.http {
            return http::error_response(status, SERVER_NAME, &[]);
        }
        let mut out = format!("RTSP/1.0 {status} {}\r\n", rtsp_reason(status));
        if let Some(cseq) = self.cseq {
            out.push_str(&format!("CSeq: {cseq}\r\n"));
        }
        out.push_str(&format!(
            "Server: {SERVER_NAME}\r\nConnection: close\r\n\r\n"
        ));
        out.into_bytes()
    }
}

/// Reason phrase of the RTSP status codes framing produces (RFC 2326 §7.1.1).
fn rtsp_reason(status: u16) -> &'static str {
    match status {
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        505 => "RTSP Version not supported",
        _ => "Bad Request",
    }
}

/// What was wrong with the input. Each variant maps to one status code
/// ([`FramingError::status`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A byte that cannot start or appear in a start line (binary data,
    /// TLS, control characters). 400.
    #[error("not RTSP: byte {byte:#04x} at offset {offset} of a message")]
    NotRtsp {
        /// Offending byte.
        byte: u8,
        /// Its offset from the start of the message.
        offset: usize,
    },
    /// The start line is not `METHOD URI RTSP/x.y`, `RTSP/x.y code reason`
    /// or `METHOD target HTTP/x.y`. 400.
    #[error("malformed start line")]
    BadStartLine,
    /// The request line exceeds [`Limits::max_request_line`]. 414.
    #[error("request line longer than {limit} bytes")]
    RequestLineTooLong {
        /// The limit, bytes.
        limit: usize,
    },
    /// The header block exceeds [`Limits::max_header_bytes`]. 400 (RTSP/1.0
    /// has no 431).
    #[error("header block longer than {limit} bytes")]
    HeaderTooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// More than [`Limits::max_headers`] header fields. 400.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit, fields.
        limit: usize,
    },
    /// A header line without `:`. 400.
    #[error("header line without a colon")]
    BadHeaderLine,
    /// Content-Length not a decimal number, or two different values. 400.
    #[error("invalid or conflicting Content-Length")]
    BadContentLength,
    /// Content-Length above [`Limits::max_body`]. 413.
    #[error("body of {length} bytes, more than the limit of {limit}")]
    BodyTooLarge {
        /// Announced length, bytes.
        length: u64,
        /// The limit, bytes.
        limit: usize,
    },
    /// The complete message was rejected by `rtsp-types` (bad URI, bad
    /// header syntax, bare LF line ends, …). 400.
    #[error("RTSP message does not parse")]
    Parse,
    /// An HTTP head where only RTSP may come (after the first message, or
    /// inside a tunnel). 400.
    #[error("HTTP request where RTSP was expected")]
    UnexpectedHttp,
    /// An HTTP head that `httparse` rejects. 400.
    #[error("malformed HTTP request head: {0}")]
    Http(&'static str),
    /// `HTTP/x.y` other than 1.0 and 1.1. 505.
    #[error("HTTP version not supported")]
    HttpVersion,
}

impl FramingError {
    /// Status code to answer: 413 for a body over the limit, 414 for a
    /// request line over the limit, 505 for an HTTP version other than 1.x,
    /// 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::BodyTooLarge { .. } => 413,
            Self::RequestLineTooLong { .. } => 414,
            Self::HttpVersion => 505,
            _ => 400,
        }
    }
}

/// Incremental decoder of one connection's input.
///
/// Call [`push`](Self::push) with each received chunk, then
/// [`next_frame`](Self::next_frame) until it returns `None`. After [`Frame::Malformed`]
/// the framer is dead (everything is discarded). After [`Frame::Http`] or
/// [`Frame::HttpUnsupported`] it stops framing and only buffers, so the
/// shard can [`take_buffered`](Self::take_buffered) the bytes after the head.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed (the current message starts here).
    start: usize,
    scan: Scan,
    limits: Limits,
    /// HTTP heads are recognised (only as the first message).
    http: bool,
    state: State,
    scanned: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Framing,
    HandedOff,
    Failed,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Framer {
    /// A framer for a connection on the RTSP port: RTSP messages, `$`
    /// frames, and an HTTP tunnel head as the first message.
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            scan: Scan::default(),
            limits,
            http: true,
            state: State::Framing,
            scanned: 0,
        }
    }

    /// A framer for the RTSP carried inside a tunnel (the decoded POST body):
    /// an HTTP head there is [`FramingError::UnexpectedHttp`].
    pub fn tunnelled(limits: Limits) -> Self {
        Self {
            http: false,
            ..Self::new(limits)
        }
    }

    /// Appends received bytes. Ignored once the framer has failed. Does not
    /// parse; call [`next_frame`](Self::next_frame).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.state == State::Failed || bytes.is_empty() {
            return;
        }
        // Compact lazily: only when the consumed prefix is at least as large
        // as the live part, so each byte is moved O(1) times amortised.
        if self.start > 0 && self.start >= self.buf.len() - self.start {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete unit of input, or `None` when more bytes are needed
    /// (or the framer has failed or handed off).
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if self.state != State::Framing {
                return None;
            }
            let http = self.http;
            let step = self.scan.step(
                &self.buf[self.start..],
                &self.limits,
                http,
                &mut self.scanned,
            );
            match step {
                Step::NeedMore => return None,
                Step::Skip(n) => self.consume(n),
                Step::Ready(input, n) => {
                    self.consume(n);
                    // HTTP only as the first message.
                    self.http = false;
                    if matches!(input, Frame::Http(_) | Frame::HttpUnsupported(_)) {
                        self.state = State::HandedOff;
                    }
                    return Some(input);
                }
                Step::Fail(rejection) => {
                    self.state = State::Failed;
                    self.buf = Vec::new();
                    self.start = 0;
                    return Some(Frame::Malformed(rejection));
                }
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        if self.start == self.buf.len() {
            // Idle: hold no memory.
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes the unconsumed bytes out (after [`Frame::Http`]: the start of a
    /// POST body, to decode with [`crate::tunnel::Base64Decoder`] or to hand
    /// to another shard with the connection), leaving the framer empty.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.drain(..self.start);
        self.start = 0;
        self.scan = Scan::default();
        buf
    }

    /// Total bytes examined by the header scan and the final parses since
    /// the framer was made: at most about twice the bytes received, however
    /// they were split. For tests and statistics.
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned
    }

    /// Capacity of the internal buffer, bytes (0 when idle).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// One unit of input as the legacy one-shot [`next`] returns it (the shard's
/// current interface; [`Framer`] and [`Frame`] replace both).
#[derive(Debug)]
pub enum Input {
    /// A complete request.
    Request(Request<Vec<u8>>),
    /// An interleaved `$` frame from the client (RTCP receiver reports).
    Data {
        /// Interleaved channel.
        channel: u8,
        /// Frame payload.
        payload: Vec<u8>,
    },
    /// A response from the client (clients answer our requests; ignored).
    Response,
    /// Bytes that are not RTSP (HTTP heads included): reply 400 and close.
    Malformed,
}

/// Legacy one-shot parse of the first unit of `buf`, with the default
/// limits: the unit and the bytes it used (stray CR/LF before it included),
/// or `None` when more bytes are needed. HTTP heads are [`Input::Malformed`].
///
/// Each call scans `buf` from its start, so calling it after every receive
/// on a growing buffer is quadratic; connections should use [`Framer`]. Kept
/// for the shard until it moves to [`Framer`], and for tools and benchmarks
/// holding complete messages.
pub fn next(buf: &[u8]) -> Option<(Input, usize)> {
    let limits = Limits::default();
    let mut scan = Scan::default();
    let mut scanned = 0u64;
    let mut offset = 0usize;
    loop {
        match scan.step(&buf[offset..], &limits, false, &mut scanned) {
            // Stray CR/LF alone is consumed (as before, reported as a
            // response to ignore) so it never accumulates.
            Step::NeedMore if offset > 0 && scan_is_start(&scan) => {
                return Some((Input::Response, offset))
            }
            Step::NeedMore => return None,
            Step::Skip(n) => offset += n,
            Step::Ready(frame, n) => {
                let input = match frame {
                    Frame::Request(r) => Input::Request(r),
                    Frame::Data { channel, payload } => Input::Data { channel, payload },
                    Frame::Response => Input::Response,
                    Frame::Http(_) | Frame::HttpUnsupported(_) | Frame::Malformed(_) => {
                        Input::Malformed
                    }
                };
                return Some((input, offset + n));
            }
            Step::Fail(_) => return Some((Input::Malformed, buf.len())),
        }
    }
}

fn scan_is_start(scan: &Scan) -> bool {
    matches!(scan, Scan::Start)
}

/// Result of one scan step over the unconsumed bytes.
enum Step {
    NeedMore,
    /// Stray CR/LF to drop.
    Skip(usize),
    Ready(Frame, usize),
    Fail(Rejection),
}

/// What the start line announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request,
    Response,
    Http,
}

/// Scan state for the message at the front of the unconsumed bytes. All
/// offsets are relative to the message's first byte.
#[derive(Debug, Default)]
enum Scan {
    #[default]
    Start,
    /// A `$` frame: 4 header bytes, then the payload.
    Data,
    Head(Head),
    /// Header block complete; waiting for the body.
    Body {
        kind: Kind,
        total: usize,
        cseq: Option<u32>,
    },
}

#[derive(Debug, Default)]
struct Head {
    /// Bytes examined so far.
    pos: usize,
    /// Start of the line being scanned.
    line_start: usize,
    /// Known once the start line is complete.
    kind: Option<Kind>,
    headers: usize,
    content_length: Option<u64>,
    cseq: Option<u32>,
}

impl Scan {
    fn step(&mut self, buf: &[u8], limits: &Limits, http: bool, scanned: &mut u64) -> Step {
        loop {
            match self {
                Scan::Start => {
                    let Some(&first) = buf.first() else {
                        return Step::NeedMore;
                    };
                    if first == b'\r' || first == b'\n' {
                        let n = buf
                            .iter()
                            .take_while(|b| **b == b'\r' || **b == b'\n')
                            .count();
                        *scanned += n as u64;
                        return Step::Skip(n);
                    }
                    if first == b'$' {
                        *self = Scan::Data;
                    } else if first.is_ascii_alphabetic() {
                        *self = Scan::Head(Head::default());
                    } else {
                        return self.fail(FramingError::NotRtsp {
                            byte: first,
                            offset: 0,
                        });
                    }
                }
                Scan::Data => {
                    if buf.len() < 4 {
                        return Step::NeedMore;
                    }
                    let total = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                    if buf.len() < total {
                        return Step::NeedMore;
                    }
                    *scanned += total as u64;
                    let input = Frame::Data {
                        channel: buf[1],
                        payload: buf[4..total].to_vec(),
                    };
                    *self = Scan::Start;
                    return Step::Ready(input, total);
                }
                Scan::Head(head) => match head.scan(buf, limits, http, scanned) {
                    Err(rejection) => {
                        *self = Scan::Start;
                        return Step::Fail(rejection);
                    }
                    Ok(None) => return Step::NeedMore,
                    Ok(Some(head_len)) => {
                        let cseq = head.cseq;
                        match head.kind {
                            Some(Kind::Http) => {
                                *self = Scan::Start;
                                return finish_http(&buf[..head_len], limits, scanned);
                            }
                            Some(kind) => {
                                let body = head.content_length.unwrap_or(0);
                                // Checked against max_body when the header
                                // was read, so this fits.
                                let total = usize::try_from(body)
                                    .ok()
                                    .and_then(|b| b.checked_add(head_len));
                                let Some(total) = total else {
                                    return self.fail(FramingError::BadContentLength);
                                };
                                *self = Scan::Body { kind, total, cseq };
                            }
                            None => return self.fail(FramingError::BadStartLine),
                        }
                    }
                },
                Scan::Body { kind, total, cseq } => {
                    let (kind, total, cseq) = (*kind, *total, *cseq);
                    if buf.len() < total {
                        return Step::NeedMore;
                    }
                    *self = Scan::Start;
                    if kind == Kind::Response {
                        return Step::Ready(Frame::Response, total);
                    }
                    *scanned += total as u64;
                    return match Message::<Vec<u8>>::parse(&buf[..total]) {
                        Ok((Message::Request(r), n)) if n == total => {
                            Step::Ready(Frame::Request(r), total)
                        }
                        _ => Step::Fail(Rejection {
                            error: FramingError::Parse,
                            cseq,
                            http: false,
                        }),
                    };
                }
            }
        }
    }

    fn fail(&mut self, error: FramingError) -> Step {
        let (cseq, http) = match self {
            Scan::Head(h) => (h.cseq, h.kind == Some(Kind::Http)),
            Scan::Body { cseq, .. } => (*cseq, false),
            _ => (None, false),
        };
        *self = Scan::Start;
        Step::Fail(Rejection { error, cseq, http })
    }
}

/// Parses a complete HTTP head (`httparse`) into an input.
fn finish_http(head: &[u8], limits: &Limits, scanned: &mut u64) -> Step {
    *scanned += head.len() as u64;
    match http::parse_head(head, limits.max_headers) {
        Ok(h) => {
            let tunnel_method = h.method == "GET" || h.method == "POST";
            if tunnel_method {
                Step::Ready(Frame::Http(h), head.len())
            } else {
                Step::Ready(Frame::HttpUnsupported(h), head.len())
            }
        }
        Err(e) => Step::Fail(Rejection {
            error: FramingError::Http(e),
            cseq: None,
            http: true,
        }),
    }
}

impl Head {
    /// Continues the scan over `buf` (the whole message so far). Returns the
    /// header block's length once its blank line is seen.
    fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        http: bool,
        scanned: &mut u64,
    ) -> Result<Option<usize>, Rejection> {
        if buf.len() < self.pos {
            // The caller broke the contract (dropped bytes of a message in
            // progress): start this message over.
            *self = Head::default();
        }
        while self.pos < buf.len() {
            if self.kind.is_none() {
                // Start line: validate byte by byte, so binary garbage is
                // rejected at once rather than at a limit.
                let b = buf[self.pos];
                *scanned += 1;
                if b == b'\n' {
                    let line = trim_cr(&buf[..self.pos]);
                    self.pos += 1;
                    self.line_start = self.pos;
                    self.kind = Some(self.start_line(line, http)?);
                    continue;
                }
                if !(b == b'\r' || (0x20..=0x7e).contains(&b)) {
                    return Err(self.reject(FramingError::NotRtsp {
                        byte: b,
                        offset: self.pos,
                    }));
                }
                self.pos += 1;
                if self.pos >= limits.max_request_line {
                    return Err(self.reject(FramingError::RequestLineTooLong {
                        limit: limits.max_request_line,
                    }));
                }
                if self.pos > limits.max_header_bytes {
                    return Err(self.reject(FramingError::HeaderTooLarge {
                        limit: limits.max_header_bytes,
                    }));
                }
                continue;
            }
            let rest = &buf[self.pos..];
            let Some(i) = memchr::memchr(b'\n', rest) else {
                *scanned += rest.len() as u64;
                self.pos = buf.len();
                if self.pos > limits.max_header_bytes {
                    return Err(self.reject(FramingError::HeaderTooLarge {
                        limit: limits.max_header_bytes,
                    }));
                }
                return Ok(None);
            };
            *scanned += (i + 1) as u64;
            let nl = self.pos + i;
            self.pos = nl + 1;
            if self.pos > limits.max_header_bytes {
                return Err(self.reject(FramingError::HeaderTooLarge {
                    limit: limits.max_header_bytes,
                }));
            }
            let line = trim_cr(&buf[self.line_start..nl]);
            self.line_start = self.pos;
            if line.is_empty() {
                return Ok(Some(self.pos));
            }
            self.header_line(line, limits)?;
        }
        Ok(None)
    }

    fn reject(&self, error: FramingError) -> Rejection {
        Rejection {
            error,
            cseq: self.cseq,
            http: self.kind == Some(Kind::Http),
        }
    }

    /// Classifies a complete start line (CRLF removed).
    fn start_line(&mut self, line: &[u8], http: bool) -> Result<Kind, Rejection> {
        if line.starts_with(b"RTSP/") {
            return Ok(Kind::Response);
        }
        let mut parts = line.split(|b| *b == b' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(self.reject(FramingError::BadStartLine));
        };
        if method.is_empty() || target.is_empty() || line.contains(&b'\r') {
            return Err(self.reject(FramingError::BadStartLine));
        }
        if version.starts_with(b"RTSP/") {
            return Ok(Kind::Request);
        }
        if version.starts_with(b"HTTP/") {
            let is_1x = HttpVersion::from_bytes(version).is_some();
            let rejection = |error| Rejection {
                error,
                cseq: None,
                http: true,
            };
            if !http {
                return Err(rejection(FramingError::UnexpectedHttp));
            }
            if !is_1x {
                return Err(rejection(FramingError::HttpVersion));
            }
            return Ok(Kind::Http);
        }
        Err(self.reject(FramingError::BadStartLine))
    }

    /// Counts one header line and notes Content-Length and CSeq.
    fn header_line(&mut self, line: &[u8], limits: &Limits) -> Result<(), Rejection> {
        if line[0] == b' ' || line[0] == b'\t' {
            // Continuation of the previous field (obsolete line folding).
            return Ok(());
        }
        self.headers += 1;
        if self.headers > limits.max_headers {
            return Err(self.reject(FramingError::TooManyHeaders {
                limit: limits.max_headers,
            }));
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(self.reject(FramingError::BadHeaderLine));
        };
        if self.kind == Some(Kind::Http) {
            // HTTP heads are parsed whole by httparse; a POST's
            // Content-Length is a dummy.
            return Ok(());
        }
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            let length =
                parse_decimal(value).ok_or_else(|| self.reject(FramingError::BadContentLength))?;
            if self.content_length.is_some_and(|l| l != length) {
                return Err(self.reject(FramingError::BadContentLength));
            }
            self.content_length = Some(length);
            if length > limits.max_body as u64 {
                return Err(self.reject(FramingError::BodyTooLarge {
                    length,
                    limit: limits.max_body,
                }));
            }
        } else if name.eq_ignore_ascii_case(b"cseq") {
            self.cseq = parse_decimal(value).and_then(|v| u32::try_from(v).ok());
        }
        Ok(())
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Trims optional whitespace (SP, HT) around a header value.
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// A decimal number of 1 to 19 digits (no sign, no spaces).
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests;
