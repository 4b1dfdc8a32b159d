//! Microbenchmarks of the per-request access decision
//! (`cadence_engine::access::AccessRules::decide`), the work a shard does
//! for each RTSP request naming a file:
//! - a file under no access file (open),
//! - Basic credentials (one MD5 for HA1),
//! - Digest credentials with qop (nonce HMAC check, HA2 and response MD5s),
//! - a Digest challenge (nonce minting),
//! - a signed URL (HMAC-SHA256 and base64url).
//!
//! `cargo bench -p cadence-benches --bench access -- --test` runs each once.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::PathBuf;

use cadence_engine::access::authorization::{BasicCredentials, DigestCredentials};
use cadence_engine::access::digest::{self, Ha1, Qop};
use cadence_engine::access::signed_url::{sign_url, split_query};
use cadence_engine::access::{
    AccessRequest, AccessRules, AuthConfig, Decision, Secret, SignedUrlMode,
};
use divan::Bencher;

fn main() {
    divan::main();
}

const NOW: u64 = 1_800_000_000;
const URI: &str = "rtsp://127.0.0.1:8554/vip/a.mp4";

struct Rig {
    rules: AccessRules,
    url_key: Secret,
    _dir: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn rig(scheme: &str) -> Rig {
    let dir = std::env::temp_dir().join(format!(
        "cadence-bench-access-{}-{scheme}",
        std::process::id()
    ));
    let media = dir.join("media");
    std::fs::create_dir_all(media.join("vip")).expect("mkdir");
    std::fs::write(
        media.join("vip/qtaccess"),
        format!("AuthScheme {scheme}\nrequire valid-user\n"),
    )
    .expect("qtaccess");
    let mut users = String::from("realm Streaming Server\n");
    for i in 0..1000 {
        let u = format!("user{i}");
        let ha1 = Ha1::compute(&u, "Streaming Server", b"pw").to_hex();
        users.push_str(&format!("{u}:x:{ha1}\n"));
    }
    std::fs::write(dir.join("qtusers"), users).expect("users");
    std::fs::write(dir.join("url-key"), "bench url signing key 0123456789").expect("key");
    let cfg = AuthConfig {
        users_file: dir.join("qtusers"),
        groups_file: dir.join("qtgroups"),
        signed_urls: SignedUrlMode::Optional,
        url_secret_file: Some(dir.join("url-key")),
        ..AuthConfig::default()
    };
    let nonce_key = Secret::from_bytes(b"bench nonce key 0123456789").expect("key");
    let rules = AccessRules::load(&media, &cfg, &nonce_key).expect("load");
    let url_key = Secret::read_file(&dir.join("url-key")).expect("key");
    Rig {
        rules,
        url_key,
        _dir: dir,
    }
}

fn request<'a>(
    path: &'a str,
    authorization: Option<&'a str>,
    query: &'a [(String, String)],
) -> AccessRequest<'a> {
    AccessRequest {
        path,
        method: "DESCRIBE",
        uri: URI,
        authorization,
        peer: IpAddr::from([127, 0, 0, 1]),
        query,
        now_unix_s: NOW,
    }
}

fn expect_status(d: Decision, status: u16) {
    assert_eq!(d.status(), status, "{d:?}");
}

#[divan::bench]
fn open_file(b: Bencher) {
    let r = rig("basic");
    expect_status(r.rules.decide(&request("open/a.mp4", None, &[])), 200);
    b.bench(|| r.rules.decide(black_box(&request("open/a.mp4", None, &[]))));
}

#[divan::bench]
fn basic_allowed(b: Bencher) {
    let r = rig("basic");
    let h = BasicCredentials::new("user500", b"pw").to_header();
    expect_status(r.rules.decide(&request("vip/a.mp4", Some(&h), &[])), 200);
    b.bench(|| {
        r.rules
            .decide(black_box(&request("vip/a.mp4", Some(&h), &[])))
    });
}

#[divan::bench]
fn digest_challenge(b: Bencher) {
    let r = rig("digest");
    expect_status(r.rules.decide(&request("vip/a.mp4", None, &[])), 401);
    b.bench(|| r.rules.decide(black_box(&request("vip/a.mp4", None, &[]))));
}

#[divan::bench]
fn digest_allowed(b: Bencher) {
    let r = rig("digest");
    let Decision::Challenge {
        www_authenticate, ..
    } = r.rules.decide(&request("vip/a.mp4", None, &[]))
    else {
        panic!("no challenge")
    };
    let ch = &www_authenticate[0];
    let at = ch.find("nonce=\"").expect("nonce") + 7;
    let nonce = &ch[at..at + digest::NONCE_LEN];
    let ha1 = Ha1::compute("user500", "Streaming Server", b"pw");
    let qop = Qop {
        nc: "00000001",
        cnonce: "0a4f113b",
        qop: "auth",
    };
    let h = DigestCredentials {
        username: "user500".into(),
        realm: "Streaming Server".into(),
        nonce: nonce.into(),
        uri: URI.into(),
        response: digest::response(&ha1, "DESCRIBE", URI, nonce, Some(qop)),
        qop: Some("auth".into()),
        nc: Some("00000001".into()),
        cnonce: Some("0a4f113b".into()),
        ..Default::default()
    }
    .to_header();
    expect_status(r.rules.decide(&request("vip/a.mp4", Some(&h), &[])), 200);
    b.bench(|| {
        r.rules
            .decide(black_box(&request("vip/a.mp4", Some(&h), &[])))
    });
}

#[divan::bench]
fn signed_url_allowed(b: Bencher) {
    let r = rig("digest");
    let url = sign_url(&r.url_key, URI, NOW + 60, None).expect("sign");
    let (_, query) = split_query(url.strip_prefix("rtsp://127.0.0.1:8554").expect("prefix"));
    expect_status(r.rules.decide(&request("vip/a.mp4", None, &query)), 200);
    b.bench(|| {
        r.rules
            .decide(black_box(&request("vip/a.mp4", None, &query)))
    });
}
