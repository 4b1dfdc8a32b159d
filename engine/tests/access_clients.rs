//! Real RTSP clients (ffmpeg, GStreamer) against `AccessRules::decide`.
//!
//! A minimal RTSP responder on loopback answers each request with what
//! `decide` says: 401 with its challenge, 403, or (when allowed) an SDP for
//! DESCRIBE and 461 for SETUP, which ends the client's attempt. The test
//! asserts that each client authenticates (Basic and Digest) on DESCRIBE and
//! on SETUP of a track URL, and records the SETUP URLs the clients derive
//! from a signed DESCRIBE URL.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cadence_engine::access::digest::Ha1;
use cadence_engine::access::signed_url::{sign_url, split_query};
use cadence_engine::access::{
    AccessRequest, AccessRules, AuthConfig, Decision, GrantedBy, Secret, SignedUrlMode,
};
use cadence_engine::rtsp::url::parse_target;

/// One request as the responder saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    status: u16,
    user: Option<String>,
    authorization: Option<String>,
    /// The catalog path the request named.
    path: String,
    /// Whether a signed URL granted it.
    signed: bool,
}

/// How the responder's DESCRIBE answer lets clients build SETUP URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    /// `Content-Base: <request URL>/` and `a=control:trackID=1`.
    RelativeToRequestUrl,
    /// `Content-Base: <URL without query>/` and an absolute
    /// `a=control:<URL without query>/trackID=1?<query>`.
    AbsoluteWithQuery,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn serve(rules: Arc<AccessRules>, log: Arc<Mutex<Vec<Seen>>>, control: Control) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let rules = rules.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = handle(conn, &rules, &log, control);
            });
        }
    });
    port
}

fn handle(
    conn: TcpStream,
    rules: &AccessRules,
    log: &Mutex<Vec<Seen>>,
    control: Control,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    let peer = conn.peer_addr()?.ip();
    let mut out = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let uri = parts.next().unwrap_or("").to_string();
        let mut cseq = String::from("0");
        let mut authorization = None;
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim().to_string();
                match k.to_ascii_lowercase().as_str() {
                    "cseq" => cseq = v,
                    "authorization" => authorization = Some(v),
                    "content-length" => length = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length];
        std::io::Read::read_exact(&mut r, &mut body)?;
        if method == "OPTIONS" {
            write!(out, "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: DESCRIBE, SETUP, PLAY, TEARDOWN, OPTIONS\r\n\r\n")?;
            continue;
        }
        let after_host = uri
            .strip_prefix("rtsp://")
            .and_then(|u| u.find('/').map(|i| &u[i..]))
            .unwrap_or("/");
        let (path, query) = split_query(after_host);
        let target = parse_target(&path).expect("target");
        let decision = rules.decide(&AccessRequest {
            path: &target.path,
            method: &method,
            uri: &uri,
            authorization: authorization.as_deref(),
            peer,
            query: &query,
            now_unix_s: now(),
        });
        let (user, signed) = match &decision {
            Decision::Allow(g) => (g.user.clone(), matches!(g.via, GrantedBy::SignedUrl { .. })),
            _ => (None, false),
        };
        log.lock().expect("log").push(Seen {
            method: method.clone(),
            uri: uri.clone(),
            status: decision.status(),
            user,
            authorization: authorization.clone(),
            path: target.path.clone(),
            signed,
        });
        match decision {
            Decision::Challenge {
                www_authenticate, ..
            } => {
                write!(out, "RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n")?;
                for c in www_authenticate {
                    write!(out, "WWW-Authenticate: {c}\r\n")?;
                }
                write!(out, "\r\n")?;
            }
            Decision::Forbidden { .. } => {
                write!(out, "RTSP/1.0 403 Forbidden\r\nCSeq: {cseq}\r\n\r\n")?
            }
            Decision::NotFound { .. } => {
                write!(out, "RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n")?
            }
            Decision::Allow(_) if method == "DESCRIBE" => {
                let (no_query, q) = match uri.split_once('?') {
                    Some((u, q)) => (u, Some(q)),
                    None => (uri.as_str(), None),
                };
                let (base, track) = match (control, q) {
                    (Control::AbsoluteWithQuery, Some(q)) => {
                        (format!("{no_query}/"), format!("{no_query}/trackID=1?{q}"))
                    }
                    _ => (format!("{uri}/"), "trackID=1".to_string()),
                };
                let sdp = format!(
                    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=t\r\nt=0 0\r\na=control:*\r\n\
                     m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:{track}\r\n"
                );
                write!(
                    out,
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: {base}\r\n\
                     Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                    sdp.len()
                )?;
            }
            Decision::Allow(_) => write!(
                out,
                "RTSP/1.0 461 Unsupported Transport\r\nCSeq: {cseq}\r\n\r\n"
            )?,
        }
    }
}

