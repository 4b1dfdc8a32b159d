//! The access-control targets: the access-file, users and groups parsers,
//! and the `Authorization` header through the whole access decision.

use std::net::IpAddr;

use cadence_engine::access::authorization::{parse_authorization, Credentials};
use cadence_engine::access::digest::Ha1;
use cadence_engine::access::passwd::update_users_text;
use cadence_engine::access::qtaccess;
use cadence_engine::access::signed_url::split_query;
use cadence_engine::access::users::{parse_groups, parse_users};
use cadence_engine::access::AccessRequest;
use cadence_engine::rtsp::url::route_of;

use crate::fixture::{fixture, PATHS};
use crate::input::{text, Input};
use crate::placeholders;

/// Methods selected by the second byte of an [`authorization`] input.
const METHODS: [&str; 8] = [
    "DESCRIBE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "TEARDOWN",
    "OPTIONS",
    "GET_PARAMETER",
    "ANNOUNCE",
];
/// Unix time of an [`authorization`] request before its offset, seconds.
const NOW_S: u64 = 1_700_000_000;

/// One file's bytes as a `qtaccess` file, a `qtusers` file and a `qtgroups`
/// file, and as the `qtusers` that `cadence passwd` rewrites: when the
/// rewrite succeeds, the new file must parse and give the new password.
pub fn access_files(data: &[u8]) {
    let _ = qtaccess::parse_bytes(data);
    let t = text(data);
    let users = parse_users(&t);
    if let Ok((file, _)) = &users {
        let _ = file.ha1("alice");
    }
    let (groups, _) = parse_groups(&t);
    let _ = groups.is_member("bob", "staff");
    let Ok((rewritten, _)) = update_users_text(Some(&t), "alice", "n3w pass", None, "$6$x$y")
    else {
        return;
    };
    let (file, _) = parse_users(&rewritten)
        .unwrap_or_else(|e| panic!("cadence passwd wrote a users file that does not parse: {e:?}"));
    let want = Ha1::compute("alice", &file.realm, b"n3w pass");
    assert!(
        file.ha1("alice").is_some_and(|h| h.ct_eq(&want)),
        "after cadence passwd, alice's password is not the new one"
    );
}

/// `[path][method][age][peer]` then the Request-URI line, then the
/// `Authorization` value (none when empty): the header parser, its
/// serialization round trip, and [`cadence_engine::access::AccessRules::decide`]
/// over the fixture's rules (see [`crate::fixture`]) for catalog path
/// `PATHS[path]` (or the URI's path when it parses), at `age` × 10 s after the
/// nonces of [`placeholders`] were minted, from 127.0.0.1 or 10.1.2.3.
pub fn authorization(data: &[u8]) {
    let _ = authorization_status(data);
}

/// [`authorization`], returning the decision's status (200, 401, 403 or
/// 404).
pub fn authorization_status(data: &[u8]) -> u16 {
    let fx = fixture();
    let mut input = Input::new(data);
    let default_path = PATHS[usize::from(input.u8()) % PATHS.len()];
    let method = METHODS[usize::from(input.u8() % 8)];
    let now = NOW_S + u64::from(input.u8()) * 10;
    let peer: IpAddr = if input.u8() & 1 == 0 {
        [127, 0, 0, 1].into()
    } else {
        [10, 1, 2, 3].into()
    };
    let uri_line = text(input.line()).into_owned();
    let value = text(input.rest()).into_owned();
    let uri = if uri_line.is_empty() {
        format!("rtsp://127.0.0.1:8554/{default_path}")
    } else {
        placeholders::fill_signature(fx, &uri_line).unwrap_or(uri_line)
    };
    let value = placeholders::fill_authorization(fx, &value, method, NOW_S).unwrap_or(value);

    if let Ok(creds) = parse_authorization(&value) {
        let header = match &creds {
            Credentials::Basic(b) => b.to_header(),
            Credentials::Digest(d) => d.to_header(),
        };
        if let Ok(again) = parse_authorization(&header) {
            assert_eq!(
                again, creds,
                "credentials change through to_header and parse"
            );
        }
    }

    let (path, query) = match uri.parse::<url::Url>().ok().as_ref().and_then(route_of) {
        Some(route) => {
            let q = route.query_pairs();
            (route.path, q)
        }
        None => (default_path.to_string(), split_query(&uri).1),
    };
    let rules = fx.rules.load();
    let decision = rules.decide(&AccessRequest {
        path: &path,
        method,
        uri: &uri,
        authorization: (!value.is_empty()).then_some(value.as_str()),
        peer,
        query: &query,
        now_unix_s: now,
    });
    let _ = rules.is_protected_file(&path);
    let _ = decision.reason().map(|r| r.to_string());
    decision.status()
}
