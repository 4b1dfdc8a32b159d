//! Round trips of `cadence-hint` on ffmpeg-generated plain files: the hinted
//! output opens in ffprobe and the mp4box crate, keeps every media sample
//! bit for bit, compiles to exactly the schedule `schedule_plain` builds from
//! the plain input, and `--strip` gives the media back unchanged.

mod hinter_common;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plain::schedule_plain;
use cadence_hinting::{FileSchedule, PacketFlags};
use hinter_common::*;

fn map(path: &Path) -> Arc<memmap2::Mmap> {
    let file = File::open(path).expect("open");
    // SAFETY: test files are not modified while mapped.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    Arc::new(map)
}

/// Hints `name`, checks everything, strips it again; returns (plain
/// schedule of the input, compiled schedule of the output).
fn round_trip(name: &str, media_streams: &[&str]) -> (FileSchedule, FileSchedule) {
    let input = fixture(name);
    let dir = scratch(&format!("roundtrip-{name}"));
    let hinted = dir.join("hinted.mp4");
    let report = hint_tool_ok(&[input.to_str().unwrap(), "-o", hinted.to_str().unwrap()]);
    assert!(report.contains("hint track"), "{report}");

    // ffprobe: the original streams first, unchanged, then one 'rtp ' stream per media stream.
    let before = probe_streams(&input);
    let after = probe_streams(&hinted);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "original streams keep their order and codecs"
    );
    assert_eq!(
        after.len(),
        2 * before.len(),
        "one hint track per media track: {after:?}"
    );
    assert!(
        after[before.len()..].iter().all(|(_, tag)| tag == "rtp "),
        "{after:?}"
    );

    // Media samples unchanged, as ffmpeg reads them.
    for spec in media_streams {
        let a = stream_md5(&input, spec).expect("input stream md5");
        assert_eq!(
            Some(a),
            stream_md5(&hinted, spec),
            "stream {spec} of {name}"
        );
    }

    // The written hint tracks compile to what cadence serves for the plain file.
    let plain = schedule_plain(map(&input), 1450).expect("schedule_plain");
    let compiled = cadence_hinting::open(&hinted).expect("hinted file compiles");
    assert_eq!(plain.tracks.len(), compiled.tracks.len());
    assert_eq!(plain.session_sdp, compiled.session_sdp);
    for (a, b) in plain.tracks.iter().zip(&compiled.tracks) {
        assert!(!a.packets.is_empty());
        assert_same_track(a, &plain.map, b, &compiled.map);
        assert!(b.packets.iter().all(|p| p.payload_len + 12 <= 1450));
        assert!(b
            .packets
            .windows(2)
            .all(|w| w[0].send_time_us <= w[1].send_time_us));
    }

    // Independent reader: mp4box sees the same media samples and the hint samples.
    let a = mp4box::track_samples_from_path(&input).expect("mp4box reads input");
    let b = mp4box::track_samples_from_path(&hinted).expect("mp4box reads output");
    let (in_bytes, out_bytes) = (
        std::fs::read(&input).expect("read"),
        std::fs::read(&hinted).expect("read"),
    );
    for t in &a {
        let u = b
            .iter()
            .find(|u| u.track_id == t.track_id)
            .expect("media track kept");
        assert_eq!(
            (t.handler_type.as_str(), t.sample_count),
            (u.handler_type.as_str(), u.sample_count)
        );
        for (s, r) in t.samples.iter().zip(&u.samples) {
            let x = &in_bytes[s.file_offset as usize..][..s.size as usize];
            let y = &out_bytes[r.file_offset as usize..][..r.size as usize];
            assert!(
                x == y && s.dts == r.dts && s.pts == r.pts && s.is_sync == r.is_sync,
                "track {} sample {}",
                t.track_id,
                s.index
            );
        }
    }
    let out_movie = Movie::parse(&out_bytes).expect("output parses");
    for h in compiled.tracks.iter() {
        let u = b
            .iter()
            .find(|u| u.track_id == h.track_id)
            .expect("hint track visible to mp4box");
        assert_eq!(u.handler_type, "hint");
        // mp4box's hint samples, read with the hint sample parser: every one
        // with packets starts a compiled hint sample; at most the first (a
        // lead-in before the first sent media sample) is empty.
        let mut with_packets = 0;
        for (i, s) in u.samples.iter().enumerate() {
            let bytes = &out_bytes[s.file_offset as usize..][..s.size as usize];
            let parsed = cadence_hinting::hint_sample::parse(bytes).expect("hint sample parses");
            assert!(
                i == 0 || !parsed.packets.is_empty(),
                "hint sample {i} of track {} is empty",
                h.track_id
            );
            with_packets += usize::from(!parsed.packets.is_empty());
        }
        let starts = h.packets.iter().filter(|p| p.flags.sample_start()).count();
        assert_eq!(with_packets, starts, "hint samples of track {}", h.track_id);
        let track = out_movie.track(h.track_id).expect("hint track");
        assert_eq!(track.samples.len(), u.sample_count);
    }
    let size = out_bytes.len() as u64;
    mp4box::get_boxes(&mut std::io::Cursor::new(&out_bytes), size, true)
        .expect("mp4box decodes every box");

    // Strip: no hint track left, media unchanged, hint-only mdat dropped.
    let stripped = dir.join("stripped.mp4");
    let report = hint_tool_ok(&[
        "--strip",
        hinted.to_str().unwrap(),
        "-o",
        stripped.to_str().unwrap(),
    ]);
    assert!(
        report.contains(&format!("removed {} hint track(s)", compiled.tracks.len())),
        "{report}"
    );
    assert_eq!(probe_streams(&stripped), before);
    for spec in media_streams {
        assert_eq!(
            stream_md5(&input, spec),
            stream_md5(&stripped, spec),
            "stripped stream {spec}"
        );
    }
    let s_bytes = std::fs::read(&stripped).expect("read");
    let movie = Movie::parse(&s_bytes).expect("stripped parses");
    assert!(movie.tracks.iter().all(|t| !t.is_hint()));
    assert!(movie.session_sdp.is_none());
    assert_eq!(
        s_bytes.len(),
        in_bytes.len(),
        "the stripped file is as large as the plain input"
    );
    (plain, compiled)
}

