//! SIGUSR1 marks: 20 sessions against Cadence on loopback for a 6 s window;
//! two SIGUSR1 signals 2 s apart open and close the marked window. Expects a
//! closed window of about 2 s whose packet count is about 2 s of what the
//! sessions receive, inside the run's own counts.
//!
//! Needs the `cadence` binary (see cadence_loopback.rs); skips without it.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn two_sigusr1_signals_bound_the_marked_window() {
    let Some(bin) = cadence_binary() else {
        prerequisite(false, "the cadence binary is not built (cargo build -p cadence-engine) and CADENCE_BIN is unset");
        return;
    };
    let (_server, port) = start_cadence(&bin, &[]);
    let url = format!("rtsp://127.0.0.1:{port}/sample.mp4");
    let json =
        std::env::temp_dir().join(format!("cadence-loadtool-mark-{}.json", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cadence-loadtool"))
        .args([
            "--clients",
            "20",
            "--ramp",
            "0",
            "--duration",
            "6",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start cadence-loadtool");
    let pid = child.id() as libc::pid_t;
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: kill has no memory preconditions; pid is our child.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    let status = child.wait().expect("wait for cadence-loadtool");
    let text = std::fs::read_to_string(&json).expect("the JSON report");
    let _ = std::fs::remove_file(&json);
    let report: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert!(status.success(), "exit status {status}");

    let m = at(&report, "marked");
    assert_eq!(m["closed"], serde_json::Value::Bool(true), "{m}");
    let duration = m["duration_s"].as_f64().unwrap();
    assert!(
        (1.8..2.6).contains(&duration),
        "marked window of {duration} s"
    );
    assert_eq!(u(&report, "marked.playing_at_start"), 20);
    assert_eq!(u(&report, "marked.failed"), 0);
    // Packets in the window against the run's rate (window packets / window
    // length): about `duration` seconds' worth, to within the workers' 0.5 s
    // publishing granularity.
    let per_s = at(&report, "rates.packets_per_s").as_f64().unwrap();
    let marked = u(&report, "marked.packets") as f64;
    assert!(
        marked > per_s * (duration - 0.6) && marked < per_s * (duration + 0.6),
        "{marked} packets in {duration} s at {per_s} packets/s"
    );
    assert!(u(&report, "marked.packets") < u(&report, "packets.received"));
    assert!(u(&report, "marked.lateness_us.max") >= u(&report, "marked.lateness_us.p99"));
    assert!(u(&report, "marked.max_second_p99_us") <= u(&report, "marked.lateness_us.max"));
}
