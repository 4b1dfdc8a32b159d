//! Real-client pulls: ffmpeg decodes 10 s of each file over UDP and over TCP from a `cadence`
//! on loopback. The decoded video frame count must equal the source's frame count for the
//! same 10 s (ffprobe on the file) within ±2, with no error printed by ffmpeg at
//! `-loglevel error` (decoder or RTP depacketizer errors).
//!
//! One test per file; UDP and TCP run in parallel threads against the same server.
//!
//! Apple's Sorenson Video 3 + QDesign Music 2 sample (`sample_300kbit.mov`) is not pulled
//! with ffmpeg: ffmpeg 5.1 cannot decode nor even stream-copy X-SV3V-ES / X-QDM from RTSP
//! (the extradata that its depacketizers take from the in-band config packets is lost:
//! "svq3: Picture size 0x0 is invalid", "qdm2: extradata missing or truncated", also
//! `-c copy`: "dimensions not set"), and GStreamer 1.22's rtpsv3vdepay writes the SEQH
//! length little-endian so avdec_svq3 refuses it. That file is checked at the RTP level
//! instead, in `sorenson_qdesign_rtp.rs`.

mod common;

use common::media::{self, Source};
use common::server::Server;
use common::tools::{ffmpeg_decode, source_frames, Lower};
use std::sync::Arc;

const PULL_SECS: f64 = 10.0;

fn pull_both_transports(src: Source) {
    let expected = source_frames(&src.path, 0.0, PULL_SECS);
    let server = Arc::new(Server::start(std::slice::from_ref(&src)));
    let mut threads = Vec::new();
    for lower in [Lower::Udp, Lower::Tcp] {
        let server = server.clone();
        let name = src.name.clone();
        threads.push(common::spawn_named(
            &format!("{name} {}", lower.as_str()),
            move || {
                let url = server.url(&name);
                let d = ffmpeg_decode(&url, lower, None, PULL_SECS);
                eprintln!(
                    "{name} over {}: {} frames decoded (source {expected}) in {:.1} s, {} error line(s)",
                    lower.as_str(),
                    d.frames,
                    d.run.elapsed.as_secs_f64(),
                    d.errors.len()
                );
                assert!(
                    d.errors.is_empty(),
                    "ffmpeg printed errors pulling {url} over {}:\n{}",
                    lower.as_str(),
                    d.errors.join("\n")
                );
                assert!(
                    d.run.status.is_some_and(|s| s.success()),
                    "ffmpeg did not exit cleanly ({:?}) pulling {url}; stderr:\n{}",
                    d.run.status,
                    d.run.stderr
                );
                assert!(
                    d.frames.abs_diff(expected) <= 2,
                    "{url} over {}: decoded {} frames in 10 s, source has {expected} (±2 allowed)",
                    lower.as_str(),
                    d.frames
                );
            },
        ));
    }
    common::join_all(threads);
}

#[test]
fn ffmpeg_pull_ffmpeg_hinted_h264_aac() {
    pull_both_transports(media::fixture_source());
}

#[test]
fn ffmpeg_pull_apple_h264_aac() {
    if let Some(path) = media::apple(media::APPLE_H264) {
        pull_both_transports(Source {
            name: media::APPLE_H264.into(),
            path,
            fps: 30.0,
        });
    }
}

#[test]
fn ffmpeg_pull_apple_mpeg4_amr_3gp() {
    if let Some(path) = media::apple(media::APPLE_3GP) {
        pull_both_transports(Source {
            name: media::APPLE_3GP.into(),
            path,
            fps: 15.0,
        });
    }
}
