//! Streams written by the hinter, and plain files served without hinting,
//! through `cadence` to ffmpeg over UDP and TCP.
//!
//! For every ffmpeg fixture (H.264 with and without B-frames, HEVC, AAC
//! 44.1/48 kHz, audio only) the plain file and the same file hinted with
//! `cadence_hinting::writer` (the code of `cadence-hint`) are served. ffmpeg
//! pulls the first seconds and writes, per stream, what it got:
//! - video: every decoded frame's presentation time and MD5 (`framemd5`),
//!   which must equal the source file's, frame for frame, in order;
//! - video and audio packets (`-c copy`, `framecrc`): presentation times
//!   relative to the first packet, which must equal the source's in decode
//!   order (the B-frame check at RTP clock precision); AAC access units must
//!   also keep their size and CRC.
//!
//! An un-hinted file in a codec without packetizer gets 415 on DESCRIBE.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plan::{plan_movie, PlanOptions};
use common::media::{self, Source};
use common::server::{Server, TempDir};
use common::tools::{run_with_limit, Lower};

/// Seconds of each stream ffmpeg records.
const SECS: f64 = 5.0;

/// One line of ffmpeg's framecrc/framemd5 output.
#[derive(Debug, Clone, PartialEq)]
struct FrameLine {
    dts: i64,
    pts: i64,
    size: u64,
    hash: String,
}

/// Per-stream lines and time base of a framecrc/framemd5 file.
#[derive(Debug, Default)]
struct Frames {
    tb: (i64, i64),
    lines: Vec<FrameLine>,
}

fn parse_frames(text: &str) -> Frames {
    let mut f = Frames::default();
    for line in text.lines() {
        if let Some(tb) = line.strip_prefix("#tb 0: ") {
            let (n, d) = tb.trim().split_once('/').expect("time base n/d");
            f.tb = (n.parse().expect("tb num"), d.parse().expect("tb den"));
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        f.lines.push(FrameLine {
            dts: cols[1].parse().expect("dts"),
            pts: cols[2].parse().expect("pts"),
            size: cols[4].parse().expect("size"),
            hash: cols[5].to_string(),
        });
    }
    f
}

/// Output arguments of ffmpeg for one stream kind: decoded video MD5s,
/// copied video packets, copied audio packets.
/// `secs` is the duration each output keeps.
fn outputs(cmd: &mut Command, dir: &Path, has_video: bool, has_audio: bool, secs: f64) {
    let t = format!("{secs:.3}");
    if has_video {
        cmd.args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-t",
            &t,
            "-f",
            "framemd5",
        ])
        .arg(dir.join("video_md5.txt"));
        cmd.args(["-map", "0:v:0", "-c", "copy", "-t", &t, "-f", "framecrc"])
            .arg(dir.join("video_pkt.txt"));
    }
    if has_audio {
        cmd.args(["-map", "0:a:0", "-c", "copy", "-t", &t, "-f", "framecrc"])
            .arg(dir.join("audio_pkt.txt"));
    }
}

fn read_frames(dir: &Path, name: &str) -> Frames {
    parse_frames(&std::fs::read_to_string(dir.join(name)).unwrap_or_default())
}

/// What ffmpeg reads from the source file itself (the reference).
struct Reference {
    video_md5: Frames,
    video_pkt: Frames,
    audio_pkt: Frames,
}

fn reference(src: &Path, dir: &Path, has_video: bool, has_audio: bool) -> Reference {
    std::fs::create_dir_all(dir).expect("dir");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-i"]).arg(src);
    outputs(&mut cmd, dir, has_video, has_audio, SECS);
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert!(
        run.status.is_some_and(|s| s.success()),
        "ffmpeg on {}: {}",
        src.display(),
        run.stderr
    );
    Reference {
        video_md5: read_frames(dir, "video_md5.txt"),
        video_pkt: read_frames(dir, "video_pkt.txt"),
        audio_pkt: read_frames(dir, "audio_pkt.txt"),
    }
}

/// ffmpeg's AV_NOPTS_VALUE, printed for packets without a timestamp.
const NOPTS: i64 = i64::MIN;

/// Presentation time of `line` in µs, `None` without a timestamp.
fn time_us(f: &Frames, line: &FrameLine) -> Option<i64> {
    (line.pts != NOPTS).then(|| {
        (i128::from(line.pts) * 1_000_000 * i128::from(f.tb.0) / i128::from(f.tb.1)) as i64
    })
}

/// The lines whose presentation time is not negative (ffmpeg reports the
/// audio frames an edit list cuts from the start at negative times).
fn presented(f: &Frames) -> Frames {
    Frames {
        tb: f.tb,
        lines: f
            .lines
            .iter()
            .filter(|l| time_us(f, l).is_none_or(|t| t >= 0))
            .cloned()
            .collect(),
    }
}

