//! Tunnel heads as real clients send them, captured on loopback from a
//! listener that answered the GET with `HTTP/1.0 200 OK` (ffmpeg 5.1.9
//! `-rtsp_transport http`, Lavf 59.27.100; GStreamer 1.22.0 rtspsrc
//! `rtsph://`), and live555's, transcribed from `RTSPClient::
//! setRequestFields` (live555 is not packaged in Debian bookworm, so
//! `openRTSP -T` could not be run). Each is framed, classified and, for
//! POSTs, its body decoded into the RTSP request it carries.

use crate::rtsp::framing::{Frame, Framer, Limits};
use crate::tunnel::{classify, PostBody, TunnelRequest};

pub const FFMPEG_GET: &[u8] = concat!(
    "GET /sample.mp4 HTTP/1.1\r\n",
    "User-Agent: Lavf/59.27.100\r\n",
    "Range: bytes=0-\r\n",
    "Connection: close\r\n",
    "Host: 127.0.0.1:18554\r\n",
    "Icy-MetaData: 1\r\n",
    "x-sessioncookie: 404c039d87cc33ed\r\n",
    "Accept: application/x-rtsp-tunnelled\r\n",
    "Pragma: no-cache\r\n",
    "Cache-Control: no-cache\r\n",
    "\r\n",
)
.as_bytes();

pub const FFMPEG_POST: &[u8] = concat!(
    "POST /sample.mp4 HTTP/1.1\r\n",
    "User-Agent: Lavf/59.27.100\r\n",
    "Accept: */*\r\n",
    "Connection: close\r\n",
    "Host: 127.0.0.1:18554\r\n",
    "Icy-MetaData: 1\r\n",
    "x-sessioncookie: 404c039d87cc33ed\r\n",
    "Content-Type: application/x-rtsp-tunnelled\r\n",
    "Pragma: no-cache\r\n",
    "Cache-Control: no-cache\r\n",
    "Content-Length: 32767\r\n",
    "Expires: Sun, 9 Jan 1972 00:00:00 GMT\r\n",
    "\r\n",
    "T1BUSU9OUyBydHNwOi8vMTI3LjAuMC4xOjE4NTU0L3NhbXBsZS5tcDQgUlRTUC8x",
    "LjANCkNTZXE6IDENClVzZXItQWdlbnQ6IExhdmY1OS4yNy4xMDANCg0K",
)
.as_bytes();

pub const GST_GET: &[u8] = concat!(
    "GET /sample.mp4 HTTP/1.0\r\n",
    "x-sessioncookie: xcaunqncolvdntkvdbyedca\r\n",
    "Accept: application/x-rtsp-tunnelled\r\n",
    "Cache-Control: no-cache\r\n",
    "Pragma: no-cache\r\n",
    "Host: 127.0.0.1:18555\r\n",
    "Date: Wed, 02 Dec 2026 14:17:48 GMT\r\n",
    "\r\n",
)
.as_bytes();

pub const GST_POST: &[u8] = concat!(
    "POST /sample.mp4 HTTP/1.0\r\n",
    "x-sessioncookie: xcaunqncolvdntkvdbyedca\r\n",
    "Accept: application/x-rtsp-tunnelled\r\n",
    "Content-Type: application/x-rtsp-tunnelled\r\n",
    "Cache-Control: no-cache\r\n",
    "Pragma: no-cache\r\n",
    "Expires: Sun, 9 Jan 1972 00:00:00 GMT\r\n",
    "Content-Length: 32767\r\n",
    "Host: 127.0.0.1:18555\r\n",
    "Date: Wed, 02 Dec 2026 14:17:48 GMT\r\n",
    "\r\n",
    "T1BUSU9OUyBydHNwOi8vMTI3LjAuMC4xOjE4NTU1L3NhbXBsZS5tcDQgUlRTUC8x",
    "LjANCkNTZXE6IDENClVzZXItQWdlbnQ6IEdTdHJlYW1lci8xLjIyLjANClVzZXIt",
    "QWdlbnQ6IFJlYWxNZWRpYSBQbGF5ZXIgVmVyc2lvbiA2LjAuOS4xMjM1IChsaW51",
    "eC0yLjAtbGliYzYtaTM4Ni1nY2MyLjk1KQ0KQ2xpZW50Q2hhbGxlbmdlOiA5ZTI2",
    "ZDMzZjI5ODQyMzYwMTBlZjYyNTNmYjE4ODdmNw0KQ29tcGFueUlEOiBLbktWNE00",
    "SS9CMkZqSjFUVG9MeWN3PT0NCkdVSUQ6IDAwMDAwMDAwLTAwMDAtMDAwMC0wMDAw",
    "LTAwMDAwMDAwMDAwMA0KUmVnaW9uRGF0YTogMA0KUGxheWVyU3RhcnR0aW1lOiBb",
    "MjgvMDMvMjAwMzoyMjo1MDoyMyAwMDowMF0NCkNsaWVudElEOiBMaW51eF8yLjRf",
    "Ni4wLjkuMTIzNV9wbGF5MzJfUk4wMV9FTl81ODYNCkRhdGU6IFdlZCwgMDIgRGVj",
    "IDIwMjYgMTQ6MTc6NDggR01UDQoNCg==",
)
.as_bytes();

