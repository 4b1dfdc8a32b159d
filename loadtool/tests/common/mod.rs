//! Helpers shared by the load tool's integration tests: finding programs,
//! free ports, waiting for servers, running the tool and reading its JSON.

#![allow(dead_code)]

pub mod fake_server;

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Repository root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// True when the test must fail rather than skip for a missing prerequisite.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (returns false, with a visible notice) or, under CI=true, panics.
pub fn prerequisite(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(!in_ci(), "CI=true and {what}");
        eprintln!("SKIPPED: {what}");
    }
    ok
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral TCP port")
}

/// An even UDP port whose successor was free a moment ago.
pub fn free_udp_pair() -> u16 {
    for _ in 0..100 {
        let Ok(a) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(port) = a.local_addr().map(|x| x.port()) else {
            continue;
        };
        let even = port & !1;
        if even < 1024 || even == u16::MAX - 1 {
            continue;
        }
        drop(a);
        if UdpSocket::bind(("127.0.0.1", even)).is_ok()
            && UdpSocket::bind(("127.0.0.1", even + 1)).is_ok()
        {
            return even;
        }
    }
    panic!("no free UDP port pair");
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_listener(port: u16, child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "server did not listen on port {port} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `cadence` binary: `$CADENCE_BIN`, else next to this test's binary
/// (target/<profile>/deps/<test> → target/<profile>/cadence, built by
/// `cargo build [--release] -p cadence-engine`).
pub fn cadence_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CADENCE_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.parent()?.join("cadence");
    candidate.is_file().then_some(candidate)
}

/// Starts `cadence --cores 1` on a free 127.0.0.1 port with the bundled
/// `media/`, plus `extra` arguments; returns it (killed when dropped) and its
/// RTSP port once it listens.
pub fn start_cadence(bin: &Path, extra: &[&str]) -> (Server, u16) {
    let port = free_tcp_port();
    let udp_base = free_udp_pair();
    let child = Command::new(bin)
        .args(["--cores", "1", "--log-level", "warn", "--media"])
        .arg(repo_root().join("media"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--udp-port-base")
        .arg(udp_base.to_string())
        .args(extra)
        .spawn()
        .expect("start cadence");
    let mut server = Server(child);
    wait_for_listener(port, &mut server.0, Duration::from_secs(20));
    (server, port)
}

/// Runs cadence-loadtool with `args`, writing its JSON report to a temporary
/// file, and returns the exit status, the parsed report and stdout.
pub fn run_loadtool(args: &[&str]) -> (ExitStatus, serde_json::Value, String) {
    let json = std::env::temp_dir().join(format!(
        "cadence-loadtool-test-{}-{}.json",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_cadence-loadtool"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .output()
        .expect("run cadence-loadtool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); status {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        )
    });
    let _ = std::fs::remove_file(&json);
    let report: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    println!("{stdout}");
    (output.status, report, stdout)
}

/// The value at a dotted `path` (`"lateness_us.p99"`), panicking with the path
/// when it is missing.
pub fn at<'a>(report: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    let mut v = report;
    for key in path.split('.') {
        let next = match key.parse::<usize>() {
            Ok(i) if v.is_array() => v.get(i),
            _ => v.get(key),
        };
        v = next.unwrap_or_else(|| panic!("report has no {path}"));
    }
    v
}

/// `at(...)` as u64.
pub fn u(report: &serde_json::Value, path: &str) -> u64 {
    at(report, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is not an unsigned integer"))
}

/// The keys the issue requires in every report.
pub const REQUIRED_KEYS: &[&str] = &[
    "clients.requested",
    "clients.playing",
    "clients.failed",
    "packets.received",
    "packets.lost",
    "bytes.received",
    "lateness_us.p50",
    "lateness_us.p99",
    "lateness_us.p999",
    "lateness_us.max",
    "jitter_ms.p50",
    "jitter_ms.p99",
    "setup_ms.p50",
    "setup_ms.p99",
    "kernel_udp.in_datagrams",
    "kernel_udp.rcvbuf_errors",
    "failures",
    "duration_s",
    "cpu.user_s",
    "cpu.system_s",
    "cpu.us_per_packet",
];
