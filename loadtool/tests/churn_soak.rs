//! Soak: the load tool in churn mode against the real `cadence` binary,
//! looking for leaks in the server. 200 sessions (UDP and TCP mixed) with
//! play times of 2–20 s, each replaced as it ends, 10 % of them closing
//! their connection without TEARDOWN, for 3 minutes. Every second the
//! server's RSS (`/proc/<pid>/status` VmRSS) and open file descriptors
//! (`/proc/<pid>/fd`) are sampled. After a 30 s warm-up, the medians of the
//! first and last 30 s of the rest of the run must differ by less than 1 %
//! for both; after the run the fd count must return to its idle baseline (no
//! session or connection left behind); no session may fail.
//!
//! Ignored by default (it takes about 3.2 minutes); run it alone with
//!
//! ```text
//! cargo build --release -p cadence-engine
//! cargo test --release -p cadence-loadtool --test churn_soak -- --ignored --nocapture soak
//! ```
//!
//! `CADENCE_SOAK_SECS` sets the load time (default 180; 3600 for the
//! one-hour soak). Needs the `cadence` binary next to the test binary or at
//! `$CADENCE_BIN`; without it the test fails.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const CLIENTS: u64 = 200;
const RAMP_PER_S: u64 = 50;
const LIFETIMES: &str = "2-20";
const NO_TEARDOWN_PCT: &str = "10";
/// Session timeout given to cadence: sessions closed without TEARDOWN over
/// UDP are dropped by it after this long.
const SESSION_TIMEOUT_S: u64 = 10;
const WARM_UP_S: f64 = 30.0;
const COMPARE_S: f64 = 30.0;
const MEDIA_FILE: &str = "sample.mp4";

/// One sample of the server process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Seconds since the load tool was started.
    t: f64,
    rss_kb: u64,
    fds: u64,
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn sample(pid: u32, t: f64) -> Sample {
    Sample {
        t,
        rss_kb: rss_kb(pid).expect("read VmRSS of cadence"),
        fds: fds(pid).expect("list the fds of cadence"),
    }
}

fn median(mut v: Vec<u64>) -> f64 {
    assert!(!v.is_empty(), "no samples to take a median of");
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    }
}

/// A DESCRIBE, so that the file is opened and its schedule compiled before
/// the idle baseline is taken.
fn describe(port: u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to cadence");
    let req = format!(
        "DESCRIBE rtsp://127.0.0.1:{port}/{MEDIA_FILE} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
    );
    c.write_all(req.as_bytes()).expect("send DESCRIBE");
    c.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).expect("DESCRIBE reply");
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert!(reply.starts_with("RTSP/1.0 200"), "DESCRIBE: {reply}");
}

/// Medians of `field` over the samples in `[from, to)` s.
fn window_median(samples: &[Sample], from: f64, to: f64, field: fn(&Sample) -> u64) -> f64 {
    median(
        samples
            .iter()
            .filter(|s| s.t >= from && s.t < to)
            .map(field)
            .collect(),
    )
}

