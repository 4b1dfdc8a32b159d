//! PROXY protocol receiver, versions 1 (text) and 2 (binary), sans-IO
//! (HAProxy's `doc/proxy-protocol.txt`, §2.1 and §2.2).
//!
//! A TCP load balancer (HAProxy `send-proxy` / `send-proxy-v2`) writes one
//! header at the start of each connection giving the client's real source
//! and destination addresses. [`parse`] reads it incrementally from the
//! connection's first bytes: `Ok(None)` until the header is complete,
//! `Ok(Some((header, consumed)))` once it is, an error as soon as the bytes
//! cannot be a header. Each call costs O(16) for version 2 until the header
//! is complete and O(107) at most for version 1, so calling it after every
//! receive is fine. The caller decides whether to expect a header at all:
//! only connections whose peer is in [`TrustedProxies`] may carry one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// The 12-byte version 2 signature (§2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest version 1 line, CRLF included (§2.1: 107 bytes).
pub const V1_MAX_LEN: usize = 107;
/// Default limit on a whole version 2 header (16 fixed bytes + addresses +
/// TLVs), bytes. The spec says a header always fits in one MSS.
pub const DEFAULT_MAX_V2_LEN: usize = 1536;

/// Protocol version of a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Text line `PROXY TCP4 …\r\n`.
    V1,
    /// Binary header with the `\r\n\r\n\0\r\nQUIT\n` signature.
    V2,
}

/// Transport of the proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP (v1 `TCP4`/`TCP6`, v2 `STREAM`).
    Stream,
    /// UDP (v2 `DGRAM`).
    Datagram,
}

/// The proxied connection's endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxiedAddrs {
    /// The client (source address and port).
    pub source: SocketAddr,
    /// The address the client connected to (the proxy's frontend).
    pub destination: SocketAddr,
    /// TCP or UDP.
    pub transport: Transport,
}

/// A parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    /// Which version was on the wire.
    pub version: Version,
    /// The real endpoints, or `None` when the connection's own endpoints are
    /// to be used: v2 `LOCAL` (health checks), v1 `UNKNOWN`, v2 `AF_UNSPEC`
    /// or `AF_UNIX`.
    pub addrs: Option<ProxiedAddrs>,
}

impl ProxyHeader {
    /// The client address to use: the header's source, or `peer` (the
    /// socket's peer) when the header carries none.
    pub fn client_addr(&self, peer: SocketAddr) -> SocketAddr {
        self.addrs.map_or(peer, |a| a.source)
    }
}

/// Why bytes are not an acceptable PROXY header. The connection is to be
/// closed (§2: "must be discarded and cause the receiver to abort").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Neither `PROXY ` nor the version 2 signature.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// Version 1 line without CRLF in its first 107 bytes.
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    /// Version 1 line that does not match the grammar (protocol, address
    /// syntax or family, port syntax, spacing, bare CR or LF).
    #[error("malformed PROXY v1 line")]
    V1Malformed,
    /// Version nibble other than 2.
    #[error("PROXY v2 version {0} unsupported")]
    V2Version(u8),
    /// Command other than LOCAL (0) and PROXY (1).
    #[error("PROXY v2 command {0} unassigned")]
    V2Command(u8),
    /// Address family or transport nibble unassigned.
    #[error("PROXY v2 family/transport byte {0:#04x} unassigned")]
    V2Family(u8),
    /// Length field too short for the announced address family.
    #[error("PROXY v2 length {len} too short for its addresses ({needed} bytes)")]
    V2Short {
        /// Announced address block length, bytes.
        len: usize,
        /// Bytes the family needs.
        needed: usize,
    },
    /// Whole header larger than the configured limit.
    #[error("PROXY v2 header of {len} bytes, more than the limit of {limit}")]
    V2TooLarge {
        /// Total header length (16 + length field), bytes.
        len: usize,
        /// The limit, bytes.
        limit: usize,
    },
}

/// Parses a PROXY header at the start of `buf` with the default version 2
/// size limit ([`DEFAULT_MAX_V2_LEN`]). See [`parse_with_limit`].
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    parse_with_limit(buf, DEFAULT_MAX_V2_LEN)
}

/// Parses a PROXY header at the start of `buf`: `Ok(None)` while `buf` is a
/// prefix of a possible header, `Ok(Some((header, consumed)))` when complete
/// (the connection's own data starts at `consumed`), an error as soon as
/// `buf` cannot start a valid header. Version 2 headers longer than
/// `max_v2_len` bytes are rejected from their fixed 16 bytes on.
pub fn parse_with_limit(
    buf: &[u8],
    max_v2_len: usize,
) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == V2_SIGNATURE[0] {
        return parse_v2(buf, max_v2_len);
    }
    parse_v1(buf)
}

