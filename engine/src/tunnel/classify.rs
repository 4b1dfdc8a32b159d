//! Which half of a tunnel an HTTP head opens, and what the server answers
//! (Apple, "Tunneling QuickTime RTSP and RTP over HTTP"; DSS
//! `RTSPSession::ParseProxyTunnelHTTP`).

use crate::rtsp::response::SERVER_NAME;
use crate::tunnel::http::{self, HttpRequestHead};

/// The tunnel's media type, in the GET's `Accept` and the POST's
/// `Content-Type`, and in the GET reply.
pub const CONTENT_TYPE: &str = "application/x-rtsp-tunnelled";
/// Longest `x-sessioncookie` accepted, bytes. (DSS took fewer than 32, which
/// is why live555 trims its cookie to 22; QuickTime sends 22, ffmpeg 16,
/// GStreamer 23.)
pub const MAX_COOKIE_LEN: usize = 128;
/// The header that pairs the two halves.
pub const COOKIE_HEADER: &str = "x-sessioncookie";

/// A validated `x-sessioncookie` value: 1 to [`MAX_COOKIE_LEN`] bytes of
/// visible ASCII (0x21-0x7e), compared exactly (DSS: `strcmp`).
///
/// Whoever knows a cookie can attach a POST to that session, so `Debug`
/// shows only its length.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cookie(String);

impl Cookie {
    /// Validates a cookie value.
    pub fn new(value: &str) -> Result<Self, TunnelError> {
        let ok = !value.is_empty()
            && value.len() <= MAX_COOKIE_LEN
            && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if ok {
            Ok(Self(value.to_string()))
        } else {
            Err(TunnelError::BadCookie)
        }
    }

    /// The cookie's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cookie(<{} bytes>)", self.0.len())
    }
}

/// A tunnel half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelRequest {
    /// The server→client channel: answer [`get_response`], then write RTSP
    /// replies and `$` frames on this connection.
    Get {
        /// Pairing cookie.
        cookie: Cookie,
        /// Request target (the RTSP URL's path), for logs.
        path: String,
    },
    /// The client→server channel: never answered; its body is base64 RTSP
    /// ([`crate::tunnel::Base64Decoder`]).
    Post {
        /// Pairing cookie.
        cookie: Cookie,
        /// Request target, for logs.
        path: String,
    },
}

impl TunnelRequest {
    /// The pairing cookie of either half.
    pub fn cookie(&self) -> &Cookie {
        match self {
            Self::Get { cookie, .. } | Self::Post { cookie, .. } => cookie,
        }
    }
}

/// Why an HTTP head does not open a tunnel half; each maps to the HTTP
/// status to answer ([`TunnelError::status`]) before closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// No `x-sessioncookie` header. 400.
    #[error("no x-sessioncookie header")]
    MissingCookie,
    /// Empty, too long, or not visible ASCII. 400.
    #[error("invalid x-sessioncookie")]
    BadCookie,
    /// Several `x-sessioncookie` headers with different values. 400.
    #[error("conflicting x-sessioncookie headers")]
    ConflictingCookies,
    /// A GET whose `Accept` excludes `application/x-rtsp-tunnelled`. 406.
    #[error("GET does not accept application/x-rtsp-tunnelled")]
    NotAcceptable,
    /// A POST whose `Content-Type` is missing or not
    /// `application/x-rtsp-tunnelled`. 415.
    #[error("POST body is not application/x-rtsp-tunnelled")]
    UnsupportedMediaType,
    /// A known HTTP method other than GET and POST. 405 with `Allow`.
    #[error("method not allowed on the RTSP port")]
    MethodNotAllowed,
    /// An unknown method token. 501.
    #[error("method not implemented")]
    NotImplemented,
}

impl TunnelError {
    /// HTTP status code (RFC 9110 §15).
    pub fn status(&self) -> u16 {
        match self {
            Self::MissingCookie | Self::BadCookie | Self::ConflictingCookies => 400,
            Self::NotAcceptable => 406,
            Self::UnsupportedMediaType => 415,
            Self::MethodNotAllowed => 405,
            Self::NotImplemented => 501,
        }
    }

    /// The complete HTTP/1.0 reply (with `Connection: close`, and `Allow:
    /// GET, POST` for 405); close the connection after writing it.
    pub fn response_bytes(&self) -> Vec<u8> {
        let extra: &[(&str, &str)] = match self {
            Self::MethodNotAllowed => &[("Allow", "GET, POST")],
            _ => &[],
        };
        http::error_response(self.status(), SERVER_NAME, extra)
    }
}

/// Methods of RFC 9110 (and PATCH) other than GET and POST: 405, not 501.
const KNOWN_METHODS: &[&str] = &[
    "HEAD", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Classifies an HTTP head read on the RTSP port
/// ([`crate::rtsp::framing::Frame::Http`] or `HttpUnsupported`).
pub fn classify(head: &HttpRequestHead) -> Result<TunnelRequest, TunnelError> {
    let is_get = head.method == "GET";
    if !is_get && head.method != "POST" {
        return Err(if KNOWN_METHODS.contains(&head.method.as_str()) {
            TunnelError::MethodNotAllowed
        } else {
            TunnelError::NotImplemented
        });
    }
    let mut cookies = head.header_values(COOKIE_HEADER);
    let first = cookies.next().ok_or(TunnelError::MissingCookie)?;
    if cookies.any(|c| c != first) {
        return Err(TunnelError::ConflictingCookies);
    }
    let cookie = Cookie::new(first)?;
    let path = head.path.clone();
    if is_get {
        let mut accepts = head.header_values("accept").peekable();
        if accepts.peek().is_some() && !accepts.any(accepts_tunnel) {
            return Err(TunnelError::NotAcceptable);
        }
        Ok(TunnelRequest::Get { cookie, path })
    } else {
        let ok = head
            .header("content-type")
            .is_some_and(|v| media_type(v).eq_ignore_ascii_case(CONTENT_TYPE));
        if !ok {
            return Err(TunnelError::UnsupportedMediaType);
        }
        Ok(TunnelRequest::Post { cookie, path })
    }
}

/// The media type of a Content-Type or media range, parameters removed.
fn media_type(v: &str) -> &str {
    v.split(';').next().unwrap_or("").trim()
}

/// Whether one Accept header value admits the tunnel type.
fn accepts_tunnel(value: &str) -> bool {
    value.split(',').any(|range| {
        let t = media_type(range);
        t.eq_ignore_ascii_case(CONTENT_TYPE)
            || t.eq_ignore_ascii_case("application/*")
            || t == "*/*"
    })
}

/// The reply to a tunnel GET (DSS's, with `Cache-Control: no-cache`):
/// `HTTP/1.0 200 OK`, Server, `Connection: close`, a fixed Date in the past
/// (Apple's recommendation, so proxies never cache), `Cache-Control:
/// no-cache`, `Pragma: no-cache`, `Content-Type:
/// application/x-rtsp-tunnelled`. RTSP replies and `$` frames follow on the
/// same connection.
pub fn get_response() -> Vec<u8> {
    format!(
        "HTTP/1.0 200 OK\r\nServer: {SERVER_NAME}\r\nConnection: close\r\n\
Date: Thu, 19 Aug 1982 18:30:00 GMT\r\nCache-Control: no-cache\r\nPragma: no-cache\r\n\
Content-Type: {CONTENT_TYPE}\r\n\r\n"
    )
    .into_bytes()
}
