//! Loss reported by real players (issue 14 §6): 5 % of the RTP over UDP is dropped on its
//! way into the client, and what the clients say in their RTCP receiver reports must show in
//! the admin API and in the access log, matching the loss nftables really caused.
//!
//! ```text
//!   c0 10.78.1.2 (ffmpeg, UDP)  ──veth── 10.78.1.1 ┐
//!   c1 10.78.2.2 (GStreamer, UDP) ─veth── 10.78.2.1 ├ sv: cadence (1 shard, --admin, access log)
//!   c2 10.78.3.2 (GStreamer, TCP) ─veth── 10.78.3.1 ┘
//! ```
//!
//! This kernel has no netem, so each client namespace loads an nftables table
//! (`hard_rtcp_loss`) whose input chain drops `numgen random mod 100 < 5` of the UDP packets
//! from the server's RTP source port (shard 0 sends RTP from `--udp-port-base`, RTCP from the
//! next port, which is not matched; RTSP and interleaved RTP are TCP, not matched), counting
//! what it drops and what it lets through. The counters are the exact induced loss.
//!
//! While the players play ([`PLAY_SECS`]) and until their sessions close, the test polls
//! `GET /api/v1/sessions`; each time a session's receiver-report count grows it reads that
//! client's nft counters at once, so the report and the counters cover (nearly) the same
//! packets. The counters are kept per RTP payload type, because players report on some
//! tracks only (ffmpeg sends a report per ~280 kB received on a track, so never on the 64
//! kbit/s audio in 25 s): a report is compared with the drops of the tracks it covers. Then:
//! - every session survives the loss: each player ran to its end, and each UDP client
//!   received at least 90 % of the RTP that reached its namespace;
//! - per UDP client, the loss the reports give (`packets_lost` ÷ `packets_expected` over the
//!   reported tracks; the admin API's session-wide `loss_ratio` is checked to be that ratio)
//!   is within 1 point of the rate nftables dropped of the same tracks by then;
//! - both UDP clients together are within 1 point of 5 % or 4.5 standard deviations of the
//!   binomial draw, whichever is larger (a sanity check that the rule drops about 5 %);
//! - the access log line of each session (`c-ip` is the client's address) has
//!   `c-pkts-lost-client` ÷ (`c-pkts-received` + `c-pkts-lost-client`) within 1 point of the
//!   nft rate when that report was read (or at the end, for a report sent in the last poll
//!   interval), and no less than the last report the admin API showed;
//! - the TCP-interleaved GStreamer reports too (over its interleaved RTCP channel; ffmpeg
//!   sends no reports over TCP), and reports no loss: nothing of it is matched or dropped.
//!
//! A server that ignored the report's extended highest sequence number (as the engine did
//! before this test) has no `packets_expected`, so the ratio cannot be formed and the access
//! log's `c-pkts-received` is `-`: the test fails; one that took the fraction of a single
//! interval or mixed up tracks is off by more than a point on a 25 s, two-track session.
//!
//! Needs root, `ip`, `nft`, `ffmpeg`, `gst-launch-1.0`; a missing one fails the test.

mod common;

use common::http::http;
use common::media;
use common::netns::{self, wait_until, Netns, NsProcess, Star};
use common::rtsp::RtspConn;
use common::server::TempDir;
use common::tools::{ffmpeg_decode, gst_pull, Decode, GstPull, Lower};
use rtsp_types::Method;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// Namespace prefix of this test (unique among the helpers' tests).
const PREFIX: &str = "hard-";
/// The nftables table loaded in each client namespace.
const TABLE: &str = "hard_rtcp_loss";
/// Percent of the RTP over UDP dropped.
const DROP_PERCENT: u32 = 5;
/// Seconds each player plays.
const PLAY_SECS: f64 = 25.0;
/// The admin API's bearer token.
const TOKEN: &str = "hard-rtcp-token";

/// One track as the admin API showed it.
#[derive(Clone, Debug, Default)]
struct TrackSnap {
    /// rtpmap encoding name.
    codec: String,
    /// Receiver reports.
    reports: u64,
    /// Cumulative lost and expected from the last report (`None` before one).
    lost: Option<u64>,
    expected: Option<u64>,
}

/// What the admin API said about one session, and (when taken after its report count grew)
/// the nft counters of its client read right after: payload type → (dropped, passed).
#[derive(Clone, Debug, Default)]
struct Snapshot {
    transport: String,
    tracks: Vec<TrackSnap>,
    nft: HashMap<u8, (u64, u64)>,
}

