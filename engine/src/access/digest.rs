//! HTTP Digest computation for RTSP (RFC 2617 §3.2.2, RFC 7616 §3.4, MD5
//! only, which is what RTSP clients implement) and stateless nonces.
//!
//! A nonce is `hex(t) ‖ hex(HMAC-SHA256(key, "cadence-nonce" ‖ t ‖ realm)[..16])`
//! with `t` the minting time in unix seconds as 8 big-endian bytes: 48 lower
//! case hex digits. Any shard verifies it with the key alone (no table, no
//! lock); its age comes from `t`. Nonce counts (`nc`) are not tracked, so a
//! response may be replayed within the nonce lifetime (RTSP clients reuse one
//! nonce for every request of a connection, which this allows).

use std::fmt;

use md5::{Digest as _, Md5};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use super::secret::Secret;

/// `HA1 = MD5(username ":" realm ":" password)` (RFC 2617 §3.2.2.2), the
/// third field of a `qtusers` line. 16 bytes; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Ha1([u8; 16]);

impl Ha1 {
    /// HA1 of a user, realm and password (bytes as sent, UTF-8 in practice).
    pub fn compute(user: &str, realm: &str, password: &[u8]) -> Ha1 {
        let mut h = Md5::new();
        h.update(user.as_bytes());
        h.update(b":");
        h.update(realm.as_bytes());
        h.update(b":");
        h.update(password);
        Ha1(h.finalize().into())
    }

    /// Parses 32 hex digits (either case). `None` otherwise.
    pub fn from_hex(hex: &str) -> Option<Ha1> {
        decode_hex::<16>(hex).map(Ha1)
    }

    /// 32 lower-case hex digits, as `qtpasswd` writes them.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Constant-time equality (RFC 7616 §5.11 timing concerns).
    pub fn ct_eq(&self, other: &Ha1) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for Ha1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ha1(<redacted>)")
    }
}

/// The `qop` part of a response computation (RFC 2617 §3.2.2.1): present
/// when the client sent `qop=auth`, absent for RFC 2069-style clients.
#[derive(Debug, Clone, Copy)]
pub struct Qop<'a> {
    /// `nc`, 8 hex digits as sent.
    pub nc: &'a str,
    /// `cnonce` as sent.
    pub cnonce: &'a str,
    /// `qop` as sent (`auth`).
    pub qop: &'a str,
}

/// The request-digest (RFC 2617 §3.2.2.1), 32 lower-case hex digits:
/// `MD5(HA1 ":" nonce ":" HA2)` without qop, or
/// `MD5(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)` with it, where
/// `HA2 = MD5(method ":" digest-uri)`.
pub fn response(ha1: &Ha1, method: &str, uri: &str, nonce: &str, qop: Option<Qop<'_>>) -> String {
    let mut h2 = Md5::new();
    h2.update(method.as_bytes());
    h2.update(b":");
    h2.update(uri.as_bytes());
    let ha2 = to_hex(&h2.finalize());
    let mut h = Md5::new();
    h.update(ha1.to_hex().as_bytes());
    h.update(b":");
    h.update(nonce.as_bytes());
    h.update(b":");
    if let Some(q) = qop {
        for part in [q.nc, q.cnonce, q.qop] {
            h.update(part.as_bytes());
            h.update(b":");
        }
    }
    h.update(ha2.as_bytes());
    to_hex(&h.finalize())
}

/// Compares a client's `response` with the expected one in constant time;
/// hex case is ignored.
pub fn response_matches(expected_hex: &str, got: &str) -> bool {
    match (decode_hex::<16>(expected_hex), decode_hex::<16>(got)) {
        (Some(a), Some(b)) => a.ct_eq(&b).into(),
        _ => false,
    }
}

/// Length of a nonce, characters.
pub const NONCE_LEN: usize = 48;
/// Nonces minted up to this many seconds in the future are accepted (two
/// machines sharing a `nonce_secret_file` with slightly different clocks).
pub const NONCE_FUTURE_SKEW_S: u64 = 30;

/// Mints a nonce for `realm` at `now_unix_s` (see the module docs).
pub fn mint_nonce(key: &Secret, realm: &str, now_unix_s: u64) -> String {
    let t = now_unix_s.to_be_bytes();
    let mac = key.hmac(&[b"cadence-nonce", &t, realm.as_bytes()]);
    let mut s = to_hex(&t);
    s.push_str(&to_hex(&mac[..16]));
    s
}

/// What a nonce check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, for this realm, younger than the lifetime.
    Fresh,
    /// Ours, for this realm, but older than the lifetime (answer with
    /// `stale=true` when the response was right, RFC 7616 §3.3).
    Stale,
    /// Not one we minted for this realm (forged, truncated, other key or
    /// realm, or from the future).
    Invalid,
}

