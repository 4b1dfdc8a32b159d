//! Facts about the machine and the build that produced a result: CPU model,
//! core count, memory, kernel, the system settings that cap capacity, git
//! commit, versions and build profile.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// CPU model (/proc/cpuinfo "model name").
    pub cpu_model: String,
    /// Online logical CPUs.
    pub cpus: usize,
    /// Memory, MiB (MemTotal).
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// RLIMIT_NOFILE soft limit.
    pub nofile: u64,
    /// net.core.wmem_max, bytes.
    pub wmem_max: u64,
    /// net.core.rmem_max, bytes.
    pub rmem_max: u64,
    /// net.core.netdev_max_backlog, packets.
    pub netdev_max_backlog: u64,
}

/// The build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Build {
    /// `git rev-parse HEAD`.
    pub commit: String,
    /// Uncommitted changes under engine/, hinting/ or loadtool/ at run time.
    pub dirty: bool,
    /// `cadence --version`.
    pub engine_version: String,
    /// `cadence-loadtool --version`.
    pub loadtool_version: String,
    /// Version of cadence-bench.
    pub bench_version: String,
    /// `release` or `debug`, from the engine binary's target folder.
    pub profile: String,
    /// Engine binary path.
    pub engine_path: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn sysctl(key: &str) -> u64 {
    read(&format!("/proc/sys/{}", key.replace('.', "/")))
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Machine {
    /// Reads the facts of this machine.
    pub fn detect() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|v| v.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kib| kib / 1024)
            .unwrap_or(0);
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
        Machine {
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
            cpu_model,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            memory_mib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            nofile: r.rlim_cur,
            wmem_max: sysctl("net.core.wmem_max"),
            rmem_max: sysctl("net.core.rmem_max"),
            netdev_max_backlog: sysctl("net.core.netdev_max_backlog"),
        }
    }
}

fn output(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

impl Build {
    /// Facts of the repository at `repo` and the binaries used.
    pub fn detect(repo: &Path, engine: &Path, loadtool: &Path) -> Build {
        let commit = output(
            Command::new("git")
                .arg("-C")
                .arg(repo)
                .args(["rev-parse", "HEAD"]),
        );
        let dirty = !output(Command::new("git").arg("-C").arg(repo).args([
            "status",
            "--porcelain",
            "--",
            "engine",
            "hinting",
            "loadtool",
        ]))
        .is_empty();
        let profile = if engine.components().any(|c| c.as_os_str() == "release") {
            "release"
        } else if engine.components().any(|c| c.as_os_str() == "debug") {
            "debug"
        } else {
            "unknown"
        };
        Build {
            commit,
            dirty,
            engine_version: output(Command::new(engine).arg("--version")),
            loadtool_version: output(Command::new(loadtool).arg("--version")),
            bench_version: env!("CARGO_PKG_VERSION").to_string(),
            profile: profile.into(),
            engine_path: engine.display().to_string(),
        }
    }
}
