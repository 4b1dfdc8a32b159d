//! A small hinted file built byte by byte, exercising what the real files do
//! not: every constructor type (no-op, immediate, sample, sample
//! description, track reference -1), QuickTime compression blocks whose read
//! runs across two chunks, a negative relative transmission time, an edit
//! list with a leading empty edit, 'rtpo', a repeat packet, a hint timescale
//! different from 'tims', and the error naming a bad constructor.

use cadence_hinting::compile::compile_slice;
use cadence_hinting::{HintError, PacketFlags, SegmentSource, TrackSchedule};

fn bx(t: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let body = parts.concat();
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(t);
    v.extend_from_slice(&body);
    v
}

fn w(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

fn media_byte(i: usize) -> u8 {
    (i * 31 % 251) as u8
}

struct Layout {
    file: Vec<u8>,
    /// Absolute offsets of the two QuickTime-sound chunks, the video samples
    /// and the video sample entry.
    chunk_a: usize,
    chunk_b: usize,
    video: usize,
    video_entry: usize,
}

fn stbl(
    stsd_entries: &[u8],
    n_entries: u32,
    stts: &[u32],
    stsc: &[u32],
    stsz: &[u32],
    stco: &[u32],
) -> Vec<u8> {
    bx(
        b"stbl",
        &[
            &bx(b"stsd", &[&w(&[0, n_entries]), stsd_entries]),
            &bx(b"stts", &[&w(stts)]),
            &bx(b"stsc", &[&w(stsc)]),
            &bx(b"stsz", &[&w(stsz)]),
            &bx(b"stco", &[&w(stco)]),
        ],
    )
}

fn trak(
    id: u32,
    handler: &[u8; 4],
    timescale: u32,
    extra: &[&[u8]],
    stbl: &[u8],
    udta: &[u8],
) -> Vec<u8> {
    let tkhd = bx(b"tkhd", &[&w(&[0, 0, 0, id, 0, 0])]);
    let mdhd = bx(b"mdhd", &[&w(&[0, 0, 0, timescale, 0, 0])]);
    let hdlr = bx(b"hdlr", &[&w(&[0, 0]), handler, &w(&[0, 0, 0]), b"\0"]);
    let minf = bx(b"minf", &[stbl]);
    let mdia = bx(b"mdia", &[&mdhd, &hdlr, &minf]);
    let mut parts: Vec<&[u8]> = vec![&tkhd];
    parts.extend_from_slice(extra);
    parts.push(&mdia);
    parts.push(udta);
    bx(b"trak", &parts)
}

/// Builds the file; `bad_length` replaces the length of hint sample 2's
/// constructor.
fn build(bad_length: Option<u16>) -> Layout {
    let ftyp = bx(b"ftyp", &[b"isom", &w(&[0]), b"isom"]);
    let data_start = ftyp.len() + 8;
    // mdat payload: chunk A (200 B), 16 B gap, chunk B (200 B), video (60 B),
    // hint samples.
    let chunk_a = data_start;
    let chunk_b = chunk_a + 216;
    let video = chunk_b + 200;
    let hints = video + 60;
    let mut payload: Vec<u8> = (0..hints - data_start)
        .map(|i| media_byte(i + data_start))
        .collect();

    // Hint sample 1: three packets (the third a repeat), then 4 bytes "DATA".
    let mut h1 = vec![0, 3, 0, 0];
    // p1: relative time -5 (ms), PT 96, no marker; 5 constructors.
    h1.extend_from_slice(&(-5i32).to_be_bytes());
    h1.extend_from_slice(&[0x00, 0x60, 0, 1, 0, 0, 0, 5]);
    h1.extend_from_slice(&[0; 16]); // no-op
    h1.extend_from_slice(&[1, 3, 0xaa, 0xbb, 0xcc, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]); // immediate, garbage pad
    h1.extend_from_slice(&[2, 0, 0, 10]); // sample: ref 0 (video), 10 bytes
    h1.extend_from_slice(&w(&[2, 5])); // sample 2, offset 5
    h1.extend_from_slice(&[0, 0, 0, 0]);
    h1.extend_from_slice(&[3, 0, 0, 8]); // sample description: ref 0, 8 bytes
    h1.extend_from_slice(&w(&[1, 0, 0])); // entry 1, offset 0
    let data_at = 4 + 12 + 5 * 16 + (12 + 16 + 16) + (12 + 16);
    h1.extend_from_slice(&[2, 0xff, 0, 4]); // sample: ref -1, 4 bytes
    h1.extend_from_slice(&w(&[1, data_at as u32]));
    h1.extend_from_slice(&[0, 0, 0, 0]);
    // p2: marker, extra info with 'rtpo' = -90; compressed sound across chunks.
    h1.extend_from_slice(&0i32.to_be_bytes());
    h1.extend_from_slice(&[0x00, 0xe0, 0, 2, 0, 4, 0, 1]);
    h1.extend_from_slice(&w(&[16, 12]));
    h1.extend_from_slice(b"rtpo");
    h1.extend_from_slice(&(-90i32).to_be_bytes());
    h1.extend_from_slice(&[2, 1, 0, 150]); // ref 1 (sound), 150 bytes
    h1.extend_from_slice(&w(&[1001, 50])); // sample 1001, offset 50
    h1.extend_from_slice(&[0, 100, 0x03, 0xe8]); // 100 bytes per 1000 samples
                                                 // p3: repeat packet, dropped.
    h1.extend_from_slice(&0i32.to_be_bytes());
    h1.extend_from_slice(&[0x00, 0x60, 0, 3, 0, 1, 0, 1]);
    h1.extend_from_slice(&[1, 1, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(h1.len(), data_at);
    h1.extend_from_slice(b"DATA");
    // Hint sample 2: one packet, the whole video sample 3.
    let mut h2 = vec![0, 1, 0, 0];
    h2.extend_from_slice(&0i32.to_be_bytes());
    h2.extend_from_slice(&[0x00, 0xe0, 0, 4, 0, 0, 0, 1]);
    h2.extend_from_slice(&[2, 0]);
    h2.extend_from_slice(&bad_length.unwrap_or(30).to_be_bytes());
    h2.extend_from_slice(&w(&[3, 0]));
    h2.extend_from_slice(&[0, 0, 0, 0]);
    payload.extend_from_slice(&h1);
    payload.extend_from_slice(&h2);
    let mdat = bx(b"mdat", &[&payload]);

    let mvhd = bx(b"mvhd", &[&w(&[0, 0, 0, 1000, 2000])]);
    // Track 1: QuickTime-style compressed sound, constant size 1, 2000
    // "samples" per chunk.
    let qdm2 = bx(b"QDM2", &[&[0; 6], &[0, 1], &[0; 20]]);
    let t1 = trak(
        1,
        b"soun",
        8000,
        &[],
        &stbl(
            &qdm2,
            1,
            &[0, 1, 4000, 1],
            &[0, 1, 1, 2000, 1],
            &[0, 1, 4000],
            &[0, 2, chunk_a as u32, chunk_b as u32],
        ),
        &[],
    );
    // Track 2: video, samples of 10, 20, 30 bytes in one chunk.
    let avc = bx(b"avc1", &[&[0; 6], &[0, 1], &[0x5a; 70]]);
    let t2 = trak(
        2,
        b"vide",
        90000,
        &[],
        &stbl(
            &avc,
            1,
            &[0, 1, 3, 3000],
            &[0, 1, 1, 3, 1],
            &[0, 0, 3, 10, 20, 30],
            &[0, 1, video as u32],
        ),
        &[],
    );
    // Track 3: hint, timescale 1000, tims 90000, tref hint [2, 1], 1 s empty edit.
    let rtp = bx(
        b"rtp ",
        &[
            &[0; 6],
            &[0, 1, 0, 1, 0, 1],
            &w(&[1450]),
            &bx(b"tims", &[&w(&[90000])]),
        ],
    );
    let tref = bx(b"tref", &[&bx(b"hint", &[&w(&[2, 1])])]);
    let elst = bx(
        b"elst",
        &[&w(&[0, 2, 1000, u32::MAX, 0x1_0000, 1000, 0, 0x1_0000])],
    );
    let edts = bx(b"edts", &[&elst]);
    let sdp = bx(
        b"udta",
        &[&bx(
            b"hnti",
            &[&bx(b"sdp ", &[b"m=video 0 RTP/AVP 96\r\n"])],
        )],
    );
    let t3 = trak(
        3,
        b"hint",
        1000,
        &[&tref, &edts],
        &stbl(
            &rtp,
            1,
            &[0, 1, 2, 40],
            &[0, 1, 1, 2, 1],
            &[0, 0, 2, h1.len() as u32, h2.len() as u32],
            &[0, 1, hints as u32],
        ),
        &sdp,
    );
    let session = bx(
        b"udta",
        &[&bx(b"hnti", &[&bx(b"rtp ", &[b"sdp ", b"a=x-test\r\n"])])],
    );
    let moov = bx(b"moov", &[&mvhd, &t1, &t2, &t3, &session]);
    let moov_at = ftyp.len() + mdat.len();
    let file = [ftyp, mdat, moov].concat();
    let video_entry = moov_at + find(&file[moov_at..], b"avc1") - 4;
    Layout {
        file,
        chunk_a,
        chunk_b,
        video,
        video_entry,
    }
}

fn find(hay: &[u8], needle: &[u8; 4]) -> usize {
    hay.windows(4)
        .position(|x| x == needle)
        .expect("fourcc present")
}

fn bytes(file: &[u8], t: &TrackSchedule, i: usize) -> Vec<u8> {
    t.segments_of(&t.packets[i])
        .iter()
        .flat_map(|s| {
            let r = s.offset as usize..s.offset as usize + s.len as usize;
            match s.source {
                SegmentSource::File => file[r].to_vec(),
                SegmentSource::Arena => t.arena[r].to_vec(),
            }
        })
        .collect()
}

#[test]
fn every_constructor_type_yields_the_right_bytes_and_times() {
    let l = build(None);
    let c = compile_slice(&l.file).unwrap();
    assert_eq!(c.session_sdp.as_deref(), Some("a=x-test\r\n"));
    assert_eq!(c.duration_us, 2_000_000);
    assert_eq!(c.tracks.len(), 1);
    let t = &c.tracks[0];
    assert_eq!(
        (
            t.track_id,
            t.media_track_id,
            t.clock_rate,
            t.max_packet_size
        ),
        (3, Some(2), 90000, 1450)
    );
    assert_eq!(t.sdp, "m=video 0 RTP/AVP 96\r\n");
    assert_eq!(t.packets.len(), 3, "repeat packet dropped");

    let p = &t.packets;
    // 1 s empty edit; -5 ms relative time.
    assert_eq!(p[0].send_time_us, 995_000);
    assert_eq!(p[1].send_time_us, 1_000_000);
    assert_eq!(p[2].send_time_us, 1_040_000);
    // Hint time 40 ms at 1 kHz -> 3600 at 90 kHz; 'rtpo' -90.
    assert_eq!(p[0].rtp_time, 0);
    assert_eq!(p[1].rtp_time, 90u32.wrapping_neg());
    assert_eq!(p[2].rtp_time, 3600);
    let f = |x: u8| PacketFlags(x);
    assert_eq!(p[0].flags, f(PacketFlags::SAMPLE_START | PacketFlags::SYNC));
    assert_eq!(p[1].flags, f(PacketFlags::MARKER));
    assert_eq!(
        p[2].flags,
        f(PacketFlags::SAMPLE_START | PacketFlags::SYNC | PacketFlags::MARKER)
    );
    assert!(p.iter().all(|x| x.payload_type == 96));

    let mut e0 = vec![0xaa, 0xbb, 0xcc];
    e0.extend((l.video + 10 + 5..l.video + 10 + 15).map(media_byte));
    e0.extend_from_slice(&l.file[l.video_entry..l.video_entry + 8]);
    e0.extend_from_slice(b"DATA");
    assert_eq!(bytes(&l.file, t, 0), e0);
    // Sample 1001 = block 1 of chunk A (byte 100) + offset 50: 50 bytes to
    // the end of chunk A (200 bytes), then 100 bytes of chunk B.
    let mut e1: Vec<u8> = (l.chunk_a + 150..l.chunk_a + 200).map(media_byte).collect();
    e1.extend((l.chunk_b..l.chunk_b + 100).map(media_byte));
    assert_eq!(bytes(&l.file, t, 1), e1);
    assert_eq!(t.segments_of(&p[1]).len(), 2);
    let e2: Vec<u8> = (l.video + 30..l.video + 60).map(media_byte).collect();
    assert_eq!(bytes(&l.file, t, 2), e2);
    assert_eq!(t.segments_of(&p[2])[0].source, SegmentSource::File);
}

#[test]
fn constructor_past_its_sample_is_named() {
    let l = build(Some(31));
    let e = compile_slice(&l.file).unwrap_err();
    assert!(
        matches!(
            e,
            HintError::BadConstructor {
                track: 3,
                sample: 2,
                packet: 1,
                constructor: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("sample 3 of track 2"), "{e}");
}
