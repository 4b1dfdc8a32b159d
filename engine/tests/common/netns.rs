//! Network namespaces for multi-node tests: a client, a front (router, balancer) and two
//! Cadence nodes, joined by veth pairs, torn down by `Drop` even when the test fails.
//!
//! ```text
//!   client 10.77.0.2 ──veth── 10.77.0.1 front 10.77.1.1 ──veth── 10.77.1.2 node 0
//!                                         10.77.2.1 ──veth── 10.77.2.2 node 1
//! ```
//!
//! The front forwards IPv4 between its links, so the nodes reach the client's real address
//! directly (RTP over UDP), whatever balancer runs on the front. Each namespace is named
//! `cadt-<pid>-<tag>-<role>`; interfaces are created inside their namespaces, so parallel
//! topologies never clash, and the same addresses serve every topology. Namespaces left by a
//! test process that died without unwinding (SIGKILL) are removed by the next
//! [`Topology::new`], with the processes still inside them.
//!
//! Needs root, `ip` (iproute2), `ss`, and whatever the test runs (`nft`, `haproxy`,
//! `ffmpeg`): [`require`] fails the test (never skips it) when one is missing.

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Prefix of every namespace these tests create.
const PREFIX: &str = "cadt-";

/// The client's address (its link to the front).
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The front's address on the client link: the address clients connect to.
pub const FRONT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// Node `i`'s address (0 or 1).
pub fn node_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 1 + i as u8, 2)
}

/// The front's address on node `i`'s link (what the node sees as a proxy's address).
pub fn front_addr_to_node(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 1 + i as u8, 1)
}

/// Full path of `program` (searched in `PATH`, then /usr/sbin and /sbin), if present.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

/// `ip` (iproute2), found even when /usr/sbin is not in `PATH`.
pub fn ip() -> Command {
    Command::new(find_program("ip").unwrap_or_else(|| PathBuf::from("ip")))
}

/// Fails the test unless it runs as root and every program in `programs` is installed.
pub fn require(programs: &[&str]) -> Vec<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test creates network namespaces and needs root (euid {euid})"
    );
    programs
        .iter()
        .map(|p| {
            find_program(p).unwrap_or_else(|| {
                panic!("{p} is not installed; this test needs it (scripts/test installs it)")
            })
        })
        .collect()
}

