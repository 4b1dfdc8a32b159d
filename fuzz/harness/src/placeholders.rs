//! Placeholders in recorded requests, filled in when a request is replayed.
//!
//! Seeds are real clients' requests recorded against a real server: their
//! session IDs, Digest nonces and responses and URL signatures are that
//! server's, which the simulated shard does not know. The seed builder
//! replaces them with placeholders and the targets put back values the
//! simulated shard accepts, so the fuzzer starts from sequences that get
//! past the session lookup and the credential checks:
//!
//! | placeholder | where | becomes |
//! |---|---|---|
//! | [`SESSION`] | `Session` header | the last session ID the shard gave |
//! | [`NONCE`] | Digest `nonce` | a nonce minted now for the credentials' realm |
//! | [`RESPONSE`] | Digest `response` | the right request-digest, when the user is known |
//! | [`SIGNATURE`] | `sig` query parameter | the right signed-URL token for the path and `exp` |

use cadence_engine::access::authorization::{parse_authorization, Credentials};
use cadence_engine::access::digest::{self, Qop};
use cadence_engine::access::signed_url;
use cadence_engine::rtsp::url::route_of;
use rtsp_types::headers::{AUTHORIZATION, SESSION as SESSION_HEADER};
use rtsp_types::{HeaderValue, Request};

use crate::fixture::Fixture;

/// Session ID placeholder.
pub const SESSION: &str = "@S@";
/// Digest nonce placeholder.
pub const NONCE: &str = "@N@";
/// Digest response placeholder.
pub const RESPONSE: &str = "@R@";
/// Signed-URL token placeholder.
pub const SIGNATURE: &str = "@SIG@";

/// Fills in the placeholders of `request` at `now_unix_s`, with `session`
/// the last session ID given (if any).
pub fn fill(fx: &Fixture, request: &mut Request<Vec<u8>>, session: Option<&str>, now_unix_s: u64) {
    if let (Some(id), Some(v)) = (session, request.header_mut(&SESSION_HEADER)) {
        if v.as_str().contains(SESSION) {
            *v = HeaderValue::from(v.as_str().replace(SESSION, id));
        }
    }
    let method: &str = request.method().into();
    let method = method.to_string();
    if let Some(v) = request.header_mut(&AUTHORIZATION) {
        if let Some(filled) = fill_authorization(fx, v.as_str(), &method, now_unix_s) {
            *v = HeaderValue::from(filled);
        }
    }
    if let Some(url) = request.request_uri() {
        if let Some(signed) = fill_signature(fx, url.as_str()) {
            if let Ok(u) = signed.parse() {
                request.set_request_uri(Some(u));
            }
        }
    }
}

/// `value` (an `Authorization` header) with its Digest placeholders filled
/// in, or `None` when it has none.
pub fn fill_authorization(
    fx: &Fixture,
    value: &str,
    method: &str,
    now_unix_s: u64,
) -> Option<String> {
    if !value.contains(NONCE) && !value.contains(RESPONSE) {
        return None;
    }
    let Ok(Credentials::Digest(mut d)) = parse_authorization(value) else {
        return None;
    };
    if d.nonce == NONCE {
        d.nonce = digest::mint_nonce(&fx.nonce_key, &d.realm, now_unix_s);
    }
    if d.response == RESPONSE {
        if let Some(ha1) = fx.ha1(&d.username) {
            let qop = match (&d.qop, &d.nc, &d.cnonce) {
                (Some(qop), Some(nc), Some(cnonce)) => Some(Qop { nc, cnonce, qop }),
                _ => None,
            };
            d.response = digest::response(&ha1, method, &d.uri, &d.nonce, qop);
        }
    }
    Some(d.to_header())
}

/// `url` with a [`SIGNATURE`] `sig` parameter replaced by the token of its
/// catalog path, `exp` and `ip`, or `None` when it has none.
pub fn fill_signature(fx: &Fixture, url: &str) -> Option<String> {
    if !url.contains(SIGNATURE) {
        return None;
    }
    let parsed: url::Url = url.parse().ok()?;
    let route = route_of(&parsed)?;
    let pairs = route.query_pairs();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let exp = get("exp")?;
    let token = signed_url::token(&fx.url_key, &route.path, exp, get("ip"));
    Some(url.replace(SIGNATURE, &token))
}
