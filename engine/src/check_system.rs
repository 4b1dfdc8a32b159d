//! `cadence check-system`: every system setting and process limit that caps
//! how many sessions a Cadence server holds, with its current value, the
//! recommended value (as in `tuning/sysctl.d` and `tuning/limits.d`) and what
//! it caps at the current value. [`startup_warnings`] gives the same findings
//! as log lines for the server's start.
//!
//! Sources: getrlimit(2) (RLIMIT_NOFILE, RLIMIT_MEMLOCK), /proc/sys (net.core,
//! net.ipv4, fs, kernel, vm), a probe UDP socket (the send/receive buffer the
//! kernel really grants, as the shards ask for it), and an io_uring probe.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use crate::config::Config;

/// Average RTP packet of a 300 kbit/s audio+video session, bytes (RTP header
/// included; measured on the bundled sample: 33 packets/s, 1,150 B mean).
const MEAN_PACKET_BYTES: u64 = 1_150;
/// RTP packets per second of one 300 kbit/s audio+video session.
const PACKETS_PER_SESSION_S: u64 = 33;
/// Descriptors the process holds besides RTSP connections: stdio, and per
/// shard the listener, the UDP RTP/RTCP pair and the io_uring; plus slack for
/// the catalog scan and log files.
const FIXED_FDS: u64 = 3 + 16;
/// Descriptors per shard (listener, RTP, RTCP, io_uring).
const FDS_PER_SHARD: u64 = 4;
/// Recommended RLIMIT_NOFILE (as tuning/limits.d/cadence.conf).
const NOFILE_RECOMMENDED: u64 = 1 << 20;
/// Recommended socket buffer ceilings, bytes (tuning/sysctl.d).
const SOCKET_BUFFER_RECOMMENDED: u64 = 16 << 20;
/// Recommended net.core.netdev_max_backlog, packets.
const BACKLOG_RECOMMENDED: u64 = 16_384;
/// Recommended net.core.somaxconn.
const SOMAXCONN_RECOMMENDED: u64 = 4_096;
/// Recommended udp_mem "max", pages (4 KiB): 2 GiB.
const UDP_MEM_MAX_RECOMMENDED: u64 = 524_288;
/// Ephemeral ports a load generator on this host should have.
const PORTS_RECOMMENDED: u64 = 60_000;

/// How a setting compares with what Cadence needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// At or above the recommendation.
    Ok,
    /// Below the recommendation: capacity is capped as described.
    Low,
    /// The server cannot run (io_uring unavailable).
    Fail,
    /// Not readable here, or informational only.
    Info,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Low => "LOW",
            Status::Fail => "FAIL",
            Status::Info => "info",
        }
    }
}

/// One finding: a setting, its value, the recommendation and what it caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Setting name (sysctl key, rlimit, or feature).
    pub name: &'static str,
    /// Current value, as text.
    pub current: String,
    /// Recommended value, as text.
    pub recommended: String,
    /// Comparison.
    pub status: Status,
    /// What this setting caps, at its current value.
    pub caps: String,
}

fn read_sysctl(key: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn sysctl_u64(key: &str) -> Option<u64> {
    read_sysctl(key)?.split_whitespace().next()?.parse().ok()
}

fn sysctl_fields(key: &str) -> Option<Vec<u64>> {
    read_sysctl(key)?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect()
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 {
        return None;
    }
    Some((r.rlim_cur, r.rlim_max))
}

fn fmt_limit(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        group(v)
    }
}

/// `12345678` → `12,345,678`.
fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(v: u64) -> String {
    let unit = |n: u64, name: &str| {
        let x = v as f64 / n as f64;
        if v % n == 0 {
            format!("{} {name}", v / n)
        } else {
            format!("{x:.1} {name}")
        }
    };
    if v >= 1 << 30 {
        unit(1 << 30, "GiB")
    } else if v >= 1 << 20 {
        unit(1 << 20, "MiB")
    } else if v >= 1 << 10 {
        unit(1 << 10, "KiB")
    } else {
        format!("{v} B")
    }
}

fn unknown(name: &'static str, recommended: String, caps: &str) -> Check {
    Check {
        name,
        current: "unreadable".into(),
        recommended,
        status: Status::Info,
        caps: caps.into(),
    }
}

fn at_least(v: u64, min: u64) -> Status {
    if v >= min {
        Status::Ok
    } else {
        Status::Low
    }
}

