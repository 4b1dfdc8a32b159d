//! Server-wide limits: `max_sessions` and `max_bandwidth_mbps` refuse new
//! SETUPs with 453 (playing sessions untouched), and with
//! `redirect_when_full` a full node answers DESCRIBE with 302 to a peer,
//! which ffmpeg follows and plays from.

mod common;

use std::time::Duration;

use common::media;
use common::player::Player;
use common::rtsp::RtspConn;
use common::server::Server;
use common::tools::{ffmpeg_decode, Lower};
use rtsp_types::Method;

fn setup_status(server: &Server, url: &str) -> u16 {
    let mut c = RtspConn::connect(server.addr());
    c.request(
        Method::Setup,
        &format!("{url}/trackID=3"),
        &[("Transport", "RTP/AVP;unicast;client_port=7200-7201")],
    )
    .status
}

#[test]
fn a_full_node_redirects_describe_and_refuses_setup() {
    let src = media::fixture_source();
    let b = Server::start(std::slice::from_ref(&src));
    let peer = format!("rtsp://{}", b.addr());
    let a = Server::start_with(
        std::slice::from_ref(&src),
        &["--max-sessions", "1", "--redirect-when-full", &peer],
    );
    let url_a = a.url(&src.name);
    // One session fills A.
    let mut player = Player::open(a.addr(), &url_a, Lower::Udp);
    player.play(None);
    assert_eq!(setup_status(&a, &url_a), 453);
    let mut c = RtspConn::connect(a.addr());
    let r = c.request(Method::Describe, &format!("{url_a}?k=v"), &[]);
    assert_eq!(r.status, 302, "{}", r.summary());
    assert_eq!(
        r.header("Location"),
        Some(format!("{peer}/{}?k=v", src.name).as_str())
    );
    // ffmpeg follows the redirect and plays from B.
    let d = ffmpeg_decode(&url_a, Lower::Tcp, None, 3.0);
    assert!(d.frames >= 70, "{} frames {:?}", d.frames, d.errors);
    assert!(
        b.log_text().contains("RTSP connection"),
        "B never saw the client:\n{}",
        b.log_tail(10)
    );
    // The session on A played on, untouched.
    let packets = player.collect_for(Duration::from_secs(1));
    assert!(packets.len() > 20, "{} packets", packets.len());
    assert_eq!(player.teardown().status, 200);
    // Below the limit again: A serves.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(setup_status(&a, &url_a), 200);
}

#[test]
fn max_bandwidth_refuses_new_sessions_beyond_it() {
    let src = media::fixture_source();
    // About 0.31 Mbit/s per session: four sessions pass 1 Mbit/s.
    let s = Server::start_with(std::slice::from_ref(&src), &["--max-bandwidth-mbps", "1"]);
    let url = s.url(&src.name);
    let mut players = Vec::new();
    for _ in 0..4 {
        let mut p = Player::open(s.addr(), &url, Lower::Udp);
        p.play(None);
        players.push(p);
    }
    std::thread::sleep(Duration::from_millis(1500));
    for p in &mut players {
        p.collect_for(Duration::from_millis(10));
    }
    assert_eq!(setup_status(&s, &url), 453, "{}", s.log_tail(10));
    assert!(s.log_text().contains("max_bandwidth_mbps reached"));
    for p in &mut players {
        assert_eq!(p.teardown().status, 200);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(setup_status(&s, &url), 200);
}
