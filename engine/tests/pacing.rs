//! Real-time pacing, measured by our own RTP client over UDP and TCP (this is one of the few
//! tests with timing assertions; the contract asks for them).
//!
//! For every packet: media time = (RTP timestamp − RTP-Info rtptime) / clock rate, wall time =
//! arrival − arrival of the first packet of the session. Over a 10 s pull, per track:
//! - send-ahead = max(media − wall) ≤ 3 s;
//! - media covered by the end of the 10 s ≥ 9 s (−10%), and within ±1 s (10% of 10 s) of
//!   10 s + send-ahead (a server that stalls after a burst, or drifts, fails this).

mod common;

use common::media::{self, Source};
use common::player::{media_secs, of_track, Player};
use common::server::Server;
use common::tools::Lower;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WALL_SECS: f64 = 10.0;
const MAX_SEND_AHEAD: f64 = 3.0;

fn check_pace(server: &Server, src: &Source, lower: Lower) {
    let url = server.url(&src.name);
    let mut p = Player::open(server.addr(), &url, lower);
    let play = p.play(Some("npt=0-"));
    let sent_at = Instant::now();
    let pkts = p.collect_until(sent_at + Duration::from_secs_f64(WALL_SECS + 1.0));
    p.teardown();
    assert!(!pkts.is_empty(), "{url} {lower:?}: no RTP packet received");
    let first = pkts.iter().map(|k| k.at).min().expect("packets");
    let end = first + Duration::from_secs_f64(WALL_SECS);
    for (t, track) in p.tracks.iter().enumerate() {
        let info = play.rtp_info[t]
            .as_ref()
            .unwrap_or_else(|| panic!("{url}: no RTP-Info entry for {}", track.url));
        let origin = info
            .rtptime
            .unwrap_or_else(|| panic!("{url}: RTP-Info without rtptime for {}", track.url));
        let tp = of_track(&pkts, t);
        assert!(
            !tp.is_empty(),
            "{url} {lower:?}: no packet on track {}",
            track.url
        );
        let mut ahead_max = f64::MIN;
        let mut covered = f64::MIN;
        for k in &tp {
            let media = media_secs(k.ts, origin, track.clock_rate);
            let wall = k.at.duration_since(first).as_secs_f64();
            ahead_max = ahead_max.max(media - wall);
            if k.at <= end {
                covered = covered.max(media);
            }
        }
        eprintln!(
            "{} {lower:?} {} ({}): {} packets, send-ahead max {ahead_max:.3} s, media covered at {WALL_SECS} s wall: {covered:.3} s",
            src.name,
            track.kind,
            track.encoding,
            tp.len()
        );
        assert!(
            ahead_max <= MAX_SEND_AHEAD,
            "{url} {lower:?} {}: sent {ahead_max:.3} s ahead of real time (max {MAX_SEND_AHEAD} s)",
            track.kind
        );
        assert!(
            covered >= 0.9 * WALL_SECS,
            "{url} {lower:?} {}: only {covered:.3} s of media in {WALL_SECS} s of wall time",
            track.kind
        );
        let target = WALL_SECS + ahead_max.max(0.0);
        assert!(
            (covered - target).abs() <= 0.1 * WALL_SECS,
            "{url} {lower:?} {}: {covered:.3} s of media by {WALL_SECS} s wall; expected {target:.3} s (10 s + send-ahead) ±1 s",
            track.kind
        );
    }
}

#[test]
fn pace_is_real_time_udp_and_tcp() {
    let mut sources = vec![media::fixture_source()];
    if let Some(path) = media::apple(media::APPLE_H264) {
        sources.push(Source {
            name: media::APPLE_H264.into(),
            path,
            fps: 30.0,
        });
    }
    let server = Arc::new(Server::start(&sources));
    let mut threads = Vec::new();
    for src in sources {
        for lower in [Lower::Udp, Lower::Tcp] {
            let server = server.clone();
            let src = src.clone();
            threads.push(common::spawn_named(
                &format!("{} {lower:?}", src.name),
                move || check_pace(&server, &src, lower),
            ));
        }
    }
    common::join_all(threads);
}
