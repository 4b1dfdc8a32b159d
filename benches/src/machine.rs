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
    /// The cpuidle driver (/sys/devices/system/cpu/cpuidle/current_driver):
    /// `haltpoll` in a KVM guest, `intel_idle`/`acpi_idle` on bare metal.
    #[serde(default)]
    pub cpuidle_driver: String,
    /// KVM guest halt polling, ns (/sys/module/haltpoll/parameters/
    /// guest_halt_poll_ns): how long an idle vCPU polls before it halts.
    /// `None` where the module is absent. With 0 every idle gap halts the
    /// vCPU and the hypervisor's wake-up adds to the shard's lateness
    /// (results/haltpoll-0.2.0/).
    #[serde(default)]
    pub guest_halt_poll_ns: Option<u64>,
}

/// The KVM guest halt-polling limit (cpuidle-haltpoll), ns.
const HALT_POLL_NS: &str = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";

/// The current guest halt-polling limit, ns (`None`: no haltpoll module).
pub fn guest_halt_poll_ns() -> Option<u64> {
    read(HALT_POLL_NS).trim().parse().ok()
}

/// A halt-polling limit set for the duration of a run; the previous value
/// is written back on drop.
pub struct HaltPollGuard {
    previous: u64,
}

impl HaltPollGuard {
    /// Sets the guest halt-polling limit to `ns`. Errors: no haltpoll module
    /// (not a KVM guest with cpuidle-haltpoll), or not root.
    pub fn set(ns: u64) -> anyhow::Result<HaltPollGuard> {
        let previous = guest_halt_poll_ns().ok_or_else(|| {
            anyhow::anyhow!("{HALT_POLL_NS} is missing: not a KVM guest with cpuidle-haltpoll")
        })?;
        std::fs::write(HALT_POLL_NS, ns.to_string())
            .map_err(|e| anyhow::anyhow!("writing {HALT_POLL_NS}: {e} (needs root)"))?;
        Ok(HaltPollGuard { previous })
    }
}

impl Drop for HaltPollGuard {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(HALT_POLL_NS, self.previous.to_string()) {
            eprintln!("cadence-bench: could not restore {HALT_POLL_NS}: {e}");
        }
    }
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
            cpuidle_driver: read("/sys/devices/system/cpu/cpuidle/current_driver")
                .trim()
                .to_string(),
            guest_halt_poll_ns: guest_halt_poll_ns(),
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
