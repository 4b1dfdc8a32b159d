//! Cadence beyond one machine: two nodes behind a balancer, in network namespaces that the
//! test builds and removes (`common::netns`; root, `ip`, `ss`, `nft`, `haproxy`, `ffmpeg`:
//! a missing one fails the test).
//!
//! ```text
//!   client 10.77.0.2 ── 10.77.0.1 front 10.77.1.1 ── 10.77.1.2 node 0 (cadence :554)
//!                                       10.77.2.1 ── 10.77.2.2 node 1 (cadence :554)
//! ```
//!
//! The front routes between its links, so RTP over UDP goes from a node to the client's
//! real address directly; only RTSP goes through the balancer. Players are ffmpeg in the
//! client namespace; each must decode as many video frames as the file holds for the time
//! played (±2, as in `ffmpeg_pull.rs`), with no error line.
//!
//! - `nftables_dnat_balances_rtsp_over_udp_and_tcp`: `deploy/cadence-lb.nft` on the front
//!   (numgen DNAT map). The nodes see the client's own address; RTP flows node → client;
//!   a stopped node fails `deploy/rtsp-check` and, once its map slot is re-pointed, new
//!   sessions go to the other node.
//! - `haproxy_plain_tcp_balances_and_fails_over`: `deploy/haproxy.cfg` without
//!   `send-proxy-v2` (what works with an engine that has no PROXY protocol), TCP-interleaved
//!   players: leastconn uses both nodes, the RTSP OPTIONS health check marks a stopped node
//!   down, the other keeps serving and takes every new session.
//! - `haproxy_proxy_v2_gives_nodes_the_real_client_address` (PROXY protocol,
//!   `--admin`, `--access-log`): `deploy/haproxy.cfg` as shipped, UDP and TCP players; the
//!   admin API and the access log show the client's address, RTP goes to it, a forged PROXY
//!   header from an untrusted address is refused, failover as above.
//! - `redirect_when_full_sends_the_player_to_the_next_node` (`max_sessions` and
//!   `redirect_when_full`): a full node answers DESCRIBE with 302 to the next node,
//!   round-robin, same path and query; ffmpeg follows it and plays.
//! - `deploy_files_are_valid` (haproxy -c, nft -c and two loads, systemd-analyze verify,
//!   bash -n) and `deploy_cadence_toml_is_accepted` (`cadence check-system` reads it).
//!

mod common;

use common::media::{self, Source};
use common::netns::{
    self, front_addr_to_node, node_addr, run, wait_until, NsProcess, Topology, CLIENT, FRONT,
};
use common::player::parse_sdp;
use common::rtsp::{param, RtspConn};
use common::server::TempDir;
use common::tools::{ffmpeg_decode, source_frames, Decode, Lower};
use rtsp_types::Method;
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// RTSP port of the front and of the nodes (the standard one; the tests run as root).
const PORT: u16 = 554;
/// Each node's admin API, inside its own namespace.
const ADMIN: &str = "127.0.0.1:9100";
/// Seconds each ordinary player plays.
const PLAY_SECS: f64 = 6.0;
/// Seconds the players that see a node stop play.
const LONG_SECS: f64 = 12.0;

fn deploy_dir() -> PathBuf {
    media::repo_root().join("deploy")
}

/// A running `cadence` in a node namespace.
struct Node {
    proc: NsProcess,
    access_log: PathBuf,
}

