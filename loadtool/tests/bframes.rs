//! B-frame streams: RTP timestamps are presentation times while packets
//! leave in decode order. A scripted server sends IBBP video (one packet per
//! frame, 40 ms apart, at decode time) and on-time audio. With the RFC 5450
//! toffset extension announced and sent, the tool measures from the
//! transmission time and both media come out on time; without it, the video
//! shows the reorder depth (B-frames one frame late, P-frames two frames
//! early) while the audio, reported apart, stays on time.

mod common;

use std::time::Duration;

use common::fake_server::{audio_track, bframe_video, Behaviour, FakeServer};
use common::*;

const FRAMES: usize = 100;
const FRAME: Duration = Duration::from_millis(40);
const AUDIO_PACKETS: usize = 170;
const CLIENTS: u64 = 2;

fn run(transport: &str, toffset_id: Option<u8>) -> serde_json::Value {
    let server = FakeServer::start(Behaviour::Tracks {
        tracks: vec![
            bframe_video(FRAMES, FRAME, toffset_id),
            audio_track(AUDIO_PACKETS),
        ],
        ssrc_in_transport: true,
    });
    // The stream lasts 4 s; the window of 5 s counts all of it.
    let clients = CLIENTS.to_string();
    let (status, report, _) = run_loadtool(&[
        "--clients",
        &clients,
        "--ramp",
        "0",
        "--duration",
        "5",
        "--transport",
        transport,
        "-q",
        &server.url(),
    ]);
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        u(&report, "clients.failed"),
        0,
        "{}",
        at(&report, "failures")
    );
    assert_eq!(u(&report, "packets.lost"), 0);
    assert_eq!(
        u(&report, "packets.received"),
        CLIENTS * (FRAMES + AUDIO_PACKETS) as u64
    );
    assert_eq!(u(&report, "packets.bad_extension"), 0);
    assert_eq!(u(&report, "media.video.streams"), CLIENTS);
    assert_eq!(u(&report, "media.audio.streams"), CLIENTS);
    assert_eq!(u(&report, "media.other.streams"), 0);
    assert_eq!(u(&report, "media.video.packets"), CLIENTS * FRAMES as u64);
    // Audio is paced on time in both runs, and reported apart from video.
    assert_on_time(&report, "audio");
    assert_eq!(u(&report, "media.audio.toffset_streams"), 0);
    report
}

fn f(report: &serde_json::Value, path: &str) -> f64 {
    at(report, path)
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number"))
}

/// Lateness and jitter of `kind` near zero: what loopback and thread
/// scheduling add, far below one frame (40 ms).
fn assert_on_time(report: &serde_json::Value, kind: &str) {
    let late_p99 = u(report, &format!("media.{kind}.lateness_us.p99"));
    let early_max = u(report, &format!("media.{kind}.earliness_us.max"));
    let jitter = f(report, &format!("media.{kind}.jitter_ms.max"));
    assert!(late_p99 < 5_000, "{kind} lateness p99 {late_p99} µs");
    assert!(early_max < 5_000, "{kind} earliness max {early_max} µs");
    assert!(jitter < 2.0, "{kind} jitter {jitter} ms");
}

fn with_toffset(transport: &str) {
    let report = run(transport, Some(3));
    assert_on_time(&report, "video");
    assert_eq!(u(&report, "media.video.toffset_streams"), CLIENTS);
    assert_eq!(
        u(&report, "media.video.toffset_packets"),
        CLIENTS * FRAMES as u64
    );
    assert!(u(&report, "lateness_us.p99") < 5_000);
    for s in at(&report, "sessions").as_array().expect("sessions") {
        let video = &s["streams"][0];
        assert_eq!(video["kind"], "video");
        assert_eq!(video["toffset_id"], 3);
        assert_eq!(video["toffset_packets"], FRAMES as u64);
        assert!(s["streams"][1]["toffset_id"].is_null());
    }
}

#[test]
fn toffset_measures_b_frames_from_transmission_time_over_udp() {
    with_toffset("udp");
}

#[test]
fn toffset_measures_b_frames_from_transmission_time_over_tcp() {
    with_toffset("tcp");
}

#[test]
fn without_toffset_b_frames_show_the_reorder_depth() {
    let report = run("udp", None);
    assert_eq!(u(&report, "media.video.toffset_streams"), 0);
    assert_eq!(u(&report, "media.video.toffset_packets"), 0);
    // B-frames arrive one frame (40 ms) after their presentation time,
    // P-frames two frames (80 ms) before it.
    let late_max = u(&report, "media.video.lateness_us.max");
    let early_max = u(&report, "media.video.earliness_us.max");
    let jitter = f(&report, "media.video.jitter_ms.p50");
    assert!(
        (35_000..50_000).contains(&late_max),
        "video lateness max {late_max} µs"
    );
    assert!(
        (75_000..90_000).contains(&early_max),
        "video earliness max {early_max} µs"
    );
    assert!(jitter > 40.0, "video jitter {jitter} ms");
    // Two thirds of the video packets are B-frames, late by a frame: the
    // overall p90 shows it, as in issue 12.
    assert!(u(&report, "lateness_us.p90") >= 35_000);
}