impl Snapshot {
    /// Receiver reports, all tracks.
    fn reports(&self) -> u64 {
        self.tracks.iter().map(|t| t.reports).sum()
    }
    /// (lost, expected) over the tracks with a report.
    fn reported(&self) -> (u64, u64) {
        self.tracks
            .iter()
            .filter_map(|t| Some((t.lost?, t.expected?)))
            .fold((0, 0), |(l, e), (tl, te)| (l + tl, e + te))
    }
    /// (dropped, passed) by nftables of the payload types of the tracks with a report.
    fn nft_reported(&self, pts: &HashMap<String, u8>) -> (u64, u64) {
        self.tracks
            .iter()
            .filter(|t| t.expected.is_some())
            .filter_map(|t| self.nft.get(pts.get(&t.codec)?))
            .fold((0, 0), |(d, p), (td, tp)| (d + td, p + tp))
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole.max(1) as f64
}

/// A free TCP port and a free even/odd UDP pair, inside `ns`.
fn free_ports(ns: &Netns) -> (u16, u16, u16) {
    ns.enter(|| {
        let tcp = || {
            TcpListener::bind("0.0.0.0:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free tcp port")
        };
        let (rtsp, admin) = (tcp(), tcp());
        let udp = (0..200)
            .find_map(|_| {
                let a = UdpSocket::bind("0.0.0.0:0").ok()?;
                let p = a.local_addr().ok()?.port();
                (p % 2 == 0 && p < u16::MAX)
                    .then(|| UdpSocket::bind(("0.0.0.0", p + 1)).ok().map(|_| p))
                    .flatten()
            })
            .expect("free udp pair");
        (rtsp, admin, udp)
    })
}

/// The client-side ruleset: drop [`DROP_PERCENT`] % of the UDP from `server`'s RTP port,
/// counting drops and passes per RTP payload type (the 7 bits after the marker in the second
/// byte after the UDP header: `@th,73,7`).
fn ruleset(server: Ipv4Addr, rtp_port: u16, pts: &[u8]) -> String {
    let mut counters = String::new();
    let mut rules = String::new();
    for pt in pts {
        counters.push_str(&format!(
            "counter dropped_{pt} {{ }}\ncounter passed_{pt} {{ }}\n"
        ));
        rules.push_str(&format!(
            "ip saddr {server} udp sport {rtp_port} @th,73,7 {pt} numgen random mod 100 < {DROP_PERCENT} counter name \"dropped_{pt}\" drop\n\
             ip saddr {server} udp sport {rtp_port} @th,73,7 {pt} counter name \"passed_{pt}\"\n"
        ));
    }
    format!(
        "table ip {TABLE}\ndelete table ip {TABLE}\n\
         table ip {TABLE} {{\n{counters}\
           counter other {{ }}\n\
           chain input {{ type filter hook input priority filter; policy accept;\n{rules}\
             ip saddr {server} udp sport {rtp_port} counter name \"other\"\n\
           }}\n\
         }}\n"
    )
}

/// payload type → (dropped, passed) in `ns`.
fn nft_counts(ns: &Netns, pts: &[u8]) -> HashMap<u8, (u64, u64)> {
    pts.iter()
        .map(|pt| {
            (
                *pt,
                (
                    ns.nft_counter(TABLE, &format!("dropped_{pt}")),
                    ns.nft_counter(TABLE, &format!("passed_{pt}")),
                ),
            )
        })
        .collect()
}

/// Encoding name → payload type, from the `a=rtpmap` lines of the DESCRIBE reply.
fn payload_types(server: &Netns, url: String) -> HashMap<String, u8> {
    let body = server.enter(move || {
        let addr: SocketAddr = url
            .trim_start_matches("rtsp://")
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("url address");
        let mut c = RtspConn::connect(addr);
        let r = c.request(Method::Describe, &url, &[("Accept", "application/sdp")]);
        assert_eq!(r.status, 200, "DESCRIBE {url}: {}", r.summary());
        r.body_text()
    });
    let mut out = HashMap::new();
    for l in body.lines() {
        let Some(m) = l.trim().strip_prefix("a=rtpmap:") else {
            continue;
        };
        let mut w = m.split_whitespace();
        let (Some(pt), Some(enc)) = (w.next().and_then(|p| p.parse().ok()), w.next()) else {
            continue;
        };
        let name = enc.split('/').next().unwrap_or("").to_string();
        out.insert(name, pt);
    }
    assert!(out.len() >= 2, "payload types in the SDP: {out:?}\n{body}");
    out
}

/// The sessions the admin API lists, by client IP.
fn sessions(server: &Netns, admin: SocketAddr) -> HashMap<String, Snapshot> {
    let reply = server.enter(move || {
        http(
            admin,
            "GET",
            "/api/v1/sessions",
            &[("Authorization", format!("Bearer {TOKEN}"))],
        )
    });
    assert_eq!(reply.status, 200, "GET /api/v1/sessions: {}", reply.body);
    let mut out = HashMap::new();
    for s in reply.json().as_array().expect("a JSON array") {
        let client = s["client"].as_str().expect("client").to_string();
        let ip = client.rsplit_once(':').map(|(ip, _)| ip).unwrap_or("");
        let mut snap = Snapshot {
            transport: s["transport"].as_str().unwrap_or("").to_string(),
            ..Snapshot::default()
        };
        for t in s["tracks"].as_array().expect("tracks") {
            let num = |k: &str| t[k].as_u64();
            let track = TrackSnap {
                codec: t["codec"].as_str().unwrap_or("").to_string(),
                reports: num("rr_count").unwrap_or(0),
                lost: num("packets_lost"),
                expected: num("packets_expected"),
            };
            if let (Some(r), Some(lost), Some(expected)) =
                (t["loss_ratio"].as_f64(), track.lost, track.expected)
            {
                assert!(
                    (r - ratio(lost, expected)).abs() < 1e-9,
                    "loss_ratio {r} is not packets_lost/packets_expected: {t}"
                );
            }
            snap.tracks.push(track);
        }
        out.insert(ip.to_string(), snap);
    }
    out
}

/// The access log's data lines, as field name → value maps.
fn access_lines(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(f) = l.strip_prefix("#Fields: ") {
            names = f.split(' ').map(str::to_string).collect();
        } else if !l.starts_with('#') && !l.is_empty() {
            out.push(
                names
                    .iter()
                    .cloned()
                    .zip(l.split(' ').map(str::to_string))
                    .collect(),
            );
        }
    }
    out
}