/// Two nodes (when started), an optional HAProxy, the namespaces and a scratch folder.
/// Fields drop in order: processes first, then the namespaces, then the folder.
struct Cluster {
    nodes: Vec<Node>,
    haproxy: Option<NsProcess>,
    topo: Topology,
    dir: TempDir,
    src: Source,
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        let src = media::fixture_source();
        let dir = TempDir::new(&format!("multinode-{tag}"));
        let media_dir = dir.path().join("media");
        std::fs::create_dir_all(&media_dir).expect("media dir");
        std::os::unix::fs::symlink(&src.path, media_dir.join(&src.name)).expect("symlink");
        Cluster {
            nodes: Vec::new(),
            haproxy: None,
            topo: Topology::new(tag),
            dir,
            src,
        }
    }

    /// Starts `cadence` on node `i` with `toml` appended to its config file and `flags`,
    /// and waits until it accepts RTSP connections.
    fn start_node(&mut self, i: usize, toml: &str, flags: &[String]) {
        assert_eq!(self.nodes.len(), i, "start nodes in order");
        let config = self.dir.path().join(format!("node{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"0.0.0.0:{PORT}\"\nmedia = \"{}\"\ncores = 1\nlog_level = \"debug\"\n{toml}",
                self.dir.path().join("media").display()
            ),
        )
        .expect("write node config");
        let access_log = self.dir.path().join(format!("access-node{i}.log"));
        let mut args = vec!["--config".to_string(), config.display().to_string()];
        args.extend(
            flags
                .iter()
                .map(|f| f.replace("{access_log}", &access_log.display().to_string())),
        );
        let mut proc = NsProcess::spawn(
            &self.topo.nodes[i],
            &format!("cadence node {i}"),
            Path::new(env!("CARGO_BIN_EXE_cadence")),
            &args,
            &self.dir.path().join(format!("node{i}.log")),
        );
        let local: SocketAddr = format!("127.0.0.1:{PORT}").parse().expect("addr");
        let ns = self.topo.nodes[i].clone();
        let up = wait_until(Duration::from_secs(10), || {
            !proc.is_alive() || ns.can_connect(local)
        });
        assert!(
            up && proc.is_alive(),
            "cadence on node {i} did not start; log:\n{}",
            proc.log_text()
        );
        self.nodes.push(Node { proc, access_log });
    }

    /// Starts HAProxy on the front with `deploy/haproxy.cfg` (see [`haproxy_config`]) and
    /// waits until both nodes passed the RTSP health check.
    fn start_haproxy(&mut self, proxy_protocol: bool) -> PathBuf {
        let sock = self.dir.path().join("haproxy.sock");
        let cfg = self.dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(&sock, proxy_protocol)).expect("write haproxy.cfg");
        let haproxy = netns::find_program("haproxy").expect("haproxy");
        run(Command::new(&haproxy).args(["-c", "-q", "-f"]).arg(&cfg));
        let proc = NsProcess::spawn(
            &self.topo.front,
            "haproxy",
            &haproxy,
            &[
                "-db".to_string(),
                "-f".to_string(),
                cfg.display().to_string(),
            ],
            &self.dir.path().join("haproxy.log"),
        );
        self.haproxy = Some(proc);
        let checked = wait_until(Duration::from_secs(15), || {
            let s = haproxy_servers(&sock);
            ["node1", "node2"]
                .iter()
                .all(|n| s.get(*n).is_some_and(|v| v.check_status == "L7OK"))
        });
        assert!(
            checked,
            "HAProxy's RTSP health check did not pass on both nodes: {:?}",
            haproxy_servers(&sock)
        );
        sock
    }

    fn url(&self, host: Ipv4Addr, query: &str) -> String {
        format!("rtsp://{host}:{PORT}/{}{query}", self.src.name)
    }

    /// Established RTSP connections on node `i`, by peer address.
    fn peers(&self, i: usize) -> Vec<SocketAddr> {
        self.topo.nodes[i].established_peers(PORT)
    }

    /// Starts ffmpeg in the client namespace, decoding `url` for `secs`.
    fn play(&self, url: String, lower: Lower, secs: f64) -> JoinHandle<Decode> {
        let ns = self.topo.client.clone();
        std::thread::spawn(move || ns.enter(move || ffmpeg_decode(&url, lower, None, secs)))
    }

    /// Video frames of the fixture in its first `secs`.
    fn expected(&self, secs: f64) -> u64 {
        source_frames(&self.src.path, 0.0, secs)
    }

    /// `deploy/rtsp-check HOST PORT` run in the client namespace.
    fn rtsp_check(&self, host: Ipv4Addr) -> bool {
        self.topo
            .client
            .command(deploy_dir().join("rtsp-check"))
            .args([host.to_string(), PORT.to_string(), "2".into()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The session client addresses node `i`'s admin API lists.
    fn admin_clients(&self, i: usize) -> Vec<IpAddr> {
        let addr: SocketAddr = ADMIN.parse().expect("admin addr");
        let (status, body) = self.topo.nodes[i]
            .enter(move || netns::http_get(addr, "/api/v1/sessions"))
            .unwrap_or_else(|e| panic!("admin API of node {i}: {e}"));
        assert_eq!(status, 200, "GET /api/v1/sessions on node {i}: {body}");
        netns::json_client_ips(&body)
    }
}

/// A finished player's failure, if it did not decode `expected` frames (±2) cleanly.
fn failure(what: &str, d: &Decode, expected: u64) -> Option<String> {
    let clean = d.run.status.is_some_and(|s| s.success()) && d.errors.is_empty();
    if clean && d.frames.abs_diff(expected) <= 2 {
        eprintln!("{what}: {} frames (expected {expected})", d.frames);
        return None;
    }
    Some(format!(
        "{what}: {} frames, expected {expected} (±2); status {:?}; errors:\n{}\nstderr:\n{}",
        d.frames,
        d.run.status,
        d.errors.join("\n"),
        d.run.stderr
    ))
}

/// Joins the players and fails with every player that did not decode `expected` frames.
fn expect_full(players: Vec<(String, JoinHandle<Decode>)>, expected: u64) {
    let failures: Vec<String> = players
        .into_iter()
        .filter_map(|(what, h)| failure(&what, &h.join().expect("player thread"), expected))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `deploy/cadence-lb.nft` with its `define` lines replaced by `defines`; panics if the
/// file lacks one of them.
fn nft_ruleset(defines: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(deploy_dir().join("cadence-lb.nft")).expect("read nft");
    let mut seen = BTreeSet::new();
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            for (name, value) in defines {
                if line.starts_with(&format!("define {name} =")) {
                    seen.insert(*name);
                    return format!("define {name} = {value}");
                }
            }
            line.to_string()
        })
        .collect();
    for (name, _) in defines {
        assert!(
            seen.contains(name),
            "deploy/cadence-lb.nft has no `define {name} =`"
        );
    }
    out.join("\n") + "\n"
}

/// `deploy/haproxy.cfg` for the test: its `global` section replaced by a stats socket at
/// `sock` (no chroot, user, syslog), its example addresses by the namespaces', and, without
/// `proxy_protocol`, `send-proxy-v2` removed. Panics if an expected piece is missing.
fn haproxy_config(sock: &Path, proxy_protocol: bool) -> String {
    let text = std::fs::read_to_string(deploy_dir().join("haproxy.cfg")).expect("read cfg");
    let mut out = format!(
        "global\n    maxconn 4096\n    stats socket {} mode 600 level admin\n",
        sock.display()
    );
    let mut in_global = false;
    for line in text.lines() {
        let top = !line.starts_with(char::is_whitespace) && !line.starts_with('#');
        if top && !line.trim().is_empty() {
            in_global = line.trim() == "global";
        }
        if !in_global {
            out.push_str(line);
            out.push('\n');
        }
    }
    for (from, to) in [
        (format!("192.0.2.10:{PORT}"), format!("{FRONT}:{PORT}")),
        (
            format!("198.51.100.11:{PORT}"),
            format!("{}:{PORT}", node_addr(0)),
        ),
        (
            format!("198.51.100.12:{PORT}"),
            format!("{}:{PORT}", node_addr(1)),
        ),
    ] {
        assert!(out.contains(&from), "deploy/haproxy.cfg has no {from}");
        out = out.replace(&from, &to);
    }
    assert!(
        out.contains(" send-proxy-v2"),
        "deploy/haproxy.cfg has no send-proxy-v2"
    );
    if !proxy_protocol {
        out = out.replace(" send-proxy-v2", "");
    }
    out
}

/// One server line of HAProxy's `show stat`.
#[derive(Debug, Clone)]
struct ServerStat {
    /// `UP`, `DOWN`, `UP 1/2`, …
    status: String,
    /// Last health check result (`L7OK` when the node answered OPTIONS with 200).
    check_status: String,
    /// Connections HAProxy has sent to the server (health checks not counted).
    stot: u64,
}

/// The `cadence` backend's servers, by name, from HAProxy's stats socket.
fn haproxy_servers(sock: &Path) -> HashMap<String, ServerStat> {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return HashMap::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let _ = s.write_all(b"show stat\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let cols: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(st), Some(ck), Some(tot)) = (
        col("pxname"),
        col("svname"),
        col("status"),
        col("check_status"),
        col("stot"),
    ) else {
        return HashMap::new();
    };
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > px.max(sv).max(st).max(ck).max(tot) && f[px] == "cadence")
        .filter(|f| f[sv] != "BACKEND")
        .map(|f| {
            (
                f[sv].to_string(),
                ServerStat {
                    status: f[st].to_string(),
                    check_status: f[ck].to_string(),
                    stot: f[tot].parse().unwrap_or(0),
                },
            )
        })
        .collect()
}

