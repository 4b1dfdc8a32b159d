//! Operating Cadence, end to end with real clients: the DSS-format access
//! log (exact header, one line per session with the right fields, sc-bytes
//! equal to what the client received, refusals), `/metrics` read by promtool
//! and by the Python prometheus_client parser with counters matching the
//! sessions, `/api/v1/sessions` listing live sessions with their RTCP
//! figures, DELETE ending one, `/api/v1/server`, and the log reopened on
//! SIGHUP for logrotate.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::http::http;
use common::media;
use common::player::Player;
use common::rtsp::RtspConn;
use common::server::{free_port, Server, TempDir};
use common::tools::{ffmpeg_decode, with_stdin, Lower};
use rtsp_types::Method;

const FIELDS: &str = "#Fields: c-ip date time c-dns cs-uri-stem c-starttime x-duration c-rate c-status c-playerid c-playerversion c-playerlanguage cs(User-Agent) c-os c-osversion c-cpu filelength filesize avgbandwidth protocol transport audiocodec videocodec sc-bytes cs-bytes c-bytes s-pkts-sent c-pkts-received c-pkts-lost-client c-buffercount c-totalbuffertime c-quality s-ip s-dns s-totalclients s-cpu-util cs-uri-query c-username sc(Realm)";

fn bearer() -> (&'static str, String) {
    ("Authorization", "Bearer s3cret-token".to_string())
}

/// The data lines of the access log (W3C), split into fields.
fn lines(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(' ').map(str::to_string).collect())
        .collect()
}

fn field(line: &[String], name: &str) -> String {
    let names: Vec<&str> = FIELDS.trim_start_matches("#Fields: ").split(' ').collect();
    let i = names.iter().position(|n| *n == name).expect("field name");
    line.get(i).cloned().unwrap_or_default()
}