/// Compares received lines with the source's, index by index, and returns
/// every mismatch. `same_bytes` compares size and hash of every line. Times
/// are compared where both exist and the source time is at least
/// `from_us`, after removing the stream's constant offset (the median
/// difference): ffmpeg places each stream on its own timeline from RTP-Info
/// and the first RTCP sender report, so a constant shift is not a timestamp
/// error, while a wrong B-frame time or a missing frame is. `tolerance_us`
/// bounds what remains. Returns the mismatches and the offset, µs.
fn mismatches(
    got: &Frames,
    want: &Frames,
    tolerance_us: i64,
    same_bytes: bool,
    from_us: i64,
) -> (Vec<String>, i64) {
    let mut bad = Vec::new();
    let pairs: Vec<(usize, i64, i64)> = got
        .lines
        .iter()
        .zip(&want.lines)
        .enumerate()
        .filter_map(|(i, (g, w))| Some((i, time_us(got, g)?, time_us(want, w)?)))
        .filter(|&(_, _, wt)| wt >= from_us)
        .collect();
    let mut diffs: Vec<i64> = pairs.iter().map(|&(_, g, w)| g - w).collect();
    diffs.sort_unstable();
    let offset = diffs.get(diffs.len() / 2).copied().unwrap_or(0);
    for (i, (g, w)) in got.lines.iter().zip(&want.lines).enumerate() {
        if same_bytes && (g.size, &g.hash) != (w.size, &w.hash) {
            bad.push(format!(
                "#{i}: {} bytes {} vs source {} bytes {}",
                g.size, g.hash, w.size, w.hash
            ));
        }
    }
    for (i, g, w) in pairs {
        if (g - w - offset).abs() > tolerance_us {
            bad.push(format!(
                "#{i}: at {g} µs, source {w} µs (stream offset {offset} µs)"
            ));
        }
    }
    (bad, offset)
}

/// Asserts that every reference line arrived (`got` is at least as long)
/// and nothing differs.
fn check(label: &str, what: &str, got: &Frames, want: &Frames, bad: Vec<String>) {
    assert!(
        got.lines.len() >= want.lines.len(),
        "{label}: {} {what} received, the source's first {SECS} s have {}",
        got.lines.len(),
        want.lines.len()
    );
    assert!(
        bad.is_empty(),
        "{label}: {} of {} {what} differ from the source: {}",
        bad.len(),
        want.lines.len(),
        bad.iter().take(6).cloned().collect::<Vec<_>>().join("; ")
    );
    eprintln!(
        "{label}: all {} {what} of the first {SECS} s match the source",
        want.lines.len()
    );
}

/// Pulls `url` over `lower` and compares with `reference`.
fn pull_and_compare(url: &str, lower: Lower, dir: &Path, r: &Reference, label: &str) {
    std::fs::create_dir_all(dir).expect("dir");
    let has_video = !r.video_md5.lines.is_empty();
    let has_audio = !r.audio_pkt.lines.is_empty();
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-v",
        "error",
        "-y",
        "-nostdin",
        "-rtsp_transport",
        lower.as_str(),
        "-timeout",
        "5000000",
        "-i",
        url,
    ]);
    // One second more than the reference, so that every reference frame
    // must have arrived whatever offset ffmpeg gives each stream.
    outputs(&mut cmd, dir, has_video, has_audio, SECS + 1.0);
    let run = run_with_limit(cmd, Duration::from_secs_f64(SECS + 30.0));
    assert!(
        run.status.is_some_and(|s| s.success()),
        "{label}: ffmpeg failed ({:?}): {}",
        run.status,
        run.stderr
    );
    assert!(
        run.stderr.trim().is_empty(),
        "{label}: ffmpeg printed errors:\n{}",
        run.stderr
    );
    let mut offsets = Vec::new();
    if has_video {
        // Decoded pictures: identical, in order, at the source's times (the
        // frame time base is 1/25 s; the first two frames may come before
        // ffmpeg's RTCP timing sync).
        let got = read_frames(dir, "video_md5.txt");
        let (bad, _) = mismatches(&got, &r.video_md5, 1_000, true, 80_000);
        check(label, "decoded frames", &got, &r.video_md5, bad);
        // Packets in decode order with their presentation times: the B-frame
        // check, at RTP clock precision.
        let got = read_frames(dir, "video_pkt.txt");
        let (bad, offset) = mismatches(&got, &r.video_pkt, 2_000, false, 80_000);
        check(label, "video packets", &got, &r.video_pkt, bad);
        offsets.push(offset);
    }
    if has_audio {
        // AAC access units: same bytes, same times, from 200 ms on (the first
        // RTP packet's units precede ffmpeg's RTCP timing sync). Priming
        // units that end before the edit list's presentation start are not
        // sent.
        let got = read_frames(dir, "audio_pkt.txt");
        let want = presented(&r.audio_pkt);
        let (bad, offset) = mismatches(&got, &want, 2_000, true, 200_000);
        check(label, "audio access units", &got, &want, bad);
        offsets.push(offset);
    }
    if let [video, audio] = offsets[..] {
        eprintln!(
            "{label}: audio/video offset after RTCP sync: {} µs",
            audio - video
        );
        // Sender reports map every track's RTP time to the same wall clock,
        // so ffmpeg lines audio up with video to within a millisecond,
        // B-frames included.
        assert!(
            (audio - video).abs() <= 1_000,
            "{label}: audio/video out of sync by {} µs",
            audio - video
        );
    }
}

