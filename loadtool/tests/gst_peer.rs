//! The load tool against another server: gst-rtsp-server
//! (scripts/peer-rtsp-server), whose SDP uses `a=control:stream=N` under a
//! Content-Base ending in `/`. Plays the bundled ffmpeg-hinted sample and, when
//! ../shared/media is present, Apple's H.264/AAC MP4 and MPEG-4/AMR 3GP, over
//! UDP and TCP at once.
//!
//! Needs /usr/bin/python3 with python3-gi and gir1.2-gst-rtsp-server-1.0
//! (scripts/install-peers). Without them the test skips with a notice, or
//! fails when CI=true.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn gst_rtsp_server_available() -> bool {
    Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); \
             from gi.repository import Gst, GstRtspServer",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn plays_gst_rtsp_server_over_udp_and_tcp() {
    if !prerequisite(
        gst_rtsp_server_available(),
        "gst-rtsp-server with python3-gi is not installed (run scripts/install-peers)",
    ) {
        return;
    }
    let root = repo_root();
    let mut files = vec![root.join("media/sample.mp4")];
    let apple = root.join("../shared/media/apple");
    if apple.is_dir() {
        files.push(apple.join("sample_h264_300kbit.mp4"));
        files.push(apple.join("sample_50kbit.3gp"));
    } else {
        prerequisite(
            false,
            "../shared/media is absent: testing the bundled sample only",
        );
    }
    let port = free_tcp_port();
    let child = Command::new("/usr/bin/python3")
        .arg(root.join("scripts/peer-rtsp-server"))
        .arg("--port")
        .arg(port.to_string())
        .args(&files)
        .stdout(Stdio::null())
        .spawn()
        .expect("start scripts/peer-rtsp-server");
    let mut server = Server(child);
    wait_for_listener(port, &mut server.0, Duration::from_secs(30));

    let urls: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "rtsp://127.0.0.1:{port}/{}",
                f.file_name().and_then(|n| n.to_str()).unwrap_or("")
            )
        })
        .collect();
    let clients = 4 * urls.len();
    let mut args = vec![
        "--clients".to_string(),
        clients.to_string(),
        "--ramp".into(),
        "20".into(),
        "--duration".into(),
        "4".into(),
        "--transport".into(),
        "mixed".into(),
        "--quiet".into(),
    ];
    args.extend(urls);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, report, _) = run_loadtool(&args);

    assert_eq!(
        u(&report, "clients.playing"),
        clients as u64,
        "failures: {}",
        at(&report, "failures")
    );
    assert_eq!(
        u(&report, "clients.failed"),
        0,
        "failures: {}",
        at(&report, "failures")
    );
    assert_eq!(u(&report, "clients.udp"), clients as u64 / 2);
    assert_eq!(u(&report, "packets.lost"), 0);
    assert!(status.success(), "exit status {status}");
    for s in at(&report, "sessions").as_array().expect("sessions") {
        let streams = s["streams"].as_array().expect("streams");
        assert_eq!(streams.len(), 2, "video and audio in {s}");
        for st in streams {
            let control = st["control"].as_str().unwrap_or("");
            assert!(
                control.starts_with("stream="),
                "gst-rtsp-server control {control:?}"
            );
            assert!(
                st["packets"].as_u64().unwrap_or(0) > 10,
                "stream got too few packets: {st}"
            );
            assert!(st["ssrc"].as_u64().is_some());
        }
    }
    // Clock rates come from the SDP: 90 kHz video, 44.1 kHz AAC, and the
    // Apple 3GP's AMR-NB at 8 kHz.
    let rates: Vec<u64> = at(&report, "sessions")
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["streams"].as_array().cloned().unwrap_or_default())
        .filter_map(|st| st["clock_rate"].as_u64())
        .collect();
    assert!(rates.contains(&90_000));
    assert!(rates.contains(&44_100));
    if apple.is_dir() {
        assert!(
            rates.contains(&8_000),
            "AMR clock rate missing from {rates:?}"
        );
    }
}