/// Sessions that `bytes` of socket buffer holds for one 1 ms pacer tick.
fn sessions_per_tick_burst(bytes: u64) -> u64 {
    bytes * 1000 / (MEAN_PACKET_BYTES * PACKETS_PER_SESSION_S)
}

/// The kernel's `io_uring_disabled` sysctl and, when `probe` is set, an
/// actual ring setup as the shards do it.
fn check_io_uring(probe: bool) -> Check {
    let disabled = sysctl_u64("kernel.io_uring_disabled");
    let caps = "whether the server runs at all: every shard is an io_uring loop";
    let mut c = Check {
        name: "io_uring",
        current: String::new(),
        recommended: "available (kernel.io_uring_disabled = 0)".into(),
        status: Status::Ok,
        caps: caps.into(),
    };
    match disabled {
        Some(2) => {
            c.current = "disabled (kernel.io_uring_disabled = 2)".into();
            c.status = Status::Fail;
        }
        Some(1) => {
            c.current = "restricted to kernel.io_uring_group (io_uring_disabled = 1)".into();
            c.status = Status::Low;
        }
        _ => c.current = "enabled".into(),
    }
    if probe {
        match crate::shard::new_ring(8) {
            Ok(_) => {
                if c.status != Status::Fail {
                    c.current = "available (probe ring created)".into();
                    c.status = Status::Ok;
                }
            }
            Err(e) => {
                c.current = format!("UNAVAILABLE: {e}");
                c.status = Status::Fail;
            }
        }
    }
    c
}

fn check_nofile(cores: u64) -> Check {
    let caps_note =
        "sessions per process: each session holds its RTSP TCP connection (UDP and TCP alike)";
    let Some((soft, hard)) = rlimit(libc::RLIMIT_NOFILE) else {
        return unknown(
            "RLIMIT_NOFILE (ulimit -n)",
            group(NOFILE_RECOMMENDED),
            caps_note,
        );
    };
    let reserved = FIXED_FDS + FDS_PER_SHARD * cores;
    let sessions = soft.saturating_sub(reserved);
    let hard_note = if hard > soft && hard != libc::RLIM_INFINITY {
        format!(" (the hard limit {} allows more)", group(hard))
    } else {
        String::new()
    };
    Check {
        name: "RLIMIT_NOFILE (ulimit -n)",
        current: format!("{} soft / {} hard", fmt_limit(soft), fmt_limit(hard)),
        recommended: format!("{} (tuning/limits.d)", group(NOFILE_RECOMMENDED)),
        status: at_least(soft, NOFILE_RECOMMENDED),
        caps: if soft == libc::RLIM_INFINITY {
            "nothing".into()
        } else {
            format!(
                "sessions at about {}: each session holds its RTSP TCP connection{hard_note}",
                group(sessions)
            )
        },
    }
}

fn check_memlock() -> Check {
    let name = "RLIMIT_MEMLOCK (ulimit -l)";
    let Some((soft, _)) = rlimit(libc::RLIMIT_MEMLOCK) else {
        return unknown(
            name,
            "64 MiB".into(),
            "io_uring rings on kernels before 5.12",
        );
    };
    // Kernels since 5.12 charge ring memory to the memory cgroup instead.
    let modern = kernel_version().is_some_and(|v| v >= (5, 12));
    let needed: u64 = 1 << 20; // one 4096-entry ring with a 4x CQ, rounded up
    Check {
        name,
        current: if soft == libc::RLIM_INFINITY {
            "unlimited".into()
        } else {
            bytes(soft)
        },
        recommended: "64 MiB (tuning/limits.d)".into(),
        status: if modern || soft >= 64 * needed {
            Status::Ok
        } else {
            Status::Low
        },
        caps: if modern {
            "nothing here: this kernel charges io_uring rings to the memory cgroup (needed only for registered buffers, which Cadence does not use)".into()
        } else {
            format!(
                "shards at about {} (each ring locks about 1 MiB)",
                soft / needed
            )
        },
    }
}

fn kernel_version() -> Option<(u32, u32)> {
    let release = read_sysctl("kernel.osrelease")?;
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The buffer the kernel grants a UDP socket asked for `want` bytes the way
/// the shards ask (SO_*BUFFORCE, then the plain option); the kernel reports
/// twice the usable size.
fn granted_udp_buffer(send: bool, want: u64) -> Option<u64> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    let fd = socket.as_raw_fd();
    let (force, plain) = if send {
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)
    } else {
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF)
    };
    let size = want.min(i32::MAX as u64) as libc::c_int;
    let set = |opt| {
        // SAFETY: setsockopt with a c_int value on a socket we own.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(force) != 0 {
        set(plain);
    }
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes a c_int into `value`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            plain,
            &mut value as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0 && value > 0).then_some(value as u64 / 2)
}