enum Run {
    Ffmpeg(Decode),
    Gst(GstPull),
}

#[test]
fn receiver_report_loss_shows_in_admin_api_and_access_log() {
    netns::require(&["ip", "nft", "ffmpeg", "gst-launch-1.0"]);
    let star = Star::new(PREFIX, "rtcp", 3);
    let (rtsp_port, admin_port, udp_base) = free_ports(&star.server);
    let dir = TempDir::new("rtcp-loss");
    let src = media::fixture_source();
    let media_dir = dir.path().join("media");
    std::fs::create_dir_all(&media_dir).expect("media dir");
    std::os::unix::fs::symlink(&src.path, media_dir.join(&src.name)).expect("symlink");
    let access_log = dir.path().join("access.log");
    let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
    let config = dir.path().join("cadence.toml");
    std::fs::write(
        &config,
        format!(
            "access_log = \"{}\"\nadmin = \"{admin}\"\nadmin_token = \"{TOKEN}\"\n",
            access_log.display()
        ),
    )
    .expect("config");
    let args: Vec<String> = [
        "--config",
        config.to_str().expect("utf8"),
        "--cores",
        "1",
        "--media",
        media_dir.to_str().expect("utf8"),
        "--listen",
        &format!("0.0.0.0:{rtsp_port}"),
        "--udp-port-base",
        &udp_base.to_string(),
        "--log-level",
        "debug",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut server = NsProcess::spawn(
        &star.server,
        "cadence",
        Path::new(env!("CARGO_BIN_EXE_cadence")),
        &args,
        &dir.path().join("cadence.log"),
    );
    let rtsp_local: SocketAddr = format!("127.0.0.1:{rtsp_port}").parse().expect("addr");
    let up = wait_until(Duration::from_secs(10), || {
        !server.is_alive()
            || (star.server.can_connect(rtsp_local) && star.server.can_connect(admin))
    });
    assert!(
        up && server.is_alive(),
        "cadence did not start; log:\n{}",
        server.log_text()
    );
    let pt_of = payload_types(
        &star.server,
        format!("rtsp://127.0.0.1:{rtsp_port}/{}", src.name),
    );
    let pts: Vec<u8> = pt_of.values().copied().collect();
    for (i, c) in star.clients.iter().enumerate() {
        c.nft(&ruleset(star.server_addr(i), udp_base, &pts));
    }

    // The players: ffmpeg over UDP, GStreamer over UDP, GStreamer over TCP (ffmpeg sends no
    // receiver reports over interleaved TCP).
    let kinds = [
        ("ffmpeg udp", Lower::Udp),
        ("gstreamer udp", Lower::Udp),
        ("gstreamer tcp", Lower::Tcp),
    ];
    let mut players = Vec::new();
    for (i, (what, lower)) in kinds.iter().enumerate() {
        let ns = star.clients[i].clone();
        let url = format!("rtsp://{}:{rtsp_port}/{}", star.server_addr(i), src.name);
        let (what, lower) = (*what, *lower);
        players.push(std::thread::spawn(move || {
            ns.enter(move || {
                if what.starts_with("gstreamer") {
                    let protocols = format!("protocols={}", lower.as_str());
                    Run::Gst(gst_pull(&url, &[&protocols, "latency=500"], PLAY_SECS))
                } else {
                    Run::Ffmpeg(ffmpeg_decode(&url, lower, None, PLAY_SECS))
                }
            })
        }));
    }

    // Poll the admin API until the sessions are gone. `last` is each session's latest
    // listing; `history` every listing whose report count grew, with the nft counters.
    let ips: Vec<String> = (0..3).map(|i| star.client_addr(i).to_string()).collect();
    let mut last: HashMap<String, Snapshot> = HashMap::new();
    let mut history: HashMap<String, Vec<Snapshot>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs_f64(PLAY_SECS + 60.0);
    loop {
        let listed = sessions(&star.server, admin);
        let ours = listed.keys().filter(|ip| ips.contains(ip)).count();
        if (ours == 0 && players.iter().all(|p| p.is_finished())) || Instant::now() > deadline {
            break;
        }
        for (ip, mut snap) in listed {
            let Some(i) = ips.iter().position(|x| *x == ip) else {
                continue;
            };
            let seen = history.get(&ip).and_then(|h| h.last()).map(|s| s.reports());
            if snap.reports() > 0 && seen.is_none_or(|r| snap.reports() > r) {
                snap.nft = nft_counts(&star.clients[i], &pts);
                history.entry(ip.clone()).or_default().push(snap.clone());
            }
            last.insert(ip, snap);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let runs: Vec<Run> = players
        .into_iter()
        .map(|p| p.join().expect("player thread"))
        .collect();
    let mut failures = Vec::new();
    for (run, (what, _)) in runs.iter().zip(kinds) {
        match run {
            Run::Ffmpeg(d) => {
                if !(d.run.status.is_some_and(|s| s.success()) && d.frames >= 25 * 20) {
                    failures.push(format!(
                        "{what} did not play through the loss: {} frames, status {:?}\n{}",
                        d.frames, d.run.status, d.run.stderr
                    ));
                }
            }
            Run::Gst(g) => {
                if g.buffers < 25 * 20 {
                    failures.push(format!(
                        "{what} did not play through the loss: {} buffers, errors {:?}\n{}",
                        g.buffers, g.errors, g.run.stderr
                    ));
                }
            }
        }
    }

    // The access log: one line per session.
    let logged = wait_until(Duration::from_secs(10), || {
        let l = access_lines(&access_log);
        ips.iter()
            .all(|ip| l.iter().any(|x| x.get("c-ip") == Some(ip)))
    });
    let lines = access_lines(&access_log);
    assert!(
        logged,
        "no access log line for every client {ips:?}: {lines:?}\n{}",
        failures.join("\n")
    );
    let finals: Vec<HashMap<u8, (u64, u64)>> =
        star.clients.iter().map(|c| nft_counts(c, &pts)).collect();

    let (mut pooled_dropped, mut pooled_total) = (0u64, 0u64);
    let (mut pooled_lost, mut pooled_expected) = (0u64, 0u64);
    for (i, (what, lower)) in kinds.iter().enumerate() {
        let ip = &ips[i];
        let Some(snap) = history.get(ip).and_then(|h| h.last()).cloned() else {
            failures.push(format!(
                "{what}: the admin API never showed a receiver report; last listing {:?}",
                last.get(ip)
            ));
            continue;
        };
        let line = lines
            .iter()
            .find(|x| x.get("c-ip") == Some(ip))
            .expect("line");
        let get = |k: &str| line.get(k).cloned().unwrap_or_default();
        let (lost, expected) = snap.reported();
        let (dropped, passed) = snap.nft_reported(&pt_of);
        let (all_dropped, all_passed) = finals[i]
            .values()
            .fold((0, 0), |(d, p), (td, tp)| (d + td, p + tp));
        eprintln!(
            "{what}: {} reports; reported tracks: {lost} of {expected} lost ({:.2} %), nft \
             then {dropped} of {} ({:.2} %); access log lost {} received {}; nft at the end \
             (all tracks) {all_dropped} of {}; tracks {:?}",
            snap.reports(),
            100.0 * ratio(lost, expected),
            dropped + passed,
            100.0 * ratio(dropped, dropped + passed),
            get("c-pkts-lost-client"),
            get("c-pkts-received"),
            all_dropped + all_passed,
            snap.tracks
        );
        let (Ok(log_lost), Ok(log_received)) = (
            get("c-pkts-lost-client").parse::<u64>(),
            get("c-pkts-received").parse::<u64>(),
        ) else {
            failures.push(format!(
                "{what}: access log c-pkts-lost-client {:?} c-pkts-received {:?} are not numbers",
                get("c-pkts-lost-client"),
                get("c-pkts-received")
            ));
            continue;
        };
        let want_transport = if *lower == Lower::Tcp { "tcp" } else { "udp" };
        if snap.transport != want_transport || expected < 200 {
            failures.push(format!(
                "{what}: transport {:?}, {expected} packets expected by the last report \
                 (want {want_transport}, ≥ 200)",
                snap.transport
            ));
        }
        if *lower == Lower::Tcp {
            // Interleaved: nothing matched the rule, nothing lost.
            if all_dropped + all_passed != 0 || lost != 0 || log_lost != 0 {
                failures.push(format!(
                    "{what}: nft matched {} packets, reports {lost} lost, access log {log_lost} \
                     lost (expected none of each)",
                    all_dropped + all_passed
                ));
            }
            continue;
        }
        let (r, n) = (ratio(lost, expected), ratio(dropped, dropped + passed));
        if (r - n).abs() > 0.01 {
            failures.push(format!(
                "{what}: the reports say {:.2} % lost, nftables dropped {:.2} % of the same \
                 packets (more than 1 point apart)",
                100.0 * r,
                100.0 * n
            ));
        }
        // The access log holds the session's last report: one the admin API showed (then
        // compare with the counters read with it), or a later one, sent at most one poll
        // before the session closed (then with the counters at the end).
        let log_expected = log_lost + log_received;
        let same = history[ip]
            .iter()
            .rev()
            .find(|h| h.reported() == (log_lost, log_expected));
        let (d, p) = match same {
            Some(h) => h.nft_reported(&pt_of),
            None => {
                let mut end = snap.clone();
                end.nft = finals[i].clone();
                end.nft_reported(&pt_of)
            }
        };
        let log_ratio = ratio(log_lost, log_expected);
        if (log_ratio - ratio(d, d + p)).abs() > 0.01 || log_lost < lost || log_expected < expected
        {
            failures.push(format!(
                "{what}: access log {log_lost} lost of {log_expected} ({:.2} %), nftables \
                 dropped {:.2} % (more than 1 point apart), or less than the admin API's {lost} \
                 of {expected}",
                100.0 * log_ratio,
                100.0 * ratio(d, d + p)
            ));
        }
        if all_passed * 10 < (all_dropped + all_passed) * 9 {
            failures.push(format!(
                "{what}: only {all_passed} of {} packets reached the client",
                all_dropped + all_passed
            ));
        }
        pooled_dropped += all_dropped;
        pooled_total += all_dropped + all_passed;
        pooled_lost += lost;
        pooled_expected += expected;
    }
    if pooled_total > 0 {
        let p = f64::from(DROP_PERCENT) / 100.0;
        let sd = |n: u64| (p * (1.0 - p) / n.max(1) as f64).sqrt();
        let nft = ratio(pooled_dropped, pooled_total);
        let reported = ratio(pooled_lost, pooled_expected);
        for (what, v, n) in [
            ("nftables", nft, pooled_total),
            ("the receiver reports", reported, pooled_expected),
        ] {
            let tolerance = (4.5 * sd(n)).max(0.01);
            eprintln!(
                "UDP clients together: {what} {:.2} % of {n} (tolerance ±{:.2} points)",
                100.0 * v,
                100.0 * tolerance
            );
            if (v - p).abs() > tolerance {
                failures.push(format!(
                    "{what}: {:.2} % lost of {n}, not {DROP_PERCENT} % ± {:.2} points",
                    100.0 * v,
                    100.0 * tolerance
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\naccess log: {lines:?}\nserver log tail:\n{}",
        failures.join("\n"),
        server
            .log_text()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(server.stop(), "cadence did not stop on SIGTERM");
}
