//! The gigabit link: a network namespace for the load tool, joined to the
//! host by a veth pair whose both ends are shaped by tc tbf, so that the
//! engine's traffic crosses a 1 Gbit/s bottleneck as on gigabit hardware.
//! Everything is removed when the [`Netns`] drops.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What the link is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkInfo {
    /// Namespace name.
    pub namespace: String,
    /// Engine-side address.
    pub host_ip: String,
    /// Load-tool-side address.
    pub ns_ip: String,
    /// tbf rate, Mbit/s (both directions).
    pub rate_mbit: u64,
    /// tbf bucket, bytes.
    pub burst_bytes: u64,
    /// tbf queue limit, bytes.
    pub limit_bytes: u64,
    /// `tc -s qdisc` of the engine-side end after the last run (drops,
    /// overlimits), filled in by the runner.
    pub qdisc_stats: String,
}

/// A live namespace + veth pair.
pub struct Netns {
    /// Description.
    pub info: LinkInfo,
    host_if: String,
    /// Engine-side address.
    pub host_ip: Ipv4Addr,
    /// Load-tool-side address.
    pub ns_ip: Ipv4Addr,
}

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("run {} (install iproute2)", args[0]))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The hexadecimal CPU mask of `cpus` for `rps_cpus` (CPUs 0-63).
fn rps_mask(cpus: &[usize]) -> Result<String> {
    let mut mask = 0u64;
    for &c in cpus {
        if c >= 64 {
            bail!("rps_cpus: CPU {c} is beyond the 64 this mask covers");
        }
        mask |= 1 << c;
    }
    if mask == 0 {
        bail!("rps_cpus: no CPU");
    }
    Ok(format!("{mask:x}"))
}

impl Netns {
    /// Creates namespace + veth pair + tbf on both ends; with `rps_cpus`,
    /// the namespace end's receive processing is steered to those CPUs
    /// (`/sys/class/net/IF/queues/rx-*/rps_cpus`).
    pub fn create(
        rate_mbit: u64,
        burst_bytes: u64,
        limit_bytes: u64,
        rps_cpus: Option<&[usize]>,
    ) -> Result<Netns> {
        let id = std::process::id();
        let name = format!("cbench{id}");
        let host_if = format!("cbh{}", id % 100_000);
        let ns_if = format!("cbn{}", id % 100_000);
        let subnet = 100 + (id % 150) as u8;
        let host_ip = Ipv4Addr::new(10, 231, subnet, 1);
        let ns_ip = Ipv4Addr::new(10, 231, subnet, 2);
        let ns = Netns {
            info: LinkInfo {
                namespace: name.clone(),
                host_ip: host_ip.to_string(),
                ns_ip: ns_ip.to_string(),
                rate_mbit,
                burst_bytes,
                limit_bytes,
                qdisc_stats: String::new(),
            },
            host_if: host_if.clone(),
            host_ip,
            ns_ip,
        };
        // From here on, Drop cleans up whatever was created.
        sh(&["ip", "netns", "add", &name])?;
        sh(&[
            "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ])?;
        sh(&["ip", "link", "set", &ns_if, "netns", &name])?;
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_if,
        ])?;
        sh(&["ip", "link", "set", &host_if, "up"])?;
        let inns = |args: &[&str]| -> Result<()> {
            let mut v = vec!["ip", "netns", "exec", &name];
            v.extend_from_slice(args);
            sh(&v)
        };
        inns(&["ip", "addr", "add", &format!("{ns_ip}/24"), "dev", &ns_if])?;
        inns(&["ip", "link", "set", &ns_if, "up"])?;
        inns(&["ip", "link", "set", "lo", "up"])?;
        // The load tool opens one TCP connection per session from here.
        inns(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"])?;
        inns(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])?;
        let rate = format!("{rate_mbit}mbit");
        let burst = burst_bytes.to_string();
        let limit = limit_bytes.to_string();
        let tbf = [
            "root", "tbf", "rate", &rate, "burst", &burst, "limit", &limit,
        ];
        let mut host = vec!["tc", "qdisc", "replace", "dev", &host_if];
        host.extend_from_slice(&tbf);
        sh(&host)?;
        let mut nsq = vec!["tc", "qdisc", "replace", "dev", &ns_if];
        nsq.extend_from_slice(&tbf);
        inns(&nsq)?;
        if let Some(cpus) = rps_cpus {
            let mask = rps_mask(cpus)?;
            // `ip netns exec` mounts the namespace's own /sys.
            let script = format!(
                "for q in /sys/class/net/{ns_if}/queues/rx-*; do echo {mask} > $q/rps_cpus; done"
            );
            inns(&["sh", "-c", &script])?;
        }
        Ok(ns)
    }

    /// `tc -s qdisc show` of the engine-side end.
    pub fn qdisc_stats(&self) -> String {
        Command::new("tc")
            .args(["-s", "qdisc", "show", "dev", &self.host_if])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.info.namespace])
            .status();
        // Deleting the namespace deletes its veth end and with it the pair;
        // this is only for a half-built setup.
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rps_mask_is_hex_of_the_cpu_bits() {
        assert_eq!(rps_mask(&[1]).unwrap(), "2");
        assert_eq!(rps_mask(&[0, 2, 3]).unwrap(), "d");
        assert!(rps_mask(&[]).is_err());
        assert!(rps_mask(&[64]).is_err());
    }
}