#[test]
#[ignore = "soak (about 3.2 minutes): cargo test --release -p cadence-loadtool --test churn_soak -- --ignored soak"]
fn churn_soak_against_cadence() {
    let started = Instant::now();
    let secs: u64 = std::env::var("CADENCE_SOAK_SECS")
        .ok()
        .map(|v| v.parse().expect("CADENCE_SOAK_SECS is a number of seconds"))
        .unwrap_or(180);
    assert!(
        secs as f64 >= WARM_UP_S + 2.0 * COMPARE_S,
        "CADENCE_SOAK_SECS must be at least {}",
        WARM_UP_S + 2.0 * COMPARE_S
    );
    let bin = cadence_binary().expect(
        "the cadence binary is not built (cargo build --release -p cadence-engine) and CADENCE_BIN is unset",
    );
    let timeout = SESSION_TIMEOUT_S.to_string();
    let (server, port) = start_cadence(&bin, &["--session-timeout", &timeout]);
    let pid = server.0.id();
    describe(port);
    std::thread::sleep(Duration::from_secs(1));
    let idle: Vec<Sample> = (0..3)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(300));
            sample(pid, 0.0)
        })
        .collect();
    let idle_fds = median(idle.iter().map(|s| s.fds).collect());
    let idle_rss = median(idle.iter().map(|s| s.rss_kb).collect());

    // Sample every second while the load runs.
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let load_start = Instant::now();
    let sampler = {
        let (samples, stop) = (Arc::clone(&samples), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut next = load_start;
            while !stop.load(Ordering::SeqCst) {
                let s = sample(pid, load_start.elapsed().as_secs_f64());
                samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
                next += Duration::from_secs(1);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })
    };
    let url = format!("rtsp://127.0.0.1:{port}/{MEDIA_FILE}");
    let pid_arg = pid.to_string();
    let (clients, ramp, duration) = (
        CLIENTS.to_string(),
        RAMP_PER_S.to_string(),
        secs.to_string(),
    );
    let (status, report, _) = run_loadtool(&[
        "--clients",
        &clients,
        "--ramp",
        &ramp,
        "--duration",
        &duration,
        "--transport",
        "mixed",
        "--churn",
        LIFETIMES,
        "--churn-no-teardown",
        NO_TEARDOWN_PCT,
        "--seed",
        "1",
        "--threads",
        "1",
        "--server-pid",
        &pid_arg,
        "--quiet",
        &url,
    ]);
    stop.store(true, Ordering::SeqCst);
    sampler.join().expect("sampler thread");
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();

    // After the run: every connection and session goes away (sessions
    // closed without TEARDOWN over UDP when the server times them out).
    let deadline = Instant::now() + Duration::from_secs(SESSION_TIMEOUT_S + 20);
    let mut after = sample(pid, 0.0);
    while after.fds as f64 != idle_fds && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        after = sample(pid, 0.0);
    }
    // And the server still answers.
    describe(port);

    // The window: from the end of the ramp plus the warm-up to the end of
    // counting, on the sampler's clock (which started just before the tool).
    let ramp_s = at(&report, "ramp_s").as_f64().expect("ramp_s");
    let window_s = at(&report, "duration_s").as_f64().expect("duration_s");
    let w0 = ramp_s + WARM_UP_S;
    let w1 = ramp_s + window_s;
    let rss = |s: &Sample| s.rss_kb;
    let fd = |s: &Sample| s.fds;
    let rss_first = window_median(&samples, w0, w0 + COMPARE_S, rss);
    let rss_last = window_median(&samples, w1 - COMPARE_S, w1, rss);
    let fds_first = window_median(&samples, w0, w0 + COMPARE_S, fd);
    let fds_last = window_median(&samples, w1 - COMPARE_S, w1, fd);
    let rss_growth = (rss_last - rss_first) / rss_first * 100.0;
    let fds_growth = (fds_last - fds_first) / fds_first * 100.0;
    let peak_rss = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let peak_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    let churn = at(&report, "churn");
    // RSS and fd medians per minute of the load (the last minute may be
    // partial), to tell steady growth from a step.
    let per_minute = |field: fn(&Sample) -> u64| {
        let mut out = Vec::new();
        let mut from = 0.0;
        while from < w1 {
            let to = (from + 60.0).min(w1);
            if samples.iter().any(|s| s.t >= from && s.t < to) {
                out.push(format!("{}", window_median(&samples, from, to, field)));
            }
            from = to;
        }
        out.join(" ")
    };
    println!(
        "soak: RSS kB by minute: {}\nsoak: fds by minute: {}",
        per_minute(rss),
        per_minute(fd)
    );
    println!(
        "soak: {secs} s of load, {} samples; idle RSS {idle_rss} kB, {idle_fds} fds\n\
         soak: RSS median {rss_first} kB → {rss_last} kB ({rss_growth:+.3} %), peak {peak_rss} kB\n\
         soak: fds median {fds_first} → {fds_last} ({fds_growth:+.3} %), peak {peak_fds}, after the run {} (idle {idle_fds}), RSS after {} kB\n\
         soak: churn {churn}\n\
         soak: packets {} received, {} lost; whole test {:.1} s",
        samples.len(),
        after.fds,
        after.rss_kb,
        u(&report, "packets.received"),
        u(&report, "packets.lost"),
        started.elapsed().as_secs_f64()
    );

    assert_eq!(
        u(&report, "clients.failed"),
        0,
        "{}",
        at(&report, "failures")
    );
    assert_eq!(u(&report, "churn.failed"), 0);
    assert!(status.success(), "exit status {status}");
    // Sessions really churned: at least one replacement per slot per 20 s.
    let min_ended = CLIENTS * (secs - 20) / 20;
    assert!(
        u(&report, "churn.ended") >= min_ended,
        "only {} sessions ended",
        u(&report, "churn.ended")
    );
    assert!(u(&report, "churn.closed_without_teardown") > 0);
    assert!(
        rss_growth < 1.0,
        "RSS median went from {rss_first} kB to {rss_last} kB ({rss_growth:+.3} %)"
    );
    assert!(
        fds_growth < 1.0,
        "fd median went from {fds_first} to {fds_last} ({fds_growth:+.3} %)"
    );
    assert_eq!(
        after.fds as f64, idle_fds,
        "fds did not return to the idle baseline after the run"
    );
    drop(server);
}