#[test]
fn h264_aac_44k_round_trip() {
    let (_, c) = round_trip("h264_aac_plain.mp4", &["v:0", "a:0"]);
    assert!(
        c.tracks[0].sdp.contains("H264/90000") && c.tracks[0].sdp.contains("sprop-parameter-sets=")
    );
    assert!(
        c.tracks[1].sdp.contains("mpeg4-generic/44100/2")
            && c.tracks[1].sdp.contains("config=1210")
    );
}

#[test]
fn h264_bframes_aac_48k_round_trip() {
    let (_, c) = round_trip("h264_bframes_plain.mp4", &["v:0", "a:0"]);
    assert!(c.tracks[1].sdp.contains("mpeg4-generic/48000/2"));
}

#[test]
fn hevc_aac_round_trip() {
    let (_, c) = round_trip("hevc_aac_plain.mp4", &["v:0", "a:0"]);
    let sdp = &c.tracks[0].sdp;
    assert!(
        sdp.contains("H265/90000") && sdp.contains("sprop-vps=") && sdp.contains("sprop-pps="),
        "{sdp}"
    );
}

#[test]
fn aac_only_round_trip() {
    let (p, _) = round_trip("aac_only_plain.mp4", &["a:0"]);
    assert_eq!(p.tracks.len(), 1);
    assert_eq!(p.tracks[0].clock_rate, 48_000);
    // Every AAC packet is a complete hint sample with the marker set.
    assert!(p.tracks[0]
        .packets
        .iter()
        .all(|x| x.flags.marker() && x.flags.0 & PacketFlags::SAMPLE_START != 0));
}
