//! Access control end to end, against the running server with real clients:
//! DSS users/groups/access files made with `cadence passwd`, Basic and Digest
//! with ffmpeg (`rtsp://user:pass@…`) and GStreamer (`user-id`/`user-pw`),
//! an access file protecting only its subfolder, `require group`, signed
//! URLs made with `cadence sign-url` (valid, expired, forged, wrong subnet),
//! client-subnet rules, access files never served, and a playing session
//! that keeps every packet while other clients fail authentication.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::media;
use common::player::{of_track, Player};
use common::rtsp::RtspConn;
use common::server::{Server, TempDir};
use common::tools::{ffmpeg_decode, gst_pull, Lower};
use rtsp_types::Method;

const CADENCE: &str = env!("CARGO_BIN_EXE_cadence");

fn passwd(file: &Path, user: &str, password: &str) {
    let mut child = Command::new(CADENCE)
        .args(["passwd", "--realm", "Cadence Test"])
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cadence passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sign(secret: &Path, url: &str, expires_in: i64, subnet: Option<&str>) -> String {
    let mut c = Command::new(CADENCE);
    c.args(["sign-url", "--secret-file"])
        .arg(secret)
        .args(["--expires-in", &expires_in.max(0).to_string()]);
    if let Some(s) = subnet {
        c.args(["--client-subnet", s]);
    }
    let out = c.arg(url).output().expect("cadence sign-url");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

struct Site {
    server: Server,
    secret: PathBuf,
    _etc: TempDir,
}

/// A media folder: `open/`, `basic/` (Basic, alice), `digest/` (Digest,
/// valid-user), `staff/` (group staff: bob), `net/` (subnet rule that
/// denies 127.0.0.0/8); signed URLs optional.
fn site() -> Site {
    let etc = TempDir::new("auth-etc");
    let users = etc.path().join("qtusers");
    let groups = etc.path().join("qtgroups");
    let secret = etc.path().join("url-secret");
    passwd(&users, "alice", "wonder land");
    passwd(&users, "bob", "builder");
    std::fs::write(&groups, "staff: bob\n").expect("groups");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef").expect("secret");
    let media_dir = TempDir::new("auth-media");
    let src = media::fixture_source();
    for dir in ["open", "basic", "digest", "staff", "net", "signed"] {
        std::fs::create_dir_all(media_dir.path().join(dir)).expect("mkdir");
        std::os::unix::fs::symlink(&src.path, media_dir.path().join(dir).join("f.mp4"))
            .expect("symlink");
    }
    std::fs::write(
        media_dir.path().join("basic/qtaccess"),
        "AuthName \"Basic Area\"\nAuthScheme basic\n<Limit READ>\nrequire user alice\n</Limit>\n",
    )
    .expect("qtaccess");
    std::fs::write(
        media_dir.path().join("digest/qtaccess"),
        "AuthScheme digest\nrequire valid-user\n",
    )
    .expect("qtaccess");
    std::fs::write(
        media_dir.path().join("staff/qtaccess"),
        "AuthScheme digest\nrequire group staff\n",
    )
    .expect("qtaccess");
    std::fs::write(
        media_dir.path().join("signed/qtaccess"),
        "AuthScheme digest\nrequire user nobody-knows\n",
    )
    .expect("qtaccess");
    let config = etc.path().join("cadence.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nusers_file = \"{}\"\ngroups_file = \"{}\"\nsigned_urls = \"optional\"\nurl_secret_file = \"{}\"\n\n[[auth.client_subnets]]\npath_prefix = \"net\"\ndeny = [\"127.0.0.0/8\"]\n",
            users.display(),
            groups.display(),
            secret.display()
        ),
    )
    .expect("config");
    let server = Server::start_dir_with(media_dir, &["--config", config.to_str().expect("utf8")]);
    Site {
        server,
        secret,
        _etc: etc,
    }
}

fn with_credentials(url: &str, user: &str, password: &str) -> String {
    url.replacen(
        "rtsp://",
        &format!("rtsp://{user}:{}@", password.replace(' ', "%20")),
        1,
    )
}

fn describe_status(site: &Site, url: &str) -> u16 {
    let mut c = RtspConn::connect(site.server.addr());
    c.request(Method::Describe, url, &[]).status
}

#[test]
fn users_groups_and_access_files_with_real_clients() {
    let site = site();
    let url = |p: &str| site.server.url(p);

    // No access file: open.
    let d = ffmpeg_decode(&url("open/f.mp4"), Lower::Tcp, None, 2.0);
    assert!(d.frames >= 45, "open: {} frames {:?}", d.frames, d.errors);

    // Basic and Digest, with ffmpeg over UDP and TCP.
    for (path, user, pw, lower) in [
        ("basic/f.mp4", "alice", "wonder land", Lower::Udp),
        ("digest/f.mp4", "bob", "builder", Lower::Tcp),
        ("digest/f.mp4", "alice", "wonder land", Lower::Udp),
    ] {
        let d = ffmpeg_decode(&with_credentials(&url(path), user, pw), lower, None, 2.0);
        assert!(
            d.frames >= 45,
            "{user} on {path}: {} frames {:?}\n{}",
            d.frames,
            d.errors,
            site.server.log_tail(10)
        );
    }
    // GStreamer with user-id / user-pw, Digest.
    let g = gst_pull(
        &url("digest/f.mp4"),
        &["protocols=tcp", "user-id=alice", "user-pw=wonder land"],
        4.0,
    );
    assert!(
        g.buffers >= 50,
        "GStreamer digest: {} buffers {:?}",
        g.buffers,
        g.errors
    );

    // Wrong password, unknown user, no credentials: 401 and no media.
    for u in [
        with_credentials(&url("basic/f.mp4"), "alice", "wrong"),
        with_credentials(&url("digest/f.mp4"), "mallory", "x"),
        url("digest/f.mp4"),
    ] {
        let d = ffmpeg_decode(&u, Lower::Tcp, None, 2.0);
        assert_eq!(d.frames, 0, "{u} played");
        assert!(
            d.run.stderr.contains("401"),
            "{u}: ffmpeg did not report 401: {}",
            d.run.stderr
        );
    }
    let mut c = RtspConn::connect(site.server.addr());
    let r = c.request(Method::Describe, &url("digest/f.mp4"), &[]);
    assert_eq!(r.status, 401);
    let challenge = r.header("WWW-Authenticate").unwrap_or("").to_string();
    assert!(
        challenge.starts_with("Digest realm=\"Cadence Test\", nonce=\""),
        "{challenge}"
    );
    let r = c.request(Method::Describe, &url("basic/f.mp4"), &[]);
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"Basic Area\"")
    );

    // Authenticated but not allowed: 403 (bob is not alice; alice is not staff).
    let d = ffmpeg_decode(
        &with_credentials(&url("basic/f.mp4"), "bob", "builder"),
        Lower::Tcp,
        None,
        1.0,
    );
    assert_eq!(d.frames, 0);
    assert!(d.run.stderr.contains("403"), "{}", d.run.stderr);
    let d = ffmpeg_decode(
        &with_credentials(&url("staff/f.mp4"), "alice", "wonder land"),
        Lower::Tcp,
        None,
        1.0,
    );
    assert_eq!(d.frames, 0);
    let d = ffmpeg_decode(
        &with_credentials(&url("staff/f.mp4"), "bob", "builder"),
        Lower::Tcp,
        None,
        2.0,
    );
    assert!(
        d.frames >= 45,
        "require group: {} frames {:?}",
        d.frames,
        d.errors
    );

    // Access files are never served.
    assert_eq!(describe_status(&site, &url("basic/qtaccess")), 404);
    // A subnet rule denies loopback for net/, whatever the credentials.
    assert_eq!(
        describe_status(
            &site,
            &with_credentials(&url("net/f.mp4"), "alice", "wonder land")
        ),
        403
    );

    // Refusals are logged with their reason, never with a secret.
    let log = site.server.log_text();
    assert!(
        log.contains("request refused"),
        "{}",
        site.server.log_tail(20)
    );
    for secret in ["wonder land", "wonder%20land", "builder"] {
        assert!(!log.contains(secret), "the log holds a password");
    }
}