/// live555's GET: the generic request format (`CSeq` and `User-Agent`
/// included, even in HTTP) with the tunnelling headers; the cookie is an
/// MD5 hex digest cut to 23 characters (the digest and the version here
/// are made up).
pub const LIVE555_GET: &[u8] = concat!(
    "GET /sample.mp4 HTTP/1.1\r\n",
    "CSeq: 1\r\n",
    "User-Agent: openRTSP (LIVE555 Streaming Media v2020.08.19)\r\n",
    "Host: 127.0.0.1\r\n",
    "x-sessioncookie: 5b4bdb1a2e0c8f5e3a67c1d\r\n",
    "Accept: application/x-rtsp-tunnelled\r\n",
    "Pragma: no-cache\r\n",
    "Cache-Control: no-cache\r\n",
    "\r\n",
)
.as_bytes();

/// live555's POST, with the body of its first request (each request is
/// base64-encoded on its own).
pub const LIVE555_POST: &[u8] = concat!(
    "POST /sample.mp4 HTTP/1.1\r\n",
    "CSeq: 1\r\n",
    "User-Agent: openRTSP (LIVE555 Streaming Media v2020.08.19)\r\n",
    "Host: 127.0.0.1\r\n",
    "x-sessioncookie: 5b4bdb1a2e0c8f5e3a67c1d\r\n",
    "Content-Type: application/x-rtsp-tunnelled\r\n",
    "Pragma: no-cache\r\n",
    "Cache-Control: no-cache\r\n",
    "Content-Length: 32767\r\n",
    "Expires: Sun, 9 Jan 1972 00:00:00 GMT\r\n",
    "\r\n",
    // "OPTIONS rtsp://127.0.0.1/sample.mp4 RTSP/1.0\r\nCSeq: 2\r\n
    // User-Agent: openRTSP (LIVE555 Streaming Media v2020.08.19)\r\n\r\n"
    "T1BUSU9OUyBydHNwOi8vMTI3LjAuMC4xL3NhbXBsZS5tcDQgUlRTUC8xLjANCkNT",
    "ZXE6IDINClVzZXItQWdlbnQ6IG9wZW5SVFNQIChMSVZFNTU1IFN0cmVhbWluZyBN",
    "ZWRpYSB2MjAyMC4wOC4xOSkNCg0K",
)
.as_bytes();

/// Frames `bytes` fed one byte at a time (the worst split): the head, and
/// the bytes after it.
fn head_of(bytes: &[u8]) -> (crate::tunnel::HttpRequestHead, Vec<u8>) {
    let mut framer = Framer::new(Limits::default());
    let mut frames = Vec::new();
    for b in bytes {
        framer.push(std::slice::from_ref(b));
        frames.extend(std::iter::from_fn(|| framer.next_frame()));
    }
    assert_eq!(frames.len(), 1, "one unit, got {frames:?}");
    match frames.pop() {
        Some(Frame::Http(head)) => (head, framer.take_buffered()),
        other => panic!("expected an HTTP head, got {other:?}"),
    }
}

