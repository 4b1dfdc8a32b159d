//! Seeking with `Range: npt=30-`.
//!
//! - Per track, the first RTP packet received has exactly the RTP-Info `seq` and `rtptime`
//!   of the PLAY reply (all files, TCP; the fixture also over UDP).
//! - On the ffmpeg fixture (25 fps, GOP 2 s, so 30 s is a keyframe): the reply's Range
//!   starts within one frame (40 ms) of 30 s, and the first video packet carries the start of
//!   the frame whose presentation time is within one frame of 30 s (its first NAL unit is
//!   matched byte for byte against the file, located with ffprobe).
//! - A real client: `ffmpeg -ss 30` over TCP decodes the next 2 s without errors, with the
//!   source's frame count for 30–32 s (±2).

mod common;

use common::media::{self, Source};
use common::player::{of_track, Packet, Player, Track};
use common::server::Server;
use common::tools::{ffmpeg_decode, source_frames, video_packets, Lower};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SEEK: f64 = 30.0;

/// PLAY from 30 s; checks RTP-Info against the first packet of each track and returns the
/// reply's npt start and the packets received.
fn play_from_30(
    server: &Server,
    src: &Source,
    lower: Lower,
) -> (Option<f64>, Vec<Packet>, Vec<Track>) {
    let url = server.url(&src.name);
    let mut p = Player::open(server.addr(), &url, lower);
    let play = p.play(Some("npt=30-"));
    let pkts = p.collect_first_of_each(Duration::from_secs(5));
    p.teardown();
    for (t, track) in p.tracks.iter().enumerate() {
        let info = play.rtp_info[t].as_ref().unwrap_or_else(|| {
            panic!(
                "{url}: PLAY reply has no RTP-Info for {}: {}",
                track.url,
                play.reply.summary()
            )
        });
        let first = of_track(&pkts, t)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{url} {lower:?}: no packet on {} within 5 s", track.url));
        eprintln!(
            "{} {lower:?} {}: RTP-Info seq={:?} rtptime={:?}; first packet seq={} ts={}",
            src.name, track.kind, info.seq, info.rtptime, first.seq, first.ts
        );
        assert_eq!(
            info.seq,
            Some(first.seq),
            "{url} {lower:?} {}: RTP-Info seq vs first packet's sequence number",
            track.kind
        );
        assert_eq!(
            info.rtptime,
            Some(first.ts),
            "{url} {lower:?} {}: RTP-Info rtptime vs first packet's RTP timestamp",
            track.kind
        );
        if let Some(ssrc) = track.ssrc {
            assert_eq!(
                first.ssrc, ssrc,
                "{url}: packet SSRC differs from SETUP Transport ssrc"
            );
        }
    }
    (play.npt_start, pkts, p.tracks.clone())
}

/// The first NAL unit carried by an H.264 RTP payload (RFC 6184: single NAL, STAP-A, or the
/// start fragment of an FU-A).
fn first_nal(payload: &[u8]) -> Option<Vec<u8>> {
    let kind = payload.first()? & 0x1f;
    match kind {
        1..=23 => Some(payload.to_vec()),
        24 => {
            let size = u16::from_be_bytes([*payload.get(1)?, *payload.get(2)?]) as usize;
            payload.get(3..3 + size).map(<[u8]>::to_vec)
        }
        28 => {
            let fu = *payload.get(1)?;
            if fu & 0x80 == 0 {
                return None;
            }
            let mut v = vec![(payload[0] & 0xe0) | (fu & 0x1f)];
            v.extend_from_slice(payload.get(2..)?);
            Some(v)
        }
        _ => None,
    }
}

/// The first NAL unit of the sample at `pos` (4-byte length prefixes, as x264 writes).
fn sample_first_nal(path: &Path, pos: u64, size: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(path).expect("open media");
    f.seek(SeekFrom::Start(pos)).expect("seek");
    let mut s = vec![0u8; size];
    f.read_exact(&mut s).expect("read sample");
    let len = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize;
    s[4..(4 + len).min(size)].to_vec()
}