#[test]
fn signed_urls_play_and_bad_ones_are_refused() {
    let site = site();
    let base = site.server.url("signed/f.mp4");
    let good = sign(&site.secret, &base, 300, None);
    assert!(good.contains("?exp=") && good.contains("&sig="), "{good}");
    let d = ffmpeg_decode(&good, Lower::Tcp, None, 2.0);
    assert!(
        d.frames >= 45,
        "ffmpeg signed: {} {:?}\n{}",
        d.frames,
        d.errors,
        site.server.log_tail(10)
    );
    let d = ffmpeg_decode(&good, Lower::Udp, None, 2.0);
    assert!(
        d.frames >= 45,
        "ffmpeg signed UDP: {} {:?}",
        d.frames,
        d.errors
    );
    let g = gst_pull(&good, &["protocols=tcp"], 4.0);
    assert!(
        g.buffers >= 50,
        "GStreamer signed: {} buffers {:?}\n{}",
        g.buffers,
        g.errors,
        site.server.log_tail(10)
    );
    let bound = sign(&site.secret, &base, 300, Some("127.0.0.0/8"));
    let d = ffmpeg_decode(&bound, Lower::Tcp, None, 1.0);
    assert!(d.frames >= 20, "subnet-bound URL from inside: {}", d.frames);

    let expired = sign(&site.secret, &base, 0, None);
    std::thread::sleep(Duration::from_millis(1100));
    let forged = good.replace("&sig=", "&sig=A");
    let elsewhere = sign(&site.secret, &base, 300, Some("10.9.0.0/16"));
    for (u, why) in [
        (&expired, "expired"),
        (&forged, "forged"),
        (&elsewhere, "subnet"),
    ] {
        assert_eq!(describe_status(&site, u), 403, "{why}");
        let d = ffmpeg_decode(u, Lower::Tcp, None, 1.0);
        assert_eq!(d.frames, 0, "{why} URL played");
    }
    let log = site.server.log_text().to_lowercase();
    for why in ["expired", "forged", "subnet"] {
        assert!(
            log.contains(why),
            "no refusal naming {why}:\n{}",
            site.server.log_tail(20)
        );
    }
}

