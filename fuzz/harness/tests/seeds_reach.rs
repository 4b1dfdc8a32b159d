//! The seeds get where they should: recorded sessions play (their
//! placeholders filled in), credentials are accepted, the sample compiles
//! within the fuzzing budget. A seed that stops at the first error would
//! leave the fuzzer exploring error paths only.

use cadence_fuzz_harness::access::authorization_status;
use cadence_fuzz_harness::media::{
    hint_compile_tracks, plain_schedule_tracks, schedule_cache_tracks,
};
use cadence_fuzz_harness::seeds::{from_sample, Seed};
use cadence_fuzz_harness::session::rtsp_session_statuses;

fn seed<'a>(all: &'a [Seed], target: &str, name: &str) -> &'a [u8] {
    &all.iter()
        .find(|s| s.target == target && s.name == name)
        .unwrap_or_else(|| panic!("no seed {target}/{name}"))
        .bytes
}

#[test]
fn recorded_sessions_play() {
    let all = from_sample().expect("seeds");
    for name in [
        "ffmpeg-udp",
        "ffmpeg-udp-plain",
        "ffmpeg-digest",
        "ffmpeg-staff",
        "ffmpeg-basic",
        "gstreamer-tcp",
        "signed-url",
        "raw-default-control",
    ] {
        let statuses = rtsp_session_statuses(seed(&all, "rtsp_session", name));
        assert!(statuses.len() >= 6, "{name}: {statuses:?}");
        assert!(statuses.iter().all(|&s| s == 200), "{name}: {statuses:?}");
    }
    let corrupt = rtsp_session_statuses(seed(&all, "rtsp_session", "ffmpeg-corrupt"));
    assert_eq!(corrupt[0], 200, "OPTIONS: {corrupt:?}");
    assert!(corrupt[1] >= 400, "DESCRIBE of a corrupt file: {corrupt:?}");
    let tunnel = rtsp_session_statuses(seed(&all, "rtsp_session", "tunnel-post"));
    assert_eq!(tunnel, vec![200, 200], "tunnelled DESCRIBE and OPTIONS");
}

#[test]
fn credentials_are_decided_as_the_rules_say() {
    let all = from_sample().expect("seeds");
    for (name, status) in [
        ("digest-alice", 200),
        ("digest-stale", 401),
        ("digest-qop-bob", 200),
        ("basic-alice", 200),
        ("signed-url", 200),
        ("protected-users-file", 404),
        ("private-subnet", 403),
    ] {
        assert_eq!(
            authorization_status(seed(&all, "authorization", name)),
            status,
            "{name}"
        );
    }
}

#[test]
fn media_seeds_compile_within_the_fuzzing_budget() {
    let all = from_sample().expect("seeds");
    assert_eq!(
        hint_compile_tracks(seed(&all, "hint_compile", "sample.mp4")),
        Some(2)
    );
    assert_eq!(
        hint_compile_tracks(seed(&all, "hint_compile", "sample-plain.mp4")),
        None
    );
    assert_eq!(
        plain_schedule_tracks(seed(&all, "plain_schedule", "sample-plain.mp4.mtu1450")),
        Some(2)
    );
    assert_eq!(
        plain_schedule_tracks(seed(&all, "plain_schedule", "sample-plain.mp4.mtu576")),
        Some(2)
    );
    assert_eq!(
        schedule_cache_tracks(seed(&all, "schedule_cache", "sample-plain.mp4.schedule")),
        Some(2)
    );
}

/// The recorded connections of `scripts/fuzz-capture` (committed under
/// fuzz/seeds/rtsp_session) replay with every request accepted, apart from
/// the first answers of a Digest exchange (401 until the client has the
/// challenge).
#[test]
fn captured_sessions_play() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds/rtsp_session");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).expect("fuzz/seeds/rtsp_session") {
        let path = f.expect("entry").path();
        let data = std::fs::read(&path).expect("read");
        if data.windows(4).any(|w| w == b"GET ") {
            // The GET half of a tunnel carries no request.
            continue;
        }
        let statuses = rtsp_session_statuses(&data);
        let name = path.display();
        let accepted: Vec<u16> = statuses.iter().copied().skip_while(|&s| s == 401).collect();
        assert!(!accepted.is_empty(), "{name}: {statuses:?}");
        assert!(accepted.iter().all(|&s| s == 200), "{name}: {statuses:?}");
        n += 1;
    }
    assert!(n >= 6, "only {n} recorded sessions in {}", dir.display());
}