/// Runs `cmd`, panicking with its stderr if it fails; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` with `input` on stdin, panicking with its stderr if it fails.
pub fn run_with_input(cmd: &mut Command, input: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin pipe")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\ninput:\n{input}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One network namespace, named `name` (under /run/netns).
#[derive(Clone, Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the namespace afresh (removing a stale one of the same name) with its
    /// loopback up.
    fn create(&self) {
        let _ = ip()
            .args(["netns", "del", self.name()])
            .stderr(Stdio::null())
            .status();
        run(ip().args(["netns", "add", self.name()]));
        self.ip(&["link", "set", "lo", "up"]);
    }

    /// `ip netns exec <name> <program>`: a command that runs inside the namespace (a bare
    /// program name is resolved with [`find_program`]).
    pub fn command(&self, program: impl AsRef<Path>) -> Command {
        let program = program.as_ref();
        let resolved = match program.to_str() {
            Some(name) if !name.contains('/') => find_program(name),
            _ => None,
        };
        let mut c = ip();
        c.args(["netns", "exec", &self.name])
            .arg(resolved.as_deref().unwrap_or(program));
        c
    }

    /// `ip -n <name> <args>`.
    pub fn ip(&self, args: &[&str]) -> String {
        run(ip().args(["-n", &self.name]).args(args))
    }

    /// Loads an nftables script (`nft -f -`) into the namespace.
    pub fn nft(&self, script: &str) -> String {
        run_with_input(self.command("nft").args(["-f", "-"]), script)
    }

    /// Packets counted so far by the named counter `name` of `table` (family ip).
    pub fn nft_counter(&self, table: &str, name: &str) -> u64 {
        let out = run(self
            .command("nft")
            .args(["list", "counter", "ip", table, name]));
        let words: Vec<&str> = out.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[0] == "packets")
            .and_then(|w| w[1].parse().ok())
            .unwrap_or_else(|| panic!("no packet count in `nft list counter`:\n{out}"))
    }

    /// Runs `f` on a fresh thread that has joined this namespace (setns(2)): sockets it
    /// creates, and processes it spawns, live in the namespace. Panics inside `f` propagate.
    pub fn enter<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let path = PathBuf::from("/run/netns").join(&self.name);
        let joined = std::thread::Builder::new()
            .name(format!("netns {}", self.name))
            .spawn(move || {
                let file = fs::File::open(&path)
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
                // SAFETY: a valid namespace fd; setns only changes this thread's namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    rc,
                    0,
                    "setns {}: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                );
                f()
            })
            .expect("spawn netns thread")
            .join();
        match joined {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Sets an IPv4 sysctl of the namespace, e.g. `("ip_forward", "1")`.
    pub fn sysctl_ipv4(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/net/ipv4/{key}");
        let value = value.to_string();
        self.enter(move || fs::write(&path, value).unwrap_or_else(|e| panic!("{path}: {e}")));
    }

    /// Peer addresses of the established TCP connections whose local port is `port`.
    pub fn established_peers(&self, port: u16) -> Vec<SocketAddr> {
        let sport = format!(":{port}");
        let out = run(self
            .command("ss")
            .args(["-Htn", "state", "established", "sport", "="])
            .arg(&sport));
        out.lines()
            .filter_map(|l| l.split_whitespace().last())
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// True when a TCP connection to `addr` from inside the namespace succeeds.
    pub fn can_connect(&self, addr: SocketAddr) -> bool {
        self.enter(move || TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok())
    }

    /// Pids of the processes inside the namespace.
    fn pids(&self) -> Vec<i32> {
        ip().args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills what is left inside the namespace (processes this test started there) and
    /// deletes it.
    fn destroy(&self) {
        for pid in self.pids() {
            // SAFETY: signalling a pid; the namespace holds only processes this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while !self.pids().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = ip()
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes namespaces of earlier test processes that are gone (killed before unwinding).
fn remove_stale() {
    remove_stale_with(PREFIX);
}

/// Like [`remove_stale`], for namespaces named `<prefix><pid>-…`.
fn remove_stale_with(prefix: &str) {
    let Ok(out) = ip().args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("removing stale namespace {name} (process {pid} is gone)");
            Netns {
                name: name.to_string(),
            }
            .destroy();
        }
    }
}

/// The four namespaces, their links, addresses and routes. Dropping it kills every process
/// still inside them and deletes them (the veths go with them).
pub struct Topology {
    /// Where the players run.
    pub client: Netns,
    /// The router and balancer (HAProxy or nftables).
    pub front: Netns,
    /// The two Cadence nodes.
    pub nodes: [Netns; 2],
}

impl Topology {
    /// Builds the topology; `tag` keeps the names of parallel tests apart.
    pub fn new(tag: &str) -> Topology {
        remove_stale();
        let ns = |role: &str| Netns {
            name: format!("{PREFIX}{}-{tag}-{role}", std::process::id()),
        };
        let topo = Topology {
            client: ns("cl"),
            front: ns("fe"),
            nodes: [ns("n0"), ns("n1")],
        };
        // From here on, Drop cleans up whatever part was made.
        for n in topo.all() {
            n.create();
        }
        topo.link(&topo.client, "fe", CLIENT, "cl", FRONT);
        for i in 0..2 {
            let front_if = format!("n{i}");
            topo.link(
                &topo.nodes[i],
                "fe",
                node_addr(i),
                &front_if,
                front_addr_to_node(i),
            );
            topo.nodes[i].ip(&[
                "route",
                "add",
                "default",
                "via",
                &front_addr_to_node(i).to_string(),
            ]);
        }
        topo.client
            .ip(&["route", "add", "default", "via", &FRONT.to_string()]);
        topo.front.sysctl_ipv4("ip_forward", "1");
        topo
    }

    /// A veth pair: `inner_if` in `inner` with `inner_ip`/24, `front_if` in the front with
    /// `front_ip`/24; both up.
    fn link(
        &self,
        inner: &Netns,
        inner_if: &str,
        inner_ip: Ipv4Addr,
        front_if: &str,
        front_ip: Ipv4Addr,
    ) {
        run(ip().args([
            "link",
            "add",
            inner_if,
            "netns",
            inner.name(),
            "type",
            "veth",
            "peer",
            "name",
            front_if,
            "netns",
            self.front.name(),
        ]));
        inner.ip(&["addr", "add", &format!("{inner_ip}/24"), "dev", inner_if]);
        inner.ip(&["link", "set", inner_if, "up"]);
        self.front
            .ip(&["addr", "add", &format!("{front_ip}/24"), "dev", front_if]);
        self.front.ip(&["link", "set", front_if, "up"]);
    }

    /// Every namespace of the topology.
    pub fn all(&self) -> [&Netns; 4] {
        [&self.client, &self.front, &self.nodes[0], &self.nodes[1]]
    }

    /// Adds a second address to node `i` (for a redirect target that is a second name of
    /// the same node).
    pub fn add_node_address(&self, i: usize, addr: Ipv4Addr) {
        self.nodes[i].ip(&["addr", "add", &format!("{addr}/24"), "dev", "fe"]);
    }

    /// Loads counters into the front that count UDP from each node to the client (routed,
    /// never through a proxy) and UDP from the nodes to the front itself (what a node
    /// sends when it takes the proxy's address for the client's). Read them with
    /// [`Topology::udp_counts`].
    pub fn count_udp(&self) {
        let (n0, n1) = (node_addr(0), node_addr(1));
        self.front.nft(&format!(
            "table ip cadence_test\ndelete table ip cadence_test\n\
             table ip cadence_test {{\n\
               counter udp_from_node0 {{ }}\n\
               counter udp_from_node1 {{ }}\n\
               counter udp_to_front {{ }}\n\
               chain forward {{ type filter hook forward priority filter; policy accept;\n\
                 ip saddr {n0} ip daddr {CLIENT} meta l4proto udp counter name \"udp_from_node0\"\n\
                 ip saddr {n1} ip daddr {CLIENT} meta l4proto udp counter name \"udp_from_node1\"\n\
               }}\n\
               chain input {{ type filter hook input priority filter; policy accept;\n\
                 ip saddr {{ {n0}, {n1} }} meta l4proto udp counter name \"udp_to_front\"\n\
               }}\n\
             }}\n"
        ));
    }

    /// (UDP packets node 0 → client, node 1 → client, nodes → front) so far.
    pub fn udp_counts(&self) -> (u64, u64, u64) {
        (
            self.front.nft_counter("cadence_test", "udp_from_node0"),
            self.front.nft_counter("cadence_test", "udp_from_node1"),
            self.front.nft_counter("cadence_test", "udp_to_front"),
        )
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for n in self.all() {
            n.destroy();
        }
    }
}

/// A server namespace joined to `n` client namespaces, one veth each:
///
/// ```text
///   client i 10.78.<i+1>.2 ──veth── 10.78.<i+1>.1 server
/// ```
///
/// Namespaces are named `<prefix><pid>-<tag>-sv` and `<prefix><pid>-<tag>-c<i>`, so a test
/// picks a prefix no other test uses; namespaces of a dead test process with the same
/// prefix are removed first. Dropping it kills every process still inside and deletes them.
pub struct Star {
    /// Where the server runs.
    pub server: Netns,
    /// One namespace per client, each on its own link.
    pub clients: Vec<Netns>,
}

impl Star {
    /// Builds the namespaces and links.
    pub fn new(prefix: &str, tag: &str, n: usize) -> Star {
        assert!((1..=200).contains(&n), "1 to 200 clients");
        remove_stale_with(prefix);
        let ns = |role: String| Netns {
            name: format!("{prefix}{}-{tag}-{role}", std::process::id()),
        };
        let star = Star {
            server: ns("sv".to_string()),
            clients: (0..n).map(|i| ns(format!("c{i}"))).collect(),
        };
        for n in star.all() {
            n.create();
        }
        for (i, c) in star.clients.iter().enumerate() {
            let server_if = format!("c{i}");
            run(ip().args([
                "link",
                "add",
                "sv",
                "netns",
                c.name(),
                "type",
                "veth",
                "peer",
                "name",
                &server_if,
                "netns",
                star.server.name(),
            ]));
            c.ip(&[
                "addr",
                "add",
                &format!("{}/24", star.client_addr(i)),
                "dev",
                "sv",
            ]);
            c.ip(&["link", "set", "sv", "up"]);
            star.server.ip(&[
                "addr",
                "add",
                &format!("{}/24", star.server_addr(i)),
                "dev",
                &server_if,
            ]);
            star.server.ip(&["link", "set", &server_if, "up"]);
        }
        star
    }

    /// Client `i`'s address.
    pub fn client_addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 78, 1 + i as u8, 2)
    }

    /// The server's address on client `i`'s link (what client `i` connects to).
    pub fn server_addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 78, 1 + i as u8, 1)
    }

    /// Every namespace, server first.
    pub fn all(&self) -> Vec<&Netns> {
        std::iter::once(&self.server)
            .chain(self.clients.iter())
            .collect()
    }
}

