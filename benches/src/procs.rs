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

/// Confines every thread of this process (the runner: its /proc sampler,
/// the load tools' log readers, signal marks) to `cpus`, so that the
/// harness never takes the engine's CPU. Threads started later inherit the
/// set; children started with [`pinned`] set their own. On the 2-vCPU VM
/// of `results/haltpoll-0.2.0`, `perf sched timehist` caught the runner's
/// threads on the engine's CPU delaying the shard's wake-ups by up to 2.1 ms.
/// Errors: an empty or unusable CPU list (sched_setaffinity(2)).
pub fn confine_self(cpus: &[usize]) -> Result<()> {
    if cpus.is_empty() {
        bail!("no CPU to confine the runner to");
    }
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            bail!("CPU {c} is beyond CPU_SETSIZE");
        }
        // SAFETY: c is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    let tasks = std::fs::read_dir("/proc/self/task").context("list /proc/self/task")?;
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        let rc =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            // A thread that ended meanwhile is not an error.
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e).with_context(|| format!("sched_setaffinity to CPUs {cpus:?}"));
            }
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUs the calling thread may run on (sched_getaffinity(2)).
    fn allowed(tid: i32) -> Vec<usize> {
        // SAFETY: cpu_set_t is plain data, filled by the kernel.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        let rc = unsafe {
            libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
        };
        assert_eq!(
            rc,
            0,
            "sched_getaffinity: {}",
            std::io::Error::last_os_error()
        );
        (0..libc::CPU_SETSIZE as usize)
            // SAFETY: i is below CPU_SETSIZE.
            .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect()
    }

    #[test]
    fn confine_self_moves_running_and_later_threads_and_rejects_an_empty_list() {
        // The test harness's own threads are confined too: confine to the
        // last allowed CPU and restore the full set afterwards.
        let before = allowed(0);
        let last = *before.last().expect("some CPU is allowed");
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let running = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            rx.recv().ok();
        });
        let tid = tid_rx.recv().unwrap();
        confine_self(&[last]).expect("confine to an allowed CPU");
        assert_eq!(allowed(0), vec![last], "the calling thread");
        assert_eq!(allowed(tid), vec![last], "a thread already running");
        let later = std::thread::spawn(|| allowed(0)).join().unwrap();
        assert_eq!(later, vec![last], "a thread started afterwards");
        tx.send(()).unwrap();
        running.join().unwrap();
        confine_self(&before).expect("restore");
        assert_eq!(allowed(0), before);
        assert!(confine_self(&[]).is_err());
        assert!(confine_self(&[libc::CPU_SETSIZE as usize]).is_err());
    }
}
