//! The admin HTTP server over real sockets, with a fake backend: routes,
//! status codes, JSON shapes, authentication, DELETE, 404/405, and a
//! backend that hangs (503 within the timeout while the server stays up).

mod common;

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use cadence_engine::admin::{
    AdminAuth, AdminBackend, AdminConfig, AdminServer, KillResult, RateMeter, Secret, ServerInfo,
    SessionInfo, TrackInfo,
};
use cadence_engine::metrics::{ServerMetrics, ShardMetrics, Transport};
use cadence_engine::session::SessionState;
use common::http::{http, Reply};
use common::tools::with_stdin;
use serde_json::Value;

/// Prints `{"name{k=v,...}": value}` for every sample the Python
/// `prometheus_client` parser reads (labels sorted by name).
const PY_SAMPLE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;

fn get(addr: SocketAddr, path: &str) -> Reply {
    http(addr, "GET", path, &[])
}

struct Fake {
    metrics: Arc<ServerMetrics>,
    started: SystemTime,
    rates: Mutex<RateMeter>,
    killed: Mutex<Vec<String>>,
    /// When set, every call waits on it (a stuck shard).
    hang: Option<Mutex<Receiver<()>>>,
}

impl Fake {
    fn wait(&self) {
        if let Some(h) = &self.hang {
            let _ = h
                .lock()
                .expect("lock")
                .recv_timeout(Duration::from_secs(30));
        }
    }
}

fn session() -> SessionInfo {
    SessionInfo {
        id: "01a2b3c4d5e6f708".into(),
        shard: 1,
        client: "127.0.0.1:50123".parse().expect("addr"),
        path: "sample.mp4".into(),
        transport: Transport::Udp,
        state: SessionState::Playing,
        started_unix_ms: 1_709_210_096_000,
        npt_s: 12.5,
        bytes_sent: 1_234_567,
        packets_sent: 1000,
        user: Some("jo".into()),
        tracks: vec![TrackInfo {
            track_id: 1,
            ssrc: 0xdead_beef,
            codec: Some("H264".into()),
            packets_sent: 900,
            bytes_sent: 1_100_000,
            rr_count: 3,
            fraction_lost: Some(TrackInfo::fraction(64)),
            packets_lost: Some(7),
            highest_seq: Some(0x0001_0100),
            packets_expected: Some(700),
            loss_ratio: Some(0.01),
            jitter_us: TrackInfo::jitter_us(450, 90_000),
        }],
    }
}

impl AdminBackend for Fake {
    fn sessions(&self) -> Vec<SessionInfo> {
        self.wait();
        vec![session()]
    }
    fn kill(&self, id: &str) -> KillResult {
        self.wait();
        if id == "01a2b3c4d5e6f708" {
            self.killed.lock().expect("lock").push(id.to_string());
            KillResult::Killed
        } else {
            KillResult::NotFound
        }
    }
    fn server(&self) -> ServerInfo {
        self.wait();
        let mut r = self.rates.lock().expect("lock");
        let mut info =
            ServerInfo::from_metrics(&self.metrics, self.started, &[Some(0), Some(1)], &mut r);
        info.rtsp_connections = 5;
        info
    }
}

fn metrics() -> Arc<ServerMetrics> {
    let a = Arc::new(ShardMetrics::new(0));
    let b = Arc::new(ShardMetrics::new(1));
    a.session_started(Transport::Udp);
    b.session_started(Transport::Tcp);
    b.session_state(Transport::Tcp, SessionState::Ready, SessionState::Playing);
    a.add_rtp(100, 120_000, 0);
    b.add_rtp(50, 60_000, 0);
    Arc::new(ServerMetrics::new(vec![a, b]))
}

