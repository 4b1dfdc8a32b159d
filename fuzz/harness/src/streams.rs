//! The connection-start targets: the HTTP tunnel (head, classification,
//! POST body decoding and the RTSP framed inside it) and the PROXY
//! protocol header, plus the check that framing does not depend on how the
//! input was split.

use std::net::SocketAddr;

use cadence_engine::proxy_protocol::{self, TrustedProxies};
use cadence_engine::rtsp::framing::{Frame, Framer, Limits};
use cadence_engine::tunnel::{classify, Base64Decoder, PostBody, TunnelRequest};

use crate::input::{text, Input};

/// `[split][bytes]`: the bytes as the first input of a connection on the
/// RTSP port, delivered in reads of `split % 64 + 1` bytes. An HTTP head is
/// classified; a POST's body (the bytes after the head) goes through the
/// tunnel's [`PostBody`] decoder, whose RTSP is framed; the same body
/// decoded at once and in those reads by [`Base64Decoder`] must give the
/// same bytes.
pub fn http_tunnel(data: &[u8]) {
    let mut input = Input::new(data);
    let split = usize::from(input.u8() % 64) + 1;
    let bytes = input.rest();
    let mut framer = Framer::new(Limits::default());
    let mut post: Option<PostBody> = None;
    for chunk in bytes.chunks(split) {
        if let Some(body) = &mut post {
            if body.push(chunk).is_err() {
                break;
            }
            while let Some(f) = body.next_frame() {
                if matches!(f, Frame::Malformed(_)) {
                    break;
                }
            }
            continue;
        }
        framer.push(chunk);
        while let Some(frame) = framer.next_frame() {
            let head = match frame {
                Frame::Http(head) | Frame::HttpUnsupported(head) => head,
                _ => continue,
            };
            let _ = head.header("x-sessioncookie");
            match classify(&head) {
                Ok(TunnelRequest::Post { .. }) => {
                    let rest = framer.take_buffered();
                    base64_split_invariant(&rest, split);
                    let mut body = PostBody::new(Limits::default());
                    if body.push(&rest).is_ok() {
                        while body.next_frame().is_some() {}
                        post = Some(body);
                    }
                }
                Ok(TunnelRequest::Get { cookie, .. }) => {
                    let _ = cookie.as_str();
                }
                Err(e) => {
                    let _ = (e.status(), e.response_bytes());
                }
            }
            break;
        }
    }
}

/// Panics unless `body` decodes to the same bytes (and succeeds or fails
/// alike) at once and in pieces of `split` bytes.
fn base64_split_invariant(body: &[u8], split: usize) {
    let mut whole = Base64Decoder::new();
    let mut a = Vec::new();
    let ra = whole.push(body, &mut a);
    let mut pieces = Base64Decoder::new();
    let mut b = Vec::new();
    let mut rb = Ok(0);
    for chunk in body.chunks(split) {
        rb = pieces.push(chunk, &mut b);
        if rb.is_err() {
            break;
        }
    }
    assert_eq!(
        ra.is_ok(),
        rb.is_ok(),
        "base64 body decodes differently at once ({ra:?}) and in {split}-byte pieces ({rb:?})"
    );
    if ra.is_ok() {
        assert_eq!(
            a, b,
            "base64 body decodes to other bytes in {split}-byte pieces"
        );
        assert_eq!(whole.pending(), pieces.pending());
    }
}

/// A PROXY protocol header (v1 text or v2 binary) at the start of a
/// connection, with the default and a 64-byte v2 limit; every line of the
/// input also as a `trusted_proxies` entry. A complete header must parse
/// the same from exactly its own bytes, and every shorter prefix must be
/// incomplete (the shard parses the header as it arrives).
pub fn proxy_header(data: &[u8]) {
    let _ = proxy_protocol::parse_with_limit(data, 64);
    if let Ok(Some((header, used))) = proxy_protocol::parse(data) {
        assert!(
            used > 0 && used <= data.len(),
            "consumed {used} of {}",
            data.len()
        );
        assert_eq!(
            proxy_protocol::parse(&data[..used]),
            Ok(Some((header, used))),
            "the header alone parses differently"
        );
        for p in 0..used {
            assert_eq!(
                proxy_protocol::parse(&data[..p]),
                Ok(None),
                "a {p}-byte prefix of a {used}-byte header is not incomplete"
            );
        }
        let peer = SocketAddr::from(([192, 0, 2, 1], 4000));
        let _ = header.client_addr(peer);
    }
    let lines: Vec<String> = text(data).lines().map(str::to_string).collect();
    if let Ok(trusted) = TrustedProxies::parse(&lines) {
        let _ = trusted.contains([10, 0, 0, 1].into());
        let _ = trusted.contains(std::net::Ipv6Addr::LOCALHOST.into());
    }
}

/// Panics unless framing `stream` at once and in the pieces `lens` gives
/// (cycling; the rest at once when they run out) yield the same frames, up
/// to the first frame after which the framer stops.
pub fn framing_split_invariant(stream: &[u8], lens: &[usize]) {
    let whole = frames(std::iter::once(stream));
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = lens
            .get(i % lens.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let (a, b) = rest.split_at(n.clamp(1, rest.len()));
        pieces.push(a);
        rest = b;
        i += 1;
    }
    let split = frames(pieces.into_iter());
    assert_eq!(whole, split, "framing depends on how the input was split");
}

/// The frames (as `Debug` text) of the reads `reads`.
fn frames<'a>(reads: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let mut framer = Framer::new(Limits::default());
    let mut out = Vec::new();
    for r in reads {
        framer.push(r);
        while let Some(f) = framer.next_frame() {
            out.push(format!("{f:?}"));
        }
    }
    out
}