fn check_wmem(want: u64) -> Check {
    let name = "net.core.wmem_max";
    let Some(max) = sysctl_u64(name) else {
        return unknown(
            name,
            bytes(SOCKET_BUFFER_RECOMMENDED),
            "UDP send burst per shard",
        );
    };
    let granted = granted_udp_buffer(true, want).unwrap_or(max.min(want));
    let forced = granted > max;
    Check {
        name,
        current: format!(
            "{} (RTP socket gets {}{})",
            bytes(max),
            bytes(granted),
            if forced { " via SO_SNDBUFFORCE" } else { "" }
        ),
        recommended: format!(
            ">= the shard's request ({}); {} in tuning/sysctl.d",
            bytes(want),
            bytes(SOCKET_BUFFER_RECOMMENDED)
        ),
        status: if granted >= want { Status::Ok } else { Status::Low },
        caps: format!(
            "the send burst per shard at {} = one 1 ms tick of about {} sessions; beyond it packets queue and go late (the shard asks for {})",
            bytes(granted),
            group(sessions_per_tick_burst(granted)),
            bytes(want)
        ),
    }
}

fn check_rmem(want: u64) -> Check {
    let name = "net.core.rmem_max";
    let Some(max) = sysctl_u64(name) else {
        return unknown(name, bytes(SOCKET_BUFFER_RECOMMENDED), "RTCP receive burst");
    };
    let granted = granted_udp_buffer(false, want).unwrap_or(max.min(want));
    Check {
        name,
        current: format!("{} (RTCP socket gets {})", bytes(max), bytes(granted)),
        recommended: format!(
            ">= the shard's request ({}); {} in tuning/sysctl.d for a load generator",
            bytes(want),
            bytes(SOCKET_BUFFER_RECOMMENDED)
        ),
        status: if granted >= want { Status::Ok } else { Status::Low },
        caps: format!(
            "queued RTCP receiver reports per shard at about {} (~100 B each with overhead); a load generator on this host needs it for RTP (cadence-loadtool asks 16 MiB)",
            group(granted / 400)
        ),
    }
}

fn check_backlog() -> Check {
    let name = "net.core.netdev_max_backlog";
    let Some(v) = sysctl_u64(name) else {
        return unknown(
            name,
            group(BACKLOG_RECOMMENDED),
            "packets per CPU input queue",
        );
    };
    Check {
        name,
        current: group(v),
        recommended: format!("{} (tuning/sysctl.d)", group(BACKLOG_RECOMMENDED)),
        status: at_least(v, BACKLOG_RECOMMENDED),
        caps: format!(
            "packets waiting per CPU between the NIC (or loopback/veth) and the stack at {}; a larger burst of RTCP/RTSP input, or of loopback/veth traffic, is dropped",
            group(v)
        ),
    }
}

fn check_somaxconn() -> Check {
    let name = "net.core.somaxconn";
    let Some(v) = sysctl_u64(name) else {
        return unknown(name, group(SOMAXCONN_RECOMMENDED), "connection bursts");
    };
    let effective = v.min(4096);
    Check {
        name,
        current: group(v),
        recommended: format!("{} (tuning/sysctl.d)", group(SOMAXCONN_RECOMMENDED)),
        status: at_least(v, SOMAXCONN_RECOMMENDED),
        caps: format!(
            "RTSP connections waiting to be accepted per shard at {} (the listener asks 4,096); beyond it SYNs are dropped and clients retry after 1 s",
            group(effective)
        ),
    }
}

fn check_udp_mem() -> Check {
    let name = "net.ipv4.udp_mem";
    let Some(f) = sysctl_fields(name).filter(|f| f.len() == 3) else {
        return unknown(
            name,
            format!("max >= {} pages", group(UDP_MEM_MAX_RECOMMENDED)),
            "all UDP socket memory",
        );
    };
    let page = 4096u64;
    Check {
        name,
        current: format!("{} {} {} pages", f[0], f[1], f[2]),
        recommended: format!(
            "max >= {} pages = {} (tuning/sysctl.d)",
            group(UDP_MEM_MAX_RECOMMENDED),
            bytes(UDP_MEM_MAX_RECOMMENDED * page)
        ),
        status: at_least(f[2], UDP_MEM_MAX_RECOMMENDED),
        caps: format!(
            "all UDP socket buffers of the host at {} (pressure from {}): queued RTP on a NIC, and the receive queues of a load generator on this host",
            bytes(f[2] * page),
            bytes(f[1] * page)
        ),
    }
}

