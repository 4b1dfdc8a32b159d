//! The hint-track reader and schedule compiler against real hinted files:
//! Apple-hinted MP4/MOV/3GP (../shared/media/apple) and ffmpeg `+rtphint`
//! output (target/fixtures, media/sample.mp4).
//!
//! Checks packet counts and payload bytes against Apple's 'hinf' statistics,
//! against the hint samples' own packet tables, media coverage by sample
//! constructors (ffmpeg files), payload syntax per codec (H.264 RFC 6184,
//! AAC RFC 3640, MP4V-ES RFC 6416, AMR RFC 4867), RTP times against media
//! decode/composition times, markers, sync flags, and byte-identical results
//! for files rewritten with co64 / version-1 boxes / 64-bit and size-0 mdat.

mod hint_common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use cadence_hinting::mp4::{BoxIter, BoxRef, FourCC, Movie, Track};
use cadence_hinting::{
    FileSchedule, HintError, SegmentSource, TrackSchedule, MAX_SEGMENTS_PER_PACKET,
};
use hint_common::*;

fn load(path: &Path) -> (FileSchedule, Movie) {
    let s = cadence_hinting::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m = movie(&s.map);
    (s, m)
}

/// Packet index ranges of each hint sample that has packets (split at
/// SAMPLE_START flags).
fn groups(t: &TrackSchedule) -> Vec<Range<usize>> {
    let mut v: Vec<Range<usize>> = Vec::new();
    for (i, p) in t.packets.iter().enumerate() {
        if p.flags.sample_start() {
            v.push(i..i + 1);
        } else {
            v.last_mut().expect("first packet starts a sample").end = i + 1;
        }
    }
    v
}

fn payload(f: &FileSchedule, t: &TrackSchedule, i: usize) -> Vec<u8> {
    let p = &t.packets[i];
    let mut out = Vec::with_capacity(p.payload_len as usize);
    for s in t.segments_of(p) {
        out.extend_from_slice(f.segment_bytes(t, s).expect("segment inside its buffer"));
    }
    out
}