const V1_PREFIX: &[u8] = b"PROXY ";

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(ProxyError::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    // The line ends at the first CR, which must be followed by LF; a LF
    // alone is not a line end.
    match memchr::memchr2(b'\r', b'\n', window) {
        None if window.len() >= V1_MAX_LEN => Err(ProxyError::V1TooLong),
        None => Ok(None),
        Some(i) if window[i] == b'\n' => Err(ProxyError::V1Malformed),
        Some(i) if i + 1 == window.len() => {
            if i + 1 >= V1_MAX_LEN {
                Err(ProxyError::V1TooLong)
            } else {
                Ok(None)
            }
        }
        Some(i) if window[i + 1] != b'\n' => Err(ProxyError::V1Malformed),
        Some(i) => {
            let header = parse_v1_line(&window[V1_PREFIX.len()..i])?;
            Ok(Some((header, i + 2)))
        }
    }
}

/// Parses what follows `PROXY ` up to (not including) the CRLF.
fn parse_v1_line(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::V1Malformed)?;
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        // §2.1: the receiver must ignore anything before the CRLF.
        return Ok(ProxyHeader {
            version: Version::V1,
            addrs: None,
        });
    }
    let mut fields = line.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::V1Malformed);
    };
    let (src, dst): (IpAddr, IpAddr) = match proto {
        "TCP4" => (IpAddr::V4(v1_ipv4(src)?), IpAddr::V4(v1_ipv4(dst)?)),
        "TCP6" => (IpAddr::V6(v1_ipv6(src)?), IpAddr::V6(v1_ipv6(dst)?)),
        _ => return Err(ProxyError::V1Malformed),
    };
    Ok(ProxyHeader {
        version: Version::V1,
        addrs: Some(ProxiedAddrs {
            source: SocketAddr::new(src, v1_port(sport)?),
            destination: SocketAddr::new(dst, v1_port(dport)?),
            transport: Transport::Stream,
        }),
    })
}

/// Dotted quad, no heading zeroes (std's parser rejects them too).
fn v1_ipv4(s: &str) -> Result<Ipv4Addr, ProxyError> {
    let ok = s.split('.').all(|o| o == "0" || !o.starts_with('0'));
    if !ok {
        return Err(ProxyError::V1Malformed);
    }
    s.parse().map_err(|_| ProxyError::V1Malformed)
}

/// Hexadecimal groups with at most one `::` (no embedded dotted quad).
fn v1_ipv6(s: &str) -> Result<Ipv6Addr, ProxyError> {
    if !s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
        return Err(ProxyError::V1Malformed);
    }
    s.parse().map_err(|_| ProxyError::V1Malformed)
}

/// Decimal 0..=65535 without heading zeroes.
fn v1_port(s: &str) -> Result<u16, ProxyError> {
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return Err(ProxyError::V1Malformed);
    }
    s.parse().map_err(|_| ProxyError::V1Malformed)
}

fn parse_v2(buf: &[u8], max_len: usize) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(ProxyError::NotProxy);
    }
    if let Some(&ver_cmd) = buf.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(ProxyError::V2Version(ver_cmd >> 4));
        }
        if ver_cmd & 0x0f > 1 {
            return Err(ProxyError::V2Command(ver_cmd & 0x0f));
        }
    }
    if let Some(&fam) = buf.get(13) {
        if fam >> 4 > 3 || fam & 0x0f > 2 {
            return Err(ProxyError::V2Family(fam));
        }
    }
    if buf.len() < 16 {
        return Ok(None);
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let total = 16 + len;
    if total > max_len {
        return Err(ProxyError::V2TooLarge {
            len: total,
            limit: max_len,
        });
    }
    let local = ver_cmd & 0x0f == 0;
    let needed = match fam >> 4 {
        1 => 12,
        2 => 36,
        3 => 216,
        _ => 0,
    };
    if !local && len < needed {
        return Err(ProxyError::V2Short { len, needed });
    }
    if buf.len() < total {
        return Ok(None);
    }
    let transport = match fam & 0x0f {
        1 => Some(Transport::Stream),
        2 => Some(Transport::Datagram),
        _ => None,
    };
    let a = &buf[16..total];
    let addrs = match (local, fam >> 4, transport) {
        (false, 1, Some(transport)) => {
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some(ProxiedAddrs {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
                transport,
            })
        }
        (false, 2, Some(transport)) => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Some(ProxiedAddrs {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
                transport,
            })
        }
        // LOCAL, AF_UNSPEC, AF_UNIX, or UNSPEC transport: use the real
        // endpoints (§2.2). TLVs after the addresses are skipped.
        _ => None,
    };
    Ok(Some((
        ProxyHeader {
            version: Version::V2,
            addrs,
        },
        total,
    )))
}

/// The proxies whose connections must start with a PROXY header (CIDR
/// blocks). Peers outside the list must not send one: their bytes are RTSP.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// A list of CIDR blocks (`10.0.0.0/8`, `::1/128`) or single addresses
    /// (`192.0.2.7`, taken as /32 or /128). Errors name the entry that does
    /// not parse.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut nets = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.as_ref().trim();
            let net = match e.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => match e.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(format!("not an address or CIDR block: {e:?}")),
                },
            };
            nets.push(net);
        }
        Ok(Self { nets })
    }

    /// No trusted proxy: no connection may carry a header.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `peer` is a trusted proxy. IPv4-mapped IPv6 peers
    /// (`::ffff:a.b.c.d`, from a dual-stack socket) match IPv4 blocks.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&peer))
    }
}

#[cfg(test)]
mod tests;
