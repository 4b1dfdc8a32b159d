//! Trick play and delivery speed with real clients, on the 60 s fixture
//! (H.264 25 fps with a key frame every 2 s, + AAC).
//!
//! - GStreamer: `engine/tests/scripts/gst_seek_rate.py` plays through
//!   rtspsrc and seeks with rate 2.0 and −2.0 (trick-mode key-unit seeks,
//!   which rtspsrc sends as `Scale: 2` / `Scale: -2` with `Range: npt=10-60`
//!   / `npt=40-0`), then identifies every access unit out of rtph264depay
//!   against the file's own key frames (by the bytes of their IDR slices).
//!   Over TCP and UDP. Expected: after the seek only key frames, every one of them in order
//!   (10, 12, 14 … s forwards; 40, 38, 36 … s backwards), one per second of
//!   wall time (2 s of media per second), with buffer PTS one second apart
//!   (the jitter buffer's PTS follow our RTP timestamps, the play timeline,
//!   without resynchronising). Needs /usr/bin/python3 with python3-gi and
//!   GStreamer's good plugins: a missing one fails the test.
//! - The engine's test client: `Speed: 2` delivers the media twice as fast
//!   (media time from the RTP timestamps against arrival times), with
//!   timestamps unchanged (one frame is still 3,600 ticks at 90 kHz).

mod common;

use common::media;
use common::player::{media_secs, of_track, Player};
use common::server::Server;
use common::tools::{run_with_limit, Lower};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One access unit as gst_seek_rate.py saw it.
#[derive(Debug)]
struct Frame {
    /// Arrival, seconds since the seek.
    t: f64,
    /// Buffer PTS, seconds.
    pts: f64,
    /// Key frame (IDR).
    key: bool,
    /// Presentation time in the file, seconds, for a key frame found in it.
    media: Option<f64>,
}

/// Runs the GStreamer seek script on `url` with `rate`; panics (fails the
/// test) when python3, GStreamer or a plugin is missing or the run fails.
fn gst_seek(url: &str, rate: f64, file: &Path, lower: Lower) -> Vec<Frame> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/gst_seek_rate.py");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(&script)
        .arg(url)
        .arg(rate.to_string())
        .arg(file)
        .arg("5.5")
        .arg(lower.as_str());
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert!(
        run.status.is_some_and(|s| s.success()),
        "gst_seek_rate.py {rate} failed ({:?}); it needs /usr/bin/python3 with python3-gi and \
         GStreamer 1.0 (rtspsrc, rtph264depay, qtdemux, h264parse):\n{}\n{}",
        run.status,
        run.stderr,
        run.stdout
    );
    assert!(
        run.stdout.lines().any(|l| l == "seek ok"),
        "the seek failed:\n{}",
        run.stdout
    );
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("frame "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 4, "bad line {l:?}");
            Frame {
                t: f[0].parse().expect("t"),
                pts: f[1].parse().expect("pts"),
                key: f[2] == "key",
                media: f[3].parse().ok(),
            }
        })
        .collect()
}

