//! The load tool against Cadence on loopback: 200 sessions for 10 s over UDP
//! and over TCP. Expects no failure, no loss, and a received packet count
//! within ±2% of what the file's send schedules predict for each session's
//! play time.
//!
//! Needs the `cadence` binary next to this test's binary (built by
//! `cargo build [--release] -p cadence-engine`, or by `cargo test` of the
//! workspace), or at `$CADENCE_BIN`. Without it the test skips with a notice,
//! or fails when CI=true.

mod common;

use std::sync::Mutex;

use common::*;

/// One run at a time: two 200-session runs at once would measure each other.
static SERIAL: Mutex<()> = Mutex::new(());

const CLIENTS: u64 = 200;
const DURATION_S: f64 = 10.0;
const MEDIA_FILE: &str = "sample.mp4";

/// Packets the schedules of `MEDIA_FILE` send in the first `play_us` µs of
/// a session, over all tracks.
fn predicted(schedule: &cadence_hinting::FileSchedule, play_us: u64) -> u64 {
    schedule
        .tracks
        .iter()
        .map(|t| t.first_at_or_after(play_us) as u64)
        .sum()
}

fn run(transport: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(bin) = cadence_binary() else {
        prerequisite(false, "the cadence binary is not built (cargo build -p cadence-engine) and CADENCE_BIN is unset");
        return;
    };
    let media = repo_root().join("media").join(MEDIA_FILE);
    let schedule = cadence_hinting::open(&media).expect("the bundled sample compiles");
    let (_server, port) = start_cadence(&bin, &[]);
    let url = format!("rtsp://127.0.0.1:{port}/{MEDIA_FILE}");
    let clients = CLIENTS.to_string();
    let duration = DURATION_S.to_string();
    let (status, report, _) = run_loadtool(&[
        "--clients",
        &clients,
        "--ramp",
        "500",
        "--duration",
        &duration,
        "--transport",
        transport,
        "--quiet",
        &url,
    ]);

    for key in REQUIRED_KEYS {
        at(&report, key);
    }
    assert_eq!(
        at(&report, "failures").as_object().map(|m| m.len()),
        Some(0),
        "failures: {}",
        at(&report, "failures")
    );
    assert_eq!(u(&report, "clients.requested"), CLIENTS);
    assert_eq!(u(&report, "clients.playing"), CLIENTS);
    assert_eq!(u(&report, "clients.failed"), 0);
    assert_eq!(u(&report, "packets.lost"), 0);
    assert!(status.success(), "exit status {status}");

    // Each session's count against the schedule for its play time.
    let sessions = at(&report, "sessions").as_array().expect("sessions array");
    assert_eq!(sessions.len() as u64, CLIENTS);
    let tracks = schedule.tracks.len();
    let mut expected_total = 0u64;
    for s in sessions {
        let play_ms = s["play_ms"].as_f64().expect("every session played");
        assert!(
            play_ms >= DURATION_S * 1000.0,
            "session played only {play_ms} ms"
        );
        let streams = s["streams"].as_array().expect("streams");
        assert_eq!(streams.len(), tracks, "one stream per hint track");
        expected_total += predicted(&schedule, (play_ms * 1000.0) as u64);
    }
    let received = u(&report, "packets.received");
    let diff = received.abs_diff(expected_total) as f64 / expected_total as f64;
    println!(
        "{transport}: received {received}, schedules predict {expected_total} ({:+.3}%)",
        diff * 100.0
    );
    assert!(
        diff <= 0.02,
        "{transport}: received {received} packets, schedules predict {expected_total} (off by {:.2}%)",
        diff * 100.0
    );
    // Over UDP the host's kernel delivered at least what the tool counted.
    if transport == "udp" {
        assert!(u(&report, "kernel_udp.in_datagrams") >= received);
    }
}

#[test]
fn two_hundred_sessions_over_udp() {
    run("udp");
}

#[test]
fn two_hundred_sessions_over_tcp() {
    run("tcp");
}