impl Drop for Star {
    fn drop(&mut self) {
        for n in self.all() {
            n.destroy();
        }
    }
}

/// A long-running process started in a namespace (`ip netns exec` execs it, so the child
/// is the program itself). Killed on drop; its output goes to a log file, printed when the
/// test is failing.
pub struct NsProcess {
    child: Child,
    label: String,
    log: PathBuf,
}

impl NsProcess {
    /// Starts `program args…` in `ns`, stdout and stderr to `log`.
    pub fn spawn(ns: &Netns, label: &str, program: &Path, args: &[String], log: &Path) -> Self {
        let file = fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = ns
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("dup log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {label} in {}: {e}", ns.name()));
        NsProcess {
            child,
            label: label.to_string(),
            log: log.to_path_buf(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits up to 5 s for the exit (then SIGKILL). True if it exited on
    /// SIGTERM.
    pub fn stop(&mut self) -> bool {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.is_alive() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "---- {} log tail ----\n{}\n----",
                self.label,
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
    }
}

/// Waits until `cond` holds, polling every 50 ms; false after `within`.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET path` over HTTP/1.1 to `addr` (run it inside a namespace with [`Netns::enter`]):
/// the status code and the body (chunked bodies are joined).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

/// Joins the chunks of an HTTP/1.1 chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The addresses in a JSON document held by string fields whose name starts with `client`
/// (`"client": "10.77.0.2:40000"`, `"client_ip": "10.77.0.2"`, …), in document order. A
/// small scanner, so the test needs no JSON crate; values that are not an IP address or a
/// socket address are skipped.
pub fn json_client_ips(json: &str) -> Vec<IpAddr> {
    let mut strings = Vec::new(); // (string, followed by ':')
    let bytes = json.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            let mut s = String::new();
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    i += 1;
                }
                s.push(bytes[i] as char);
                i += 1;
            }
            i += 1;
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let is_key = j < bytes.len() && bytes[j] == b':';
            strings.push((s, is_key, j));
        } else {
            i += 1;
        }
    }
    let mut ips = Vec::new();
    for w in strings.windows(2) {
        let ((key, true, colon), (value, false, _)) = (&w[0], &w[1]) else {
            continue;
        };
        // The value must be the very next token after the colon.
        let between = &json[colon + 1..];
        if !between.trim_start().starts_with('"') {
            continue;
        }
        if !key.to_ascii_lowercase().starts_with("client") {
            continue;
        }
        if let Ok(sa) = value.parse::<SocketAddr>() {
            ips.push(sa.ip());
        } else if let Ok(ip) = value.parse::<IpAddr>() {
            ips.push(ip);
        }
    }
    ips
}

/// The `c-ip` (first field) of each entry line of a W3C extended log (lines starting with
/// `#` are directives) that contains `needle` (e.g. the file name of the stream).
pub fn w3c_client_ips(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| !l.starts_with('#') && l.contains(needle))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}