/// Checks a nonce against `key` and `realm` at `now_unix_s`; `lifetime_s` is
/// the largest accepted age.
pub fn check_nonce(
    key: &Secret,
    realm: &str,
    nonce: &str,
    now_unix_s: u64,
    lifetime_s: u64,
) -> NonceCheck {
    if nonce.len() != NONCE_LEN {
        return NonceCheck::Invalid;
    }
    let (Some(t), Some(tag)) = (
        nonce.get(..16).and_then(decode_hex::<8>),
        nonce.get(16..).and_then(decode_hex::<16>),
    ) else {
        return NonceCheck::Invalid;
    };
    let mac = key.hmac(&[b"cadence-nonce", &t, realm.as_bytes()]);
    if !bool::from(mac[..16].ct_eq(&tag)) {
        return NonceCheck::Invalid;
    }
    let minted = u64::from_be_bytes(t);
    if minted > now_unix_s.saturating_add(NONCE_FUTURE_SKEW_S) {
        return NonceCheck::Invalid;
    }
    if now_unix_s.saturating_sub(minted) > lifetime_s {
        NonceCheck::Stale
    } else {
        NonceCheck::Fresh
    }
}

/// Whether a Digest `uri` parameter names the request's Request-URI.
///
/// Accepted (what ffmpeg, GStreamer and live555 send, and path-only
/// clients): the same text; or, after dropping `rtsp://`, `rtsps://` or
/// `rtspu://` and the authority from both (the host and port may differ, as
/// behind NAT or a proxy), the same percent-decoded path, ignoring trailing
/// `/`; the query must then be the same when the `uri` has one, and may be
/// left out by the client. `*` (OPTIONS) only matches `*`.
///
/// A track URL (`…/f.mp4/trackID=3`) is also named by the presentation URL
/// of its file (`…/f.mp4` or `…/f.mp4/`): live555's `RTSPClient` (openRTSP,
/// VLC) signs every request with its base URL, the DESCRIBE's
/// `Content-Base`, so its SETUP carries `uri="rtsp://h/f.mp4/"`. The two
/// name the same catalog file, under the same access rules; another track
/// or another file is still refused.
pub fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    let (dp, dq) = split_uri(digest_uri);
    let (rp, rq) = split_uri(request_uri);
    if dp == "*" || rp == "*" {
        return false;
    }
    let (Ok(dp), Ok(rp)) = (
        percent_decode_str(dp).decode_utf8(),
        percent_decode_str(rp).decode_utf8(),
    ) else {
        return false;
    };
    if dp.trim_end_matches('/') != rp.trim_end_matches('/') && !names_presentation_of(&dp, &rp) {
        return false;
    }
    match dq {
        None => true,
        Some(q) => rq == Some(q),
    }
}

/// Whether decoded path `digest_path` is the presentation (file) URL of the
/// track URL `request_path`: the same catalog path, without the trailing
/// track segment ([`crate::rtsp::url::parse_target`]).
fn names_presentation_of(digest_path: &str, request_path: &str) -> bool {
    use crate::rtsp::url::parse_target;
    match (parse_target(digest_path), parse_target(request_path)) {
        (Some(d), Some(r)) => d.track_id.is_none() && r.track_id.is_some() && d.path == r.path,
        _ => false,
    }
}

/// Splits a Request-URI into its path (with leading `/`, authority
/// removed) and its query (without `?`).
fn split_uri(uri: &str) -> (&str, Option<&str>) {
    let lower_starts = |p: &str| {
        uri.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    };
    let rest = ["rtsp://", "rtsps://", "rtspu://"]
        .iter()
        .find(|p| lower_starts(p))
        .map(|p| {
            let after = &uri[p.len()..];
            match after.find(['/', '?']) {
                Some(i) => &after[i..],
                None => "",
            }
        })
        .unwrap_or(uri);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    (if path.is_empty() { "/" } else { path }, query)
}

