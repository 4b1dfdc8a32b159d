//! Apple's Sorenson Video 3 + QDesign Music 2 sample, checked at the RTP level with our own
//! client, because no real client on this machine can decode these payloads from RTSP (see
//! the notes in `ffmpeg_pull.rs`: an ffmpeg 5.1 extradata bug, a GStreamer depayloader bug).
//!
//! Over UDP and TCP, PLAY from 0:
//! - the first X-SV3V-ES packet is a config packet (header flag 0x40) whose data is exactly
//!   the `SEQH` atom of the file's 'SMI ' image description (what ffmpeg's and GStreamer's
//!   depacketizers turn into the decoder's extradata); later config packets (Apple's hint
//!   track repeats them) carry the same data, between frames;
//! - after it, frames are well formed: a start-flag (0x20) packet opens a frame, every packet
//!   of a frame has the same RTP timestamp, an end-flag (0x10) packet closes it;
//! - the number of frames with media time in [0, 10 s) equals the file's frame count over
//!   the same interval (ffprobe on the file), ±2;
//! - the first X-QDM packet starts with a config block (0xff), as ffmpeg's rtpdec_qdm2
//!   expects.

mod common;

use common::media::{self, Source};
use common::player::{media_secs, of_track, Player};
use common::server::Server;
use common::tools::{source_frames, Lower};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The data of the `SEQH` atom (inside 'SMI ') of the file: 4-byte tag, 4-byte big-endian
/// length, data.
fn seqh(path: &std::path::Path) -> Vec<u8> {
    let file = std::fs::read(path).expect("read media");
    let at = file
        .windows(4)
        .position(|w| w == b"SEQH")
        .expect("the .mov has a SEQH atom");
    let len = u32::from_be_bytes(file[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
    file[at + 8..at + 8 + len].to_vec()
}

fn check(server: &Server, src: &Source, lower: Lower, expected_frames: u64, seqh: &[u8]) {
    let url = server.url(&src.name);
    let mut p = Player::open(server.addr(), &url, lower);
    let v = p
        .tracks
        .iter()
        .position(|t| t.encoding.eq_ignore_ascii_case("X-SV3V-ES"))
        .unwrap_or_else(|| panic!("{url}: no X-SV3V-ES track in SDP"));
    let a = p
        .tracks
        .iter()
        .position(|t| t.encoding.eq_ignore_ascii_case("X-QDM"))
        .unwrap_or_else(|| panic!("{url}: no X-QDM track in SDP"));
    let play = p.play(Some("npt=0-"));
    let origin = play.rtp_info[v]
        .as_ref()
        .and_then(|i| i.rtptime)
        .unwrap_or_else(|| panic!("{url}: no RTP-Info rtptime for the video track"));
    let clock = p.tracks[v].clock_rate;
    // Receive until a video packet at or past 10.1 s of media (or 16 s of wall time).
    let deadline = Instant::now() + Duration::from_secs(16);
    let mut pkts = Vec::new();
    while Instant::now() < deadline {
        pkts.extend(p.collect_for(Duration::from_millis(100)));
        if pkts
            .iter()
            .any(|k| k.track == v && media_secs(k.ts, origin, clock) >= 10.1)
        {
            break;
        }
    }
    p.teardown();
    let video = of_track(&pkts, v);
    let name = format!("{} {lower:?}", src.name);
    assert!(
        video.len() > 2,
        "{name}: only {} video packets",
        video.len()
    );
    let first = video[0];
    assert!(
        first.payload.len() >= 2 && first.payload[0] & 0x40 != 0,
        "{name}: first X-SV3V-ES packet is not a config packet: {:02x?}",
        &first.payload[..first.payload.len().min(8)]
    );
    assert_eq!(
        &first.payload[2..],
        seqh,
        "{name}: config packet data differs from the file's SEQH atom"
    );
    let mut frames = 0u64;
    let mut open: Option<u32> = None;
    for k in &video[1..] {
        let flags = *k.payload.first().unwrap_or(&0);
        if flags & 0x40 != 0 {
            // Apple's hint track repeats the config packet (at sync samples): same SEQH,
            // between frames.
            assert_eq!(
                &k.payload[2..],
                seqh,
                "{name}: config packet seq {} differs",
                k.seq
            );
            assert!(
                open.is_none(),
                "{name}: config packet seq {} inside a frame",
                k.seq
            );
            continue;
        }
        if flags & 0x20 != 0 {
            assert!(
                open.is_none(),
                "{name}: frame start at seq {} before the previous frame ended",
                k.seq
            );
            open = Some(k.ts);
        }
        let ts = open.unwrap_or_else(|| {
            panic!(
                "{name}: packet seq {} outside a frame (no start flag)",
                k.seq
            )
        });
        assert_eq!(
            k.ts, ts,
            "{name}: timestamp changes inside a frame at seq {}",
            k.seq
        );
        if flags & 0x10 != 0 {
            open = None;
            let t = media_secs(k.ts, origin, clock);
            if (0.0..10.0).contains(&(t + 1e-9)) {
                frames += 1;
            }
        }
    }
    eprintln!(
        "{name}: {} video packets, {frames} frames in [0, 10) s (file: {expected_frames})",
        video.len()
    );
    assert!(
        frames.abs_diff(expected_frames) <= 2,
        "{name}: {frames} complete SVQ3 frames in the first 10 s, the file has {expected_frames}"
    );
    let audio = of_track(&pkts, a);
    assert!(!audio.is_empty(), "{name}: no X-QDM packet");
    assert_eq!(
        audio[0].payload.first(),
        Some(&0xff),
        "{name}: first X-QDM packet does not start with a config block: {:02x?}",
        &audio[0].payload[..audio[0].payload.len().min(8)]
    );
}

#[test]
fn sorenson3_qdesign2_rtp_payloads_udp_and_tcp() {
    let Some(path) = media::apple(media::APPLE_SVQ3) else {
        return;
    };
    let src = Source {
        name: media::APPLE_SVQ3.into(),
        path,
        fps: 30.0,
    };
    let expected = source_frames(&src.path, 0.0, 10.0);
    let seqh = Arc::new(seqh(&src.path));
    let server = Arc::new(Server::start(std::slice::from_ref(&src)));
    let mut threads = Vec::new();
    for lower in [Lower::Udp, Lower::Tcp] {
        let (server, src, seqh) = (server.clone(), src.clone(), seqh.clone());
        threads.push(common::spawn_named(&format!("{lower:?}"), move || {
            check(&server, &src, lower, expected, &seqh)
        }));
    }
    common::join_all(threads);
}