fn check_port_range() -> Check {
    let name = "net.ipv4.ip_local_port_range";
    let Some(f) = sysctl_fields(name).filter(|f| f.len() == 2) else {
        return unknown(
            name,
            "1024 65535".into(),
            "client connections per server address",
        );
    };
    let ports = f[1].saturating_sub(f[0]) + 1;
    Check {
        name,
        current: format!("{} {}", f[0], f[1]),
        recommended: "1024 65535 (tuning/sysctl.d)".into(),
        status: at_least(ports, PORTS_RECOMMENDED),
        caps: format!(
            "RTSP connections a load generator on this host opens to one server address at {} (not the server's own capacity)",
            group(ports)
        ),
    }
}

fn check_nr_open() -> Check {
    let name = "fs.nr_open";
    let Some(v) = sysctl_u64(name) else {
        return unknown(name, group(NOFILE_RECOMMENDED), "the highest RLIMIT_NOFILE");
    };
    Check {
        name,
        current: group(v),
        recommended: format!(">= {}", group(NOFILE_RECOMMENDED)),
        status: at_least(v, NOFILE_RECOMMENDED),
        caps: format!("the highest RLIMIT_NOFILE anyone may set at {}", group(v)),
    }
}

fn check_cpus(config: &Config) -> Check {
    let available = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(0) as u64;
    let cores = config.cores as u64;
    Check {
        name: "CPUs for shards",
        current: format!("{} shard(s) on {} CPU(s) available", cores, available),
        recommended: "one CPU per shard, on the NIC's NUMA node (tuning/affinity)".into(),
        status: if available == 0 {
            Status::Info
        } else {
            at_least(available, cores)
        },
        caps: if available > 0 && cores > available {
            format!(
                "shards share CPUs: {} shards on {} CPUs lose the thread-per-core property",
                cores, available
            )
        } else {
            "packets per second: one shard per CPU".into()
        },
    }
}

/// Recommended KVM guest halt polling, ns: longer than the idle gap between
/// two pacer ticks (500 µs by default), so a vCPU that goes idle between
/// ticks polls instead of halting.
const HALT_POLL_RECOMMENDED_NS: u64 = 1_000_000;

/// cpuidle-haltpoll (KVM guests): with `guest_halt_poll_ns` 0 an idle vCPU
/// halts at once, and the hypervisor wakes it for the next tick late (1 to
/// 15 ms measured on a 2-vCPU guest: results/haltpoll-0.2.0/).
fn check_halt_poll() -> Check {
    let name = "haltpoll.guest_halt_poll_ns";
    let driver = std::fs::read_to_string("/sys/devices/system/cpu/cpuidle/current_driver")
        .unwrap_or_default();
    let poll = std::fs::read_to_string("/sys/module/haltpoll/parameters/guest_halt_poll_ns")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    let recommended = format!(
        "{} in a KVM guest (tuning/tmpfiles.d)",
        group(HALT_POLL_RECOMMENDED_NS)
    );
    match poll {
        Some(ns) if driver.trim() == "haltpoll" => Check {
            name,
            current: group(ns),
            recommended,
            status: at_least(ns, HALT_POLL_RECOMMENDED_NS),
            caps: format!(
                "the wake-up of an idle shard: a vCPU idle for more than {} µs halts, and the hypervisor may wake it for the next tick milliseconds late (packets go late at any load)",
                ns / 1000
            ),
        },
        _ => Check {
            name,
            current: format!("not in use (cpuidle driver {:?})", driver.trim()),
            recommended,
            status: Status::Info,
            caps: "nothing here: not a KVM guest with cpuidle-haltpoll".into(),
        },
    }
}