fn wait_for(mut f: impl FnMut() -> bool, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

struct Ops {
    server: Server,
    admin: SocketAddr,
    log: std::path::PathBuf,
    _etc: TempDir,
}

fn start() -> Ops {
    let etc = TempDir::new("ops-etc");
    let log = etc.path().join("access.log");
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = etc.path().join("cadence.toml");
    std::fs::write(
        &config,
        format!(
            "access_log = \"{}\"\nadmin = \"{admin}\"\nadmin_token = \"s3cret-token\"\n",
            log.display()
        ),
    )
    .expect("config");
    let server = Server::start_with(
        &[media::fixture_source()],
        &["--config", config.to_str().expect("utf8")],
    );
    assert!(
        wait_for(
            || std::net::TcpStream::connect(admin).is_ok(),
            Duration::from_secs(5)
        ),
        "admin API not up"
    );
    Ops {
        server,
        admin,
        log,
        _etc: etc,
    }
}

#[test]
fn access_log_lines_match_the_sessions() {
    let ops = start();
    let url = ops.server.url(media::FIXTURE_H264);
    // Three ffmpeg sessions: UDP, TCP, UDP.
    for lower in [Lower::Udp, Lower::Tcp, Lower::Udp] {
        let d = ffmpeg_decode(&url, lower, None, 2.0);
        assert!(d.frames >= 45, "{} frames {:?}", d.frames, d.errors);
    }
    // And one counted packet by packet.
    let mut p = Player::open(ops.server.addr(), &url, Lower::Udp);
    p.play(None);
    let mut got = p.collect_for(Duration::from_secs(2));
    // PAUSE stops the pacer; what it had sent before is still in flight or in the
    // socket buffer, so drain it before comparing with the server's count.
    p.pause();
    got.extend(p.collect_for(Duration::from_millis(500)));
    assert_eq!(p.teardown().status, 200);
    let received: u64 = got.iter().map(|x| 12 + x.payload.len() as u64).sum();
    // A refusal.
    let mut c = RtspConn::connect(ops.server.addr());
    assert_eq!(
        c.request(Method::Describe, &ops.server.url("missing.mp4"), &[])
            .status,
        404
    );
    assert!(
        wait_for(|| lines(&ops.log).len() >= 5, Duration::from_secs(5)),
        "{:?}\n{}",
        std::fs::read_to_string(&ops.log),
        ops.server.log_tail(10)
    );
    let text = std::fs::read_to_string(&ops.log).expect("log");
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with('#')).collect();
    assert_eq!(
        header[0],
        concat!("#Software: Cadence/", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(header[1], "#Version: 1.0");
    assert!(header[2].starts_with("#Date: "), "{}", header[2]);
    assert!(header.contains(&FIELDS), "{header:?}");
    let l = lines(&ops.log);
    let sessions: Vec<&Vec<String>> = l.iter().filter(|x| field(x, "c-status") == "200").collect();
    assert_eq!(sessions.len(), 4, "{l:?}");
    let transports: Vec<String> = sessions.iter().map(|x| field(x, "transport")).collect();
    assert_eq!(transports, ["UDP", "TCP", "UDP", "UDP"]);
    for s in &sessions {
        assert_eq!(field(s, "c-ip"), "127.0.0.1");
        assert_eq!(field(s, "cs-uri-stem"), format!("/{}", media::FIXTURE_H264));
        assert_eq!(field(s, "protocol"), "RTP");
        assert_eq!(field(s, "videocodec"), "H264");
        assert_eq!(
            field(s, "filesize"),
            std::fs::metadata(media::fixture(media::FIXTURE_H264))
                .expect("size")
                .len()
                .to_string()
        );
        assert_eq!(field(s, "filelength"), "60");
        let duration: u64 = field(s, "x-duration").parse().expect("x-duration");
        assert!((1..=5).contains(&duration), "x-duration {duration}");
        let sent: u64 = field(s, "s-pkts-sent").parse().expect("s-pkts-sent");
        assert!(sent > 50, "s-pkts-sent {sent}");
        assert!(
            field(s, "avgbandwidth")
                .parse::<u64>()
                .expect("avgbandwidth")
                > 100_000
        );
    }
    // ffmpeg's User-Agent, escaped as one field.
    assert!(
        field(sessions[0], "cs(User-Agent)").starts_with("Lavf"),
        "{:?}",
        sessions[0]
    );
    // The player's session: sc-bytes is exactly the RTP bytes it received.
    let mine = sessions[3];
    assert_eq!(field(mine, "sc-bytes"), received.to_string());
    assert_eq!(field(mine, "s-pkts-sent"), got.len().to_string());
    // No receiver report in a 2 s session: the lost count is unknown.
    assert_eq!(field(mine, "c-pkts-lost-client"), "-");
    // The refusal line.
    let refused = l
        .iter()
        .find(|x| field(x, "c-status") == "404")
        .expect("404 line");
    assert_eq!(field(refused, "cs-uri-stem"), "/missing.mp4");

    // logrotate: move the file, SIGHUP, the next line starts a new file.
    let moved = ops.log.with_extension("log.1");
    std::fs::rename(&ops.log, &moved).expect("rename");
    Command::new("kill")
        .args(["-HUP", &ops.server.pid().to_string()])
        .status()
        .expect("kill");
    std::thread::sleep(Duration::from_millis(500));
    let mut c = RtspConn::connect(ops.server.addr());
    c.request(Method::Describe, &ops.server.url("gone.mp4"), &[]);
    assert!(
        wait_for(|| lines(&ops.log).len() == 1, Duration::from_secs(5)),
        "no new log after SIGHUP"
    );
    let fresh = std::fs::read_to_string(&ops.log).expect("new log");
    assert!(fresh.starts_with("#Software: Cadence/"), "{fresh}");
    assert_eq!(lines(&moved).len(), 5, "the moved file keeps its lines");
}

/// `name{labels} value` lines of a Prometheus text exposition.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_and_admin_api_follow_the_sessions() {
    let ops = start();
    let url = ops.server.url(media::FIXTURE_H264);
    // Auth is required (except /healthz).
    assert_eq!(http(ops.admin, "GET", "/metrics", &[]).status, 401);
    assert_eq!(http(ops.admin, "GET", "/healthz", &[]).status, 200);

    // Two finished sessions (UDP, TCP) and two live ones.
    ffmpeg_decode(&url, Lower::Udp, None, 1.5);
    ffmpeg_decode(&url, Lower::Tcp, None, 1.5);
    let live_url = url.clone();
    let ff = std::thread::spawn(move || ffmpeg_decode(&live_url, Lower::Udp, None, 12.0));
    let mut p = Player::open(ops.server.addr(), &url, Lower::Tcp);
    p.play(None);
    p.collect_for(Duration::from_secs(1));

    // /api/v1/sessions lists both, and after ffmpeg's receiver reports
    // (every ~5 s) its tracks carry loss and jitter.
    let listed = wait_for(
        || {
            let r = http(ops.admin, "GET", "/api/v1/sessions", &[bearer()]);
            let v = r.json();
            let a = v.as_array().cloned().unwrap_or_default();
            a.len() == 2
                && a.iter().any(|s| {
                    s["transport"] == "udp"
                        && s["tracks"][0]["rr_count"].as_u64().unwrap_or(0) > 0
                        && s["tracks"][0]["fraction_lost"].as_f64() == Some(0.0)
                        && s["tracks"][0]["jitter_us"].as_u64().is_some()
                })
        },
        Duration::from_secs(9),
    );
    let v = http(ops.admin, "GET", "/api/v1/sessions", &[bearer()]).json();
    assert!(listed, "{v:#}");
    let mine = v
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == p.session()).cloned())
        .expect("the player's session is listed");
    assert_eq!(mine["transport"], "tcp");
    assert_eq!(mine["state"], "playing");
    assert_eq!(mine["path"], media::FIXTURE_H264);
    assert!(mine["client"]
        .as_str()
        .unwrap_or("")
        .starts_with("127.0.0.1:"));
    assert!(mine["bytes_sent"].as_u64().unwrap_or(0) > 10_000);

    // /metrics: promtool and prometheus_client accept it, and it counts.
    let m = http(ops.admin, "GET", "/metrics", &[bearer()]);
    assert_eq!(m.status, 200);
    let out = with_stdin("promtool", &["check", "metrics"], &m.body);
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let py = with_stdin(
        "/usr/bin/python3",
        &[
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as f\nprint(sum(1 for fam in f(sys.stdin.read()) for s in fam.samples))",
        ],
        &m.body,
    );
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert!(
        String::from_utf8_lossy(&py.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
            > 20
    );
    let t = &m.body;
    assert_eq!(
        sample(t, "cadence_sessions_started_total{transport=\"udp\"}"),
        2.0,
        "{t}"
    );
    assert_eq!(
        sample(t, "cadence_sessions_started_total{transport=\"tcp\"}"),
        2.0
    );
    assert_eq!(
        sample(t, "cadence_sessions_ended_total{reason=\"teardown\"}"),
        2.0
    );
    let playing: f64 = t
        .lines()
        .filter(|l| l.starts_with("cadence_sessions{") && l.contains("state=\"playing\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(playing, 2.0, "{t}");
    let packets: f64 = t
        .lines()
        .filter(|l| l.starts_with("cadence_rtp_sent_packets_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(packets > 200.0, "{packets}");
    assert!(
        sample(
            t,
            "cadence_rtsp_requests_total{method=\"PLAY\",status=\"200\"}"
        ) >= 4.0
    );

    // /api/v1/server.
    let s = http(ops.admin, "GET", "/api/v1/server", &[bearer()]).json();
    assert_eq!(s["sessions"], 2);
    assert_eq!(s["shards"].as_array().map(|a| a.len()), Some(2));
    assert!(s["total_packets_sent"].as_u64().unwrap_or(0) > 200);

    // DELETE ends the player's session: RTCP BYE, 454 afterwards, a log line.
    let d = http(
        ops.admin,
        "DELETE",
        &format!("/api/v1/sessions/{}", p.session()),
        &[bearer()],
    );
    assert_eq!(d.status, 204);
    let again = http(
        ops.admin,
        "DELETE",
        &format!("/api/v1/sessions/{}", p.session()),
        &[bearer()],
    );
    assert_eq!(again.status, 404);
    p.collect_for(Duration::from_millis(300));
    assert!(
        p.collect_for(Duration::from_millis(500)).is_empty(),
        "RTP after DELETE"
    );
    let mut c = RtspConn::connect(ops.server.addr());
    c.session = Some(p.session().to_string());
    assert_eq!(c.request(Method::GetParameter, &url, &[]).status, 454);
    let ff = ff.join().expect("ffmpeg");
    assert!(
        ff.frames >= 280,
        "the other session played on: {}",
        ff.frames
    );
    let killed = wait_for(
        || {
            lines(&ops.log)
                .iter()
                .any(|l| field(l, "transport") == "TCP" && field(l, "c-status") != "200")
        },
        Duration::from_secs(5),
    );
    assert!(killed, "{:?}", std::fs::read_to_string(&ops.log));
    let m = http(ops.admin, "GET", "/metrics", &[bearer()]).body;
    assert_eq!(
        sample(&m, "cadence_sessions_ended_total{reason=\"admin_kill\"}"),
        1.0
    );
}