struct Setup {
    dir: PathBuf,
    rules: Arc<AccessRules>,
    url_key: Secret,
}

fn setup(name: &str, scheme: &str, signed: bool) -> Setup {
    let dir = std::env::temp_dir().join(format!(
        "cadence-access-clients-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let media = dir.join("media");
    std::fs::create_dir_all(media.join("vip")).expect("mkdir");
    std::fs::write(
        media.join("vip/qtaccess"),
        format!("AuthScheme {scheme}\nrequire user alice\n"),
    )
    .expect("qtaccess");
    let users = dir.join("qtusers");
    std::fs::write(
        &users,
        format!(
            "realm Streaming Server\nalice:x:{}\n",
            Ha1::compute("alice", "Streaming Server", b"wonder").to_hex()
        ),
    )
    .expect("users");
    let key_file = dir.join("url-key");
    std::fs::write(&key_file, "a url signing key for tests\n").expect("key");
    let cfg = AuthConfig {
        users_file: users,
        groups_file: dir.join("qtgroups"),
        signed_urls: if signed {
            SignedUrlMode::Optional
        } else {
            SignedUrlMode::Off
        },
        url_secret_file: Some(key_file.clone()),
        ..AuthConfig::default()
    };
    let rules = AccessRules::load(&media, &cfg, &Secret::random().expect("random")).expect("load");
    assert!(rules.problems().is_empty(), "{:?}", rules.problems());
    Setup {
        dir,
        rules: Arc::new(rules),
        url_key: Secret::read_file(&key_file).expect("key"),
    }
}

/// Runs a client command until it exits (at most 20 s).
fn run(cmd: &mut Command) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} is needed for this test: {e}"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn ffmpeg(url: &str) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args([
        "-nostdin",
        "-loglevel",
        "error",
        "-rtsp_transport",
        "tcp",
        "-i",
        url,
        "-t",
        "1",
        "-f",
        "null",
        "-",
    ]);
    c
}

fn gstreamer(url: &str, user: Option<&str>, password: Option<&str>) -> Command {
    let mut c = Command::new("gst-launch-1.0");
    c.arg("-q")
        .arg("rtspsrc")
        .arg(format!("location={url}"))
        .arg("protocols=tcp")
        .arg("retry=1");
    if let (Some(u), Some(p)) = (user, password) {
        c.arg(format!("user-id={u}")).arg(format!("user-pw={p}"));
    }
    c.args(["!", "fakesink"]);
    c
}

fn allowed(log: &[Seen], method: &str) -> Vec<Seen> {
    log.iter()
        .filter(|s| s.method == method && s.status == 200)
        .cloned()
        .collect()
}

