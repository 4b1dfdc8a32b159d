//! Exposition tests: the text is checked by `promtool check metrics` and
//! parsed by the Python `prometheus_client` parser (both must be installed:
//! `apt-get install prometheus python3-prometheus-client`; a missing tool
//! fails the test), and the parsed values must equal what was incremented.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::pacer::TickStats;
use crate::session::SessionState;

/// Parsed samples: (name, sorted labels) → value.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

fn run_with_stdin(cmd: &mut Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (install it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

const PY_PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([fam.type, s.name, s.labels, s.value])
print(json.dumps(out))
"#;

fn python_parse(text: &str) -> (Samples, BTreeMap<String, String>) {
    let out = run_with_stdin(
        Command::new("/usr/bin/python3").args(["-c", PY_PARSE]),
        text,
    );
    assert!(
        out.status.success(),
        "python prometheus_client parser rejected the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).expect("parser output");
    let mut samples = Samples::new();
    let mut types = BTreeMap::new();
    for (ty, name, labels, value) in rows {
        types.insert(name.clone(), ty);
        let key = (name, labels.into_iter().collect());
        assert!(
            samples.insert(key.clone(), value).is_none(),
            "duplicate {key:?}"
        );
    }
    (samples, types)
}

fn get(s: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    *s.get(&(name.to_string(), l.clone()))
        .unwrap_or_else(|| panic!("no sample {name}{l:?}"))
}

fn exercised() -> ServerMetrics {
    let a = Arc::new(ShardMetrics::new(0));
    let b = Arc::new(ShardMetrics::new(1));
    // Shard 0: two UDP sessions, one plays; one TCP session that times out.
    a.session_started(Transport::Udp);
    a.session_started(Transport::Udp);
    a.session_state(Transport::Udp, SessionState::Ready, SessionState::Playing);
    a.session_started(Transport::Tcp);
    a.session_ended(Transport::Tcp, SessionState::Ready, EndReason::Timeout);
    // Shard 1: one TCP session playing, then torn down by an admin.
    b.session_started(Transport::Tcp);
    b.session_state(Transport::Tcp, SessionState::Ready, SessionState::Playing);
    b.session_ended(Transport::Tcp, SessionState::Playing, EndReason::AdminKill);
    a.add_tick(&TickStats {
        packets: 10,
        bytes: 12_000,
        late: 1,
        max_late_us: 3_000,
        finished: 0,
        sink_full: false,
        ..TickStats::default()
    });
    a.add_rtp(5, 6_000, 0);
    b.add_rtp(7, 7_700, 2);
    let mut t = LatenessTally::default();
    for us in [0, 0, 80, 150, 2_500] {
        t.observe(us);
    }
    a.add_lateness(&t);
    b.observe_lateness_us(1_500_000);
    a.rtsp_request(RtspMethod::Describe, 200);
    a.rtsp_request(RtspMethod::Describe, 200);
    b.rtsp_request(RtspMethod::Describe, 200);
    b.rtsp_request(RtspMethod::Setup, 453);
    a.rtsp_request(RtspMethod::Other, 299);
    b.admission_refusal();
    a.tcp_backlog_drop();
    a.auth_failure(AuthFailure::NoCredentials);
    b.auth_failure(AuthFailure::NoCredentials);
    b.auth_failure(AuthFailure::AddressDenied);
    a.set_busy_share(0.25);
    b.set_busy_share(0.5);
    let m = ServerMetrics::new(vec![a, b]);
    m.observe_compile(Duration::from_millis(30));
    m.observe_compile(Duration::from_millis(3));
    m.set_catalog_files(42);
    m
}

#[test]
fn promtool_accepts_the_exposition() {
    let text = exercised().encode().expect("encode");
    let out = run_with_stdin(Command::new("promtool").args(["check", "metrics"]), &text);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: status {:?}\nstdout: {}\nstderr: {}\n--- exposition:\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_rejects_a_broken_exposition() {
    // The check above can fail: promtool does complain about a bad counter.
    let out = run_with_stdin(
        Command::new("promtool").args(["check", "metrics"]),
        "# HELP x_bytes bad\n# TYPE x_bytes counter\nx_bytes 1\n",
    );
    assert!(!out.status.success() || !out.stderr.is_empty() || !out.stdout.is_empty());
}

#[test]
fn parsed_values_match_the_increments() {
    let m = exercised();
    let text = m.encode().expect("encode");
    let (s, types) = python_parse(&text);

    let sess = |shard: &str, t: &str, st: &str| {
        get(
            &s,
            "cadence_sessions",
            &[("shard", shard), ("transport", t), ("state", st)],
        )
    };
    assert_eq!(sess("0", "udp", "ready"), 1.0);
    assert_eq!(sess("0", "udp", "playing"), 1.0);
    assert_eq!(sess("0", "tcp", "ready"), 0.0);
    assert_eq!(sess("1", "tcp", "playing"), 0.0);
    assert_eq!(types["cadence_sessions"], "gauge");

    let started = |t| get(&s, "cadence_sessions_started_total", &[("transport", t)]);
    assert_eq!(started("udp"), 2.0);
    assert_eq!(started("tcp"), 2.0);
    let ended = |r| get(&s, "cadence_sessions_ended_total", &[("reason", r)]);
    assert_eq!(ended("timeout"), 1.0);
    assert_eq!(ended("admin_kill"), 1.0);
    assert_eq!(ended("teardown"), 0.0);
    assert_eq!(types["cadence_sessions_ended_total"], "counter");

    assert_eq!(
        get(&s, "cadence_rtp_sent_packets_total", &[("shard", "0")]),
        15.0
    );
    assert_eq!(
        get(&s, "cadence_rtp_sent_packets_total", &[("shard", "1")]),
        7.0
    );
    assert_eq!(
        get(&s, "cadence_rtp_sent_bytes_total", &[("shard", "0")]),
        18_000.0
    );
    assert_eq!(
        get(&s, "cadence_rtp_late_packets_total", &[("shard", "1")]),
        2.0
    );

    // Lateness: 0, 0, 80, 150 µs, 2.5 ms on shard 0; 1.5 s on shard 1.
    let le = |b: &str| get(&s, "cadence_rtp_lateness_seconds_bucket", &[("le", b)]);
    assert_eq!(le("0.0001"), 3.0);
    assert_eq!(le("0.0002"), 4.0);
    assert_eq!(le("0.002"), 4.0);
    assert_eq!(le("0.005"), 5.0);
    assert_eq!(le("1"), 5.0);
    assert_eq!(le("+Inf"), 6.0);
    assert_eq!(get(&s, "cadence_rtp_lateness_seconds_count", &[]), 6.0);
    let sum = get(&s, "cadence_rtp_lateness_seconds_sum", &[]);
    assert!((sum - 1.50273).abs() < 1e-9, "sum {sum}");
    assert_eq!(types["cadence_rtp_lateness_seconds_bucket"], "histogram");

    let req = |m, st| {
        get(
            &s,
            "cadence_rtsp_requests_total",
            &[("method", m), ("status", st)],
        )
    };
    assert_eq!(req("DESCRIBE", "200"), 3.0);
    assert_eq!(req("SETUP", "453"), 1.0);
    assert_eq!(req("other", "other"), 1.0);
    let combos = s
        .keys()
        .filter(|(n, _)| n == "cadence_rtsp_requests_total")
        .count();
    assert_eq!(combos, 3, "only the combinations seen are exported");

    assert_eq!(get(&s, "cadence_shard_busy_ratio", &[("shard", "0")]), 0.25);
    assert_eq!(get(&s, "cadence_shard_busy_ratio", &[("shard", "1")]), 0.5);
    assert_eq!(get(&s, "cadence_tcp_backlog_drops_total", &[]), 1.0);
    assert_eq!(get(&s, "cadence_admission_refusals_total", &[]), 1.0);
    let auth = |st, r| {
        get(
            &s,
            "cadence_auth_failures_total",
            &[("status", st), ("reason", r)],
        )
    };
    assert_eq!(auth("401", "no_credentials"), 2.0);
    assert_eq!(auth("403", "address_denied"), 1.0);
    assert_eq!(auth("401", "bad_credentials"), 0.0);

    assert_eq!(get(&s, "cadence_catalog_files", &[]), 42.0);
    assert_eq!(get(&s, "cadence_schedule_compile_seconds_count", &[]), 2.0);
    assert_eq!(
        get(
            &s,
            "cadence_schedule_compile_seconds_bucket",
            &[("le", "0.005")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &s,
            "cadence_schedule_compile_seconds_bucket",
            &[("le", "0.05")]
        ),
        2.0
    );
    assert_eq!(
        get(
            &s,
            "cadence_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    let totals = m.totals();
    assert_eq!(totals.sessions, 2);
    assert_eq!(totals.playing, 1);
    assert_eq!(totals.rtp_packets, 22);
}

#[test]
fn scrape_while_shards_increment() {
    // Readers never see a broken exposition while writers run.
    let a = Arc::new(ShardMetrics::new(0));
    let m = ServerMetrics::new(vec![a.clone()]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                a.add_rtp(1, 100, 0);
                a.observe_lateness_us(n % 3_000);
                n += 1;
            }
            n
        })
    };
    let mut last = 0.0;
    for _ in 0..8 {
        let (s, _) = python_parse(&m.encode().expect("encode"));
        let p = get(&s, "cadence_rtp_sent_packets_total", &[("shard", "0")]);
        assert!(p >= last, "counter went backwards");
        last = p;
        let count = get(&s, "cadence_rtp_lateness_seconds_count", &[]);
        let inf = get(&s, "cadence_rtp_lateness_seconds_bucket", &[("le", "+Inf")]);
        assert_eq!(count, inf);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = w.join().expect("writer");
    assert_eq!(a.totals().rtp_packets, n);
}
