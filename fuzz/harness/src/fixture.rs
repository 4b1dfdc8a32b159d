//! What the stateful targets serve, built once per process: the bundled
//! sample (`media/sample.mp4`: ffmpeg-hinted H.264 + AAC, 20 s) compiled
//! from its hint tracks, the same file with its hint tracks stripped and
//! packetized in memory, a corrupt file, and access rules loaded by
//! [`AccessRules::load`] from real `qtaccess`, `qtusers` and `qtgroups`
//! files (written to a temporary folder, removed once loaded).
//!
//! | catalog path | access |
//! |---|---|
//! | `sample.mp4`, `plain.mp4`, `corrupt.mp4` | open |
//! | `basic/sample.mp4` | Basic, `require valid-user`, AuthName "Basic Area" |
//! | `digest/sample.mp4` | Digest, `require user alice` |
//! | `staff/sample.mp4` | Digest, `<Limit READ> require group staff` (bob) |
//! | `broken/sample.mp4` | a broken access file: 403 |
//! | `private/sample.mp4` | client subnet 10.0.0.0/8 only: 403 from 127.0.0.1 |
//! | `qtusers` | the users file: 404 |
//!
//! Users (realm [`REALM`]): alice / wonder, bob / builder. Signed URLs are
//! optional, keyed by [`URL_KEY`]; Digest nonces are keyed by [`NONCE_KEY`].

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use cadence_engine::access::digest::Ha1;
use cadence_engine::access::{AccessRules, AuthConfig, ClientSubnetConfig, Secret, SignedUrlMode};
use cadence_engine::builtin::{AccessControl, AccessRouter, SharedRules};
use cadence_engine::catalog::MemoryCatalog;
use cadence_engine::pipeline::Pipeline;
use cadence_hinting::mp4::Movie;
use cadence_hinting::FileSchedule;

/// The bundled hinted sample.
pub const SAMPLE: &[u8] = include_bytes!("../../../media/sample.mp4");
/// Realm of the users file.
pub const REALM: &str = "Streaming Server";
/// The users and their passwords.
pub const USERS: &[(&str, &str)] = &[("alice", "wonder"), ("bob", "builder")];
/// Digest nonce key.
pub const NONCE_KEY: &[u8] = b"cadence-fuzz-nonce-key-0123456789";
/// Signed-URL key.
pub const URL_KEY: &[u8] = b"cadence-fuzz-url-key-0123456789ab";
/// Folders of the sample with an access file, and the catalog paths served.
pub const PATHS: &[&str] = &[
    "sample.mp4",
    "plain.mp4",
    "corrupt.mp4",
    "basic/sample.mp4",
    "digest/sample.mp4",
    "staff/sample.mp4",
    "broken/sample.mp4",
    "private/sample.mp4",
];

/// The shared fixture.
pub struct Fixture {
    /// The compiled sample (hint tracks).
    pub hinted: Arc<FileSchedule>,
    /// The catalog of [`PATHS`].
    pub catalog: Arc<MemoryCatalog>,
    /// The loaded access rules.
    pub rules: SharedRules,
    /// The Digest nonce key the rules use.
    pub nonce_key: Secret,
    /// The signed-URL key.
    pub url_key: Secret,
}

impl Fixture {
    /// A pipeline as the server builds it for access control: the access
    /// router (404 for users files) and the access-control authenticator.
    pub fn pipeline(&self) -> Pipeline {
        let mut p = Pipeline::new();
        p.push(Box::new(AccessRouter::new(self.rules.clone())));
        p.set_authenticator(Box::new(AccessControl::new(self.rules.clone())));
        p
    }

    /// The HA1 of `user`, when it is one of [`USERS`].
    pub fn ha1(&self, user: &str) -> Option<Ha1> {
        USERS
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(u, p)| Ha1::compute(u, REALM, p.as_bytes()))
    }
}

/// The fixture, built on first use. Panics (at the first input, with the
/// reason) when the sample does not compile or the rules cannot be loaded:
/// the harness itself is broken then.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(build)
}