/// Decodes a POST body and returns the (method, URI, CSeq) of each request.
fn requests_in(body: &[u8]) -> Vec<(String, String, String)> {
    let mut post = PostBody::new(Limits::default());
    post.push(body).expect("valid base64");
    assert_eq!(post.pending_chars(), 0, "no torn quantum");
    let mut out = Vec::new();
    while let Some(frame) = post.next_frame() {
        match frame {
            Frame::Request(r) => out.push((
                <&str>::from(r.method()).to_string(),
                r.request_uri().map(|u| u.to_string()).unwrap_or_default(),
                r.header(&rtsp_types::headers::CSEQ)
                    .map(|v| v.as_str().to_string())
                    .unwrap_or_default(),
            )),
            other => panic!("expected a request, got {other:?}"),
        }
    }
    assert_eq!(post.buffered(), 0, "nothing left over");
    out
}

fn expect_get(bytes: &[u8], cookie: &str) {
    let (head, rest) = head_of(bytes);
    assert!(rest.is_empty(), "a GET has no body");
    match classify(&head).expect("a tunnel half") {
        TunnelRequest::Get { cookie: c, path } => {
            assert_eq!(c.as_str(), cookie);
            assert_eq!(path, "/sample.mp4");
        }
        other => panic!("expected a GET, got {other:?}"),
    }
}

fn expect_post(bytes: &[u8], cookie: &str) -> Vec<(String, String, String)> {
    let (head, body) = head_of(bytes);
    assert_eq!(head.header("content-length"), Some("32767"), "dummy length");
    match classify(&head).expect("a tunnel half") {
        TunnelRequest::Post { cookie: c, path } => {
            assert_eq!(c.as_str(), cookie);
            assert_eq!(path, "/sample.mp4");
        }
        other => panic!("expected a POST, got {other:?}"),
    }
    requests_in(&body)
}

fn options(uri: &str, cseq: &str) -> Vec<(String, String, String)> {
    vec![("OPTIONS".to_string(), uri.to_string(), cseq.to_string())]
}

#[test]
fn ffmpeg_halves() {
    expect_get(FFMPEG_GET, "404c039d87cc33ed");
    let reqs = expect_post(FFMPEG_POST, "404c039d87cc33ed");
    assert_eq!(reqs, options("rtsp://127.0.0.1:18554/sample.mp4", "1"));
}

#[test]
fn gstreamer_halves() {
    expect_get(GST_GET, "xcaunqncolvdntkvdbyedca");
    let reqs = expect_post(GST_POST, "xcaunqncolvdntkvdbyedca");
    assert_eq!(reqs, options("rtsp://127.0.0.1:18555/sample.mp4", "1"));
}

#[test]
fn live555_halves() {
    expect_get(LIVE555_GET, "5b4bdb1a2e0c8f5e3a67c1d");
    let reqs = expect_post(LIVE555_POST, "5b4bdb1a2e0c8f5e3a67c1d");
    assert_eq!(reqs, options("rtsp://127.0.0.1/sample.mp4", "2"));
}

/// GStreamer pads each message (`…DQoNCg==`), so two of its POST bodies
/// back to back put padding mid-stream; split at every offset, the two
/// requests always come out.
#[test]
fn gstreamer_body_twice_split_everywhere() {
    let (_, body) = head_of(GST_POST);
    assert!(body.ends_with(b"=="), "the capture ends padded");
    let twice = [body.as_slice(), b"\r\n", body.as_slice()].concat();
    let whole = requests_in(&twice);
    assert_eq!(whole.len(), 2);
    for cut in 0..=twice.len() {
        let mut post = PostBody::new(Limits::default());
        post.push(&twice[..cut]).expect("valid prefix");
        let mut got = std::iter::from_fn(|| post.next_frame()).count();
        post.push(&twice[cut..]).expect("valid rest");
        got += std::iter::from_fn(|| post.next_frame()).count();
        assert_eq!(got, 2, "split at {cut}");
        assert_eq!(post.pending_chars(), 0);
        assert_eq!(post.body_bytes(), twice.len() as u64);
    }
}