/// The fixtures: (file, has video, has audio).
const FIXTURES: [(&str, bool, bool); 4] = [
    ("h264_aac_plain.mp4", true, true),
    ("h264_bframes_plain.mp4", true, true),
    ("hevc_aac_plain.mp4", true, true),
    ("aac_only_plain.mp4", false, true),
];

/// Writes the hinted copy of `src` into `dir` with the hinter's writer.
fn hint_into(src: &Path, dir: &Path) -> PathBuf {
    let data = std::fs::read(src).expect("read fixture");
    let movie = Movie::parse(&data).expect("parse fixture");
    let plan = plan_movie(&data, &movie, &PlanOptions::default());
    assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    let name = src
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .replace("_plain", "_hinter");
    let out = dir.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).expect("create"));
    cadence_hinting::writer::write_hinted(&data, &movie, &plan, &mut file).expect("write hinted");
    file.flush().expect("flush");
    out
}

#[test]
fn plain_and_hinted_files_stream_frame_exact_over_udp_and_tcp() {
    let hinted_dir = TempDir::new("hinter-out");
    let work = TempDir::new("hinter-pulls");
    let mut sources = Vec::new();
    let mut cases = Vec::new();
    for (name, has_video, has_audio) in FIXTURES {
        let plain = media::fixture(name);
        let hinted = hint_into(&plain, hinted_dir.path());
        let r = Arc::new(reference(
            &plain,
            &work.path().join(format!("ref-{name}")),
            has_video,
            has_audio,
        ));
        for path in [plain, hinted] {
            let served = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            sources.push(Source {
                name: served.clone(),
                path,
                fps: 25.0,
            });
            cases.push((served, r.clone()));
        }
    }
    let server = Arc::new(Server::start(&sources));
    // UDP pulls in parallel, then TCP pulls (2 cores shared with the server).
    for lower in [Lower::Udp, Lower::Tcp] {
        let mut threads = Vec::new();
        for (served, r) in &cases {
            let (server, served, r) = (server.clone(), served.clone(), r.clone());
            let dir = work.path().join(format!("{served}-{}", lower.as_str()));
            let label = format!("{served} over {}", lower.as_str());
            threads.push(common::spawn_named(&label.clone(), move || {
                pull_and_compare(&server.url(&served), lower, &dir, &r, &label);
            }));
        }
        common::join_all(threads);
    }
}

#[test]
fn unhinted_file_in_unsupported_codec_gets_415() {
    let Some(apple) = media::apple(media::APPLE_SVQ3) else {
        return;
    };
    // Strip the Apple hint tracks: a plain Sorenson Video 3 + QDesign file.
    let dir = TempDir::new("hinter-415");
    let data = std::fs::read(&apple).expect("read");
    let movie = Movie::parse(&data).expect("parse");
    let plain = dir.path().join("svq3_plain.mov");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&plain).expect("create"));
    cadence_hinting::writer::write_stripped(&data, &movie, &mut out).expect("strip");
    out.flush().expect("flush");
    drop(out);
    let server = Server::start(&[Source {
        name: "svq3_plain.mov".into(),
        path: plain,
        fps: 30.0,
    }]);
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let url = server.url("svq3_plain.mov");
    write!(
        s,
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
    )
    .expect("send");
    let mut status = String::new();
    BufReader::new(&s).read_line(&mut status).expect("reply");
    assert!(
        status.starts_with("RTSP/1.0 415"),
        "DESCRIBE of a plain SVQ3 file: {status}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let log = server.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("svq3_plain.mov") && l.contains("SVQ3"))
        .collect();
    assert!(
        !lines.is_empty(),
        "a log line names the file and the codec:\n{log}"
    );
}
