//! Shared helpers of the hinter tests: fixtures, running `cadence-hint`,
//! ffmpeg/ffprobe probes, and comparing schedules byte for byte.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use cadence_hinting::{SegmentSource, TrackSchedule};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

static FIXTURES: Mutex<()> = Mutex::new(());

/// `target/fixtures/<name>`, generating the fixtures with
/// `scripts/make-fixtures` when any is missing.
pub fn fixture(name: &str) -> PathBuf {
    let _guard = FIXTURES.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo_root().join("target/fixtures");
    let names = [
        "h264_aac_plain.mp4",
        "h264_bframes_plain.mp4",
        "hevc_aac_plain.mp4",
        "aac_only_plain.mp4",
        "h264_aac_hinted.mp4",
    ];
    if !names.iter().all(|n| dir.join(n).is_file()) {
        let status = Command::new(repo_root().join("scripts/make-fixtures"))
            .status()
            .expect("run scripts/make-fixtures (needs ffmpeg)");
        assert!(status.success(), "scripts/make-fixtures failed");
    }
    dir.join(name)
}

/// An Apple sample file from `../shared/media/apple`, or `None` after a
/// visible notice when absent (a failure with `CI=true`).
pub fn apple(name: &str) -> Option<PathBuf> {
    let path = repo_root().join("../shared/media/apple").join(name);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("test media {} missing (CI=true)", path.display());
    }
    eprintln!("NOTICE: skipping: {} not found", path.display());
    None
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = repo_root().join("target/hinter-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Runs `cadence-hint` with `args`.
pub fn hint_tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cadence-hint"))
        .args(args)
        .output()
        .expect("run cadence-hint")
}

/// Runs `cadence-hint` and asserts success, returning stdout.
pub fn hint_tool_ok(args: &[&str]) -> String {
    let out = hint_tool(args);
    assert!(
        out.status.success(),
        "cadence-hint {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ffmpeg -i FILE -map 0:<spec> -c copy -f md5 -`, or `None` when the file
/// has no such stream.
pub fn stream_md5(file: &Path, spec: &str) -> Option<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", &format!("0:{spec}"), "-c", "copy", "-f", "md5", "-"])
        .output()
        .expect("run ffmpeg");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && text.starts_with("MD5=")).then_some(text)
}

/// ffprobe's (codec_name, codec_tag_string) per stream; panics when ffprobe
/// cannot open the file.
pub fn probe_streams(file: &Path) -> Vec<(String, String)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_tag_string",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe cannot open {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split(',');
            (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The payload bytes of every packet of `track`, segments resolved against
/// `file` (the schedule's mapped file) and the track's arena.
pub fn payloads(file: &[u8], track: &TrackSchedule) -> Vec<Vec<u8>> {
    track
        .packets
        .iter()
        .map(|p| {
            let mut v = Vec::with_capacity(p.payload_len as usize);
            for s in track.segments_of(p) {
                let (from, to) = (s.offset as usize, s.offset as usize + s.len as usize);
                match s.source {
                    SegmentSource::File => v.extend_from_slice(&file[from..to]),
                    SegmentSource::Arena => v.extend_from_slice(&track.arena[from..to]),
                }
            }
            assert_eq!(
                v.len(),
                p.payload_len as usize,
                "payload_len matches the segments"
            );
            v
        })
        .collect()
}

/// Asserts that two schedules of the same track send the same packets: send
/// and RTP times, payload type, flags and payload bytes, plus the same track
/// metadata. `a_file`/`b_file` are the files their File segments index.
pub fn assert_same_track(a: &TrackSchedule, a_file: &[u8], b: &TrackSchedule, b_file: &[u8]) {
    assert_eq!(a.track_id, b.track_id);
    assert_eq!(a.media_track_id, b.media_track_id);
    assert_eq!(a.clock_rate, b.clock_rate);
    assert_eq!(a.max_packet_size, b.max_packet_size);
    assert_eq!(a.sdp, b.sdp);
    assert_eq!(a.duration_us, b.duration_us);
    assert_eq!(
        a.packets.len(),
        b.packets.len(),
        "track {} packet count",
        a.track_id
    );
    let (pa, pb) = (payloads(a_file, a), payloads(b_file, b));
    for (i, (p, q)) in a.packets.iter().zip(&b.packets).enumerate() {
        assert_eq!(
            (p.send_time_us, p.rtp_time, p.payload_type, p.flags),
            (q.send_time_us, q.rtp_time, q.payload_type, q.flags),
            "track {} packet {i}",
            a.track_id
        );
        assert!(
            pa[i] == pb[i],
            "track {} packet {i}: payload differs",
            a.track_id
        );
    }
}