/// Every check for `config`. `probe_uring` creates a small io_uring to prove
/// the kernel allows it (the server does the same at start).
pub fn checks(config: &Config, probe_uring: bool) -> Vec<Check> {
    let cores = config.cores as u64;
    let want = config.shard.udp_buffer_bytes as u64;
    vec![
        check_io_uring(probe_uring),
        check_cpus(config),
        check_nofile(cores),
        check_nr_open(),
        check_memlock(),
        check_wmem(want),
        check_rmem(want),
        check_backlog(),
        check_somaxconn(),
        check_udp_mem(),
        check_port_range(),
        check_halt_poll(),
    ]
}

/// The findings below recommendation, as one log line each, for the server
/// to log at startup (no io_uring probe: the shards create their rings).
pub fn startup_warnings(config: &Config) -> Vec<String> {
    checks(config, false)
        .into_iter()
        .filter(|c| matches!(c.status, Status::Low | Status::Fail))
        .map(|c| {
            format!(
                "{} is {}: caps {} (recommended: {}; see `cadence check-system`)",
                c.name, c.current, c.caps, c.recommended
            )
        })
        .collect()
}

/// Renders the checks as an aligned text table.
pub fn render(checks: &[Check]) -> String {
    let w_name = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let w_cur = checks
        .iter()
        .map(|c| c.current.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<w_name$}  {:<6}  {:<w_cur$}  RECOMMENDED / WHAT IT CAPS",
        "SETTING", "STATUS", "CURRENT"
    );
    for c in checks {
        let _ = writeln!(
            out,
            "{:<w_name$}  {:<6}  {:<w_cur$}  {}",
            c.name,
            c.status.label(),
            c.current,
            c.recommended
        );
        let _ = writeln!(
            out,
            "{:<w_name$}  {:<6}  {:<w_cur$}    caps {}",
            "", "", "", c.caps
        );
    }
    out
}

/// Prints each setting and limit with its recommended value and what it
/// caps. Exit status 0, or 1 when the server cannot run here (io_uring
/// unavailable).
pub fn run(config: &Config) -> ExitCode {
    let all = checks(config, true);
    let release = read_sysctl("kernel.osrelease").unwrap_or_else(|| "unknown".into());
    println!(
        "cadence check-system: Cadence {}, Linux {release}, {} shard(s) configured\n",
        env!("CARGO_PKG_VERSION"),
        config.cores
    );
    print!("{}", render(&all));
    let low = all.iter().filter(|c| c.status == Status::Low).count();
    let fail = all.iter().any(|c| c.status == Status::Fail);
    println!(
        "\n{low} setting(s) below recommendation{}. tuning/README.md explains each one.",
        if fail {
            "; the server cannot run here"
        } else {
            ""
        }
    );
    if fail {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let args = crate::config::ServeArgs {
            cores: Some(1),
            ..Default::default()
        };
        Config::resolve(&args, 1).expect("defaults resolve")
    }

    #[test]
    fn nofile_cap_matches_the_process_limit() {
        let (soft, _) = rlimit(libc::RLIMIT_NOFILE).expect("getrlimit");
        let c = check_nofile(1);
        if soft != libc::RLIM_INFINITY {
            let expected = group(soft - FIXED_FDS - FDS_PER_SHARD);
            assert!(c.caps.contains(&expected), "{} / {expected}", c.caps);
            assert_eq!(c.status == Status::Ok, soft >= NOFILE_RECOMMENDED);
        }
    }

    #[test]
    fn every_check_is_reported_and_warnings_match_low_checks() {
        let cfg = config();
        let all = checks(&cfg, false);
        let names: Vec<&str> = all.iter().map(|c| c.name).collect();
        for expected in [
            "io_uring",
            "RLIMIT_NOFILE (ulimit -n)",
            "RLIMIT_MEMLOCK (ulimit -l)",
            "net.core.wmem_max",
            "net.core.rmem_max",
            "net.core.netdev_max_backlog",
            "net.core.somaxconn",
            "net.ipv4.udp_mem",
            "net.ipv4.ip_local_port_range",
            "haltpoll.guest_halt_poll_ns",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        let low = all
            .iter()
            .filter(|c| matches!(c.status, Status::Low | Status::Fail))
            .count();
        assert_eq!(startup_warnings(&cfg).len(), low);
        let table = render(&all);
        assert_eq!(table.lines().count(), 1 + 2 * all.len());
    }

    #[test]
    fn sysctl_values_are_read_from_proc() {
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .expect("procfs")
            .trim()
            .parse::<u64>()
            .expect("number");
        assert_eq!(check_somaxconn().current, group(somaxconn));
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(bytes(4 << 20), "4 MiB");
    }
}