/// Lower-case hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Exactly `2 * N` hex digits (either case) into `N` bytes.
pub(crate) fn decode_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let b = hex.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_section_3_5_example() {
        // RFC 2617 §3.5: Mufasa / "Circle Of Life" / testrealm@host.com.
        let ha1 = Ha1::compute("Mufasa", "testrealm@host.com", b"Circle Of Life");
        assert_eq!(ha1.to_hex(), "939e7578ed9e3c518a452acee763bce9");
        let r = response(
            &ha1,
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(Qop {
                nc: "00000001",
                cnonce: "0a4f113b",
                qop: "auth",
            }),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        assert!(response_matches(&r, "6629FAE49393A05397450978507C4EF1"));
        assert!(!response_matches(&r, "6629fae49393a05397450978507c4ef0"));
        assert!(!response_matches(&r, "6629fae4"));
    }

    #[test]
    fn rfc7616_section_3_9_1_md5_example() {
        let ha1 = Ha1::compute("Mufasa", "http-auth@example.org", b"Circle of Life");
        let r = response(
            &ha1,
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some(Qop {
                nc: "00000001",
                cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                qop: "auth",
            }),
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc2069_response_without_qop() {
        // MD5(HA1:nonce:HA2), computed independently with Python's hashlib.
        let ha1 = Ha1::compute("Mufasa", "testrealm@host.com", b"Circle Of Life");
        let r = response(
            &ha1,
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            None,
        );
        assert_eq!(r, "670fd8c2df070c60b045671b8b24ff02");
    }

    #[test]
    fn ha1_hex_round_trip_and_redaction() {
        let ha1 = Ha1::from_hex("939E7578ED9E3C518A452ACEE763BCE9").expect("hex");
        assert_eq!(ha1.to_hex(), "939e7578ed9e3c518a452acee763bce9");
        assert!(ha1.ct_eq(&Ha1::compute(
            "Mufasa",
            "testrealm@host.com",
            b"Circle Of Life"
        )));
        assert!(!format!("{ha1:?}").contains("939e"));
        assert!(Ha1::from_hex("939e").is_none());
        assert!(Ha1::from_hex("zz9e7578ed9e3c518a452acee763bce9").is_none());
    }

    #[test]
    fn nonces_are_fresh_then_stale_and_bound_to_key_and_realm() {
        let key = Secret::from_bytes(b"nonce key for tests 0123").expect("key");
        let other = Secret::from_bytes(b"another nonce key 456789").expect("key");
        let n = mint_nonce(&key, "r", 1_000);
        assert_eq!(n.len(), NONCE_LEN);
        assert!(n.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(check_nonce(&key, "r", &n, 1_000, 300), NonceCheck::Fresh);
        assert_eq!(check_nonce(&key, "r", &n, 1_300, 300), NonceCheck::Fresh);
        assert_eq!(check_nonce(&key, "r", &n, 1_301, 300), NonceCheck::Stale);
        assert_eq!(check_nonce(&key, "R", &n, 1_000, 300), NonceCheck::Invalid);
        assert_eq!(
            check_nonce(&other, "r", &n, 1_000, 300),
            NonceCheck::Invalid
        );
        // From the future (beyond the skew) is refused.
        assert_eq!(check_nonce(&key, "r", &n, 900, 300), NonceCheck::Invalid);
        // A changed timestamp breaks the tag.
        let mut forged = n.clone().into_bytes();
        forged[15] = if forged[15] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(
            check_nonce(&key, "r", &forged, 1_000, 300),
            NonceCheck::Invalid
        );
        assert_eq!(check_nonce(&key, "r", "", 1_000, 300), NonceCheck::Invalid);
        assert_eq!(
            check_nonce(&key, "r", &"é".repeat(24), 1_000, 300),
            NonceCheck::Invalid
        );
    }

    #[test]
    fn digest_uri_matching() {
        let req = "rtsp://10.0.0.1:8554/dir/a%20b.mp4/trackID=1";
        assert!(uri_matches(req, req));
        // Path only, another host, other case of the scheme, decoded space.
        assert!(uri_matches("/dir/a%20b.mp4/trackID=1", req));
        assert!(uri_matches("rtsp://example.net/dir/a b.mp4/trackID=1", req));
        assert!(uri_matches("RTSP://h/dir/a%20b.mp4/trackID=1/", req));
        assert!(uri_matches("rtsp://h:8554/x.mp4", "/x.mp4"));
        // Another file or track is refused.
        assert!(!uri_matches("/dir/a%20b.mp4/trackID=2", req));
        assert!(!uri_matches("/other.mp4", "rtsp://h/x.mp4"));
        assert!(!uri_matches("/dir/other.mp4/", req));
        assert!(!uri_matches("/dir/", req));
        assert!(!uri_matches("/dir/a%20b.mp4/x", req));
        // live555 (openRTSP, VLC) signs a SETUP with its base URL, the
        // Content-Base of the DESCRIBE: the presentation names its tracks.
        assert!(uri_matches("rtsp://10.0.0.1:8554/dir/a%20b.mp4/", req));
        assert!(uri_matches("/dir/a%20b.mp4", req));
        // Not the other way round: a track does not name the presentation.
        assert!(!uri_matches(req, "rtsp://10.0.0.1:8554/dir/a%20b.mp4/"));
        // Query: may be left out, must match when given.
        let signed = "rtsp://h/x.mp4?exp=5&sig=abc";
        assert!(uri_matches("rtsp://h/x.mp4", signed));
        assert!(uri_matches("/x.mp4?exp=5&sig=abc", signed));
        assert!(!uri_matches("/x.mp4?exp=6&sig=abc", signed));
        // Authority only means the root.
        assert!(uri_matches("rtsp://h:8554", "rtsp://other/"));
        assert!(uri_matches("*", "*"));
        assert!(!uri_matches("*", "rtsp://h/x.mp4"));
        assert!(!uri_matches("/%ff", "/%ff/"));
    }
}