fn stot(sock: &Path, server: &str) -> u64 {
    haproxy_servers(sock).get(server).map_or(0, |s| s.stot)
}

#[test]
fn nftables_dnat_balances_rtsp_over_udp_and_tcp() {
    netns::require(&["ip", "ss", "nft", "ffmpeg", "ffprobe"]);
    let mut c = Cluster::new("nft");
    c.start_node(0, "", &[]);
    c.start_node(1, "", &[]);
    c.topo.count_udp();
    c.topo.front.nft(&nft_ruleset(&[
        ("vip", FRONT.to_string()),
        ("rtsp_port", PORT.to_string()),
        ("node0", node_addr(0).to_string()),
        ("node1", node_addr(1).to_string()),
    ]));
    let url = c.url(FRONT, "");
    let expected = c.expected(PLAY_SECS);

    // Each player's RTSP connection exists before the next one starts, so numgen's round
    // robin puts the UDP players on nodes 0 and 1, then the TCP players on nodes 0 and 1.
    let mut players = Vec::new();
    for (k, lower) in [Lower::Udp, Lower::Udp, Lower::Tcp, Lower::Tcp]
        .into_iter()
        .enumerate()
    {
        players.push((
            format!("player {k} over {} via nftables", lower.as_str()),
            c.play(url.clone(), lower, PLAY_SECS),
        ));
        assert!(
            wait_until(Duration::from_secs(5), || c.peers(0).len()
                + c.peers(1).len()
                > k),
            "player {k}'s RTSP connection reached no node"
        );
    }
    // DNAT keeps the source address: each node's TCP peer is the client itself.
    for i in 0..2 {
        let peers = c.peers(i);
        assert_eq!(peers.len(), 2, "node {i} should hold 2 sessions: {peers:?}");
        assert!(
            peers.iter().all(|p| p.ip() == IpAddr::V4(CLIENT)),
            "node {i} sees {peers:?}, not the client {CLIENT}"
        );
    }
    expect_full(players, expected);
    let (from0, from1, to_front) = c.topo.udp_counts();
    eprintln!("UDP packets node 0 → client {from0}, node 1 → client {from1}, → front {to_front}");
    assert!(
        from0 >= expected && from1 >= expected,
        "each node's UDP player should have had its RTP routed node → client \
         (≥ {expected} packets): node 0 {from0}, node 1 {from1}"
    );
    assert_eq!(to_front, 0, "no RTP may be addressed to the front");

    // Node 0 stops. nftables has no health check: rtsp-check sees it, and its map slot is
    // pointed at node 1. numgen's next slot is 0 (4 connections so far), so without the
    // change the next player would go to the stopped node.
    assert!(
        c.rtsp_check(node_addr(0)),
        "rtsp-check fails on a running node"
    );
    assert!(c.nodes[0].proc.stop(), "node 0 did not exit on SIGTERM");
    assert!(
        !c.rtsp_check(node_addr(0)),
        "rtsp-check passes on a stopped node"
    );
    assert!(c.rtsp_check(node_addr(1)), "rtsp-check fails on node 1");
    c.topo.front.nft(&format!(
        "delete element ip cadence_lb rtsp_nodes {{ 0 }}\n\
         add element ip cadence_lb rtsp_nodes {{ 0 : {} }}\n",
        node_addr(1)
    ));
    let mut players = Vec::new();
    for (k, lower) in [Lower::Udp, Lower::Tcp].into_iter().enumerate() {
        players.push((
            format!("player {k} over {} after node 0 stopped", lower.as_str()),
            c.play(url.clone(), lower, PLAY_SECS),
        ));
        assert!(
            wait_until(Duration::from_secs(5), || c.peers(1).len() > k),
            "player {k} after the failover did not reach node 1"
        );
    }
    expect_full(players, expected);
    let (_, after1, _) = c.topo.udp_counts();
    assert!(
        after1 >= from1 + expected,
        "node 1 should have sent the new UDP player's RTP: {from1} → {after1} packets"
    );
}

