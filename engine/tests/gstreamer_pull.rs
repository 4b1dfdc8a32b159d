//! A second real client: GStreamer's rtspsrc over TCP, when gst-launch-1.0 is installed (it is
//! optional: the test prints a notice and passes without checking anything when it is absent).
//!
//! `gst-launch-1.0 -e -v rtspsrc location=URL protocols=tcp ! rtph264depay ! h264parse !
//! fakesink silent=false` runs for 8 s and is stopped with SIGINT (-e: EOS on shutdown); the
//! fakesink's `chain` messages count the H.264 access units received. Expected: no ERROR
//! message, and at least 5 s worth of frames (125 at 25 fps: the stream is real-time, with
//! up to 3 s sent ahead and up to 3 s of pipeline start-up allowed for).

mod common;

use common::media;
use common::server::Server;
use common::tools::have;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn gstreamer_rtspsrc_tcp_pull() {
    if !have("gst-launch-1.0") {
        eprintln!("SKIP: gst-launch-1.0 is not installed; GStreamer pull not checked");
        return;
    }
    let src = media::fixture_source();
    let server = Server::start(std::slice::from_ref(&src));
    let url = server.url(&src.name);
    let mut child = Command::new("gst-launch-1.0")
        .args(["-e", "-v", "rtspsrc"])
        .arg(format!("location={url}"))
        .args([
            "protocols=tcp",
            "latency=200",
            "!",
            "rtph264depay",
            "!",
            "h264parse",
        ])
        .args(["!", "fakesink", "silent=false"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gst-launch-1.0");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    std::thread::sleep(Duration::from_secs(8));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut waited = 0;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if waited > 100 {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let buffers = stdout.lines().filter(|l| l.contains("chain   ")).count();
    eprintln!("gst-launch-1.0: {buffers} buffers, exit {status:?}");
    let errors: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.starts_with("ERROR"))
        .collect();
    assert!(
        errors.is_empty(),
        "GStreamer errors:\n{}",
        errors.join("\n")
    );
    assert!(
        buffers >= 125,
        "only {buffers} H.264 buffers in 8 s (expected ≥ 125); stdout tail:\n{}",
        stdout.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
}
