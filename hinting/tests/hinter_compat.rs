//! `cadence-hint` against references: packet counts of ffmpeg's own
//! `+rtphint` for the same streams, B-frame RTP timestamps against ffprobe's
//! presentation times, moov-first and already-hinted inputs, Apple files,
//! unsupported codecs and the MTU option.

mod hinter_common;

use std::path::Path;
use std::process::Command;

use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plain::schedule_tracks;
use cadence_hinting::packetize::plan::{plan_movie, PlanOptions};
use cadence_hinting::HintError;
use hinter_common::*;

/// ffmpeg's `+rtphint` of `input` by stream copy, into `dir`.
fn ffmpeg_hinted(input: &Path, dir: &Path) -> std::path::PathBuf {
    let out = dir.join("ffmpeg_hinted.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(input)
        .args(["-map", "0", "-c", "copy", "-movflags", "+rtphint"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg +rtphint failed");
    out
}

/// Packets per media track ID of a compiled file.
fn packets_by_media(path: &Path) -> Vec<(u32, usize)> {
    let s = cadence_hinting::open(path).expect("compiles");
    s.tracks
        .iter()
        .map(|t| (t.media_track_id.expect("hint reference"), t.packets.len()))
        .collect()
}

fn within_5_percent(ours: usize, theirs: usize) -> bool {
    (ours as f64 - theirs as f64).abs() <= 0.05 * theirs as f64
}

#[test]
fn packet_counts_within_5_percent_of_ffmpeg() {
    for name in [
        "h264_aac_plain.mp4",
        "h264_bframes_plain.mp4",
        "hevc_aac_plain.mp4",
        "aac_only_plain.mp4",
    ] {
        let input = fixture(name);
        let dir = scratch(&format!("ffmpeg-count-{name}"));
        let theirs = packets_by_media(&ffmpeg_hinted(&input, &dir));
        let ours_file = dir.join("ours.mp4");
        hint_tool_ok(&[input.to_str().unwrap(), "-o", ours_file.to_str().unwrap()]);
        let ours = packets_by_media(&ours_file);
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: hint tracks {ours:?} vs ffmpeg {theirs:?}"
        );
        for (media, n) in &ours {
            let (_, m) = theirs
                .iter()
                .find(|(id, _)| id == media)
                .expect("ffmpeg hinted the same track");
            eprintln!("{name}: media track {media}: {n} packets, ffmpeg {m}");
            assert!(
                within_5_percent(*n, *m),
                "{name} track {media}: {n} packets vs ffmpeg's {m}"
            );
        }
    }
}

#[test]
fn bframe_rtp_timestamps_are_presentation_times() {
    let input = fixture("h264_bframes_plain.mp4");
    let dir = scratch("bframe-timestamps");
    let out = dir.join("hinted.mp4");
    hint_tool_ok(&[input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    // ffprobe's presentation times of the video packets, in decode order.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts",
            "-of",
            "csv=p=0",
        ])
        .arg(&input)
        .output()
        .expect("run ffprobe");
    let rows: Vec<(i64, i64)> = String::from_utf8_lossy(&probe.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(',').map(|x| x.trim().parse::<i64>());
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .collect();
    assert_eq!(rows.len(), 1500);
    assert!(
        rows.iter().any(|(pts, dts)| pts != dts),
        "fixture has B-frames (pts != dts)"
    );
    let movie = Movie::parse(&std::fs::read(&input).expect("read")).expect("parse");
    let ts = movie.tracks[0].timescale as i64;
    let schedule = cadence_hinting::open(&out).expect("compiles");
    let video = &schedule.tracks[0];
    let rtp: Vec<u32> = video
        .packets
        .iter()
        .filter(|p| p.flags.sample_start())
        .map(|p| p.rtp_time)
        .collect();
    assert_eq!(rtp.len(), rows.len());
    for (i, ((pts, _), r)) in rows.iter().zip(&rtp).enumerate() {
        let want = (pts - rows[0].0) * 90_000 / ts;
        let got = i64::from(r.wrapping_sub(rtp[0]) as i32);
        assert_eq!(got, want, "frame {i} (decode order)");
    }
    // All packets of one frame share its timestamp; send times follow decode order.
    assert!(video
        .packets
        .windows(2)
        .all(|w| w[1].flags.sample_start() || w[0].rtp_time == w[1].rtp_time));
    // Send times follow decode order at the frame rate (ffmpeg's hinter
    // instead writes hint samples at presentation times with zero-length
    // 'stts' entries, which bunches its sends).
    let send: Vec<u64> = video
        .packets
        .iter()
        .filter(|p| p.flags.sample_start())
        .map(|p| p.send_time_us)
        .collect();
    // The edit list starts presentation at media time `shift` (the B-frame
    // delay); send times are decode times minus it, from 0.
    let shift = movie.tracks[0].edits.first().map_or(0, |e| e.media_time) * 1_000_000 / ts;
    assert!(shift > 0, "B-frame delay in the edit list");
    for (i, ((_, dts), s)) in rows.iter().zip(&send).enumerate() {
        let want = ((dts - rows[0].1) * 1_000_000 / ts - shift).max(0);
        assert_eq!(*s as i64, want, "frame {i} send time");
    }
    let theirs = cadence_hinting::open(&ffmpeg_hinted(&input, &dir)).expect("ffmpeg file compiles");
    let their_send: Vec<u64> = theirs.tracks[0]
        .packets
        .iter()
        .filter(|p| p.flags.sample_start())
        .map(|p| p.send_time_us)
        .collect();
    let bunched = their_send.windows(2).filter(|w| w[0] == w[1]).count();
    eprintln!(
        "ffmpeg's hint samples sharing a send time with the previous one: {bunched} of {}",
        their_send.len()
    );
}

#[test]
fn moov_first_and_already_hinted_input() {
    // ffmpeg-hinted with moov before mdat: chunk offsets move, old hints are replaced.
    let input = fixture("h264_aac_hinted.mp4");
    let dir = scratch("faststart");
    let faststart = dir.join("faststart.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&input)
        .args([
            "-map",
            "0:0",
            "-map",
            "0:1",
            "-c",
            "copy",
            "-movflags",
            "+rtphint+faststart",
        ])
        .arg(&faststart)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let data = std::fs::read(&faststart).expect("read");
    let movie = Movie::parse(&data).expect("parse");
    assert!(movie.moov.start < movie.mdat[0].start, "moov first");
    assert_eq!(movie.tracks.iter().filter(|t| t.is_hint()).count(), 2);
    let out = dir.join("rehinted.mp4");
    let out_str = out.to_str().unwrap();
    let output = hint_tool(&[faststart.to_str().unwrap(), "-o", out_str]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("replacing 2 existing hint track(s)"));
    for spec in ["v:0", "a:0"] {
        assert_eq!(
            stream_md5(&faststart, spec).expect("md5"),
            stream_md5(&out, spec).expect("md5")
        );
    }
    let plan = plan_movie(&data, &movie, &PlanOptions::default());
    let (plain, session) = schedule_tracks(&data, &movie, &plan).expect("plain schedule");
    let compiled = cadence_hinting::open(&out).expect("compiles");
    assert_eq!(compiled.session_sdp.as_deref(), Some(session.as_str()));
    assert_eq!(compiled.tracks.len(), 2);
    for (a, b) in plain.iter().zip(&compiled.tracks) {
        assert_same_track(a, &data, b, &compiled.map);
    }
    let re = Movie::parse(&std::fs::read(&out).expect("read")).expect("parse");
    assert_eq!(
        re.tracks.iter().filter(|t| t.is_hint()).count(),
        2,
        "old hint tracks replaced, not added"
    );
    assert!(re.moov.start < re.mdat[0].start, "layout kept");
}

#[test]
fn apple_3gp_mpeg4_visual_is_rehinted_and_amr_is_reported() {
    let Some(input) = apple("sample_50kbit.3gp") else {
        return;
    };
    let dir = scratch("apple-3gp");
    let out = dir.join("rehinted.3gp");
    let output = hint_tool(&[input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not hinted") && stderr.contains("'samr'"),
        "AMR track named: {stderr}"
    );
    assert_eq!(stream_md5(&input, "v:0"), stream_md5(&out, "v:0"));
    assert_eq!(stream_md5(&input, "a:0"), stream_md5(&out, "a:0"));
    let compiled = cadence_hinting::open(&out).expect("compiles");
    assert_eq!(compiled.tracks.len(), 1);
    assert!(
        compiled.tracks[0].sdp.contains("MP4V-ES/90000")
            && compiled.tracks[0].sdp.contains("config=")
    );
    let data = std::fs::read(&input).expect("read");
    let movie = Movie::parse(&data).expect("parse");
    let plan = plan_movie(&data, &movie, &PlanOptions::default());
    let (plain, _) = schedule_tracks(&data, &movie, &plan).expect("plain");
    assert_same_track(&plain[0], &data, &compiled.tracks[0], &compiled.map);
}

#[test]
fn unsupported_codecs_fail_loudly() {
    let Some(input) = apple("sample_300kbit.mov") else {
        return;
    };
    let dir = scratch("unsupported");
    let out = dir.join("never.mov");
    let output = hint_tool(&[input.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("'SVQ3'")
            && stderr.contains("'QDM2'")
            && stderr.contains("nothing written"),
        "{stderr}"
    );
    assert!(!out.exists());
    let data = std::fs::read(&input).expect("read");
    let movie = Movie::parse(&data).expect("parse");
    let plan = plan_movie(&data, &movie, &PlanOptions::default());
    match schedule_tracks(&data, &movie, &plan) {
        Err(HintError::Unsupported { reason, .. }) => assert!(reason.contains("SVQ3"), "{reason}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // A track named with --track that cannot be hinted is an error too.
    let plain = fixture("h264_aac_plain.mp4");
    let output = hint_tool(&[
        plain.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--track",
        "1",
        "--track",
        "9",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("track 9 not hinted: no such track"));
    assert!(!out.exists());
}

#[test]
fn mtu_bounds_every_packet_and_info_reports_it() {
    let input = fixture("h264_aac_plain.mp4");
    let dir = scratch("mtu");
    let out = dir.join("mtu600.mp4");
    hint_tool_ok(&[
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--mtu",
        "600",
        "--track",
        "1",
    ]);
    let s = cadence_hinting::open(&out).expect("compiles");
    assert_eq!(s.tracks.len(), 1);
    let largest = s.tracks[0]
        .packets
        .iter()
        .map(|p| p.payload_len + 12)
        .max()
        .expect("packets");
    assert!(largest <= 600 && largest > 500, "largest packet {largest}");
    assert_eq!(s.tracks[0].max_packet_size, largest);
    let info = hint_tool_ok(&["--info", out.to_str().unwrap()]);
    let n = s.tracks[0].packets.len();
    assert!(info.contains(&format!("packets {n} (")), "{info}");
    assert!(
        info.contains(&format!("max packet {largest} bytes")),
        "{info}"
    );
    assert!(info.contains("a=rtpmap:96 H264/90000"), "{info}");
    assert!(info.contains("b=AS:"), "{info}");
    let bad = hint_tool(&[
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--mtu",
        "40",
    ]);
    assert!(!bad.status.success());
}
