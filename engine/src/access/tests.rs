//! Tests of the loaded rules and the decision, on real folders.

use std::net::IpAddr;
use std::path::PathBuf;

use super::authorization::{BasicCredentials, DigestCredentials};
use super::digest::{self, Ha1, Qop};
use super::signed_url::{sign_url, split_query};
use super::*;

const REALM: &str = "Streaming Server";

fn users_line(user: &str, password: &str) -> String {
    format!(
        "{user}:$6$x$y:{}\n",
        Ha1::compute(user, REALM, password.as_bytes()).to_hex()
    )
}

/// A media folder with a users file (alice/wonder, bob/builder) and groups
/// file (staff: bob) outside it.
struct Fixture {
    dir: PathBuf,
    media: PathBuf,
    cfg: AuthConfig,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = test_dir(name);
        let media = dir.join("media");
        let conf = dir.join("conf");
        for d in [&media, &conf] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(
            conf.join("qtusers"),
            format!(
                "realm {REALM}\n{}{}",
                users_line("alice", "wonder"),
                users_line("bob", "builder")
            ),
        )
        .expect("users");
        std::fs::write(conf.join("qtgroups"), "staff: bob\n").expect("groups");
        let cfg = AuthConfig {
            users_file: conf.join("qtusers"),
            groups_file: conf.join("qtgroups"),
            ..AuthConfig::default()
        };
        Fixture { dir, media, cfg }
    }

    fn file(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.media.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text).expect("write");
        p
    }

    fn rules(&self) -> AccessRules {
        AccessRules::load(&self.media, &self.cfg, &nonce_key()).expect("load")
    }
}

fn nonce_key() -> Secret {
    Secret::from_bytes(b"fixed nonce key for the tests").expect("key")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// One request; `uri` is `rtsp://127.0.0.1:8554/<path>` unless given.
struct Req<'a> {
    path: &'a str,
    method: &'a str,
    uri: String,
    authorization: Option<String>,
    peer: IpAddr,
    query: Vec<(String, String)>,
    now: u64,
}

impl<'a> Req<'a> {
    fn new(path: &'a str) -> Req<'a> {
        Req {
            path,
            method: "DESCRIBE",
            uri: format!("rtsp://127.0.0.1:8554/{path}"),
            authorization: None,
            peer: ip("127.0.0.1"),
            query: Vec::new(),
            now: 1_000_000,
        }
    }

    fn basic(mut self, user: &str, password: &str) -> Self {
        self.authorization = Some(BasicCredentials::new(user, password.as_bytes()).to_header());
        self
    }

    fn decide(&self, rules: &AccessRules) -> Decision {
        rules.decide(&AccessRequest {
            path: self.path,
            method: self.method,
            uri: &self.uri,
            authorization: self.authorization.as_deref(),
            peer: self.peer,
            query: &self.query,
            now_unix_s: self.now,
        })
    }
}

/// The value of `name` in a challenge (`name="v"` or `name=v`).
fn param(challenge: &str, name: &str) -> Option<String> {
    let at = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"')?].to_string(),
        None => rest.split([',', ' ']).next()?.to_string(),
    })
}

/// What a client answers to a Digest challenge.
fn answer(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    qop: bool,
) -> String {
    let realm = param(challenge, "realm").expect("realm");
    let nonce = param(challenge, "nonce").expect("nonce");
    let ha1 = Ha1::compute(user, &realm, password.as_bytes());
    let q = qop.then_some(Qop {
        nc: "00000001",
        cnonce: "0a4f113b",
        qop: "auth",
    });
    DigestCredentials {
        username: user.into(),
        realm,
        response: digest::response(&ha1, method, uri, &nonce, q),
        nonce,
        uri: uri.into(),
        qop: qop.then(|| "auth".into()),
        nc: qop.then(|| "00000001".into()),
        cnonce: qop.then(|| "0a4f113b".into()),
        ..Default::default()
    }
    .to_header()
}

