//! Reload on SIGHUP and `cadence check-config`: a SIGHUP that lowers
//! `max_sessions` makes the next SETUP get 453 while a playing session keeps
//! every packet; a broken file changes nothing and is reported with its key
//! and line; files added to the media folder become servable; the log level
//! changes live.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::media;
use common::player::{of_track, Player};
use common::rtsp::RtspConn;
use common::server::{Server, TempDir};
use common::tools::Lower;
use rtsp_types::Method;

const CADENCE: &str = env!("CARGO_BIN_EXE_cadence");

fn hup(server: &Server) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -HUP failed");
}

/// Waits until the server log has `n` lines containing `what`.
fn wait_log(server: &Server, what: &str, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if server
            .log_text()
            .lines()
            .filter(|l| l.contains(what))
            .count()
            >= n
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn setup_status(server: &Server, url: &str, port: u16) -> u16 {
    let mut c = RtspConn::connect(server.addr());
    let port = port.to_string();
    let t = format!(
        "RTP/AVP;unicast;client_port={port}-{}",
        port.parse::<u16>().unwrap_or(0) + 1
    );
    c.request(
        Method::Setup,
        &format!("{url}/trackID=3"),
        &[("Transport", &t)],
    )
    .status
}

#[test]
fn sighup_applies_limits_files_and_log_level_and_refuses_broken_files() {
    let etc = TempDir::new("reload-etc");
    let config = etc.path().join("cadence.toml");
    std::fs::write(&config, "max_sessions = 10\nlog_level = \"info\"\n").expect("config");
    let media_dir = TempDir::new("reload-media");
    let src = media::fixture_source();
    std::os::unix::fs::symlink(&src.path, media_dir.path().join("a.mp4")).expect("symlink");
    let media_path = media_dir.path().to_path_buf();
    let server = Server::start_dir_with_config_log_level(
        media_dir,
        &["--config", config.to_str().expect("utf8")],
    );
    let url = server.url("a.mp4");

    // A session plays across everything below.
    let mut player = Player::open(server.addr(), &url, Lower::Udp);
    player.play(None);
    let mut packets = player.collect_for(Duration::from_secs(1));

    // Lower max_sessions to 1 (the playing session): the next SETUP gets 453.
    std::fs::write(&config, "max_sessions = 1\nlog_level = \"info\"\n").expect("config");
    hup(&server);
    assert!(wait_log(&server, "reloaded", 1), "{}", server.log_tail(20));
    assert_eq!(setup_status(&server, &url, 7100), 453);
    packets.extend(player.collect_for(Duration::from_secs(1)));

    // A broken file changes nothing: still 453, and the error names the key.
    std::fs::write(&config, "max_sessions = 10\nbogus_key = 3\n").expect("config");
    hup(&server);
    assert!(
        wait_log(&server, "reload refused", 1),
        "{}",
        server.log_tail(20)
    );
    let log = server.log_text();
    let refusal = log
        .lines()
        .find(|l| l.contains("reload refused"))
        .unwrap_or_default();
    assert!(refusal.contains("bogus_key"), "{refusal}");
    assert!(refusal.contains("line 2"), "{refusal}");
    assert_eq!(
        setup_status(&server, &url, 7102),
        453,
        "the running limits stay"
    );

    // A valid file again, a new media file, and the debug level.
    // (The media watcher may add b.mp4 by itself 300 ms after the symlink; either way
    // it must be served once the reload is done.)
    std::os::unix::fs::symlink(&src.path, media_path.join("b.mp4")).expect("symlink");
    assert!(
        !server.log_text().contains(" DEBUG "),
        "debug lines at log_level info: {}",
        server.log_tail(10)
    );
    std::fs::write(&config, "max_sessions = 10\nlog_level = \"debug\"\n").expect("config");
    hup(&server);
    assert!(wait_log(&server, "reloaded", 2), "{}", server.log_tail(20));
    let mut c = RtspConn::connect(server.addr());
    assert_eq!(
        c.request(Method::Describe, &server.url("b.mp4"), &[])
            .status,
        200
    );
    assert_eq!(setup_status(&server, &url, 7104), 200);
    assert!(
        wait_log(&server, " DEBUG ", 1),
        "the log level did not change: {}",
        server.log_tail(10)
    );
    packets.extend(player.collect_for(Duration::from_secs(1)));

    // The playing session lost nothing and kept its connection.
    for t in 0..player.tracks.len() {
        let p = of_track(&packets, t);
        assert!(p.len() > 10, "track {t}: {} packets", p.len());
        for w in p.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "track {t} lost a packet"
            );
        }
    }
    assert_eq!(player.teardown().status, 200);
}

#[test]
fn check_config_exits_2_with_the_error() {
    let dir = TempDir::new("check-config");
    let media_dir = dir.path().join("media");
    std::fs::create_dir_all(&media_dir).expect("mkdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "cores = 1\nmedia = \"{}\"\nmax_sessions = 100\n[auth]\nsigned_urls = \"off\"\n",
            media_dir.display()
        ),
    )
    .expect("write");
    let out = Command::new(CADENCE)
        .arg("check-config")
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "cores = 1\n\n[auth]\nsigned_urls = \"sometimes\"\n").expect("write");
    let out = Command::new(CADENCE)
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("signed_urls") && err.contains("line 4"),
        "{err}"
    );
    // A file it names that cannot be read is an error too.
    let missing = dir.path().join("missing.toml");
    std::fs::write(
        &missing,
        format!(
            "media = \"{}\"\n[auth]\nsigned_urls = \"required\"\nurl_secret_file = \"/nonexistent/key\"\n",
            media_dir.display()
        ),
    )
    .expect("write");
    let out = Command::new(CADENCE)
        .arg("check-config")
        .arg(&missing)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("url_secret_file"));
}
