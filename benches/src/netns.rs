//! The gigabit link: a network namespace for the load tool, joined to the
//! host by a veth pair shaped by tc tbf, so that the engine's traffic
//! crosses a 1 Gbit/s bottleneck as on gigabit hardware.
//!
//! Two places for the shaper ([`Shaper`]):
//! - `sender`: tbf on both ends of one veth pair (host ↔ load tool). The
//!   host end's tbf dequeues (and its watchdog timer fires) in the sending
//!   thread's context, so the model's shaping runs on the engine's CPU.
//! - `router`: host ↔ router namespace ↔ load tool, two veth pairs, with
//!   tbf on the router's two egress interfaces and the router's receive
//!   processing steered (RPS) to `rps_cpus`. Forwarding and shaping then
//!   run on those CPUs, as a switch does them in its own hardware; the
//!   engine's CPU does only its own sends.
//!
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
    /// Where the tbf runs (`sender` or `router`).
    #[serde(default)]
    pub shaper: Shaper,
    /// `tc -s qdisc` of the shaper toward the load tool after the last run
    /// (drops, overlimits), filled in by the runner.
    pub qdisc_stats: String,
}

/// Where the link's tbf runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shaper {
    /// On both ends of the one veth pair: the downstream tbf works on the
    /// engine's CPU.
    #[default]
    Sender,
    /// On a router namespace between the engine and the load tool, whose
    /// receive processing runs on `rps_cpus`.
    Router,
}

/// A live namespace + veth pair.
pub struct Netns {
    /// Description.
    pub info: LinkInfo,
    host_if: String,
    /// The router namespace (router shaper only).
    router: Option<String>,
    /// The shaped interface toward the load tool and its namespace (`None`:
    /// the host's).
    downstream: (Option<String>, String),
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

/// Runs `args` inside namespace `ns` (`ip netns exec`).
fn in_ns(ns: &str, args: &[&str]) -> Result<()> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(args);
    sh(&v)
}

/// Steers the receive processing of `dev` in namespace `ns` to the CPUs of
/// `mask` (`ip netns exec` mounts the namespace's own /sys).
fn set_rps(ns: &str, dev: &str, mask: &str) -> Result<()> {
    let script =
        format!("for q in /sys/class/net/{dev}/queues/rx-*; do echo {mask} > $q/rps_cpus; done");
    in_ns(ns, &["sh", "-c", &script])
}