fn challenge_of(d: &Decision) -> &str {
    match d {
        Decision::Challenge {
            www_authenticate, ..
        } => &www_authenticate[0],
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn user_of(d: &Decision) -> Option<&str> {
    match d {
        Decision::Allow(g) => g.user.as_deref(),
        other => panic!("expected allow, got {other:?}"),
    }
}

#[test]
fn no_access_file_is_open_unless_the_switch_is_on() {
    let mut fx = Fixture::new("open");
    fx.file("a.mp4", "");
    let d = Req::new("a.mp4").decide(&fx.rules());
    assert_eq!(
        d,
        Decision::Allow(Grant {
            user: None,
            realm: None,
            via: GrantedBy::NoAccessFile
        })
    );
    fx.cfg.require_auth_by_default = true;
    let rules = fx.rules();
    let d = Req::new("a.mp4").decide(&rules);
    assert_eq!(d.status(), 401);
    assert_eq!(d.reason(), Some(&Refusal::NoCredentials));
    assert!(challenge_of(&d).starts_with("Digest realm=\"Streaming Server\", nonce=\""));
    let mut r = Req::new("a.mp4");
    r.authorization = Some(answer(
        challenge_of(&d),
        "alice",
        "wonder",
        "DESCRIBE",
        &r.uri,
        true,
    ));
    assert_eq!(user_of(&r.decide(&rules)), Some("alice"));
}

#[test]
fn access_file_in_a_subfolder_protects_only_that_subfolder() {
    let fx = Fixture::new("subfolder");
    fx.file("open.mp4", "");
    fx.file("other/b.mp4", "");
    fx.file(
        "sub/qtaccess",
        "AuthScheme basic\nAuthName \"Members\"\nrequire valid-user\n",
    );
    fx.file("sub/a.mp4", "");
    fx.file("sub/deeper/c.mp4", "");
    // A nearer access file replaces the outer one.
    fx.file("sub/public/qtaccess", "require any-user\n");
    let rules = fx.rules();
    assert!(rules.problems().is_empty(), "{:?}", rules.problems());
    assert_eq!(Req::new("open.mp4").decide(&rules).status(), 200);
    assert_eq!(Req::new("other/b.mp4").decide(&rules).status(), 200);
    for path in ["sub/a.mp4", "sub/deeper/c.mp4"] {
        let d = Req::new(path).decide(&rules);
        assert_eq!(challenge_of(&d), "Basic realm=\"Members\"", "{path}");
        let ok = Req::new(path).basic("alice", "wonder").decide(&rules);
        assert_eq!(user_of(&ok), Some("alice"));
        if let Decision::Allow(g) = &ok {
            assert_eq!(g.realm.as_deref(), Some("Members"));
            assert_eq!(g.via, GrantedBy::Credentials);
        }
    }
    let d = Req::new("sub/public/x.mp4").decide(&rules);
    assert!(matches!(
        d,
        Decision::Allow(Grant {
            via: GrantedBy::AnyUser,
            ..
        })
    ));
    assert_eq!(
        rules.access_file_for("sub/deeper/c.mp4"),
        Some(fx.media.join("sub/qtaccess").as_path())
    );
    assert_eq!(rules.access_file_for("open.mp4"), None);
}

#[test]
fn basic_refusals() {
    let fx = Fixture::new("basic");
    fx.file("qtaccess", "AuthScheme basic\nrequire user alice\n");
    let rules = fx.rules();
    let reason = |r: Req| r.decide(&rules).reason().cloned();
    assert_eq!(
        reason(Req::new("a.mp4").basic("alice", "wrong")),
        Some(Refusal::WrongPassword {
            user: "alice".into()
        })
    );
    assert_eq!(
        reason(Req::new("a.mp4").basic("mallory", "x")),
        Some(Refusal::UnknownUser {
            user: "mallory".into()
        })
    );
    // Authenticated but not listed: 403, not 401.
    let d = Req::new("a.mp4").basic("bob", "builder").decide(&rules);
    assert_eq!(d.status(), 403);
    assert_eq!(
        d.reason(),
        Some(&Refusal::NotPermitted {
            user: "bob".into(),
            file: Some(fx.media.join("qtaccess"))
        })
    );
    // Digest credentials to a Basic file.
    let mut r = Req::new("a.mp4");
    r.authorization = Some(
        r#"Digest username="alice", realm="r", nonce="n", uri="/a.mp4", response="00""#.into(),
    );
    assert_eq!(
        reason(r),
        Some(Refusal::WrongScheme {
            required: AuthScheme::Basic
        })
    );
    let mut r = Req::new("a.mp4");
    r.authorization = Some("Basic %%%".into());
    let d = r.decide(&rules);
    assert_eq!(d.status(), 401);
    assert!(matches!(d.reason(), Some(Refusal::BadAuthorization(_))));
    // Without AuthName, Basic shows the users file's realm.
    assert_eq!(
        challenge_of(&Req::new("a.mp4").decide(&rules)),
        "Basic realm=\"Streaming Server\""
    );
}

#[test]
fn require_group() {
    let fx = Fixture::new("group");
    fx.file(
        "staff/qtaccess",
        "AuthScheme basic\nrequire group staff admins\n",
    );
    let rules = fx.rules();
    assert_eq!(
        user_of(
            &Req::new("staff/a.mp4")
                .basic("bob", "builder")
                .decide(&rules)
        ),
        Some("bob")
    );
    let d = Req::new("staff/a.mp4")
        .basic("alice", "wonder")
        .decide(&rules);
    assert_eq!(d.status(), 403);
    // A group file that does not load makes group rules refuse, with why.
    let fx2 = Fixture::new("group-missing");
    fx2.file(
        "qtaccess",
        "AuthScheme basic\nAuthGroupFile nowhere\nrequire group staff\n",
    );
    let rules = fx2.rules();
    assert_eq!(rules.problems().len(), 1, "{:?}", rules.problems());
    let d = Req::new("a.mp4").basic("bob", "builder").decide(&rules);
    assert!(
        matches!(d.reason(), Some(Refusal::UnusableGroupsFile { file, .. }) if file.ends_with("nowhere")),
        "{d:?}"
    );
}

#[test]
fn digest_with_and_without_qop_and_stale_nonces() {
    let fx = Fixture::new("digest");
    fx.file("qtaccess", "require user alice\n");
    let rules = fx.rules();
    let first = Req::new("a.mp4").decide(&rules);
    let ch = challenge_of(&first).to_string();
    assert!(ch.contains("qop=\"auth\"") && !ch.contains("stale"), "{ch}");
    for qop in [true, false] {
        // ffmpeg answers with qop and the full URL; GStreamer and live555
        // without qop; path-only uris are accepted too.
        for uri in [
            "rtsp://127.0.0.1:8554/a.mp4",
            "rtsp://other-name/a.mp4",
            "/a.mp4",
        ] {
            let mut r = Req::new("a.mp4");
            r.authorization = Some(answer(&ch, "alice", "wonder", "DESCRIBE", uri, qop));
            assert_eq!(
                user_of(&r.decide(&rules)),
                Some("alice"),
                "qop {qop} uri {uri}"
            );
        }
    }
    // SETUP of a track, the uri naming the track URL.
    let mut r = Req::new("a.mp4");
    r.method = "SETUP";
    r.uri = "rtsp://127.0.0.1:8554/a.mp4/trackID=1".into();
    r.authorization = Some(answer(&ch, "alice", "wonder", "SETUP", &r.uri, true));
    assert_eq!(user_of(&r.decide(&rules)), Some("alice"));
    // live555 (openRTSP 2026.06.24, VLC) signs SETUP and PLAY with its base
    // URL, the DESCRIBE's Content-Base, in this exact form (no qop):
    // `Digest username="alice", realm="…", nonce="…",
    // uri="rtsp://127.0.0.1:8554/a.mp4/", response="…"`.
    for (method, uri) in [
        ("SETUP", "rtsp://127.0.0.1:8554/a.mp4/trackID=1"),
        ("PLAY", "rtsp://127.0.0.1:8554/a.mp4/"),
    ] {
        let base = "rtsp://127.0.0.1:8554/a.mp4/";
        let mut r = Req::new("a.mp4");
        r.method = method;
        r.uri = uri.into();
        let auth = format!(
            "Digest username=\"alice\", realm=\"{}\", nonce=\"{}\", uri=\"{base}\", response=\"{}\"",
            param(&ch, "realm").expect("realm"),
            param(&ch, "nonce").expect("nonce"),
            digest::response(
                &Ha1::compute("alice", &param(&ch, "realm").expect("realm"), b"wonder"),
                method,
                base,
                &param(&ch, "nonce").expect("nonce"),
                None
            )
        );
        r.authorization = Some(auth);
        assert_eq!(user_of(&r.decide(&rules)), Some("alice"), "{method}");
    }
    // The method is part of the digest.
    r.method = "PLAY";
    assert_eq!(
        r.decide(&rules).reason(),
        Some(&Refusal::WrongResponse {
            user: "alice".into()
        })
    );
    // A response computed for another file.
    let mut r = Req::new("a.mp4");
    r.authorization = Some(answer(&ch, "alice", "wonder", "DESCRIBE", "/b.mp4", true));
    assert_eq!(
        r.decide(&rules).reason(),
        Some(&Refusal::UriMismatch {
            user: "alice".into()
        })
    );
    // Wrong password: 401, no stale.
    let mut r = Req::new("a.mp4");
    r.authorization = Some(answer(&ch, "alice", "nope", "DESCRIBE", &r.uri, true));
    let d = r.decide(&rules);
    assert_eq!(
        d.reason(),
        Some(&Refusal::WrongResponse {
            user: "alice".into()
        })
    );
    assert!(!challenge_of(&d).contains("stale"));
    // Past the lifetime: right response, stale nonce → stale=true, and the
    // new challenge's nonce works.
    let mut r = Req::new("a.mp4");
    r.now += fx.cfg.nonce_lifetime + 1;
    r.authorization = Some(answer(&ch, "alice", "wonder", "DESCRIBE", &r.uri, true));
    let d = r.decide(&rules);
    assert_eq!(
        d.reason(),
        Some(&Refusal::StaleNonce {
            user: "alice".into()
        })
    );
    let ch2 = challenge_of(&d).to_string();
    assert!(ch2.ends_with(", stale=true"), "{ch2}");
    assert_ne!(param(&ch2, "nonce"), param(&ch, "nonce"));
    r.authorization = Some(answer(&ch2, "alice", "wonder", "DESCRIBE", &r.uri, true));
    assert_eq!(user_of(&r.decide(&rules)), Some("alice"));
    // Stale with a wrong password is not stale.
    let mut r = Req::new("a.mp4");
    r.now += fx.cfg.nonce_lifetime + 1;
    r.authorization = Some(answer(&ch, "alice", "nope", "DESCRIBE", &r.uri, true));
    assert!(!challenge_of(&r.decide(&rules)).contains("stale"));
    // A nonce from another key (another server, or before a restart).
    let other = AccessRules::load(
        &fx.media,
        &fx.cfg,
        &Secret::from_bytes(b"some other nonce key!!").expect("key"),
    )
    .expect("load");
    let mut r = Req::new("a.mp4");
    r.authorization = Some(answer(&ch, "alice", "wonder", "DESCRIBE", &r.uri, true));
    let d = r.decide(&other);
    assert_eq!(
        d.reason(),
        Some(&Refusal::BadNonce {
            user: "alice".into()
        })
    );
    assert!(!challenge_of(&d).contains("stale"));
    // Another realm, another algorithm, Basic to a Digest file.
    let forged_realm = ch.replace("Streaming Server", "Elsewhere");
    let mut r = Req::new("a.mp4");
    r.authorization = Some(answer(
        &forged_realm,
        "alice",
        "wonder",
        "DESCRIBE",
        &r.uri,
        true,
    ));
    assert_eq!(
        r.decide(&rules).reason(),
        Some(&Refusal::WrongRealm {
            user: "alice".into()
        })
    );
    let mut r = Req::new("a.mp4");
    r.authorization =
        Some(answer(&ch, "alice", "wonder", "DESCRIBE", &r.uri, false) + ", algorithm=SHA-256");
    assert_eq!(
        r.decide(&rules).reason(),
        Some(&Refusal::UnsupportedAlgorithm {
            user: "alice".into()
        })
    );
    let r = Req::new("a.mp4").basic("alice", "wonder");
    assert_eq!(
        r.decide(&rules).reason(),
        Some(&Refusal::WrongScheme {
            required: AuthScheme::Digest
        })
    );
    // Authenticated, not listed: 403.
    let mut r = Req::new("a.mp4");
    r.authorization = Some(answer(&ch, "bob", "builder", "DESCRIBE", &r.uri, true));
    assert_eq!(r.decide(&rules).status(), 403);
}

#[test]
fn broken_files_fail_closed_and_are_reported_with_their_line() {
    let fx = Fixture::new("broken");
    fx.file("ok.mp4", "");
    fx.file("bad/qtaccess", "AuthName \"x\"\nRequire valid-user\n");
    fx.file(
        "nousers/qtaccess",
        "AuthUserFile ../../missing\nrequire valid-user\n",
    );
    fx.file("none/qtaccess", "AuthName \"nobody\"\n");
    let rules = fx.rules();
    let shown: Vec<String> = rules.problems().iter().map(|p| p.to_string()).collect();
    let bad_file = fx.media.join("bad/qtaccess");
    assert!(
        shown.contains(&format!(
            "{}:2: line 2: unknown directive \"Require\" (keywords are case-sensitive)",
            bad_file.display()
        )),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("missing") && s.contains("users file unusable")),
        "{shown:?}"
    );
    // Even good credentials cannot open a broken folder.
    let d = Req::new("bad/a.mp4")
        .basic("alice", "wonder")
        .decide(&rules);
    assert_eq!(d.status(), 403);
    let reason = d.reason().expect("reason").to_string();
    assert!(
        reason.contains("bad/qtaccess") && reason.contains("line 2"),
        "{reason}"
    );
    let d = Req::new("nousers/a.mp4").decide(&rules);
    assert!(
        matches!(d.reason(), Some(Refusal::UnusableUsersFile { .. })),
        "{d:?}"
    );
    let d = Req::new("none/a.mp4").decide(&rules);
    assert!(
        matches!(d.reason(), Some(Refusal::NoRequirement { .. })),
        "{d:?}"
    );
    assert_eq!(Req::new("ok.mp4").decide(&rules).status(), 200);
}

#[test]
fn too_deep_folders_are_closed_and_link_loops_end() {
    let fx = Fixture::new("deep");
    let deep: String = (0..=rules::MAX_DEPTH).map(|i| format!("d{i}/")).collect();
    fx.file(&format!("{deep}a.mp4"), "");
    fx.file("top.mp4", "");
    // A link back to the root: walked once, not forever.
    std::os::unix::fs::symlink(&fx.media, fx.media.join("loop")).expect("symlink");
    fx.file("sub/qtaccess", "require valid-user\n");
    std::os::unix::fs::symlink(fx.media.join("sub"), fx.media.join("alias")).expect("symlink");
    let rules = fx.rules();
    assert_eq!(rules.problems().len(), 1, "{:?}", rules.problems());
    assert!(rules.problems()[0].message.contains("deeper than"));
    let d = Req::new(&format!("{deep}a.mp4")).decide(&rules);
    assert!(
        matches!(d.reason(), Some(Refusal::BrokenAccessFile { .. })),
        "{d:?}"
    );
    assert_eq!(Req::new("top.mp4").decide(&rules).status(), 200);
    // The folder reached through a link keeps its access file.
    assert_eq!(Req::new("alias/x.mp4").decide(&rules).status(), 401);
    assert_eq!(Req::new("sub/x.mp4").decide(&rules).status(), 401);
    // A missing media folder is a load error.
    assert!(matches!(
        AccessRules::load(&fx.dir.join("nope"), &fx.cfg, &nonce_key()),
        Err(LoadError::MediaRoot { .. })
    ));
}

#[test]
fn protected_files_are_not_found_whatever_their_name() {
    let mut fx = Fixture::new("protected");
    fx.file("sub/qtaccess", "AuthUserFile users.db\nrequire any-user\n");
    fx.file("sub/users.db", "realm R\n");
    // The configured users file, hard-linked into the media folder as a .mp4.
    std::fs::hard_link(&fx.cfg.users_file, fx.media.join("innocent.mp4")).expect("link");
    // The URL key, through a symbolic link.
    let key = fx.dir.join("conf/url-key");
    std::fs::write(&key, "0123456789abcdef0123").expect("key");
    std::os::unix::fs::symlink(&key, fx.media.join("key.mov")).expect("symlink");
    fx.cfg.signed_urls = SignedUrlMode::Optional;
    fx.cfg.url_secret_file = Some(key);
    fx.file("film.mp4", "");
    let rules = fx.rules();
    for p in [
        "sub/qtaccess",
        "QTACCESS",
        "x/qtusers",
        "qtgroups",
        "innocent.mp4",
        "key.mov",
        "sub/users.db",
    ] {
        assert!(rules.is_protected_file(p), "{p}");
        let d = Req::new(p).decide(&rules);
        assert_eq!(
            d,
            Decision::NotFound {
                reason: Refusal::ProtectedFile
            },
            "{p}"
        );
    }
    assert!(!rules.is_protected_file("film.mp4"));
    assert!(!rules.is_protected_file("sub/qtaccess.mp4"));
    for p in ["/film.mp4", "a//b.mp4", "../film.mp4", "a/./b.mp4"] {
        assert_eq!(
            Req::new(p).decide(&rules).reason(),
            Some(&Refusal::BadPath),
            "{p}"
        );
    }
    assert!(!format!("{rules:?}").contains("0123456789abcdef"));
}

#[test]
fn subnet_rules_come_before_credentials() {
    let mut fx = Fixture::new("subnets");
    fx.file("private/qtaccess", "AuthScheme basic\nrequire valid-user\n");
    fx.cfg.client_subnets = vec![ClientSubnetConfig {
        path_prefix: "private".into(),
        allow: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        deny: vec!["10.66.0.0/16".into()],
    }];
    let rules = fx.rules();
    let at = |peer: &str| {
        let mut r = Req::new("private/a.mp4").basic("alice", "wonder");
        r.peer = ip(peer);
        r.decide(&rules)
    };
    assert_eq!(user_of(&at("10.1.2.3")), Some("alice"));
    assert_eq!(user_of(&at("::ffff:10.1.2.3")), Some("alice"));
    assert_eq!(user_of(&at("2001:db8::7")), Some("alice"));
    // Denied subnet: 403 even with good credentials, v4-mapped too.
    for peer in ["10.66.0.9", "::ffff:10.66.0.9", "192.0.2.1", "::1"] {
        let d = at(peer);
        assert_eq!(d.status(), 403, "{peer}");
        assert!(
            matches!(d.reason(), Some(Refusal::Subnet(_))),
            "{peer}: {d:?}"
        );
    }
    let reason = at("::ffff:10.66.0.9").reason().expect("reason").to_string();
    assert_eq!(
        reason,
        "client 10.66.0.9 denied by 10.66.0.0/16 in the subnet rule for \"private\""
    );
    // Other paths are not covered.
    let mut r = Req::new("public.mp4");
    r.peer = ip("192.0.2.1");
    assert_eq!(r.decide(&rules).status(), 200);
}

fn signed_query(
    rules_key: &Secret,
    path: &str,
    exp: u64,
    subnet: Option<&str>,
) -> Vec<(String, String)> {
    let url = sign_url(
        rules_key,
        &format!("rtsp://127.0.0.1:8554/{path}"),
        exp,
        subnet.map(|s| s.parse().expect("net")),
    )
    .expect("sign");
    let after = url.strip_prefix("rtsp://127.0.0.1:8554").expect("prefix");
    split_query(after).1
}

#[test]
fn signed_urls_optional_and_required() {
    let mut fx = Fixture::new("signed");
    fx.file("vip/qtaccess", "require user alice\n");
    let key_file = fx.dir.join("conf/url-key");
    std::fs::write(&key_file, "a signing key of enough length\n").expect("key");
    let key = Secret::read_file(&key_file).expect("key");
    fx.cfg.signed_urls = SignedUrlMode::Optional;
    fx.cfg.url_secret_file = Some(key_file);
    let rules = fx.rules();
    let now = 1_000_000;
    let with = |q: Vec<(String, String)>, peer: &str| {
        let mut r = Req::new("vip/a.mp4");
        r.query = q;
        r.peer = ip(peer);
        r.decide(&rules)
    };
    // A valid signature replaces the access-file rules.
    let d = with(signed_query(&key, "vip/a.mp4", now + 60, None), "192.0.2.1");
    assert_eq!(
        d,
        Decision::Allow(Grant {
            user: None,
            realm: None,
            via: GrantedBy::SignedUrl {
                expires_at: now + 60
            }
        })
    );
    // Expired, forged, wrong subnet: 403, each named.
    let d = with(signed_query(&key, "vip/a.mp4", now - 1, None), "192.0.2.1");
    assert_eq!(d.status(), 403);
    assert!(d
        .reason()
        .expect("r")
        .to_string()
        .starts_with("expired signed URL"));
    let d = with(
        signed_query(&key, "vip/other.mp4", now + 60, None),
        "192.0.2.1",
    );
    assert!(d
        .reason()
        .expect("r")
        .to_string()
        .starts_with("forged signed URL"));
    let bound = signed_query(&key, "vip/a.mp4", now + 60, Some("10.0.0.0/8"));
    assert_eq!(with(bound.clone(), "::ffff:10.0.0.5").status(), 200);
    let d = with(bound, "192.0.2.1");
    assert!(d
        .reason()
        .expect("r")
        .to_string()
        .starts_with("signed URL for client subnet 10.0.0.0/8"));
    // No signature: the access file applies.
    assert_eq!(with(Vec::new(), "192.0.2.1").status(), 401);
    // Required: no signature is 403 even where no access file applies.
    fx.cfg.signed_urls = SignedUrlMode::Required;
    let rules = fx.rules();
    let mut r = Req::new("open.mp4");
    let d = r.decide(&rules);
    assert_eq!(
        d.reason(),
        Some(&Refusal::SignedUrl(signed_url::SignedUrlError::Missing))
    );
    r.query = signed_query(&key, "open.mp4", now, None);
    assert_eq!(r.decide(&rules).status(), 200);
    // A missing key file is a load error.
    fx.cfg.url_secret_file = Some(fx.dir.join("conf/none"));
    assert!(matches!(
        AccessRules::load(&fx.media, &fx.cfg, &nonce_key()),
        Err(LoadError::Secret {
            key: "url_secret_file",
            ..
        })
    ));
}

#[test]
fn relative_user_files_resolve_against_the_access_files_folder() {
    let fx = Fixture::new("relative");
    let conf = fx.media.join("club/conf");
    std::fs::create_dir_all(&conf).expect("mkdir");
    std::fs::write(
        conf.join("members"),
        format!(
            "realm Club\ncarol:x:{}\n",
            Ha1::compute("carol", "Club", b"c4rol").to_hex()
        ),
    )
    .expect("users");
    fx.file(
        "club/qtaccess",
        "AuthScheme basic\nAuthUserFile conf/members\nrequire valid-user\n",
    );
    let rules = fx.rules();
    assert!(rules.problems().is_empty(), "{:?}", rules.problems());
    assert_eq!(
        user_of(
            &Req::new("club/a.mp4")
                .basic("carol", "c4rol")
                .decide(&rules)
        ),
        Some("carol")
    );
    assert_eq!(
        Req::new("club/a.mp4")
            .basic("alice", "wonder")
            .decide(&rules)
            .status(),
        401
    );
    assert!(rules.is_protected_file("club/conf/members"));
}

#[test]
fn reasons_never_show_secrets() {
    let fx = Fixture::new("secrets");
    fx.file("d/qtaccess", "require valid-user\n");
    fx.file("b/qtaccess", "AuthScheme basic\nrequire user bob\n");
    let rules = fx.rules();
    let ha1 = Ha1::compute("alice", REALM, b"wonder").to_hex();
    let ch = challenge_of(&Req::new("d/a.mp4").decide(&rules)).to_string();
    let nonce = param(&ch, "nonce").expect("nonce");
    let mut reasons = Vec::new();
    let mut push = |d: Decision| {
        if let Some(r) = d.reason() {
            reasons.push(format!("{r} {r:?} {d:?}"));
        }
    };
    push(Req::new("b/a.mp4").basic("alice", "wonder").decide(&rules));
    push(Req::new("b/a.mp4").basic("bob", "wonder").decide(&rules));
    let mut r = Req::new("d/a.mp4");
    r.authorization = Some(answer(&ch, "alice", "wonder", "PLAY", &r.uri, true));
    push(r.decide(&rules));
    r.now += 10_000;
    r.authorization = Some(answer(&ch, "alice", "wonder", "DESCRIBE", &r.uri, true));
    push(r.decide(&rules));
    assert!(reasons.len() == 4, "{reasons:?}");
    for s in &reasons {
        for secret in ["wonder", ha1.as_str(), "fixed nonce key"] {
            assert!(!s.contains(secret), "{s} shows {secret}");
        }
        // Reasons name no nonce either (the Debug of a challenge may).
        assert!(
            !s.split(" Challenge").next().unwrap_or("").contains(&nonce),
            "{s}"
        );
    }
}

#[test]
fn a_nonce_key_file_is_shared_between_servers() {
    let mut fx = Fixture::new("nonce-file");
    let nk = fx.dir.join("conf/nonce");
    std::fs::write(&nk, "shared nonce key for a cluster").expect("key");
    fx.cfg.nonce_secret_file = Some(nk);
    fx.file("a/qtaccess", "require valid-user\n");
    fx.file("b/qtaccess", "require valid-user\n");
    let rules = fx.rules();
    // Two servers loading the same key file accept each other's nonces.
    let other =
        AccessRules::load(&fx.media, &fx.cfg, &Secret::random().expect("random")).expect("load");
    let ch = challenge_of(&Req::new("a/x.mp4").decide(&rules)).to_string();
    let mut r = Req::new("b/x.mp4");
    r.authorization = Some(answer(&ch, "bob", "builder", "DESCRIBE", &r.uri, false));
    assert_eq!(user_of(&r.decide(&other)), Some("bob"));
    // Without the file, each start draws its own key.
    fx.cfg.nonce_secret_file = None;
    let alone =
        AccessRules::load(&fx.media, &fx.cfg, &Secret::random().expect("random")).expect("load");
    assert_eq!(
        r.decide(&alone).reason(),
        Some(&Refusal::BadNonce { user: "bob".into() })
    );
}

#[test]
fn the_snapshot_can_be_shared_across_shards() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<AccessRules>();
    shareable::<std::sync::Arc<AccessRules>>();
}