fn rtpmap(t: &TrackSchedule) -> String {
    t.sdp
        .lines()
        .find_map(|l| l.strip_prefix("a=rtpmap:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn hint_track<'m>(m: &'m Movie, t: &TrackSchedule) -> &'m Track {
    m.track(t.track_id).expect("hint track in movie")
}

#[test]
fn apple_files_match_hinf_statistics() {
    let Some(files) = apple_files() else { return };
    for path in files {
        let (f, m) = load(&path);
        assert_eq!(f.tracks.len(), 2, "{}", path.display());
        for t in &f.tracks {
            let stats = hint_track(&m, t)
                .hint_stats
                .clone()
                .expect("Apple hint tracks carry hinf");
            let name = format!("{} track {}", path.display(), t.track_id);
            println!(
                "{name}: {} packets, {} payload bytes, arena {} B, {} segments (hinf: {:?} packets, {:?} bytes)",
                t.packets.len(),
                t.payload_bytes(),
                t.arena.len(),
                t.segments.len(),
                stats.packets,
                stats.payload_bytes
            );
            assert_eq!(
                Some(t.packets.len() as u64),
                stats.packets,
                "{name}: packets vs hinf nump"
            );
            assert_eq!(
                Some(t.payload_bytes()),
                stats.payload_bytes,
                "{name}: payload vs hinf tpyl"
            );
            let pmax = stats.max_packet_size.expect("pmax");
            let largest = t
                .packets
                .iter()
                .map(|p| p.payload_len + 12)
                .max()
                .unwrap_or(0);
            assert_eq!(largest, pmax, "{name}: largest packet vs hinf pmax");
            if let Some(total) = stats.total_bytes {
                assert_eq!(
                    total,
                    t.payload_bytes() + 12 * t.packets.len() as u64,
                    "{name}: trpy"
                );
            }
        }
        assert!(
            f.session_sdp
                .as_deref()
                .is_some_and(|s| s.starts_with("b=AS:")),
            "{}",
            path.display()
        );
    }
}

/// Checks shared by every hinted file.
fn check_schedule(path: &Path, f: &FileSchedule, m: &Movie) {
    let data: &[u8] = &f.map;
    for t in &f.tracks {
        let name = format!("{} track {}", path.display(), t.track_id);
        let hint = hint_track(m, t);
        let views = hint_views(data, hint);
        let declared: usize = views.iter().map(|v| v.packets).sum();
        assert_eq!(
            t.packets.len(),
            declared,
            "{name}: packets vs hint sample entry counts"
        );
        let gs = groups(t);
        let with_packets: Vec<_> = views.iter().filter(|v| v.packets > 0).collect();
        assert_eq!(
            gs.len(),
            with_packets.len(),
            "{name}: SAMPLE_START per hint sample"
        );
        assert!(t.sdp.starts_with("m="), "{name}: track SDP");
        assert_eq!(
            t.clock_rate,
            rtp_clock_from_sdp(t),
            "{name}: tims vs rtpmap clock"
        );

        let mut last = 0;
        for (i, p) in t.packets.iter().enumerate() {
            assert!(
                p.send_time_us >= last,
                "{name}: packet {i} send time goes back"
            );
            last = p.send_time_us;
            assert!(
                p.segment_count as usize <= MAX_SEGMENTS_PER_PACKET && p.segment_count > 0,
                "{name}: {i}"
            );
            let sum: u64 = t.segments_of(p).iter().map(|s| u64::from(s.len)).sum();
            assert_eq!(
                sum,
                u64::from(p.payload_len),
                "{name}: packet {i} segment lengths"
            );
            assert_eq!(payload(f, t, i).len(), p.payload_len as usize);
        }

        // RTP time of each hint sample = referenced media sample's
        // composition time in the RTP clock, up to one constant.
        // (X-QDM interleaves blocks across packets: its first constructor does
        // not name the sample that times the packet.)
        let interleaved = rtpmap(t).starts_with("X-QDM");
        let mut base: Option<u32> = None;
        let mut checked = 0;
        for (g, v) in gs.iter().zip(&with_packets) {
            let Some((ri, n)) = v.first_media.filter(|_| !interleaved) else {
                continue;
            };
            let media = m.track(hint.hint_refs[ri as usize]).expect("media track");
            let i = n - 1;
            let ct = media.samples.decode_time(i).unwrap() as i64
                + i64::from(media.samples.composition_offset(i));
            let expect =
                (ct as i128 * i128::from(t.clock_rate) / i128::from(media.timescale)) as u32;
            let diff = t.packets[g.start].rtp_time.wrapping_sub(expect);
            let b = *base.get_or_insert(diff);
            assert!(
                diff.wrapping_sub(b).wrapping_add(1) <= 2,
                "{name}: media sample {n}: RTP offset {diff} vs {b}"
            );
            checked += 1;
        }
        let media = hint
            .hint_refs
            .first()
            .and_then(|&id| m.track(id))
            .expect("media");
        println!(
            "{name}: {} ({}) RTP times checked on {checked} hint samples, offset {base:?}",
            rtpmap(t),
            media.handler
        );

        if media.handler == FourCC(*b"vide") {
            // Marker exactly on the last packet of every frame.
            for g in &gs {
                for i in g.clone() {
                    assert_eq!(
                        t.packets[i].flags.marker(),
                        i == g.end - 1,
                        "{name}: marker on packet {i}"
                    );
                }
            }
            // SYNC on exactly the hint samples carrying media sync samples.
            let synced: BTreeSet<u32> = gs
                .iter()
                .zip(&with_packets)
                .filter(|(g, _)| t.packets[g.start].flags.sync())
                .filter_map(|(_, v)| v.first_media.map(|x| x.1))
                .collect();
            let referenced: BTreeSet<u32> = with_packets
                .iter()
                .filter_map(|v| v.first_media.map(|x| x.1))
                .collect();
            let media_sync: BTreeSet<u32> = media
                .samples
                .sync_samples()
                .expect("video has stss")
                .iter()
                .map(|i| i + 1)
                .filter(|n| referenced.contains(n))
                .collect();
            assert_eq!(synced, media_sync, "{name}: SYNC vs media stss");
            assert!(!synced.is_empty());
            assert!(t.packets[0].flags.sync(), "{name}: first packet is sync");
        }
        check_payloads(&name, f, t, &gs);
    }
}

fn rtp_clock_from_sdp(t: &TrackSchedule) -> u32 {
    rtpmap(t)
        .split('/')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Payload syntax per codec.
fn check_payloads(name: &str, f: &FileSchedule, t: &TrackSchedule, gs: &[Range<usize>]) {
    let codec = rtpmap(t);
    let mut fu_open = false;
    for g in gs {
        for i in g.clone() {
            let p = payload(f, t, i);
            if codec.starts_with("H264/") {
                check_h264(name, i, &p, &mut fu_open);
            } else if codec.starts_with("MPEG4-GENERIC/") {
                check_aac_hbr(name, i, &p);
            } else if codec.starts_with("MP4V-ES/") && i == g.start {
                assert_eq!(
                    &p[..3],
                    &[0, 0, 1],
                    "{name}: packet {i}: MP4V-ES frame starts with a start code"
                );
            } else if codec.starts_with("AMR/") {
                check_amr(name, i, &p);
            }
        }
    }
    assert!(!fu_open, "{name}: unterminated FU-A");
}

fn check_h264(name: &str, i: usize, p: &[u8], fu_open: &mut bool) {
    let nal_type = p[0] & 0x1f;
    assert_eq!(p[0] & 0x80, 0, "{name}: packet {i}: forbidden_zero_bit");
    match nal_type {
        1..=23 => assert!(!*fu_open, "{name}: packet {i}: NAL inside an FU-A run"),
        24 => {
            assert!(!*fu_open);
            let mut pos = 1;
            let mut n = 0;
            while pos < p.len() {
                let len = u16::from_be_bytes([p[pos], p[pos + 1]]) as usize;
                assert!(
                    len > 0 && pos + 2 + len <= p.len(),
                    "{name}: packet {i}: STAP-A unit overruns"
                );
                let t = p[pos + 2] & 0x1f;
                assert!(
                    (1..=23).contains(&t),
                    "{name}: packet {i}: STAP-A unit type {t}"
                );
                pos += 2 + len;
                n += 1;
            }
            assert_eq!(pos, p.len());
            assert!(n >= 1);
        }
        28 => {
            let (start, end) = (p[1] & 0x80 != 0, p[1] & 0x40 != 0);
            assert_eq!(start, !*fu_open, "{name}: packet {i}: FU-A start bit");
            assert!(p.len() > 2);
            *fu_open = !end;
        }
        t => panic!("{name}: packet {i}: unexpected NAL type {t}"),
    }
}

fn check_aac_hbr(name: &str, i: usize, p: &[u8]) {
    let header_bits = u16::from_be_bytes([p[0], p[1]]) as usize;
    assert_eq!(header_bits % 16, 0, "{name}: packet {i}: AU-headers-length");
    let headers = header_bits / 16;
    assert!(headers >= 1);
    let mut sizes = 0;
    for h in 0..headers {
        let v = u16::from_be_bytes([p[2 + 2 * h], p[3 + 2 * h]]);
        sizes += (v >> 3) as usize;
    }
    assert_eq!(
        2 + 2 * headers + sizes,
        p.len(),
        "{name}: packet {i}: AU sizes vs payload"
    );
}

fn check_amr(name: &str, i: usize, p: &[u8]) {
    const SIZES: [usize; 9] = [12, 13, 15, 17, 19, 20, 26, 31, 5];
    let mut pos = 1; // CMR
    let mut frames = 0;
    loop {
        let toc = p[pos];
        pos += 1;
        let ft = usize::from((toc >> 3) & 0x0f);
        frames += if ft < SIZES.len() { SIZES[ft] } else { 0 };
        if toc & 0x80 == 0 {
            break;
        }
    }
    assert_eq!(
        pos + frames,
        p.len(),
        "{name}: packet {i}: AMR TOC sizes vs payload"
    );
}

#[test]
fn apple_schedules_are_consistent() {
    let Some(files) = apple_files() else { return };
    for path in files {
        let (f, m) = load(&path);
        check_schedule(&path, &f, &m);
    }
}

#[test]
fn ffmpeg_schedules_are_consistent() {
    for path in ffmpeg_files() {
        let (f, m) = load(&path);
        assert!(f.session_sdp.is_none(), "ffmpeg writes no session SDP");
        check_schedule(&path, &f, &m);
        for t in &f.tracks {
            let limit = t.max_packet_size - 12;
            let largest = t.packets.iter().map(|p| p.payload_len).max().unwrap();
            assert!(
                largest <= limit,
                "{} track {}: payload {largest} > {limit}",
                path.display(),
                t.track_id
            );
            println!(
                "{} track {}: {} packets, {} payload bytes, largest {largest}/{limit}",
                path.display(),
                t.track_id,
                t.packets.len(),
                t.payload_bytes()
            );
        }
    }
}

/// Most bytes two file segments of a track may share. ffmpeg's hinter
/// (movenchint.c) builds constructors by matching each RTP payload against
/// the sample and extends a match backwards while bytes agree, so when an
/// FU-A indicator or header (2 bytes, RFC 6184 §5.8) happens to equal the
/// media byte before a fragment, that media byte is referenced instead of an
/// immediate: the packet is right, but the byte appears in two segments.
/// Seen with x264 output that changes from encode to encode (FU header 0x05
/// equal to the byte before the fragment).
const COINCIDENTAL_HEADER_BYTES: u64 = 2;

/// Sorted file ranges covered by a track's file segments; two ranges may
/// share at most [`COINCIDENTAL_HEADER_BYTES`].
fn covered_ranges(name: &str, t: &TrackSchedule) -> Vec<Range<u64>> {
    let mut v: Vec<Range<u64>> = t
        .segments
        .iter()
        .filter(|s| s.source == SegmentSource::File)
        .map(|s| s.offset..s.offset + u64::from(s.len))
        .collect();
    v.sort_by_key(|r| r.start);
    for w in v.windows(2) {
        assert!(
            w[0].end <= w[1].start + COINCIDENTAL_HEADER_BYTES,
            "{name}: bytes {:?} and {:?} sent twice",
            w[0],
            w[1]
        );
    }
    v
}

/// avcC NAL length size of an 'avc1' sample entry.
fn nal_length_size(data: &[u8], media: &Track) -> usize {
    let e = &media.sample_entries[0];
    let entry = BoxRef {
        fourcc: e.fourcc,
        start: e.range.start,
        header_len: 8,
        body: &data[e.range.start as usize + 8..e.range.end as usize],
    };
    let avcc = entry
        .children("avc1", 78)
        .filter_map(Result::ok)
        .find(|b| b.fourcc == FourCC(*b"avcC"))
        .expect("avcC");
    usize::from(avcc.body[4] & 3) + 1
}

/// The NAL units of one AVCC-framed sample.
fn sample_nals(data: &[u8], offset: u64, size: u32, length_size: usize) -> Vec<Vec<u8>> {
    let s = &data[offset as usize..offset as usize + size as usize];
    let mut v = Vec::new();
    let mut pos = 0;
    while pos < s.len() {
        let len = s[pos..pos + length_size]
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        v.push(s[pos + length_size..pos + length_size + len].to_vec());
        pos += length_size + len;
    }
    v
}

/// Depacketizes RFC 6184 payloads (single NAL, STAP-A, FU-A) into NAL units.
fn h264_depacketize(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut nals = Vec::new();
    for p in payloads {
        match p[0] & 0x1f {
            24 => {
                let mut pos = 1;
                while pos < p.len() {
                    let len = usize::from(u16::from_be_bytes([p[pos], p[pos + 1]]));
                    nals.push(p[pos + 2..pos + 2 + len].to_vec());
                    pos += 2 + len;
                }
            }
            28 => {
                if p[1] & 0x80 != 0 {
                    nals.push(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
                }
                nals.last_mut()
                    .expect("FU-A start")
                    .extend_from_slice(&p[2..]);
            }
            _ => nals.push(p.clone()),
        }
    }
    nals
}

/// Access units of RFC 3640 AAC-hbr payloads (13-bit sizes, one AU each or
/// several; no fragmentation in these files).
fn aac_depacketize(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut aus = Vec::new();
    for p in payloads {
        let headers = usize::from(u16::from_be_bytes([p[0], p[1]])) / 16;
        let mut pos = 2 + 2 * headers;
        for h in 0..headers {
            let size = usize::from(u16::from_be_bytes([p[2 + 2 * h], p[3 + 2 * h]]) >> 3);
            aus.push(p[pos..pos + size].to_vec());
            pos += size;
        }
    }
    aus
}

/// Depacketizes every packet of an H.264 or AAC hint track and compares the
/// NAL units / access units with the media samples the hint samples name;
/// checks that no file byte is sent twice (beyond coincidental header bytes,
/// see [`COINCIDENTAL_HEADER_BYTES`]). Returns the number of media
/// samples compared.
fn check_media_round_trip(name: &str, f: &FileSchedule, m: &Movie, t: &TrackSchedule) -> usize {
    let data: &[u8] = &f.map;
    let hint = hint_track(m, t);
    let media = m.track(t.media_track_id.unwrap()).unwrap();
    covered_ranges(name, t);
    let views = hint_views(data, hint);
    let with_packets: Vec<_> = views.iter().filter(|v| v.packets > 0).collect();
    let gs = groups(t);
    let payloads =
        |g: &Range<usize>| -> Vec<Vec<u8>> { g.clone().map(|i| payload(f, t, i)).collect() };
    match &media.sample_entries[0].fourcc.0 {
        b"avc1" => {
            let ls = nal_length_size(data, media);
            for (g, v) in gs.iter().zip(&with_packets) {
                let mut expect = Vec::new();
                let mut samples: Vec<u32> = v
                    .sample_refs
                    .iter()
                    .filter(|r| r.0 == 0)
                    .map(|r| r.1)
                    .collect();
                samples.dedup();
                for n in &samples {
                    let s = media.samples.sample(n - 1).unwrap();
                    expect.extend(sample_nals(data, s.offset, s.size, ls));
                }
                let got = h264_depacketize(&payloads(g));
                assert_eq!(
                    got.len(),
                    expect.len(),
                    "{name}: media samples {samples:?}: NAL count"
                );
                assert!(
                    got == expect,
                    "{name}: media samples {samples:?}: NAL bytes differ"
                );
            }
            gs.len()
        }
        b"mp4a" => {
            let got = aac_depacketize(&gs.iter().flat_map(payloads).collect::<Vec<_>>());
            let expect: Vec<Vec<u8>> = media
                .samples
                .iter()
                .map(|(_, s)| data[s.offset as usize..s.offset as usize + s.size as usize].to_vec())
                .collect();
            // ffmpeg's hinter never flushes its last aggregated AAC packet,
            // so a few final frames may be missing; the rest must match.
            assert!(
                got.len() <= expect.len() && got.len() + 8 >= expect.len(),
                "{name}: AAC frame count"
            );
            assert!(got[..] == expect[..got.len()], "{name}: AAC frames differ");
            got.len()
        }
        other => panic!("{name}: unexpected media {:?}", FourCC(*other)),
    }
}

#[test]
fn ffmpeg_packets_carry_every_media_byte_once() {
    for path in ffmpeg_files() {
        let (f, m) = load(&path);
        for t in &f.tracks {
            let name = format!("{} track {}", path.display(), t.track_id);
            let n = check_media_round_trip(&name, &f, &m, t);
            let media = m.track(t.media_track_id.unwrap()).unwrap();
            println!(
                "{name}: {n} of {} media samples round-trip",
                media.samples.len()
            );
            if media.handler == FourCC(*b"vide") {
                assert_eq!(n as u32, media.samples.len(), "{name}: every frame hinted");
            }
        }
    }
}

#[test]
fn apple_h264_and_aac_packets_carry_the_media() {
    let Some(files) = apple_files() else { return };
    let (f, m) = load(&files[0]);
    for t in &f.tracks {
        let name = format!("{} track {}", files[0].display(), t.track_id);
        let n = check_media_round_trip(&name, &f, &m, t);
        println!("{name}: {n} media samples round-trip");
    }
}

#[test]
fn plain_file_has_no_hint_tracks_and_missing_file_is_io() {
    let e = cadence_hinting::open(&plain_fixture()).unwrap_err();
    assert!(matches!(e, HintError::NoHintTracks), "{e}");
    let e = cadence_hinting::open(Path::new("/nonexistent/cadence.mp4")).unwrap_err();
    assert!(matches!(e, HintError::Io { .. }), "{e}");
    // An empty file: no moov.
    let e = cadence_hinting::compile::compile_slice(&[]).unwrap_err();
    assert!(
        matches!(e, HintError::MissingBox { ref box_path } if box_path == "moov"),
        "{e}"
    );
}

#[test]
fn movie_reader_exposes_structure() {
    let files = ffmpeg_files();
    let plain = std::fs::read(plain_fixture()).unwrap();
    let m = movie(&plain);
    assert_eq!(m.major_brand, Some(FourCC(*b"isom")));
    assert!(
        m.moov.start > m.mdat[0].start,
        "ffmpeg default: moov after mdat"
    );
    let video = m
        .tracks
        .iter()
        .find(|t| t.handler == FourCC(*b"vide"))
        .unwrap();
    let audio = m
        .tracks
        .iter()
        .find(|t| t.handler == FourCC(*b"soun"))
        .unwrap();
    assert_eq!(video.samples.len(), 1500);
    assert_eq!(video.sample_entries[0].fourcc, FourCC(*b"avc1"));
    assert_eq!(audio.edits[0].media_time, 1024, "AAC priming edit");
    // Samples lie inside mdat, in increasing decode time.
    let mdat = m.mdat[0].body_range();
    let mut last = None;
    for (_, s) in video.samples.iter() {
        assert!(mdat.start <= s.offset && s.offset + u64::from(s.size) <= mdat.end);
        assert!(last.is_none_or(|l| s.decode_time > l));
        last = Some(s.decode_time);
    }
    assert_eq!(video.samples.sync_samples().unwrap().len(), 30);
    assert!(video.samples.chunks().len() > 1);

    let fast = std::fs::read(&files[2]).unwrap();
    let m = movie(&fast);
    assert!(
        m.moov.start < m.mdat[0].start,
        "faststart: moov before mdat"
    );
    let mov = std::fs::read(&files[1]).unwrap();
    let m = movie(&mov);
    assert!(m.is_quicktime());
    assert_eq!(m.tracks.iter().filter(|t| t.is_hint()).count(), 2);
    let hint = m.tracks.iter().find(|t| t.is_hint()).unwrap();
    assert!(hint
        .sdp
        .as_deref()
        .unwrap()
        .contains("a=rtpmap:96 H264/90000"));
    assert_eq!(hint.hint_refs, vec![1]);

    if let Some(apple) = apple_files() {
        let d = std::fs::read(&apple[1]).unwrap();
        let m = movie(&d);
        assert!(m.is_quicktime());
        assert_eq!(m.session_sdp.as_deref(), Some("b=AS:253\r\n"));
        let qdm2 = m
            .tracks
            .iter()
            .find(|t| t.sample_entries[0].fourcc == FourCC(*b"QDM2"))
            .unwrap();
        assert_eq!(qdm2.samples.constant_size(), Some(1));
        assert_eq!(qdm2.samples.len(), 2_228_224);
        let d = std::fs::read(&apple[2]).unwrap();
        let m = movie(&d);
        assert_eq!(m.major_brand, Some(FourCC(*b"3gp5")));
        assert!(m.compatible_brands.contains(&FourCC(*b"3gp4")));
    }
}

// ---- rewritten variants: co64, version-1 boxes, 64-bit and size-0 mdat ----

fn boxed(fourcc: FourCC, body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&fourcc.0);
    v.extend_from_slice(body);
    v
}

/// Rebuilds a box: containers recursively, 'stco' as 'co64' with `delta`
/// added, 'mdhd'/'tkhd'/'elst' as version 1; everything else verbatim.
fn widen(data: &[u8], b: &BoxRef<'_>, delta: u64) -> Vec<u8> {
    let body = b.body;
    let be32 = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
    match &b.fourcc.0 {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" => {
            let mut out = Vec::new();
            for c in b.children("", 0) {
                out.extend(widen(data, &c.unwrap(), delta));
            }
            boxed(b.fourcc, &out)
        }
        b"stco" => {
            let n = be32(4) as usize;
            let mut out = vec![0, 0, 0, 0];
            out.extend_from_slice(&(n as u32).to_be_bytes());
            for k in 0..n {
                out.extend_from_slice(&(u64::from(be32(8 + 4 * k)) + delta).to_be_bytes());
            }
            boxed(FourCC(*b"co64"), &out)
        }
        b"mdhd" | b"tkhd" if body[0] == 0 => {
            let mut out = vec![1, body[1], body[2], body[3]];
            out.extend_from_slice(&u64::from(be32(4)).to_be_bytes());
            out.extend_from_slice(&u64::from(be32(8)).to_be_bytes());
            if b.fourcc == FourCC(*b"mdhd") {
                out.extend_from_slice(&body[12..16]);
                out.extend_from_slice(&u64::from(be32(16)).to_be_bytes());
                out.extend_from_slice(&body[20..]);
            } else {
                out.extend_from_slice(&body[12..20]);
                out.extend_from_slice(&u64::from(be32(20)).to_be_bytes());
                out.extend_from_slice(&body[24..]);
            }
            boxed(b.fourcc, &out)
        }
        b"elst" if body[0] == 0 => {
            let n = be32(4) as usize;
            let mut out = vec![1, 0, 0, 0];
            out.extend_from_slice(&(n as u32).to_be_bytes());
            for k in 0..n {
                let e = 8 + 12 * k;
                out.extend_from_slice(&u64::from(be32(e)).to_be_bytes());
                out.extend_from_slice(&i64::from(be32(e + 4) as i32).to_be_bytes());
                out.extend_from_slice(&body[e + 8..e + 12]);
            }
            boxed(b.fourcc, &out)
        }
        _ => data[b.start as usize..b.end() as usize].to_vec(),
    }
}

/// Variant of a moov-first file with co64, v1 boxes and a 64-bit mdat header.
fn wide_variant(data: &[u8]) -> Vec<u8> {
    let top: Vec<BoxRef<'_>> = BoxIter::new(data, 0, "").map(Result::unwrap).collect();
    let moov = top.iter().find(|b| b.fourcc == FourCC(*b"moov")).unwrap();
    let growth = widen(data, moov, 0).len() as u64 - (moov.end() - moov.start);
    let mut out = Vec::new();
    for b in &top {
        match &b.fourcc.0 {
            b"moov" => out.extend(widen(data, b, growth + 8)),
            b"mdat" => {
                out.extend_from_slice(&1u32.to_be_bytes());
                out.extend_from_slice(b"mdat");
                out.extend_from_slice(&(b.end() - b.start + 8).to_be_bytes());
                out.extend_from_slice(b.body);
            }
            _ => out.extend_from_slice(&data[b.start as usize..b.end() as usize]),
        }
    }
    out
}

/// Variant whose last box (mdat) has size 0 ("to end of file").
fn size0_variant(data: &[u8]) -> Vec<u8> {
    let last = BoxIter::new(data, 0, "")
        .map(Result::unwrap)
        .last()
        .unwrap();
    assert_eq!(last.fourcc, FourCC(*b"mdat"));
    let mut out = data.to_vec();
    out[last.start as usize..last.start as usize + 4].copy_from_slice(&[0; 4]);
    out
}

fn assert_same_packets(name: &str, a: &[u8], b: &[u8]) {
    let ca = cadence_hinting::compile::compile_slice(a).unwrap();
    let cb = cadence_hinting::compile::compile_slice(b).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(ca.tracks.len(), cb.tracks.len());
    assert_eq!(ca.duration_us, cb.duration_us);
    for (ta, tb) in ca.tracks.iter().zip(&cb.tracks) {
        assert_eq!(ta.packets.len(), tb.packets.len(), "{name}");
        assert_eq!(ta.duration_us, tb.duration_us, "{name}");
        let bytes = |d: &[u8], t: &TrackSchedule, i: usize| -> Vec<u8> {
            t.segments_of(&t.packets[i])
                .iter()
                .flat_map(|s| {
                    let r = s.offset as usize..s.offset as usize + s.len as usize;
                    match s.source {
                        SegmentSource::File => d[r].to_vec(),
                        SegmentSource::Arena => t.arena[r].to_vec(),
                    }
                })
                .collect()
        };
        for i in 0..ta.packets.len() {
            let (pa, pb) = (&ta.packets[i], &tb.packets[i]);
            assert_eq!(
                (pa.send_time_us, pa.rtp_time, pa.flags, pa.payload_type),
                (pb.send_time_us, pb.rtp_time, pb.flags, pb.payload_type),
                "{name}: packet {i}"
            );
            assert_eq!(
                bytes(a, ta, i),
                bytes(b, tb, i),
                "{name}: packet {i} payload"
            );
        }
    }
}

#[test]
fn co64_version1_and_large_or_zero_box_sizes_give_identical_packets() {
    let mut files = vec![ffmpeg_files()[2].clone()];
    if let Some(apple) = apple_files() {
        files.extend(apple);
    }
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let wide = wide_variant(&data);
        let m = movie(&wide);
        assert!(m
            .tracks
            .iter()
            .all(|t| t.chunk_offsets.as_ref().unwrap().fourcc == FourCC(*b"co64")));
        assert_eq!(m.mdat[0].header_len, 16);
        assert_same_packets(
            &format!("{} (co64/v1/largesize)", path.display()),
            &data,
            &wide,
        );
        assert_same_packets(
            &format!("{} (size 0)", path.display()),
            &data,
            &size0_variant(&data),
        );
    }
}