#[test]
fn playing_sessions_keep_every_packet_while_others_fail_authentication() {
    let site = site();
    let url = with_credentials(&site.server.url("digest/f.mp4"), "alice", "wonder land");
    let plain = site.server.url("digest/f.mp4");
    let addr = site.server.addr();
    // A hostile client hammers with bad credentials during the whole play.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer_stop = stop.clone();
    let hammer = std::thread::spawn(move || {
        let mut n = 0;
        while !hammer_stop.load(std::sync::atomic::Ordering::Relaxed) {
            let mut c = RtspConn::connect(addr);
            let r = c.request(
                Method::Describe,
                &plain,
                &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")],
            );
            assert_eq!(r.status, 401);
            n += 1;
        }
        n
    });
    // An authenticated ffmpeg and a player counting every RTP packet of an
    // open file play meanwhile.
    let mut player = Player::open(addr, &site.server.url("open/f.mp4"), Lower::Udp);
    player.play(None);
    let ff = std::thread::spawn(move || ffmpeg_decode(&url, Lower::Udp, None, 6.0));
    let packets = player.collect_for(Duration::from_secs(6));
    let d = ff.join().expect("ffmpeg");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let refused = hammer.join().expect("hammer");
    assert!(refused > 50, "only {refused} refused requests");
    assert!(
        d.frames >= 148,
        "the playing client lost frames: {} {:?}",
        d.frames,
        d.errors
    );
    for t in 0..player.tracks.len() {
        let p = of_track(&packets, t);
        assert!(p.len() > 30, "track {t}: {} packets", p.len());
        for w in p.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "track {t}: a packet was lost"
            );
        }
    }
}