fn build() -> Fixture {
    let hinted = Arc::new(compile_anon(SAMPLE).expect("the bundled sample compiles"));
    let movie = Movie::parse(SAMPLE).expect("the bundled sample parses");
    let mut plain = Vec::new();
    cadence_hinting::writer::write_stripped(SAMPLE, &movie, &mut plain)
        .expect("the bundled sample can be stripped");
    let mut catalog = MemoryCatalog::new();
    catalog
        .insert_bytes("plain.mp4", &plain)
        .expect("anonymous map");
    catalog
        .insert_bytes("corrupt.mp4", &SAMPLE[..4096])
        .expect("anonymous map");
    for p in PATHS {
        if !matches!(*p, "plain.mp4" | "corrupt.mp4") {
            catalog.insert(p, hinted.clone());
        }
    }
    let nonce_key = Secret::from_bytes(NONCE_KEY).expect("nonce key");
    let url_key = Secret::from_bytes(URL_KEY).expect("url key");
    let rules = load_rules(&nonce_key).expect("the fixture's access rules load");
    Fixture {
        hinted,
        catalog: Arc::new(catalog),
        rules: Arc::new(ArcSwap::from_pointee(rules)),
        nonce_key,
        url_key,
    }
}

/// Compiles `bytes` (a hinted file) from an anonymous map.
pub fn compile_anon(bytes: &[u8]) -> std::io::Result<FileSchedule> {
    let map = anon_map(bytes)?;
    cadence_hinting::compile(map).map_err(std::io::Error::other)
}

/// `bytes` in a read-only anonymous map (at least one byte long), as the
/// schedules' [`cadence_hinting::SegmentSource::File`] segments need.
pub fn anon_map(bytes: &[u8]) -> std::io::Result<Arc<memmap2::Mmap>> {
    let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1))?;
    map[..bytes.len()].copy_from_slice(bytes);
    Ok(Arc::new(map.make_read_only()?))
}

fn load_rules(nonce_key: &Secret) -> std::io::Result<AccessRules> {
    let dir = std::env::temp_dir().join(format!("cadence-fuzz-fixture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = write_rules(&dir).and_then(|cfg| {
        AccessRules::load(&dir.join("media"), &cfg, nonce_key).map_err(std::io::Error::other)
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn write_rules(dir: &Path) -> std::io::Result<AuthConfig> {
    let media = dir.join("media");
    let conf = dir.join("conf");
    let files: &[(&Path, &str, String)] = &[
        (
            &media,
            "basic/qtaccess",
            "AuthName \"Basic Area\"\nAuthScheme basic\nrequire valid-user\n".into(),
        ),
        (
            &media,
            "digest/qtaccess",
            "AuthScheme digest\nrequire user alice\n".into(),
        ),
        (
            &media,
            "staff/qtaccess",
            "AuthScheme digest\n<Limit READ>\nrequire group staff\n</Limit>\n".into(),
        ),
        (
            &media,
            "broken/qtaccess",
            "AuthScheme rot13\nrequire valid-user\n".into(),
        ),
        (&media, "qtusers", users_text()),
        (&media, "qtgroups", "staff: bob\n".into()),
        (
            &conf,
            "url-secret",
            String::from_utf8_lossy(URL_KEY).into_owned(),
        ),
    ];
    for (base, rel, text) in files {
        let p = base.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, text)?;
    }
    for d in ["private", "sample-dir"] {
        std::fs::create_dir_all(media.join(d))?;
    }
    Ok(AuthConfig {
        users_file: media.join("qtusers"),
        groups_file: media.join("qtgroups"),
        signed_urls: SignedUrlMode::Optional,
        url_secret_file: Some(conf.join("url-secret")),
        client_subnets: vec![ClientSubnetConfig {
            path_prefix: "private".into(),
            allow: vec!["10.0.0.0/8".into()],
            deny: vec![],
        }],
        ..AuthConfig::default()
    })
}

/// The `qtusers` text of [`USERS`].
pub fn users_text() -> String {
    let mut s = format!("realm {REALM}\n");
    for (u, p) in USERS {
        s.push_str(&format!(
            "{u}:$6$fuzz$x:{}\n",
            Ha1::compute(u, REALM, p.as_bytes()).to_hex()
        ));
    }
    s
}