#[test]
fn seek_to_30s_rtp_info_and_first_frame_ffmpeg_fixture() {
    let src = media::fixture_source();
    let frame = 1.0 / src.fps;
    let server = Arc::new(Server::start(std::slice::from_ref(&src)));
    let mut threads = Vec::new();
    for lower in [Lower::Tcp, Lower::Udp] {
        let server = server.clone();
        let src = src.clone();
        threads.push(common::spawn_named(&format!("{lower:?}"), move || {
            let (npt, pkts, tracks) = play_from_30(&server, &src, lower);
            let npt = npt.expect("PLAY reply without a parseable Range: npt=");
            assert!(
                (npt - SEEK).abs() <= frame + 1e-6,
                "reply Range starts at {npt} s, not within one frame of {SEEK} s"
            );
            // Which frame does the first video packet start?
            let vt = tracks
                .iter()
                .position(|t| t.encoding.eq_ignore_ascii_case("H264"))
                .expect("fixture SDP has an H264 track");
            let first = of_track(&pkts, vt)[0];
            let nal = first_nal(&first.payload).unwrap_or_else(|| {
                panic!(
                    "first video packet does not start a NAL unit: {:02x?}",
                    &first.payload[..first.payload.len().min(8)]
                )
            });
            let prefix = &nal[..nal.len().min(48)];
            let packets = video_packets(&src.path);
            let t0 = packets.iter().map(|p| p.pts).fold(f64::INFINITY, f64::min);
            let matches: Vec<f64> = packets
                .iter()
                .filter(|p| (p.pts - t0 - SEEK).abs() <= 1.0)
                .filter(|p| sample_first_nal(&src.path, p.pos, p.size).starts_with(prefix))
                .map(|p| p.pts - t0)
                .collect();
            assert_eq!(
                matches.len(),
                1,
                "first video NAL ({} bytes, starts {:02x?}) matches frames at {matches:?} s of 29–31 s",
                nal.len(),
                &prefix[..prefix.len().min(12)]
            );
            eprintln!("{lower:?}: first video frame is the one at {:.3} s", matches[0]);
            assert!(
                (matches[0] - SEEK).abs() <= frame + 1e-6,
                "first frame sent is at {:.3} s, not within one frame of {SEEK} s",
                matches[0]
            );
        }));
    }
    {
        let server = server.clone();
        let src = src.clone();
        threads.push(common::spawn_named("ffmpeg -ss 30", move || {
            let expected = source_frames(&src.path, SEEK, 2.0);
            let d = ffmpeg_decode(&server.url(&src.name), Lower::Tcp, Some(SEEK), 2.0);
            eprintln!("ffmpeg -ss 30: {} frames (source {expected})", d.frames);
            assert!(
                d.errors.is_empty(),
                "ffmpeg errors:\n{}",
                d.errors.join("\n")
            );
            assert!(
                d.frames.abs_diff(expected) <= 2,
                "ffmpeg -ss 30 -t 2 decoded {} frames, source has {expected}",
                d.frames
            );
        }));
    }
    common::join_all(threads);
}

#[test]
fn seek_to_30s_rtp_info_matches_first_packet_apple() {
    let sources = media::apple_sources();
    if sources.is_empty() {
        return;
    }
    let server = Arc::new(Server::start(&sources));
    let mut threads = Vec::new();
    for src in sources {
        let server = server.clone();
        threads.push(common::spawn_named(&src.name.clone(), move || {
            let (npt, _, _) = play_from_30(&server, &src, Lower::Tcp);
            let npt = npt.expect("PLAY reply without a parseable Range: npt=");
            eprintln!("{}: PLAY npt=30- answered Range start {npt} s", src.name);
            assert!(
                npt <= SEEK + 1.0 / src.fps + 1e-6 && npt >= 0.0,
                "{}: reply Range start {npt} s for a request of {SEEK} s",
                src.name
            );
        }));
    }
    common::join_all(threads);
}
