//! The `session_cap` example (a server built on the engine library with a
//! custom authorizer) works as a user would use it: with
//! `--max-per-client 1`, one ffmpeg plays while a second client from the same
//! address is refused with 453, and once the first session ends a new one
//! plays.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::media::{self, FIXTURE_H264};
use common::rtsp::RtspConn;
use common::server::{Server, TempDir};
use common::tools::{ffmpeg_decode, Lower};
use rtsp_types::Method;

/// `target/<profile>/examples/session_cap`, next to this test's `deps/` folder
/// (`cargo test` builds the examples).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let bin = profile.join("examples").join("session_cap");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --release --examples`",
        bin.display()
    );
    bin
}

#[test]
fn second_session_from_one_client_is_refused_until_the_first_ends() {
    let media_dir = TempDir::new("cap-media");
    let src = media::fixture_source();
    std::os::unix::fs::symlink(&src.path, media_dir.path().join(&src.name)).expect("symlink");
    let server = Server::start_program(&example_binary(), media_dir, &["--max-per-client", "1"]);
    let url = server.url(FIXTURE_H264);

    // ffmpeg plays 6 s in the background.
    let first_url = url.clone();
    let first = std::thread::spawn(move || ffmpeg_decode(&first_url, Lower::Tcp, None, 6.0));

    // Wait until its session exists, then try a second one from 127.0.0.1.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let mut conn = RtspConn::connect(server.addr());
        let r = conn.request(
            Method::Setup,
            &format!("{url}/trackID=3"),
            &[("Transport", "RTP/AVP;unicast;client_port=7000-7001")],
        );
        if r.status == 453 {
            break true;
        }
        // Not refused: the first session is not open yet; give this one back.
        if let Some(s) = r.header("Session") {
            let id = s.split(';').next().unwrap_or("").to_string();
            conn.session = Some(id);
            conn.request(Method::Teardown, &url, &[]);
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        refused,
        "the second session was never refused; log:\n{}",
        server.log_tail(30)
    );
    assert!(
        server
            .log_text()
            .contains("127.0.0.1 already has 1 sessions (limit 1)"),
        "{}",
        server.log_tail(30)
    );

    let d = first.join().expect("ffmpeg thread");
    assert!(
        d.frames >= 140,
        "the first client got {} frames; errors: {:?}",
        d.frames,
        d.errors
    );
    // The first session ended with ffmpeg's TEARDOWN: a new one plays.
    let d = ffmpeg_decode(&url, Lower::Udp, None, 3.0);
    assert!(
        d.frames >= 70,
        "after the first session ended: {} frames; errors: {:?}; log:\n{}",
        d.frames,
        d.errors,
        server.log_tail(30)
    );
}