#[test]
fn gstreamer_seeks_with_rate_2_and_minus_2_get_key_frames_in_order_one_per_second() {
    let src = media::fixture_source();
    let server = Server::start(std::slice::from_ref(&src));
    let url = server.url(&src.name);
    let runs = [
        (Lower::Tcp, 2.0, 10.0, 2.0),
        (Lower::Tcp, -2.0, 40.0, -2.0),
        (Lower::Udp, 2.0, 10.0, 2.0),
        (Lower::Udp, -2.0, 40.0, -2.0),
    ];
    for (lower, rate, first, step) in runs {
        let frames = gst_seek(&url, rate, &src.path, lower);
        let before = frames.iter().filter(|f| f.t < 0.0 && !f.key).count();
        assert!(
            before > 50,
            "{lower:?} rate {rate}: normal play before the seek ({before} frames)"
        );
        let mut after: Vec<&Frame> = frames.iter().filter(|f| f.t > 0.0).collect();
        // Over UDP, rtspsrc's jitter buffer (latency=200 ms) can still hold
        // the normal play's last packets when it flushes for the seek, and
        // release them as one frame about 200 ms later, just before the first
        // key frame of the new play. Only such leading frames that match none
        // of the file's key frames, within 0.5 s of the seek, are set apart;
        // any later one, or any over TCP, fails the test. Traced with a pcap
        // (2026-12-03, 1 run of 16): the last pre-seek packet left 2 ms before
        // the PAUSE response; after the PLAY the server sent exactly the 10 s
        // key frame (the RTP-Info seq and rtptime, 4 packets), then the 12 s
        // one a second later. GStreamer still gave a key-flagged frame that
        // matched nothing at 0.2025 s and the 10 s key frame at 0.2225 s.
        let stale = match lower {
            Lower::Udp => after
                .iter()
                .take_while(|f| f.media.is_none() && f.t < 0.5)
                .count(),
            _ => 0,
        };
        if stale > 0 {
            eprintln!(
                "{lower:?} rate {rate}: {stale} leading frame(s) from before the seek set apart"
            );
            after.drain(..stale);
        }
        let summary = || {
            after
                .iter()
                .map(|f| format!("{:.3}s pts {:.3} key {} {:?}", f.t, f.pts, f.key, f.media))
                .collect::<Vec<_>>()
                .join("\n")
        };
        // Only key frames of the file after the seek.
        assert!(
            after.iter().all(|f| f.key && f.media.is_some()),
            "{lower:?} rate {rate}: a frame that is not one of the file's key frames:\n{}",
            summary()
        );
        // 5.5 s at one key frame per second.
        assert!(
            (5..=7).contains(&after.len()),
            "{lower:?} rate {rate}: {} key frames in 5.5 s:\n{}",
            after.len(),
            summary()
        );
        // Every key frame, in order, from the one asked for.
        for (n, f) in after.iter().enumerate() {
            let expected = first + step * n as f64;
            let media = f.media.unwrap_or(f64::NAN);
            assert!(
                (media - expected).abs() < 0.01,
                "{lower:?} rate {rate}: key frame {n} is at {media} s, expected {expected} s:\n{}",
                summary()
            );
        }
        for (n, w) in after.windows(2).enumerate() {
            // One per second of wall time: 2 s of media per second (over
            // UDP the jitter buffer holds the first one for its latency).
            let dt = w[1].t - w[0].t;
            assert!(
                n == 0 || (dt - 1.0).abs() < 0.15,
                "{lower:?} rate {rate}: key frames {dt:.3} s apart:\n{}",
                summary()
            );
            // The PTS GStreamer derives from our RTP timestamps advance
            // with the wall clock (the play timeline).
            let dpts = w[1].pts - w[0].pts;
            assert!(
                (dpts - 1.0).abs() < 0.02,
                "{lower:?} rate {rate}: PTS {dpts:.3} s apart:\n{}",
                summary()
            );
        }
        let (a, b) = (after[1], after[after.len() - 1]);
        let slope = (b.media.unwrap_or(0.0) - a.media.unwrap_or(0.0)) / (b.t - a.t);
        assert!(
            (slope - rate).abs() < 0.1,
            "{lower:?} rate {rate}: media moved {slope:.3} s per second"
        );
        eprintln!(
            "{lower:?} rate {rate}: {} key frames, media {:?} .. {:?}, {slope:.3} s/s",
            after.len(),
            after[0].media,
            b.media
        );
    }
}

/// Least-squares slope of `y` against `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    num / den
}

#[test]
fn speed_2_delivers_twice_as_fast_with_unchanged_timestamps() {
    let src = media::fixture_source();
    let server = Server::start(std::slice::from_ref(&src));
    let url = server.url(&src.name);
    for lower in [Lower::Udp, Lower::Tcp] {
        let mut p = Player::open(server.addr(), &url, lower);
        let play = p.play_with(&[("Range", "npt=0-"), ("Speed", "2")]);
        assert_eq!(play.reply.header("Speed"), Some("2.000"), "{lower:?}");
        assert_eq!(play.reply.header("Scale"), None, "{lower:?}");
        let pkts = p.collect_for(Duration::from_secs(4));
        p.teardown();
        assert!(p.bad.is_empty(), "{:?}", p.bad);
        for (i, track) in p.tracks.iter().enumerate() {
            let rtptime = play.rtp_info[i]
                .as_ref()
                .and_then(|r| r.rtptime)
                .expect("RTP-Info rtptime for every track");
            let t = of_track(&pkts, i);
            assert!(
                t.len() > 30,
                "{lower:?} {}: {} packets",
                track.kind,
                t.len()
            );
            let at0 = t[0].at;
            let points: Vec<(f64, f64)> = t
                .iter()
                .map(|q| {
                    (
                        q.at.duration_since(at0).as_secs_f64(),
                        media_secs(q.ts, rtptime, track.clock_rate),
                    )
                })
                .collect();
            let s = slope(&points);
            assert!(
                (s - 2.0).abs() < 0.1,
                "{lower:?} {}: media advances {s:.3} s per second",
                track.kind
            );
            // 4 s of wall time carry about 8 s of media.
            let last = points.last().expect("packets").1;
            assert!(
                (7.0..9.0).contains(&last),
                "{lower:?} {}: {last:.3} s of media in 4 s",
                track.kind
            );
            for w in t.windows(2) {
                assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{lower:?}: no gap");
            }
            if track.kind == "video" {
                // Timestamps unchanged: a frame is still 40 ms (3,600 ticks).
                let mut frames: Vec<u32> = t.iter().map(|q| q.ts).collect();
                frames.dedup();
                for w in frames.windows(2) {
                    assert_eq!(w[1].wrapping_sub(w[0]), 3_600, "{lower:?}: frame spacing");
                }
            }
            eprintln!(
                "{lower:?} {}: {} packets, {s:.3} s of media per second",
                track.kind,
                t.len()
            );
        }
    }
}