/// The HAProxy scenario. Without `proxy_protocol`: TCP-interleaved players only (UDP cannot
/// work: the node would send RTP to the proxy's address). With it: UDP and TCP players, the
/// admin API, the access log and RTP addressed to the client.
fn haproxy_scenario(tag: &str, proxy_protocol: bool) {
    netns::require(&["ip", "ss", "nft", "haproxy", "ffmpeg", "ffprobe"]);
    let mut c = Cluster::new(tag);
    let (toml, flags) = if proxy_protocol {
        (
            format!(
                "trusted_proxies = [\"{}/32\", \"{}/32\"]\n",
                front_addr_to_node(0),
                front_addr_to_node(1)
            ),
            vec![
                "--admin".to_string(),
                ADMIN.to_string(),
                "--access-log".to_string(),
                "{access_log}".to_string(),
            ],
        )
    } else {
        (String::new(), Vec::new())
    };
    c.start_node(0, &toml, &flags);
    c.start_node(1, &toml, &flags);
    c.topo.count_udp();
    let sock = c.start_haproxy(proxy_protocol);
    let url = c.url(FRONT, "");
    let expected = c.expected(PLAY_SECS);
    let client = IpAddr::V4(CLIENT);

    if proxy_protocol {
        // A PROXY header from an address outside trusted_proxies must not be believed.
        let forged = c
            .topo
            .client
            .enter(|| send_forged_proxy_header(node_addr(0)));
        assert!(
            !forged.starts_with("RTSP/1.0 200"),
            "node 0 accepted a PROXY header from the untrusted client {CLIENT}: {forged:?}"
        );
        // Behind the proxy a node still names itself as the RTP source (where players
        // send RTCP), not the address the client connected to (the PROXY header's
        // destination).
        let transport = c.topo.client.enter({
            let url = url.clone();
            move || udp_setup_transport(SocketAddr::from((FRONT, PORT)), &url)
        });
        let source = param(&transport, "source");
        assert!(
            source == Some(node_addr(0).to_string()) || source == Some(node_addr(1).to_string()),
            "SETUP through HAProxy should give source=<node address>: {transport}"
        );
    }
    let base = [stot(&sock, "node1"), stot(&sock, "node2")];

    // Round 1. leastconn: each player's connection is counted before the next one starts,
    // so the first two (UDP with PROXY v2) go one to each node, and so do the next two.
    let transports: &[Lower] = if proxy_protocol {
        &[Lower::Udp, Lower::Udp, Lower::Tcp, Lower::Tcp]
    } else {
        &[Lower::Tcp, Lower::Tcp]
    };
    let mut players = Vec::new();
    for (k, &lower) in transports.iter().enumerate() {
        players.push((
            format!("player {k} over {} via HAProxy", lower.as_str()),
            c.play(url.clone(), lower, PLAY_SECS),
        ));
        assert!(
            wait_until(Duration::from_secs(5), || {
                stot(&sock, "node1") + stot(&sock, "node2") > base[0] + base[1] + k as u64
            }),
            "HAProxy did not forward player {k}: {:?}",
            haproxy_servers(&sock)
        );
    }
    let per_node = transports.len() as u64 / 2;
    let stats = haproxy_servers(&sock);
    for (i, name) in ["node1", "node2"].into_iter().enumerate() {
        assert_eq!(
            stats[name].stot - base[i],
            per_node,
            "leastconn should give {name} {per_node} sessions: {stats:?} (before: {base:?})"
        );
    }
    for i in 0..2 {
        // Over TCP the node's peer is the proxy; only the PROXY header can tell it more.
        let peers = c.peers(i);
        assert!(
            !peers.is_empty()
                && peers
                    .iter()
                    .all(|p| p.ip() == IpAddr::V4(front_addr_to_node(i))),
            "node {i}'s RTSP peers should all be the front ({}): {peers:?}",
            front_addr_to_node(i)
        );
        if proxy_protocol {
            // A session exists from its SETUP on, a moment after the connection.
            let mut clients = Vec::new();
            wait_until(Duration::from_secs(5), || {
                clients = c.admin_clients(i);
                clients.len() as u64 >= per_node
            });
            assert!(
                clients.len() as u64 >= per_node && clients.iter().all(|a| *a == client),
                "node {i}'s admin API should list {per_node} sessions of {CLIENT}: {clients:?}"
            );
        }
    }
    expect_full(players, expected);
    if proxy_protocol {
        let (from0, from1, to_front) = c.topo.udp_counts();
        eprintln!(
            "UDP packets node 0 → client {from0}, node 1 → client {from1}, → front {to_front}"
        );
        assert!(
            from0 >= expected && from1 >= expected,
            "RTP should go from each node straight to the client (≥ {expected} packets): \
             node 0 {from0}, node 1 {from1}"
        );
        assert_eq!(to_front, 0, "a node sent UDP to the proxy's address");
        for i in 0..2 {
            let log = &c.nodes[i].access_log;
            let mut ips = Vec::new();
            let written = wait_until(Duration::from_secs(5), || {
                ips = netns::w3c_client_ips(
                    &std::fs::read_to_string(log).unwrap_or_default(),
                    &c.src.name,
                );
                ips.len() as u64 >= per_node
            });
            assert!(
                written && ips.iter().all(|ip| ip == &CLIENT.to_string()),
                "node {i}'s access log should have {per_node} entries with c-ip {CLIENT}: {ips:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }

    // Failover: one long player per node; node 0 (HAProxy's node1) stops mid-stream.
    let long_expected = c.expected(LONG_SECS);
    let before = stot(&sock, "node1") + stot(&sock, "node2");
    let long_transports = if proxy_protocol {
        [Lower::Udp, Lower::Tcp]
    } else {
        [Lower::Tcp, Lower::Tcp]
    };
    let mut long = Vec::new();
    for (k, lower) in long_transports.into_iter().enumerate() {
        long.push(c.play(url.clone(), lower, LONG_SECS));
        assert!(
            wait_until(Duration::from_secs(5), || {
                stot(&sock, "node1") + stot(&sock, "node2") > before + k as u64
            }),
            "HAProxy did not forward long player {k}"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(c.nodes[0].proc.stop(), "node 0 did not exit on SIGTERM");
    let down = wait_until(Duration::from_secs(15), || {
        haproxy_servers(&sock)
            .get("node1")
            .is_some_and(|s| s.status.starts_with("DOWN"))
    });
    assert!(
        down,
        "HAProxy did not mark the stopped node down: {:?}",
        haproxy_servers(&sock)
    );
    let (n1_before, n2_before) = (stot(&sock, "node1"), stot(&sock, "node2"));
    let mut players = Vec::new();
    for (k, lower) in long_transports.into_iter().enumerate() {
        players.push((
            format!("player {k} over {} after node 0 stopped", lower.as_str()),
            c.play(url.clone(), lower, PLAY_SECS),
        ));
        assert!(
            wait_until(Duration::from_secs(5), || stot(&sock, "node2")
                > n2_before + k as u64),
            "player {k} after the failover did not go to node 1: {:?}",
            haproxy_servers(&sock)
        );
    }
    if proxy_protocol {
        let mut clients = Vec::new();
        wait_until(Duration::from_secs(5), || {
            clients = c.admin_clients(1);
            clients.len() >= 3
        });
        assert!(
            clients.len() >= 3 && clients.iter().all(|a| *a == client),
            "node 1 should list the surviving and the 2 new sessions of {CLIENT}: {clients:?}"
        );
    }
    expect_full(players, expected);
    assert_eq!(
        stot(&sock, "node1"),
        n1_before,
        "a session went to the stopped node"
    );
    let long: Vec<Decode> = long
        .into_iter()
        .map(|h| h.join().expect("player"))
        .collect();
    let full: Vec<&Decode> = long
        .iter()
        .filter(|d| failure("long player", d, long_expected).is_none())
        .collect();
    assert_eq!(
        full.len(),
        1,
        "exactly the long player on the surviving node should decode all {long_expected} \
         frames; got {:?}",
        long.iter().map(|d| d.frames).collect::<Vec<_>>()
    );
}

/// DESCRIBE and a UDP SETUP of the first track of `url` through `addr`, then TEARDOWN: the
/// SETUP reply's Transport header.
fn udp_setup_transport(addr: SocketAddr, url: &str) -> String {
    let mut conn = RtspConn::connect(addr);
    let d = conn.request(Method::Describe, url, &[("Accept", "application/sdp")]);
    assert_eq!(d.status, 200, "DESCRIBE {url}: {}", d.summary());
    let base = d.header("Content-Base").unwrap_or(url).to_string();
    let tracks = parse_sdp(&d.body, &base).unwrap_or_else(|e| panic!("SDP of {url}: {e}"));
    let s = conn.request(
        Method::Setup,
        &tracks[0].url,
        &[("Transport", "RTP/AVP;unicast;client_port=40000-40001")],
    );
    assert_eq!(s.status, 200, "SETUP {}: {}", tracks[0].url, s.summary());
    conn.session = s
        .header("Session")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_string());
    let transport = s.header("Transport").unwrap_or_default().to_string();
    let _ = conn.try_request(Method::Teardown, url, &[]);
    transport
}

/// Sends a PROXY v2 header claiming 198.51.100.7:5000 and an OPTIONS to `node`; what came
/// back within 3 s (empty if the connection closed).
fn send_forged_proxy_header(node: Ipv4Addr) -> String {
    let addr = SocketAddr::from((node, PORT));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]); // v2 PROXY, TCP over IPv4, 12 bytes
    header.extend_from_slice(&[198, 51, 100, 7]);
    header.extend_from_slice(&node.octets());
    header.extend_from_slice(&5000u16.to_be_bytes());
    header.extend_from_slice(&PORT.to_be_bytes());
    header.extend_from_slice(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    s.write_all(&header).expect("write forged header");
    s.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn haproxy_plain_tcp_balances_and_fails_over() {
    haproxy_scenario("hap", false);
}

#[test]
fn haproxy_proxy_v2_gives_nodes_the_real_client_address() {
    haproxy_scenario("hpx", true);
}

#[test]
fn redirect_when_full_sends_the_player_to_the_next_node() {
    netns::require(&["ip", "ss", "ffmpeg", "ffprobe"]);
    let mut c = Cluster::new("rdr");
    // Node 1 answers on two addresses, so the redirect list has two entries to rotate.
    let second = Ipv4Addr::new(10, 77, 2, 3);
    c.topo.add_node_address(1, second);
    let targets = [node_addr(1), second];
    c.start_node(
        0,
        &format!(
            "max_sessions = 1\nredirect_when_full = [\"rtsp://{}:{PORT}\", \"rtsp://{}:{PORT}\"]\n",
            targets[0], targets[1]
        ),
        &[],
    );
    c.start_node(1, "", &[]);
    let expected = c.expected(PLAY_SECS);

    // The first player fills node 0.
    let first = c.play(
        c.url(node_addr(0), "?viewer=1"),
        Lower::Tcp,
        PLAY_SECS + 4.0,
    );
    // From its SETUP on, node 0 redirects; two DESCRIBEs in a row get the two targets.
    let describe_url = c.url(node_addr(0), "?viewer=2");
    let locations = c.topo.client.enter(move || {
        let addr = SocketAddr::from((node_addr(0), PORT));
        let describe = |url: &str| {
            let mut conn = RtspConn::connect(addr);
            conn.request(Method::Describe, url, &[("Accept", "application/sdp")])
        };
        let deadline = Instant::now() + Duration::from_secs(8);
        let first = loop {
            let r = describe(&describe_url);
            if r.status == 302 || Instant::now() > deadline {
                break r;
            }
            assert_eq!(
                r.status,
                200,
                "DESCRIBE before node 0 is full: {}",
                r.summary()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let second = describe(&describe_url);
        [first, second].map(|r| {
            assert_eq!(r.status, 302, "DESCRIBE at max_sessions: {}", r.summary());
            r.header("Location")
                .unwrap_or_else(|| panic!("302 without Location: {}", r.summary()))
                .to_string()
        })
    });
    let want: BTreeSet<String> = targets.iter().map(|t| c.url(*t, "?viewer=2")).collect();
    assert_eq!(
        locations.iter().cloned().collect::<BTreeSet<_>>(),
        want,
        "two redirects in a row should name both targets (round robin), same path and query"
    );

    // ffmpeg follows the 302 and plays from node 1, over UDP straight from it.
    let second_player = c.play(c.url(node_addr(0), "?viewer=3"), Lower::Udp, PLAY_SECS);
    assert!(
        wait_until(Duration::from_secs(5), || c
            .peers(1)
            .iter()
            .any(|p| p.ip() == IpAddr::V4(CLIENT))),
        "the redirected player never connected to node 1"
    );
    assert!(
        wait_until(Duration::from_secs(3), || c.peers(0).len() == 1),
        "node 0 should keep only the first player's connection: {:?}",
        c.peers(0)
    );
    expect_full(
        vec![("redirected player over udp".to_string(), second_player)],
        expected,
    );
    expect_full(
        vec![("first player over tcp".to_string(), first)],
        c.expected(PLAY_SECS + 4.0),
    );
}

#[test]
fn deploy_files_are_valid() {
    let tools = netns::require(&["ip", "nft", "haproxy", "bash", "systemd-analyze"]);
    let dir = deploy_dir();
    // The unit, with ExecStart pointing at this build's binary (verify checks it exists).
    let scratch = TempDir::new("unit");
    let unit = scratch.path().join("cadence.service");
    let text = std::fs::read_to_string(dir.join("cadence.service")).expect("read unit");
    assert!(
        text.contains("ExecStart=/usr/local/bin/cadence "),
        "unit ExecStart"
    );
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/cadence", env!("CARGO_BIN_EXE_cadence")),
    )
    .expect("write unit");
    run(Command::new(&tools[4]).arg("verify").arg(&unit));
    run(Command::new(&tools[2])
        .args(["-c", "-f"])
        .arg(dir.join("haproxy.cfg")));
    run(Command::new(&tools[3])
        .arg("-n")
        .arg(dir.join("rtsp-check")));
    // The ruleset as shipped: checked, loaded, and loaded again (it replaces itself).
    let topo = Topology::new("chk");
    let nft = dir.join("cadence-lb.nft");
    run(topo.front.command("nft").args(["-c", "-f"]).arg(&nft));
    run(topo.front.command("nft").arg("-f").arg(&nft));
    run(topo.front.command("nft").arg("-f").arg(&nft));
    let listed = run(topo
        .front
        .command("nft")
        .args(["list", "table", "ip", "cadence_lb"]));
    assert_eq!(
        listed
            .matches("dnat to numgen inc mod 2 map @rtsp_nodes")
            .count(),
        1,
        "one DNAT rule after two loads:\n{listed}"
    );
}

#[test]
fn deploy_cadence_toml_is_accepted() {
    let out = Command::new(env!("CARGO_BIN_EXE_cadence"))
        .arg("--config")
        .arg(deploy_dir().join("cadence.toml"))
        .arg("check-system")
        .output()
        .expect("run cadence check-system");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(2) && !stderr.contains("config file"),
        "cadence rejects deploy/cadence.toml ({}):\n{stderr}",
        out.status
    );
}

#[test]
fn json_client_ips_reads_client_fields_only() {
    let j = r#"{"sessions":[{"id":"a","client":"10.77.0.2:4000","server":"10.77.1.2:554"},
                {"id":"b", "client_ip" : "10.77.0.2", "client_port": 5},
                {"note":"client","x":"10.0.0.9"}]}"#;
    let want = IpAddr::V4(CLIENT);
    assert_eq!(netns::json_client_ips(j), vec![want, want]);
}

#[test]
fn w3c_client_ips_skips_directives() {
    let log =
        "#Version: 1.0\n#Fields: c-ip date\n10.77.0.2 2026-01-01 /a.mp4\n10.77.1.1 x /b.mp4\n";
    assert_eq!(
        netns::w3c_client_ips(log, "a.mp4"),
        vec!["10.77.0.2".to_string()]
    );
}
