//! The catalog's schedule memory limit and the compile budgets, with the real
//! binary: with `--schedule-memory-mb` fitting about two schedules, a file
//! played by ffmpeg keeps playing while DESCRIBEs of other files evict the
//! unused schedules (metrics count the evictions, the bytes held stay within
//! the limit) and an evicted file plays again; when every schedule is in use
//! the new file gets 503 with Retry-After until a session ends. A compile
//! budget from the config file (`max_packets_per_file`) makes DESCRIBE of a
//! long file answer 500 (one log line naming the box and the limit) while a
//! short file plays, and a reload (SIGHUP) without it serves the long file.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use cadence_engine::catalog::{schedule_heap_bytes, Catalog, FsCatalog};
use common::http::http;
use common::media;
use common::player::Player;
use common::rtsp::RtspConn;
use common::server::{free_port, Server, TempDir};
use common::tools::{ffmpeg_decode, Lower};
use rtsp_types::Method;

const TOKEN: &str = "memory-test-token";

fn bearer() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// The value of the first series starting with `name_and_labels` (0 when
/// absent).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Sum of the series of `name` whose labels contain `label`.
fn sum_where(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn metrics(admin: SocketAddr) -> String {
    let r = http(admin, "GET", "/metrics", &[bearer()]);
    assert_eq!(r.status, 200, "/metrics: {}", r.body);
    r.body
}

fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

fn describe(server: &Server, name: &str) -> common::rtsp::Reply {
    let mut c = RtspConn::connect(server.addr());
    c.request(Method::Describe, &server.url(name), &[])
}

/// A media folder with `names` all linking to `file`, and a config file
/// (admin API on a free port, plus `extra` keys).
fn setup(names: &[&str], file: &Path, extra: &str) -> (TempDir, TempDir, SocketAddr) {
    let media = TempDir::new("memory-media");
    for n in names {
        std::os::unix::fs::symlink(file, media.path().join(n)).expect("symlink");
    }
    let etc = TempDir::new("memory-etc");
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    std::fs::write(
        etc.path().join("cadence.toml"),
        format!("admin = \"{admin}\"\nadmin_token = \"{TOKEN}\"\n{extra}"),
    )
    .expect("config");
    (media, etc, admin)
}

/// Schedule bytes and packets of `name` in `dir`, compiled as the server
/// compiles it.
fn compiled_size(dir: &Path, name: &str) -> (u64, usize) {
    let c = FsCatalog::scan(dir).expect("scan");
    let f = c.compile(name).expect("compiles");
    let packets = f.tracks.iter().map(|t| t.packets.len()).sum();
    (schedule_heap_bytes(&f), packets)
}

#[test]
fn unused_schedules_are_evicted_while_playing_ones_stay() {
    let fixture = media::fixture(media::FIXTURE_H264);
    let names = ["a.mp4", "b.mp4", "c.mp4", "d.mp4"];
    // Room for two and a half schedules: A playing plus one more.
    let probe = TempDir::new("memory-probe");
    std::os::unix::fs::symlink(&fixture, probe.path().join("a.mp4")).expect("symlink");
    let (bytes, _) = compiled_size(probe.path(), "a.mp4");
    let limit = bytes * 5 / 2;
    let mib = limit as f64 / f64::from(1u32 << 20);
    let (media_dir, etc, admin) = setup(
        &names,
        &fixture,
        &format!("schedule_memory_mb = {mib:.9}\n"),
    );
    let config = etc.path().join("cadence.toml");
    let server = Server::start_dir_with(media_dir, &["--config", config.to_str().expect("utf8")]);
    assert!(
        wait_until(Duration::from_secs(5), || std::net::TcpStream::connect(
            admin
        )
        .is_ok()),
        "admin API not up"
    );
    let m = metrics(admin);
    assert_eq!(
        sample(&m, "cadence_schedule_memory_limit_bytes "),
        limit as f64,
        "the limit from the config"
    );

    // ffmpeg plays A for 8 s.
    let url_a = server.url("a.mp4");
    let player_a = std::thread::spawn(move || ffmpeg_decode(&url_a, Lower::Udp, None, 8.0));
    assert!(
        wait_until(Duration::from_secs(15), || sum_where(
            &metrics(admin),
            "cadence_sessions",
            "state=\"playing\""
        ) >= 1.0),
        "ffmpeg never started playing A"
    );
    // B, C, D in turn: each evicts the one before (A is in use).
    for name in ["b.mp4", "c.mp4", "d.mp4"] {
        let r = describe(&server, name);
        assert_eq!(r.status, 200, "DESCRIBE {name}: {}", r.summary());
    }
    let wait_metrics = |cond: &dyn Fn(&str) -> bool| {
        let mut last = String::new();
        let ok = wait_until(Duration::from_secs(5), || {
            last = metrics(admin);
            cond(&last)
        });
        (ok, last)
    };
    let (ok, m) = wait_metrics(&|m| sample(m, "cadence_schedule_evictions_total ") >= 2.0);
    assert!(ok, "two evictions expected:\n{m}");
    let held = sample(&m, "cadence_schedule_memory_bytes ");
    assert!(
        held >= 2.0 * bytes as f64 && held <= limit as f64,
        "held {held}, one schedule {bytes}, limit {limit}"
    );
    assert_eq!(sample(&m, "cadence_schedule_memory_refusals_total "), 0.0);

    let d = player_a.join().expect("ffmpeg thread");
    assert!(
        d.frames >= 150,
        "A kept playing through the evictions: {} frames, errors {:?}",
        d.frames,
        d.errors
    );
    assert!(d.errors.is_empty(), "ffmpeg errors on A: {:?}", d.errors);

    // B was evicted: it compiles again and plays.
    let d = ffmpeg_decode(&server.url("b.mp4"), Lower::Tcp, None, 2.0);
    assert!(
        d.frames >= 40,
        "B plays again: {} frames {:?}",
        d.frames,
        d.errors
    );
    let compiled = server
        .log_text()
        .lines()
        .filter(|l| l.contains("compiled schedule") && l.contains("b.mp4"))
        .count();
    assert_eq!(compiled, 2, "B compiled twice:\n{}", server.log_tail(40));

    // Every schedule in use: a new file is refused with 503 until one ends.
    assert!(
        wait_until(Duration::from_secs(10), || sum_where(
            &metrics(admin),
            "cadence_sessions",
            "state="
        ) == 0.0),
        "ffmpeg's sessions did not end"
    );
    let mut a = Player::open(server.addr(), &server.url("a.mp4"), Lower::Udp);
    a.play(None);
    let mut b = Player::open(server.addr(), &server.url("b.mp4"), Lower::Udp);
    b.play(None);
    let r = describe(&server, "c.mp4");
    assert_eq!(r.status, 503, "{}", r.summary());
    assert_eq!(r.header("Retry-After"), Some("2"), "{}", r.summary());
    assert!(
        server.log_text().contains("schedule memory full"),
        "{}",
        server.log_tail(20)
    );
    // The sessions played on.
    assert!(a.collect_for(Duration::from_millis(500)).len() > 10);
    assert_eq!(b.teardown().status, 200);
    assert!(
        wait_until(Duration::from_secs(10), || describe(&server, "c.mp4")
            .status
            == 200),
        "C served once B's session ended:\n{}",
        server.log_tail(20)
    );
    let m = metrics(admin);
    assert!(sample(&m, "cadence_schedule_memory_refusals_total ") >= 1.0);
    assert!(sample(&m, "cadence_schedule_memory_bytes ") <= limit as f64);
    assert!(a.collect_for(Duration::from_millis(500)).len() > 10);
    assert_eq!(a.teardown().status, 200);
}

#[test]
fn a_budget_from_the_config_refuses_long_files_and_reload_lifts_it() {
    let media_dir = TempDir::new("budget-media");
    std::os::unix::fs::symlink(
        media::fixture(media::FIXTURE_H264),
        media_dir.path().join("long.mp4"),
    )
    .expect("symlink");
    // A 4 s hinted clip made here.
    let short = media_dir.path().join("short.mp4");
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=4",
        ])
        .args(["-c:v", "libx264", "-threads", "1", "-g", "25", "-bf", "0"])
        .args(["-pix_fmt", "yuv420p", "-movflags", "+rtphint"])
        .arg(&short)
        .output()
        .expect("ffmpeg is required to make the short clip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, short_packets) = compiled_size(media_dir.path(), "short.mp4");
    let (_, long_packets) = compiled_size(media_dir.path(), "long.mp4");
    assert!(
        long_packets > short_packets,
        "{long_packets} vs {short_packets}"
    );

    let etc = TempDir::new("budget-etc");
    let config = etc.path().join("cadence.toml");
    std::fs::write(
        &config,
        format!(
            "media = \"{}\"\nmax_packets_per_file = {short_packets}\n",
            media_dir.path().display()
        ),
    )
    .expect("config");
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_cadence"))
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("check-config");
    assert!(check.status.success(), "{check:?}");
    let server = Server::start_dir_with(media_dir, &["--config", config.to_str().expect("utf8")]);

    let r = describe(&server, "long.mp4");
    assert_eq!(r.status, 500, "{}", r.summary());
    let log = server.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot serve file") && l.contains("long.mp4"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("RTP packets") && lines[0].contains(&format!("budget {short_packets}")),
        "the line names the limit: {}",
        lines[0]
    );
    // Asked again: the same answer, no second compile or line.
    assert_eq!(describe(&server, "long.mp4").status, 500);
    let d = ffmpeg_decode(&server.url("short.mp4"), Lower::Tcp, None, 2.0);
    assert!(
        d.frames >= 40,
        "short plays: {} frames {:?}",
        d.frames,
        d.errors
    );
    let log = server.log_text();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("cannot serve file") && l.contains("long.mp4"))
            .count(),
        1,
        "{log}"
    );

    // Reload without the budget: the long file is compiled again and served.
    std::fs::write(&config, "compile_timeout_ms = 60000\n").expect("config");
    // (`--media` from the command line stays.)
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(
        wait_until(Duration::from_secs(10), || server
            .log_text()
            .contains("compile limits")),
        "reload did not apply the limits:\n{}",
        server.log_tail(20)
    );
    let r = describe(&server, "long.mp4");
    assert_eq!(r.status, 200, "{}", r.summary());
}
