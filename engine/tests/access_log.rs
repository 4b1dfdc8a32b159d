//! The access log's logger thread with real files: header, reopen after a
//! rename, size rotation, path change, JSON lines, a stalled writer (a FIFO
//! nobody reads) that must not block senders, and write errors
//! (`/dev/full`) that are counted and reported at most once per interval.

use std::fs;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use cadence_engine::access_log::{
    numbered, w3c_line, AccessLog, AccessLogConfig, AccessRecord, LogFormat,
};

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cadence-alog-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn record(i: usize) -> AccessRecord {
    AccessRecord {
        sc_bytes: 1000 + i as u64,
        packets_sent: i as u64,
        user_agent: Some("Lavf60.16.100".into()),
        ..AccessRecord::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            format!("/f{i}.mp4"),
            200,
            SystemTime::now(),
        )
    }
}

fn wait_written(log: &AccessLog, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.stats().written < n {
        assert!(Instant::now() < deadline, "not written: {:?}", log.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Splits a W3C file into (header lines, data lines), checking that it
/// starts with exactly one header.
fn split_w3c(path: &Path) -> (Vec<String>, Vec<String>) {
    let text = fs::read_to_string(path).expect("read log");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(
        lines[0].starts_with("#Software: Cadence/"),
        "{path:?}: {text}"
    );
    assert_eq!(lines[1], "#Version: 1.0");
    assert!(lines[2].starts_with("#Date: "));
    assert!(lines[4].starts_with("#Fields: c-ip date time "));
    let (h, d): (Vec<String>, Vec<String>) = lines.into_iter().partition(|l| l.starts_with('#'));
    assert_eq!(h.iter().filter(|l| l.starts_with("#Fields:")).count(), 1);
    (h, d)
}

fn stem(line: &str) -> &str {
    line.split(' ').nth(4).expect("cs-uri-stem")
}

#[test]
fn header_then_one_line_per_record() {
    let dir = tmp_dir("basic");
    let path = dir.join("access.log");
    let log = AccessLog::start(AccessLogConfig::new(path.clone())).expect("start");
    let tx = log.sender();
    let recs: Vec<AccessRecord> = (0..3).map(record).collect();
    for r in &recs {
        assert!(tx.log(r.clone()));
    }
    assert!(log.shutdown(Duration::from_secs(10)));
    let (_, data) = split_w3c(&path);
    let want: Vec<String> = recs
        .iter()
        .map(|r| w3c_line(r).trim_end().to_string())
        .collect();
    assert_eq!(data, want);
    // Restarting on the same non-empty file appends without a new header.
    let log = AccessLog::start(AccessLogConfig::new(path.clone())).expect("restart");
    log.sender().log(record(9));
    let stats_before = log.stats();
    assert!(log.shutdown(Duration::from_secs(10)));
    assert_eq!(stats_before.accepted, 1);
    let (_, data) = split_w3c(&path);
    assert_eq!(data.len(), 4);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn reopen_after_rename_starts_a_new_file_with_a_header() {
    let dir = tmp_dir("reopen");
    let path = dir.join("access.log");
    let moved = dir.join("access.log.old");
    let log = AccessLog::start(AccessLogConfig::new(path.clone())).expect("start");
    let tx = log.sender();
    tx.log(record(0));
    tx.log(record(1));
    wait_written(&log, 2);
    // logrotate: move, then HUP.
    fs::rename(&path, &moved).expect("rename");
    log.reopen();
    std::thread::sleep(Duration::from_millis(50));
    tx.log(record(2));
    assert!(log.shutdown(Duration::from_secs(10)));
    let (_, old) = split_w3c(&moved);
    let (_, new) = split_w3c(&path);
    assert_eq!(
        old.iter().map(|l| stem(l)).collect::<Vec<_>>(),
        ["/f0.mp4", "/f1.mp4"]
    );
    assert_eq!(new.iter().map(|l| stem(l)).collect::<Vec<_>>(), ["/f2.mp4"]);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn size_rotation_keeps_numbered_files() {
    let dir = tmp_dir("rotate");
    let path = dir.join("access.log");
    let line_len = w3c_line(&record(10)).len() as u64;
    let header_len = cadence_engine::access_log::w3c_header(SystemTime::now()).len() as u64;
    let max = header_len + 3 * line_len + 5;
    let cfg = AccessLogConfig {
        max_bytes: max,
        keep: 2,
        ..AccessLogConfig::new(path.clone())
    };
    let log = AccessLog::start(cfg).expect("start");
    let tx = log.sender();
    // /f10 … /f29: all lines have the same length.
    for i in 10..30 {
        assert!(tx.log(record(i)));
    }
    assert!(log.shutdown(Duration::from_secs(10)));
    assert!(!numbered(&path, 3).exists(), "only keep=2 rotated files");
    // 20 lines, 3 per file: FILE.2 holds /f22-24, FILE.1 /f25-27, FILE the
    // last 2; the 12 oldest went with the files rotated away.
    let mut stems = Vec::new();
    for (p, n) in [
        (numbered(&path, 2), 3),
        (numbered(&path, 1), 3),
        (path.clone(), 2),
    ] {
        let size = fs::metadata(&p).expect("exists").len();
        assert!(size <= max, "{p:?} is {size} > {max}");
        let (_, data) = split_w3c(&p);
        assert_eq!(data.len(), n, "{p:?}");
        stems.extend(data.iter().map(|l| stem(l).to_string()));
    }
    let want: Vec<String> = (22..30).map(|i| format!("/f{i}.mp4")).collect();
    assert_eq!(stems, want);
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn reconfigure_switches_path_and_format() {
    let dir = tmp_dir("reconf");
    let a = dir.join("a.log");
    let b = dir.join("b.jsonl");
    let log = AccessLog::start(AccessLogConfig::new(a.clone())).expect("start");
    let tx = log.sender();
    tx.log(record(0));
    wait_written(&log, 1);
    log.reconfigure(AccessLogConfig {
        format: LogFormat::Json,
        ..AccessLogConfig::new(b.clone())
    });
    std::thread::sleep(Duration::from_millis(50));
    tx.log(record(1));
    tx.log(record(2));
    assert!(log.shutdown(Duration::from_secs(10)));
    let (_, data) = split_w3c(&a);
    assert_eq!(data.len(), 1);
    let text = fs::read_to_string(&b).expect("json file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "JSON files have no header: {text}");
    for (l, i) in lines.iter().zip(1..) {
        let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
        assert_eq!(v["cs-uri-stem"], format!("/f{i}.mp4"));
        assert_eq!(v["sc-bytes"], 1000 + i);
        assert_eq!(v["c-dns"], serde_json::Value::Null);
    }
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_stalled_writer_never_blocks_senders() {
    let dir = tmp_dir("stall");
    let fifo = dir.join("access.fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    // A reader that does not read yet: the pipe (64 KiB) fills and the
    // logger thread blocks in write(2), like a stuck disk.
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open fifo reader");
    let cfg = AccessLogConfig {
        queue: 64,
        ..AccessLogConfig::new(fifo.clone())
    };
    let log = AccessLog::start(cfg).expect("start");
    let tx = log.sender();
    const N: usize = 50_000;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // The "shard": sends N records and reports how many were accepted.
    std::thread::spawn(move || {
        let mut accepted = 0usize;
        for i in 0..N {
            if tx.log(record(i)) {
                accepted += 1;
            }
        }
        let _ = done_tx.send(accepted);
    });
    // Generous watchdog: the sends must finish while the writer is stuck;
    // a blocking sender would hang here forever.
    let accepted = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("sender blocked behind the stalled writer");
    let s = log.stats();
    assert_eq!(s.accepted as usize, accepted);
    assert_eq!((s.accepted + s.dropped) as usize, N);
    assert!(s.dropped > 0, "the queue must have filled: {s:?}");
    assert!(s.written < s.accepted, "the writer was stalled: {s:?}");

    // Unstall: read everything until the logger closes the FIFO.
    let drain = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("read fifo: {e}"),
            }
        }
        String::from_utf8(out).expect("utf8")
    });
    assert!(
        log.shutdown(Duration::from_secs(30)),
        "logger did not finish"
    );
    let text = drain.join().expect("drain");
    let data = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(data as u64, s.accepted, "every accepted record is written");
    let noted: u64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("#Remark: "))
        .filter_map(|r| r.strip_suffix(" access log records dropped (queue of 64 full)"))
        .map(|n| n.parse::<u64>().expect("count"))
        .sum();
    assert_eq!(noted, s.dropped, "drops are reported in the file");
    let _ = fs::remove_dir_all(dir);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_are_counted_and_reported_rate_limited() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();
    // Every write to /dev/full fails with ENOSPC.
    let cfg = AccessLogConfig {
        max_bytes: 100, // not a regular file: never renamed
        report_interval: Duration::from_secs(3600),
        ..AccessLogConfig::new(PathBuf::from("/dev/full"))
    };
    let log = AccessLog::start(cfg).expect("open /dev/full");
    let tx = log.sender();
    for i in 0..2000 {
        assert!(tx.log(record(i)) || log.stats().dropped > 0);
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let counters = log.counters();
    assert!(log.shutdown(Duration::from_secs(10)));
    let st = counters.snapshot();
    assert_eq!(st.written, 0);
    assert_eq!(st.lost, st.accepted, "{st:?}");
    assert!(st.write_errors >= 1);
    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    let reports: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("access log trouble") && l.contains("/dev/full"))
        .collect();
    // One at the first error, one summary at shutdown: never one per line.
    assert!(
        !reports.is_empty() && reports.len() <= 2,
        "{} reports:\n{text}",
        reports.len()
    );
    let lost: u64 = reports
        .iter()
        .map(|l| {
            let v = l.split("lines_lost=").nth(1).expect("lines_lost");
            v.split(' ').next().expect("n").parse::<u64>().expect("num")
        })
        .sum();
    assert_eq!(lost, st.accepted, "every accepted line is reported lost");
    assert!(!numbered(Path::new("/dev/full"), 1).exists());
}

#[test]
fn counters_are_exported_as_metrics() {
    use cadence_engine::access_log::AccessLogCollector;
    use cadence_engine::metrics::ServerMetrics;
    let dir = tmp_dir("metrics");
    let log = AccessLog::start(AccessLogConfig::new(dir.join("a.log"))).expect("start");
    for i in 0..3 {
        log.sender().log(record(i));
    }
    wait_written(&log, 3);
    let mut m = ServerMetrics::new(Vec::new());
    m.registry_mut()
        .register_collector(Box::new(AccessLogCollector(log.counters())));
    let text = m.encode().expect("encode");
    assert!(
        text.contains("cadence_access_log_records_total{outcome=\"written\"} 3\n"),
        "{text}"
    );
    assert!(text.contains("cadence_access_log_records_total{outcome=\"dropped\"} 0\n"));
    assert!(text.contains("cadence_access_log_errors_total 0\n"));
    let mut p = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    std::io::Write::write_all(&mut p.stdin.take().expect("stdin"), text.as_bytes()).expect("write");
    let out = p.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(log.shutdown(Duration::from_secs(10)));
    let _ = fs::remove_dir_all(dir);
}