fn assert_client_authenticates(client: &str, scheme: &str) {
    let s = setup(&format!("{client}-{scheme}"), scheme, false);
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = serve(s.rules.clone(), log.clone(), Control::RelativeToRequestUrl);
    let base = format!("rtsp://127.0.0.1:{port}/vip/a.mp4");
    match client {
        "ffmpeg" => run(&mut ffmpeg(&format!(
            "rtsp://alice:wonder@127.0.0.1:{port}/vip/a.mp4"
        ))),
        _ => run(&mut gstreamer(&base, Some("alice"), Some("wonder"))),
    }
    let log = log.lock().expect("log").clone();
    let first = log
        .first()
        .unwrap_or_else(|| panic!("{client} sent nothing"));
    assert_eq!(
        (first.method.as_str(), first.status),
        ("DESCRIBE", 401),
        "{log:#?}"
    );
    for method in ["DESCRIBE", "SETUP"] {
        let ok = allowed(&log, method);
        assert!(
            !ok.is_empty(),
            "{client}/{scheme}: no {method} allowed: {log:#?}"
        );
        assert_eq!(ok[0].user.as_deref(), Some("alice"));
        let auth = ok[0].authorization.as_deref().unwrap_or("");
        assert!(auth.to_ascii_lowercase().starts_with(scheme), "{auth}");
    }
    let setup = &allowed(&log, "SETUP")[0];
    assert!(setup.uri.ends_with("/vip/a.mp4/trackID=1"), "{}", setup.uri);
    eprintln!(
        "{client}/{scheme}: {:?}",
        allowed(&log, "SETUP")[0].authorization
    );
    // A wrong password never gets in.
    let log2 = Arc::new(Mutex::new(Vec::new()));
    let port2 = serve(s.rules.clone(), log2.clone(), Control::RelativeToRequestUrl);
    match client {
        "ffmpeg" => run(&mut ffmpeg(&format!(
            "rtsp://alice:nope@127.0.0.1:{port2}/vip/a.mp4"
        ))),
        _ => run(&mut gstreamer(
            &format!("rtsp://127.0.0.1:{port2}/vip/a.mp4"),
            Some("alice"),
            Some("nope"),
        )),
    }
    let log2 = log2.lock().expect("log").clone();
    assert!(!log2.is_empty());
    assert!(log2.iter().all(|s| s.status == 401), "{log2:#?}");
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn ffmpeg_digest() {
    assert_client_authenticates("ffmpeg", "digest");
}

#[test]
fn ffmpeg_basic() {
    assert_client_authenticates("ffmpeg", "basic");
}

#[test]
fn gstreamer_digest() {
    assert_client_authenticates("gstreamer", "digest");
}

#[test]
fn gstreamer_basic() {
    assert_client_authenticates("gstreamer", "basic");
}

/// The SETUP a client sends after a signed DESCRIBE, for each way the
/// server may write the DESCRIBE answer.
fn signed_setup(s: &Setup, client: &str, control: Control) -> Seen {
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = serve(s.rules.clone(), log.clone(), control);
    let url = sign_url(
        &s.url_key,
        &format!("rtsp://127.0.0.1:{port}/vip/a.mp4"),
        now() + 600,
        None,
    )
    .expect("sign");
    match client {
        "ffmpeg" => run(&mut ffmpeg(&url)),
        _ => run(&mut gstreamer(&url, None, None)),
    }
    let log = log.lock().expect("log").clone();
    let d = allowed(&log, "DESCRIBE");
    assert!(d.first().is_some_and(|d| d.signed), "{client}: {log:#?}");
    let setup = log
        .iter()
        .find(|s| s.method == "SETUP")
        .unwrap_or_else(|| panic!("{client} sent no SETUP: {log:#?}"))
        .clone();
    eprintln!(
        "{client} {control:?}: SETUP {} -> {}",
        setup.uri, setup.status
    );
    setup
}

/// With absolute control URLs that carry the query, both clients' SETUPs
/// verify as signed. With `Content-Base: <signed URL>/`, ffmpeg puts the
/// query in the middle (`…/a.mp4?exp=…&sig=…/trackID=1`, which
/// `split_query` handles) and GStreamer resolves the control per RFC 3986,
/// dropping both the file name and the query (`…/vip/trackID=1`).
#[test]
fn signed_url_setup_shapes_of_real_clients() {
    let s = setup("signed", "digest", true);
    for client in ["ffmpeg", "gstreamer"] {
        let setup = signed_setup(&s, client, Control::AbsoluteWithQuery);
        assert_eq!(
            (setup.status, setup.signed),
            (200, true),
            "{client}: {setup:?}"
        );
        assert_eq!(setup.path, "vip/a.mp4");
    }
    let ff = signed_setup(&s, "ffmpeg", Control::RelativeToRequestUrl);
    assert!(ff.uri.contains("/vip/a.mp4?exp="), "{}", ff.uri);
    assert!(ff.uri.ends_with("/trackID=1"), "{}", ff.uri);
    assert_eq!(
        (ff.status, ff.signed, ff.path.as_str()),
        (200, true, "vip/a.mp4")
    );
    let gst = signed_setup(&s, "gstreamer", Control::RelativeToRequestUrl);
    assert!(gst.uri.ends_with("/vip/trackID=1"), "{}", gst.uri);
    assert_eq!((gst.signed, gst.path.as_str()), (false, "vip"));
    let _ = std::fs::remove_dir_all(Path::new(&s.dir));
}
