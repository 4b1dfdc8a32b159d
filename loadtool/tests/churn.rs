//! Churn mode against the scripted server: sessions of 0.5–1.5 s play time
//! are replaced as they end, over UDP and TCP; each ends with TEARDOWN or,
//! for the `--churn-no-teardown` fraction, by closing its connection; what
//! the server saw (sessions, TEARDOWNs, closes) matches the report, and the
//! same seed draws the same lifetimes.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::fake_server::{audio_track, bframe_video, Behaviour, FakeServer};
use common::*;

const CLIENTS: u64 = 6;

fn run(transport: &str, seed: &str) -> (serde_json::Value, u64, u64, u64) {
    // Streams of 40 s: longer than any lifetime.
    let server = FakeServer::start(Behaviour::Tracks {
        tracks: vec![
            bframe_video(1000, Duration::from_millis(40), Some(2)),
            audio_track(1700),
        ],
        ssrc_in_transport: transport == "tcp",
    });
    let clients = CLIENTS.to_string();
    let (status, report, stdout) = run_loadtool(&[
        "--clients",
        &clients,
        "--ramp",
        "0",
        "--duration",
        "6",
        "--transport",
        transport,
        "--churn",
        "0.5-1.5",
        "--churn-no-teardown",
        "30",
        "--seed",
        seed,
        "--rr-interval",
        "0.3",
        "-q",
        &server.url(),
    ]);
    assert!(status.success(), "exit status {status}");
    assert!(stdout.contains("churn"), "{stdout}");
    // Let the server threads see the last closes: every session the server
    // set up ends in a TEARDOWN or a close (up to 10 s on a loaded machine).
    let c = &server.counts;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.teardowns.load(Ordering::SeqCst) + c.closed_without_teardown.load(Ordering::SeqCst)
        < c.sessions.load(Ordering::SeqCst)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    (
        report,
        c.sessions.load(Ordering::SeqCst),
        c.teardowns.load(Ordering::SeqCst),
        c.closed_without_teardown.load(Ordering::SeqCst),
    )
}

fn check(transport: &str) {
    let (report, server_sessions, server_teardowns, server_closes) = run(transport, "11");
    assert_eq!(
        u(&report, "clients.failed"),
        0,
        "{}",
        at(&report, "failures")
    );
    assert_eq!(u(&report, "churn.failed"), 0);
    assert_eq!(u(&report, "churn.seed"), 11);
    let sessions = u(&report, "churn.sessions");
    let ended = u(&report, "churn.ended");
    let replaced = u(&report, "churn.replaced");
    let closes = u(&report, "churn.closed_without_teardown");
    let teardowns = u(&report, "churn.teardowns");
    // 6 slots for ≥ 6 s at ≤ 1.5 s (+ setup) each: at least 4 generations.
    assert!(ended >= 4 * CLIENTS, "only {ended} sessions ended");
    assert_eq!(u(&report, "churn.completed"), ended);
    assert_eq!(teardowns + closes, ended);
    assert_eq!(sessions, CLIENTS + replaced);
    // Every ended session was replaced (successors still queued at the end
    // are not counted as sessions).
    assert!(
        replaced <= ended && replaced + CLIENTS >= ended,
        "{replaced} replaced, {ended} ended"
    );
    // About 30% close without TEARDOWN.
    assert!(closes > 0 && closes < ended / 2, "{closes} of {ended}");
    // The server saw every session, one TEARDOWN per session except those
    // that closed without it (the ones still playing at the end of the run
    // are torn down then).
    assert_eq!(server_sessions, sessions);
    assert_eq!(server_closes, closes);
    assert_eq!(server_teardowns, sessions - closes);
    assert!(u(&report, "clients.playing") >= sessions);
    // Records: one per session, unique numbers, lifetimes within bounds.
    let records = at(&report, "sessions").as_array().expect("sessions");
    assert_eq!(records.len() as u64, sessions);
    let mut indices: Vec<u64> = records
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    indices.sort_unstable();
    indices.dedup();
    assert_eq!(indices.len() as u64, sessions);
    for s in records {
        let (slot, generation) = (
            s["slot"].as_u64().unwrap(),
            s["generation"].as_u64().unwrap(),
        );
        assert_eq!(s["index"].as_u64().unwrap(), generation * CLIENTS + slot);
        let lifetime = s["lifetime_ms"].as_f64().unwrap();
        assert!((500.0..=1500.0).contains(&lifetime), "{lifetime}");
        if !s["ended"].is_null() {
            // Ended at its lifetime (the scan runs every 20 ms), with every
            // packet of its play time: 25 video packets/s from PLAY.
            let play = s["play_ms"].as_f64().unwrap();
            assert!(
                play >= lifetime - 1.0 && play < lifetime + 200.0,
                "played {play} ms of {lifetime}"
            );
            let video = s["streams"][0]["packets"].as_u64().unwrap() as f64;
            assert!(
                (video - play / 40.0).abs() <= 3.0,
                "{video} video packets in {play} ms"
            );
            assert_eq!(s["streams"][0]["lost"], 0);
        }
    }
    // The B-frame video is measured through its toffset in every session.
    assert!(u(&report, "media.video.lateness_us.p99") < 5_000);
}

#[test]
fn churn_replaces_sessions_over_udp() {
    check("udp");
}

#[test]
fn churn_replaces_sessions_over_tcp() {
    check("tcp");
}

#[test]
fn churn_seed_repeats_the_lifetimes() {
    let lifetimes = |report: &serde_json::Value| -> Vec<(u64, u64, u64, bool)> {
        let mut v: Vec<_> = at(report, "sessions")
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["generation"].as_u64().unwrap() < 3)
            .map(|s| {
                (
                    s["slot"].as_u64().unwrap(),
                    s["generation"].as_u64().unwrap(),
                    s["lifetime_ms"].as_f64().unwrap().to_bits(),
                    s["ended"] == "close",
                )
            })
            .collect();
        v.sort_unstable();
        v
    };
    let (a, ..) = run("udp", "5");
    let (b, ..) = run("udp", "5");
    let (c, ..) = run("udp", "6");
    assert_eq!(lifetimes(&a), lifetimes(&b));
    assert_ne!(lifetimes(&a), lifetimes(&c));
}
