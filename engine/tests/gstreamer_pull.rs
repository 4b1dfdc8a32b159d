//! A second real client: GStreamer's rtspsrc over TCP. gst-launch-1.0 must be installed
//! (`scripts/install-peers`); without it the test fails.
//!
//! `gst-launch-1.0 -e -v rtspsrc location=URL protocols=tcp latency=200 ! rtph264depay !
//! h264parse ! fakesink silent=false` runs for 8 s and is stopped with SIGINT (-e: EOS on
//! shutdown); the fakesink's `chain` messages count the H.264 access units received.
//! Expected: no ERROR message, and at least 5 s worth of frames (125 at 25 fps: the stream
//! is real-time, with up to 3 s of pipeline start-up allowed for).

mod common;

use common::media;
use common::server::Server;
use common::tools::gst_pull;

#[test]
fn gstreamer_rtspsrc_tcp_pull() {
    let src = media::fixture_source();
    let server = Server::start(std::slice::from_ref(&src));
    let url = server.url(&src.name);
    let g = gst_pull(&url, &["protocols=tcp", "latency=200"], 8.0);
    eprintln!(
        "gst-launch-1.0: {} buffers, exit {:?}",
        g.buffers, g.run.status
    );
    assert!(
        g.errors.is_empty(),
        "GStreamer errors:\n{}",
        g.errors.join("\n")
    );
    assert!(
        g.buffers >= 125,
        "only {} H.264 buffers in 8 s (expected ≥ 125); stdout tail:\n{}",
        g.buffers,
        g.run
            .stdout
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
