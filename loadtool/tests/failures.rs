//! Failure accounting and exact loss measurement against scripted servers:
//! refused connections, timeouts, RTSP error statuses and malformed replies
//! each land under their cause; a stream with known gaps, a duplicate and a
//! reordered packet is measured exactly; the exit status follows.

mod common;

use std::time::Duration;

use common::fake_server::{Behaviour, FakeServer};
use common::*;

fn failures(report: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    at(report, "failures")
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn refused() {
    let port = free_tcp_port();
    let url = format!("rtsp://127.0.0.1:{port}/x.mp4");
    let (status, report, _) = run_loadtool(&["--clients", "3", "--duration", "0", "-q", &url]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        failures(&report).get("refused").and_then(|v| v.as_u64()),
        Some(3)
    );
    assert_eq!(u(&report, "clients.failed"), 3);
    assert_eq!(u(&report, "clients.playing"), 0);
}

#[test]
fn timeout() {
    let server = FakeServer::start(Behaviour::Silent);
    let (status, report, _) = run_loadtool(&[
        "--clients",
        "2",
        "--duration",
        "0",
        "--timeout",
        "1",
        "-q",
        &server.url(),
    ]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        failures(&report).get("timeout").and_then(|v| v.as_u64()),
        Some(2)
    );
    assert_eq!(
        at(&report, "sessions.0.failure.phase").as_str(),
        None.or(Some("OPTIONS"))
    );
}

#[test]
fn rtsp_status_and_malformed() {
    let server = FakeServer::start(Behaviour::DescribeStatus(404));
    let (status, report, _) =
        run_loadtool(&["--clients", "2", "--duration", "0", "-q", &server.url()]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        failures(&report).get("rtsp_404").and_then(|v| v.as_u64()),
        Some(2)
    );

    let server = FakeServer::start(Behaviour::Garbage);
    let (status, report, _) =
        run_loadtool(&["--clients", "2", "--duration", "0", "-q", &server.url()]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        failures(&report).get("malformed").and_then(|v| v.as_u64()),
        Some(2)
    );
}

/// 100 packets, seq 65500.. (wrapping), 40 ms of RTP time apart, sent 10 ms
/// apart: 3 missing, one sent twice, one pair swapped.
fn scripted_packets() -> Vec<(u16, u32)> {
    let mut seqs: Vec<u16> = (0..100u16).map(|i| 65500u16.wrapping_add(i)).collect();
    seqs.retain(|&s| ![65510, 65535, 20].contains(&s));
    let dup = seqs[50];
    seqs.insert(51, dup);
    seqs.swap(70, 71);
    let ts0 = u32::MAX - 100_000; // the RTP timestamp wraps too
    seqs.into_iter()
        .map(|s| (s, ts0.wrapping_add(u32::from(s.wrapping_sub(65500)) * 3600)))
        .collect()
}

fn scripted(transport: &str, ssrc_in_transport: bool) {
    let server = FakeServer::start(Behaviour::Stream {
        packets: scripted_packets(),
        interval: Duration::from_millis(10),
        ssrc_in_transport,
    });
    let (status, report, _) = run_loadtool(&[
        "--clients",
        "1",
        "--duration",
        "3",
        "--transport",
        transport,
        "--rr-interval",
        "0.5",
        "-q",
        &server.url(),
    ]);
    assert_eq!(u(&report, "clients.playing"), 1);
    assert_eq!(
        u(&report, "clients.failed"),
        0,
        "{}",
        at(&report, "failures")
    );
    assert_eq!(u(&report, "packets.received"), 98);
    assert_eq!(u(&report, "packets.expected"), 100);
    assert_eq!(u(&report, "packets.lost"), 3);
    assert_eq!(u(&report, "packets.duplicates"), 1);
    assert_eq!(u(&report, "packets.reordered"), 1);
    assert_eq!(u(&report, "bytes.received"), 98 * 212);
    assert!(u(&report, "rtcp.rr_sent") >= 1);
    // 3 lost of 100 is above the default 0.1%.
    assert_eq!(status.code(), Some(1));
    let reasons = at(&report, "verdict.reasons").to_string();
    assert!(reasons.contains("loss"), "{reasons}");
    // The stream was sent 10 ms per 40 ms of RTP time: it runs early.
    assert!(u(&report, "earliness_us.packets") > 90);
}

#[test]
fn exact_loss_over_udp_with_ssrc() {
    scripted("udp", true);
}

#[test]
fn exact_loss_over_udp_without_ssrc() {
    scripted("udp", false);
}

#[test]
fn exact_loss_over_tcp() {
    scripted("tcp", true);
}

#[test]
fn max_loss_threshold_passes() {
    let server = FakeServer::start(Behaviour::Stream {
        packets: scripted_packets(),
        interval: Duration::from_millis(5),
        ssrc_in_transport: true,
    });
    let (status, report, _) = run_loadtool(&[
        "--clients",
        "1",
        "--duration",
        "2",
        "--max-loss",
        "5",
        "-q",
        &server.url(),
    ]);
    assert_eq!(u(&report, "packets.lost"), 3);
    assert!(status.success(), "3% loss passes --max-loss 5");
}
