//! Child processes of a run: the engine (or the peer server) and the load
//! tool, each confined to its CPU set with `taskset`, the load tool optionally
//! inside a network namespace. Children are killed when their handle drops,
//! so an error never leaves load running.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// A child process killed (SIGKILL) on drop unless stopped first.
pub struct Guard {
    child: Option<Child>,
    /// What it is, for messages.
    pub what: String,
}

impl Guard {
    /// Wraps `child`.
    pub fn new(child: Child, what: impl Into<String>) -> Self {
        Guard {
            child: Some(child),
            what: what.into(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The child itself.
    pub fn child(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGTERM, then SIGKILL after `grace`; returns the exit status text.
    pub fn stop(mut self, grace: Duration) -> String {
        let Some(mut c) = self.child.take() else {
            return "not running".into();
        };
        if let Ok(Some(st)) = c.try_wait() {
            return st.to_string();
        }
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.to_string();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait()
            .map(|s| format!("{s} (killed after {grace:?})"))
            .unwrap_or_else(|e| e.to_string())
    }

    /// Waits up to `limit` for the process to exit; kills it after that.
    /// Returns the exit status, or an error when it had to be killed.
    pub fn wait_for(mut self, limit: Duration) -> Result<std::process::ExitStatus> {
        let Some(mut c) = self.child.take() else {
            bail!("{} not running", self.what);
        };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = c.try_wait()? {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("{} still running after {limit:?}: killed", self.what);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A command run under `taskset -c cpus`, optionally inside netns `ns`
/// (`ip netns exec` and `taskset` both exec, so the pid is the program's).
pub fn pinned(program: &Path, cpus: &str, ns: Option<&str>) -> Command {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "taskset", "-c", cpus]);
            c
        }
        None => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]);
            c
        }
    };
    cmd.arg(program);
    cmd
}

/// A free TCP port on `ip` (bound and released; good enough for a bench).
pub fn free_port(ip: std::net::IpAddr) -> Result<u16> {
    let l = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).context("find a free port")?;
    Ok(l.local_addr()?.port())
}

/// A free even UDP port with a free successor on `ip`.
pub fn free_udp_pair(ip: std::net::IpAddr) -> Result<u16> {
    for _ in 0..64 {
        let a = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let p = a.local_addr()?.port();
        if p % 2 == 0
            && p < u16::MAX
            && std::net::UdpSocket::bind(SocketAddr::new(ip, p + 1)).is_ok()
        {
            return Ok(p);
        }
    }
    bail!("no free UDP port pair on {ip}")
}

/// Waits until `addr` accepts TCP connections while `guard` runs.
pub fn wait_listening(guard: &mut Guard, addr: SocketAddr, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !guard.alive() {
            bail!("{} exited before listening on {addr}", guard.what);
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("{} not listening on {addr} after {limit:?}", guard.what)
}

/// Sends one DESCRIBE for `url` to `addr` and returns the status code (so
/// the server compiles the file's schedule before the baseline sample).
pub fn describe(addr: SocketAddr, url: &str) -> Result<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\nUser-Agent: cadence-bench\r\n\r\n")?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let code = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("no RTSP status line from {addr}"))?;
    Ok(code)
}

/// Paths of the programs a run uses.
#[derive(Debug, Clone)]
pub struct Programs {
    /// `cadence`.
    pub engine: PathBuf,
    /// `cadence-loadtool`.
    pub loadtool: PathBuf,
    /// This binary (for `floor-send` / `floor-recv`).
    pub bench: PathBuf,
    /// Repository root.
    pub repo: PathBuf,
}

impl Programs {
    /// Finds the engine and load tool next to this executable unless given.
    pub fn locate(engine: Option<PathBuf>, loadtool: Option<PathBuf>) -> Result<Programs> {
        let bench = std::env::current_exe().context("own executable path")?;
        let dir = bench
            .parent()
            .ok_or_else(|| anyhow!("executable has no folder"))?
            .to_path_buf();
        let find = |given: Option<PathBuf>, name: &str| -> Result<PathBuf> {
            let p = given.unwrap_or_else(|| dir.join(name));
            if !p.is_file() {
                bail!(
                    "{} not found; build it (cargo build --release -p cadence-engine -p cadence-loadtool) or pass --{}",
                    p.display(),
                    if name == "cadence" { "engine" } else { "loadtool" }
                );
            }
            Ok(p)
        };
        Ok(Programs {
            engine: find(engine, "cadence")?,
            loadtool: find(loadtool, "cadence-loadtool")?,
            bench,
            repo: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .canonicalize()?,
        })
    }
}
