//! The kernel's own UDP counters (/proc/net/snmp `Udp:` and /proc/net/snmp6
//! `Udp6*`), sampled before and after a run so that drops inside the receiving
//! host show next to the tool's counts. They are host-wide: they include every
//! UDP datagram the host received in that time, the server's included.

use std::collections::HashMap;

/// UDP counters of the host (IPv4 plus IPv6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UdpCounters {
    /// Datagrams delivered to sockets (`InDatagrams`).
    pub in_datagrams: u64,
    /// Datagrams dropped because a socket's receive buffer was full
    /// (`RcvbufErrors`).
    pub rcvbuf_errors: u64,
    /// Datagrams that could not be delivered (`InErrors`, which includes
    /// `RcvbufErrors`).
    pub in_errors: u64,
    /// Datagrams to a port with no socket (`NoPorts`).
    pub no_ports: u64,
    /// Datagrams with a bad checksum (`InCsumErrors`).
    pub in_csum_errors: u64,
}

impl UdpCounters {
    /// Reads the counters now; `None` when /proc/net/snmp is unreadable.
    pub fn sample() -> Option<Self> {
        let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
        let mut c = parse_snmp(&snmp)?;
        if let Ok(snmp6) = std::fs::read_to_string("/proc/net/snmp6") {
            c.add(&parse_snmp6(&snmp6));
        }
        Some(c)
    }

    fn add(&mut self, o: &Self) {
        self.in_datagrams += o.in_datagrams;
        self.rcvbuf_errors += o.rcvbuf_errors;
        self.in_errors += o.in_errors;
        self.no_ports += o.no_ports;
        self.in_csum_errors += o.in_csum_errors;
    }

    /// `self − before`, counter by counter (0 if a counter went backwards).
    pub fn since(&self, before: &Self) -> Self {
        Self {
            in_datagrams: self.in_datagrams.saturating_sub(before.in_datagrams),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(before.rcvbuf_errors),
            in_errors: self.in_errors.saturating_sub(before.in_errors),
            no_ports: self.no_ports.saturating_sub(before.no_ports),
            in_csum_errors: self.in_csum_errors.saturating_sub(before.in_csum_errors),
        }
    }
}

/// Parses the `Udp:` header and value lines of /proc/net/snmp.
pub fn parse_snmp(text: &str) -> Option<UdpCounters> {
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let names = udp.next()?.split_whitespace().skip(1);
    let values = udp.next()?.split_whitespace().skip(1);
    let map: HashMap<&str, u64> = names
        .zip(values)
        .filter_map(|(n, v)| Some((n, v.parse().ok()?)))
        .collect();
    let get = |k: &str| map.get(k).copied().unwrap_or(0);
    Some(UdpCounters {
        in_datagrams: get("InDatagrams"),
        rcvbuf_errors: get("RcvbufErrors"),
        in_errors: get("InErrors"),
        no_ports: get("NoPorts"),
        in_csum_errors: get("InCsumErrors"),
    })
}

/// Parses the `Udp6*` lines of /proc/net/snmp6 (name value per line).
pub fn parse_snmp6(text: &str) -> UdpCounters {
    let map: HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?, it.next()?.parse().ok()?))
        })
        .collect();
    let get = |k: &str| map.get(k).copied().unwrap_or(0);
    UdpCounters {
        in_datagrams: get("Udp6InDatagrams"),
        rcvbuf_errors: get("Udp6RcvbufErrors"),
        in_errors: get("Udp6InErrors"),
        no_ports: get("Udp6NoPorts"),
        in_csum_errors: get("Udp6InCsumErrors"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_snmp() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
Udp: 1000 3 7 900 5 0 1 0 0\nUdpLite: InDatagrams NoPorts\nUdpLite: 0 0\n";
        let c = parse_snmp(text).unwrap();
        assert_eq!(
            c,
            UdpCounters {
                in_datagrams: 1000,
                rcvbuf_errors: 5,
                in_errors: 7,
                no_ports: 3,
                in_csum_errors: 1
            }
        );
        let six = parse_snmp6(
            "Udp6InDatagrams                 \t12\nUdp6RcvbufErrors 2\nIp6InReceives 9\n",
        );
        assert_eq!(six.in_datagrams, 12);
        assert_eq!(six.rcvbuf_errors, 2);
        let later = UdpCounters {
            in_datagrams: 1500,
            ..c
        };
        assert_eq!(later.since(&c).in_datagrams, 500);
        assert_eq!(c.since(&later).in_datagrams, 0);
    }

    #[test]
    fn sees_a_loopback_datagram() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = UdpCounters::sample().expect("/proc/net/snmp is readable on Linux");
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 4];
        rx.recv(&mut buf).unwrap();
        let after = UdpCounters::sample().unwrap();
        assert!(after.since(&before).in_datagrams >= 1);
        assert!(parse_snmp("garbage").is_none());
    }
}
