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
    /// Packets every CPU dropped because its input backlog was full
    /// (/proc/net/softnet_stat, second column; net.core.netdev_max_backlog).
    /// On loopback every datagram passes through this backlog, so a burst
    /// larger than it is lost before reaching any socket.
    pub backlog_dropped: u64,
}

impl UdpCounters {
    /// Reads the counters now; `None` when /proc/net/snmp is unreadable.
    pub fn sample() -> Option<Self> {
        let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
        let mut c = parse_snmp(&snmp)?;
        if let Ok(snmp6) = std::fs::read_to_string("/proc/net/snmp6") {
            c.add(&parse_snmp6(&snmp6));
        }
        if let Ok(softnet) = std::fs::read_to_string("/proc/net/softnet_stat") {
            c.backlog_dropped = parse_softnet_dropped(&softnet);
        }
        Some(c)
    }

    fn add(&mut self, o: &Self) {
        self.in_datagrams += o.in_datagrams;
        self.rcvbuf_errors += o.rcvbuf_errors;
        self.in_errors += o.in_errors;
        self.no_ports += o.no_ports;
        self.in_csum_errors += o.in_csum_errors;
        self.backlog_dropped += o.backlog_dropped;
    }

    /// `self − before`, counter by counter (0 if a counter went backwards).
    pub fn since(&self, before: &Self) -> Self {
        Self {
            in_datagrams: self.in_datagrams.saturating_sub(before.in_datagrams),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(before.rcvbuf_errors),
            in_errors: self.in_errors.saturating_sub(before.in_errors),
            no_ports: self.no_ports.saturating_sub(before.no_ports),
            in_csum_errors: self.in_csum_errors.saturating_sub(before.in_csum_errors),
            backlog_dropped: self.backlog_dropped.saturating_sub(before.backlog_dropped),
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
        backlog_dropped: 0,
    })
}

/// Sums the `dropped` column (the second, hexadecimal) of
/// /proc/net/softnet_stat over CPUs.
pub fn parse_softnet_dropped(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|v| u64::from_str_radix(v, 16).ok())
        .sum()
}

/// Packets the kernel dropped at the sockets whose inodes are `inodes`
/// (the `drops` column of /proc/net/udp and /proc/net/udp6: receive buffer
/// full, or other drops charged to that socket). Sockets not found count 0.
pub fn socket_drops(inodes: &[u64]) -> u64 {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|text| parse_socket_drops(&text, inodes))
        .sum()
}

/// Sums the `drops` column (the last) of the /proc/net/udp lines whose
/// `inode` column (the tenth) is in `inodes`.
pub fn parse_socket_drops(text: &str, inodes: &[u64]) -> u64 {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let inode: u64 = fields.get(9)?.parse().ok()?;
            let drops: u64 = fields.last()?.parse().ok()?;
            inodes.contains(&inode).then_some(drops)
        })
        .sum()
}

/// The inode number of the socket `fd` (as /proc/net/udp lists it).
pub fn socket_inode(fd: std::os::fd::RawFd) -> Option<u64> {
    // SAFETY: zeroed stat is valid; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some(st.st_ino)
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
        backlog_dropped: 0,
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
                in_csum_errors: 1,
                backlog_dropped: 0,
            }
        );
        let six = parse_snmp6(
            "Udp6InDatagrams                 \t12\nUdp6RcvbufErrors 2\nIp6InReceives 9\n",
        );
        assert_eq!(six.in_datagrams, 12);
        assert_eq!(six.rcvbuf_errors, 2);
        let softnet = "0001e240 0000000a 00000000 00000000\n00000010 00000005 00000001 00000000\n";
        assert_eq!(parse_softnet_dropped(softnet), 15);
        let later = UdpCounters {
            in_datagrams: 1500,
            ..c
        };
        assert_eq!(later.since(&c).in_datagrams, 500);
        assert_eq!(c.since(&later).in_datagrams, 0);
    }

    #[test]
    fn drops_of_own_sockets() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  995: 0100007F:4E02 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 212885 2 00000000ab3df53a 0\n\
  996: 0100007F:4E03 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 212886 2 00000000661fe890 15071\n";
        assert_eq!(parse_socket_drops(text, &[212886]), 15071);
        assert_eq!(parse_socket_drops(text, &[212885, 1]), 0);

        // A real socket that overflows: 1 KiB receive buffer, 50 datagrams.
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        crate::net::udp::set_rcvbuf(std::os::fd::AsRawFd::as_raw_fd(&rx), 1024).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..50 {
            tx.send_to(&[0u8; 1000], rx.local_addr().unwrap()).unwrap();
        }
        let inode = socket_inode(std::os::fd::AsRawFd::as_raw_fd(&rx)).unwrap();
        // Loopback delivers through the per-CPU backlog in a softirq, which
        // may run after send_to returns (late when other tests load the
        // CPUs): wait for the drops to be charged, up to 5 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut drops = socket_drops(&[inode]);
        while drops == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            drops = socket_drops(&[inode]);
        }
        assert!(drops > 0, "no drops charged to a full 1 KiB socket");
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