impl Netns {
    /// Creates the namespace(s), veth pair(s) and tbf (see [`Shaper`]);
    /// with `rps_cpus`, the receive processing of the load tool's end
    /// (sender shaper) or of both router ends (router shaper) is steered to
    /// those CPUs (`/sys/class/net/IF/queues/rx-*/rps_cpus`).
    ///
    /// # Errors
    /// A failing `ip`, `tc` or `sysctl` (not root, iproute2 missing); what was
    /// created is removed again.
    pub fn create(
        rate_mbit: u64,
        burst_bytes: u64,
        limit_bytes: u64,
        rps_cpus: Option<&[usize]>,
        shaper: Shaper,
    ) -> Result<Netns> {
        let id = std::process::id();
        let name = format!("cbench{id}");
        let tag = id % 100_000;
        let host_if = format!("cbh{tag}");
        let ns_if = format!("cbn{tag}");
        let subnet = 100 + (id % 150) as u8;
        let host_ip = Ipv4Addr::new(10, 231, subnet, 1);
        let ns_ip = match shaper {
            Shaper::Sender => Ipv4Addr::new(10, 231, subnet, 2),
            Shaper::Router => Ipv4Addr::new(10, 232, subnet, 2),
        };
        let router = (shaper == Shaper::Router).then(|| format!("cbrt{id}"));
        let mut ns = Netns {
            info: LinkInfo {
                namespace: name.clone(),
                host_ip: host_ip.to_string(),
                ns_ip: ns_ip.to_string(),
                rate_mbit,
                burst_bytes,
                limit_bytes,
                shaper,
                qdisc_stats: String::new(),
            },
            host_if: host_if.clone(),
            router: router.clone(),
            downstream: (None, host_if.clone()),
            host_ip,
            ns_ip,
        };
        let rate = format!("{rate_mbit}mbit");
        let burst = burst_bytes.to_string();
        let limit = limit_bytes.to_string();
        let tbf = [
            "root", "tbf", "rate", &rate, "burst", &burst, "limit", &limit,
        ];
        let mask = rps_cpus.map(rps_mask).transpose()?;
        // From here on, Drop cleans up whatever was created.
        sh(&["ip", "netns", "add", &name])?;
        if let Some(r) = &router {
            sh(&["ip", "netns", "add", r])?;
        }
        // The load tool's namespace and its end of the link.
        let inns = |args: &[&str]| in_ns(&name, args);
        match &router {
            None => {
                sh(&[
                    "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
                ])?;
                sh(&["ip", "link", "set", &ns_if, "netns", &name])?;
            }
            Some(r) => {
                // host_if ↔ rh (router), rc (router) ↔ ns_if (load tool).
                let (rh, rc) = (format!("cbrh{tag}"), format!("cbrc{tag}"));
                sh(&[
                    "ip", "link", "add", &host_if, "type", "veth", "peer", "name", &rh,
                ])?;
                sh(&["ip", "link", "set", &rh, "netns", r])?;
                sh(&[
                    "ip", "link", "add", &rc, "type", "veth", "peer", "name", &ns_if,
                ])?;
                sh(&["ip", "link", "set", &rc, "netns", r])?;
                sh(&["ip", "link", "set", &ns_if, "netns", &name])?;
                let inr = |args: &[&str]| in_ns(r, args);
                let router_h = Ipv4Addr::new(10, 231, subnet, 2);
                let router_c = Ipv4Addr::new(10, 232, subnet, 1);
                inr(&["ip", "addr", "add", &format!("{router_h}/24"), "dev", &rh])?;
                inr(&["ip", "addr", "add", &format!("{router_c}/24"), "dev", &rc])?;
                for dev in [&rh, &rc, &"lo".to_string()] {
                    inr(&["ip", "link", "set", dev, "up"])?;
                }
                inr(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
                inr(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"])?;
                for dev in [&rh, &rc] {
                    let mut q = vec!["tc", "qdisc", "replace", "dev", dev];
                    q.extend_from_slice(&tbf);
                    inr(&q)?;
                    if let Some(mask) = &mask {
                        set_rps(r, dev, mask)?;
                    }
                }
                ns.downstream = (Some(r.clone()), rc.clone());
            }
        }
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_if,
        ])?;
        sh(&["ip", "link", "set", &host_if, "up"])?;
        inns(&["ip", "addr", "add", &format!("{ns_ip}/24"), "dev", &ns_if])?;
        inns(&["ip", "link", "set", &ns_if, "up"])?;
        inns(&["ip", "link", "set", "lo", "up"])?;
        if router.is_some() {
            let gw = Ipv4Addr::new(10, 232, subnet, 1).to_string();
            inns(&["ip", "route", "replace", "default", "via", &gw])?;
            let router_h = Ipv4Addr::new(10, 231, subnet, 2).to_string();
            let far = format!("10.232.{subnet}.0/24");
            sh(&["ip", "route", "replace", &far, "via", &router_h])?;
        } else {
            let mut host = vec!["tc", "qdisc", "replace", "dev", &host_if];
            host.extend_from_slice(&tbf);
            sh(&host)?;
            let mut nsq = vec!["tc", "qdisc", "replace", "dev", &ns_if];
            nsq.extend_from_slice(&tbf);
            inns(&nsq)?;
            if let Some(mask) = &mask {
                set_rps(&name, &ns_if, mask)?;
            }
        }
        // The load tool opens one TCP connection per session from here.
        inns(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65535"])?;
        inns(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])?;
        Ok(ns)
    }

    /// `tc -s qdisc show` of the shaper toward the load tool.
    pub fn qdisc_stats(&self) -> String {
        let (ns, dev) = &self.downstream;
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "tc"]);
                c
            }
            None => Command::new("tc"),
        };
        cmd.args(["-s", "qdisc", "show", "dev", dev])
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
        if let Some(r) = &self.router {
            let _ = Command::new("ip").args(["netns", "del", r]).status();
        }
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