fn start(
    auth: AdminAuth,
    hang: Option<Receiver<()>>,
    timeout: Duration,
) -> (AdminServer, Arc<Fake>) {
    let m = metrics();
    let fake = Arc::new(Fake {
        metrics: m.clone(),
        started: SystemTime::now() - Duration::from_secs(90),
        rates: Mutex::new(RateMeter::new(Duration::from_secs(1))),
        killed: Mutex::new(Vec::new()),
        hang: hang.map(Mutex::new),
    });
    let cfg = AdminConfig {
        auth,
        timeout,
        ..AdminConfig::new("127.0.0.1:0".parse().expect("addr"))
    };
    let server = AdminServer::start(cfg, fake.clone(), m).expect("start admin");
    (server, fake)
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn routes_statuses_and_json_shapes() {
    let (server, fake) = start(AdminAuth::default(), None, Duration::from_secs(5));
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let r = get(addr, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    let r = get(addr, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        ["text/plain; version=0.0.4; charset=utf-8"]
    );
    assert!(r
        .body
        .contains("cadence_rtp_sent_packets_total{shard=\"1\"} 50\n"));
    let out = with_stdin("promtool", &["check", "metrics"], &r.body);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The Python client's parser reads the same body (it must be installed:
    // apt-get install python3-prometheus-client).
    let out = with_stdin("/usr/bin/python3", &["-c", PY_SAMPLE], &r.body);
    assert!(
        out.status.success(),
        "python prometheus_client parser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).expect("parser output");
    assert_eq!(parsed["cadence_rtp_sent_packets_total{shard=1}"], 50.0);
    assert_eq!(parsed["cadence_rtp_sent_bytes_total{shard=0}"], 120_000.0);
    assert_eq!(
        parsed["cadence_sessions{shard=1,state=playing,transport=tcp}"],
        1.0
    );

    let r = get(addr, "/api/v1/sessions");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type")[0].starts_with("application/json"));
    let v = r.json();
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 1);
    let s = &list[0];
    assert_eq!(
        keys(s),
        [
            "bytes_sent",
            "client",
            "id",
            "npt_s",
            "packets_sent",
            "path",
            "shard",
            "started_unix_ms",
            "state",
            "tracks",
            "transport",
            "user"
        ]
    );
    assert_eq!(s["id"], "01a2b3c4d5e6f708");
    assert_eq!(s["client"], "127.0.0.1:50123");
    assert_eq!(s["transport"], "udp");
    assert_eq!(s["state"], "playing");
    assert_eq!(s["npt_s"], 12.5);
    let t = &s["tracks"][0];
    assert_eq!(t["fraction_lost"], 0.25);
    assert_eq!(t["jitter_us"], 5000);
    assert_eq!(t["packets_lost"], 7);
    assert_eq!(t["highest_seq"], 0x0001_0100);
    assert_eq!(t["packets_expected"], 700);
    assert_eq!(t["loss_ratio"], 0.01);
    assert_eq!(t["ssrc"], 0xdead_beef_u32);
    // The JSON reads back into the same struct.
    let back: Vec<SessionInfo> = serde_json::from_str(&r.body).expect("round trip");
    assert_eq!(back, vec![session()]);

    let r = get(addr, "/api/v1/server");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["sessions"], 2);
    assert_eq!(v["playing"], 1);
    assert_eq!(v["rtsp_connections"], 5);
    assert_eq!(v["total_packets_sent"], 150);
    assert_eq!(v["total_bytes_sent"], 180_000);
    assert_eq!(v["total_sessions"], 2);
    assert!(v["uptime_s"].as_u64().expect("uptime") >= 90);
    assert_eq!(v["shards"][1]["cpu"], 1);
    assert_eq!(v["shards"][1]["sessions"], 1);
    assert_eq!(v["state"], "running");

    let r = http(addr, "DELETE", "/api/v1/sessions/01a2b3c4d5e6f708", &[]);
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert_eq!(*fake.killed.lock().expect("lock"), ["01a2b3c4d5e6f708"]);
    let r = http(addr, "DELETE", "/api/v1/sessions/00000000000000ff", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no such session");
    let r = http(addr, "DELETE", "/api/v1/sessions/bad%20id", &[]);
    assert_eq!(r.status, 400);
    let long = format!("/api/v1/sessions/{}", "a".repeat(65));
    assert_eq!(http(addr, "DELETE", &long, &[]).status, 400);

    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/api/v1/sessions/x/y").status, 404);
    assert_eq!(http(addr, "POST", "/metrics", &[]).status, 405);
    assert_eq!(
        http(addr, "GET", "/api/v1/sessions/01a2b3c4d5e6f708", &[]).status,
        405
    );
    assert_eq!(http(addr, "DELETE", "/api/v1/sessions", &[]).status, 405);
    server.shutdown();
    assert!(TcpStream::connect(addr).is_err(), "closed after shutdown");
}

#[test]
fn token_and_basic_authentication() {
    let auth = AdminAuth {
        token: Some(Secret::new("t0ken")),
        basic: Some(("ops".into(), Secret::new("pw"))),
    };
    let (server, _) = start(auth, None, Duration::from_secs(5));
    let addr = server.local_addr();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let with = |v: String| http(addr, "GET", "/api/v1/sessions", &[("Authorization", v)]);

    let r = get(addr, "/api/v1/sessions");
    assert_eq!(r.status, 401);
    let challenges = r.header("www-authenticate");
    assert_eq!(
        challenges,
        [
            "Bearer realm=\"cadence-admin\"",
            "Basic realm=\"cadence-admin\", charset=\"UTF-8\""
        ]
    );
    assert!(!r.body.contains("t0ken"));
    assert_eq!(get(addr, "/metrics").status, 401);
    assert_eq!(
        http(addr, "DELETE", "/api/v1/sessions/01a2b3c4d5e6f708", &[]).status,
        401
    );

    assert_eq!(with("Bearer t0ken".into()).status, 200);
    assert_eq!(with("Bearer t0ke".into()).status, 401);
    assert_eq!(with("Bearer t0kenn".into()).status, 401);
    assert_eq!(with(format!("Basic {}", b64("ops:pw"))).status, 200);
    let wrong = with(format!("Basic {}", b64("ops:nope")));
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.header("www-authenticate").len(), 2);
    assert_eq!(with(format!("Basic {}", b64("root:pw"))).status, 401);
    assert_eq!(with("Basic ***".into()).status, 401);
    assert_eq!(with("Digest username=\"ops\"".into()).status, 401);

    // Health needs no credentials; unknown routes are 404 either way.
    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(get(addr, "/nope").status, 404);
    server.shutdown();
}

#[test]
fn a_hung_backend_yields_503_within_the_timeout() {
    let (release, hang) = mpsc::channel::<()>();
    let timeout = Duration::from_millis(300);
    let (server, _) = start(AdminAuth::default(), Some(hang), timeout);
    let addr = server.local_addr();

    let t0 = Instant::now();
    let r = get(addr, "/api/v1/sessions");
    let took = t0.elapsed();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), ["1"]);
    assert!(took >= timeout, "answered before the timeout: {took:?}");
    assert!(took < timeout + Duration::from_secs(5), "took {took:?}");

    // More stuck calls than blocking threads: all still answer 503, and the
    // server keeps serving what needs no shard.
    let handles: Vec<_> = (0..6)
        .map(|i| {
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/api/v1/server"
                } else {
                    "/api/v1/sessions"
                };
                get(addr, path).status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("client"), 503);
    }
    assert_eq!(
        http(addr, "DELETE", "/api/v1/sessions/01a2b3c4d5e6f708", &[]).status,
        503
    );
    assert_eq!(get(addr, "/healthz").status, 200);
    assert_eq!(get(addr, "/metrics").status, 200);

    let t0 = Instant::now();
    server.shutdown();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "shutdown waited on the stuck backend"
    );
    drop(release);
}
