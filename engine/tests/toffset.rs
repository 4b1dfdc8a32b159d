//! RFC 5450 transmission time offsets for B-frame streams: the video track
//! of a file with B-frames announces `urn:ietf:params:rtp-hdrext:toffset`
//! and every video packet carries it; RTP timestamp + offset gives the
//! transmission timeline, which follows the arrival times closely, while the
//! RTP timestamps alone jump back and forth by the reorder depth. Files
//! without B-frames carry no extension. (ffmpeg and GStreamer playing such
//! streams frame-exact is checked in `hinter_stream.rs`.)

mod common;

use std::time::Duration;

use common::media::{self, Source};
use common::player::{of_track, Player};
use common::server::Server;
use common::tools::{ffmpeg_decode, gst_pull, Lower};

fn toffset_of(ext: &(u16, Vec<u8>)) -> Option<i32> {
    let (profile, data) = ext;
    if *profile != 0xBEDE || data.len() < 4 || data[0] >> 4 != 1 || data[0] & 0x0f != 2 {
        return None;
    }
    let raw = u32::from_be_bytes([0, data[1], data[2], data[3]]);
    Some(((raw << 8) as i32) >> 8)
}

#[test]
fn b_frame_video_carries_transmission_offsets() {
    let bframes = Source {
        name: "bframes.mp4".into(),
        path: media::fixture("h264_bframes_plain.mp4"),
        fps: 25.0,
    };
    let server = Server::start(&[bframes, media::fixture_source()]);
    let mut p = Player::open(server.addr(), &server.url("bframes.mp4"), Lower::Udp);
    let sdp = p.describe.body_text();
    let video = p
        .tracks
        .iter()
        .position(|t| t.kind == "video")
        .expect("video track");
    let sections: Vec<&str> = sdp.split("m=").skip(1).collect();
    assert!(
        sections[video].contains("a=extmap:1 urn:ietf:params:rtp-hdrext:toffset"),
        "{sdp}"
    );
    assert!(
        sections.iter().filter(|s| s.contains("toffset")).count() == 1,
        "only the B-frame video track announces toffset:\n{sdp}"
    );
    p.play(None);
    let packets = p.collect_for(Duration::from_secs(4));
    let v = of_track(&packets, video);
    assert!(v.len() > 100, "{} video packets", v.len());
    let clock = f64::from(p.tracks[video].clock_rate);
    let t0 = v[0].at;
    let ts0 = v[0].ts;
    let mut raw_spread = (f64::MAX, f64::MIN);
    let mut tx_spread = (f64::MAX, f64::MIN);
    for pkt in &v {
        let off = toffset_of(pkt.extension.as_ref().expect("every video packet has it"))
            .expect("a toffset element");
        let arrival = pkt.at.duration_since(t0).as_secs_f64();
        let media = f64::from(pkt.ts.wrapping_sub(ts0) as i32) / clock;
        let sent = (f64::from(pkt.ts.wrapping_sub(ts0) as i32) + f64::from(off)) / clock;
        raw_spread = (
            raw_spread.0.min(media - arrival),
            raw_spread.1.max(media - arrival),
        );
        tx_spread = (
            tx_spread.0.min(sent - arrival),
            tx_spread.1.max(sent - arrival),
        );
    }
    let raw = raw_spread.1 - raw_spread.0;
    let tx = tx_spread.1 - tx_spread.0;
    assert!(
        raw > 0.05,
        "the RTP timestamps show the reorder ({raw:.3} s)"
    );
    assert!(
        tx < 0.03,
        "transmission times follow arrival within 30 ms ({tx:.3} s; raw {raw:.3} s)"
    );
    // Audio, and a file without B-frames, carry no extension.
    let audio = 1 - video;
    assert!(of_track(&packets, audio)
        .iter()
        .all(|p| p.extension.is_none()));
    let mut q = Player::open(server.addr(), &server.url(media::FIXTURE_H264), Lower::Tcp);
    assert!(!q.describe.body_text().contains("toffset"));
    q.play(None);
    let plain = q.collect_for(Duration::from_secs(1));
    assert!(!plain.is_empty() && plain.iter().all(|p| p.extension.is_none()));

    // Real clients still play the stream with the extension on.
    let url = server.url("bframes.mp4");
    let d = ffmpeg_decode(&url, Lower::Udp, None, 3.0);
    assert!(d.frames >= 70, "ffmpeg: {} frames {:?}", d.frames, d.errors);
    let g = gst_pull(&url, &["protocols=tcp"], 4.0);
    assert!(
        g.buffers >= 60,
        "GStreamer: {} buffers {:?}",
        g.buffers,
        g.errors
    );
}
