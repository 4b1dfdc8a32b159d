//! Socket setup for a shard: the RTSP listener (SO_REUSEPORT, so every shard
//! accepts on the same port and the kernel spreads connections) and the UDP
//! RTP/RTCP socket pair (consecutive ports, RTP even).

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Converts `addr` into a `sockaddr_in`/`sockaddr_in6` for a socket of the
/// given family (`v6_socket`: an IPv4 address becomes v4-mapped). Returns the
/// storage and the length to pass to the kernel.
pub fn to_sockaddr(addr: SocketAddr, v6_socket: bool) -> (libc::sockaddr_in6, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_in6 is a valid value.
    let mut out: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    match (addr, v6_socket) {
        (SocketAddr::V4(a), false) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in (16 bytes) fits in sockaddr_in6 (28 bytes).
            unsafe {
                std::ptr::write(&mut out as *mut _ as *mut libc::sockaddr_in, sin);
            }
            (
                out,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        (a, _) => {
            let v6 = match a {
                SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
                SocketAddr::V6(v6) => *v6.ip(),
            };
            out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            out.sin6_port = a.port().to_be();
            out.sin6_addr = libc::in6_addr {
                s6_addr: v6.octets(),
            };
            (
                out,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

/// Reads a `sockaddr_storage`-like buffer written by the kernel.
pub fn from_sockaddr(storage: &libc::sockaddr_in6, len: libc::socklen_t) -> Option<SocketAddr> {
    let family = storage.sin6_family as libc::c_int;
    if family == libc::AF_INET && len as usize >= std::mem::size_of::<libc::sockaddr_in>() {
        // SAFETY: the kernel wrote a sockaddr_in at the start of the buffer.
        let sin = unsafe { &*(storage as *const _ as *const libc::sockaddr_in) };
        let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
    } else if family == libc::AF_INET6 {
        let ip = std::net::Ipv6Addr::from(storage.sin6_addr.s6_addr);
        let ip = ip.to_ipv4_mapped().map(Into::into).unwrap_or(ip.into());
        Some(SocketAddr::new(ip, u16::from_be(storage.sin6_port)))
    } else {
        None
    }
}

fn set_int(
    fd: libc::c_int,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: plain setsockopt with a c_int option value.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Checks that no other socket (of any process) is bound to the TCP address
/// `addr`, by binding it without SO_REUSEPORT, and returns the address actually
/// bound (port 0 resolved). Without this, a second server run by the same user
/// would silently join the first one's SO_REUSEPORT group and take a share of
/// its connections. Errors: EADDRINUSE and other bind errors.
pub fn claim_tcp_address(addr: SocketAddr) -> io::Result<SocketAddr> {
    let probe = std::net::TcpListener::bind(addr)?;
    probe.local_addr()
}

/// Binds a TCP listener on `addr` with SO_REUSEADDR and SO_REUSEPORT, backlog
/// 4096. Every shard calls this for the same address (after
/// [`claim_tcp_address`]).
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd is a fresh descriptor we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    let (sa, len) = to_sockaddr(addr, !addr.is_ipv4());
    // SAFETY: sa/len describe a valid address of the socket's family.
    cvt(unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) })?;
    // SAFETY: listen on our bound socket.
    cvt(unsafe { libc::listen(fd, 4096) })?;
    Ok(TcpListener::from(owned))
}

/// The shard's UDP pair: RTP on an even port, RTCP on the next one.
#[derive(Debug)]
pub struct UdpPair {
    /// RTP socket.
    pub rtp: UdpSocket,
    /// RTCP socket.
    pub rtcp: UdpSocket,
}

/// Binds an RTP/RTCP pair on `ip`, trying `preferred` (even) first and then
/// ephemeral pairs. Socket buffers are raised to `buf_bytes` where allowed.
pub fn udp_pair(ip: std::net::IpAddr, preferred: u16, buf_bytes: usize) -> io::Result<UdpPair> {
    let try_pair = |port: u16| -> io::Result<UdpPair> {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
        let p = rtp.local_addr()?.port();
        if p % 2 != 0 || p == u16::MAX {
            return Err(io::Error::new(io::ErrorKind::AddrInUse, "odd RTP port"));
        }
        let rtcp = UdpSocket::bind(SocketAddr::new(ip, p + 1))?;
        Ok(UdpPair { rtp, rtcp })
    };
    let pair = match try_pair(preferred) {
        Ok(p) => p,
        Err(_) => {
            let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free UDP port pair");
            let mut found = None;
            for _ in 0..64 {
                match try_pair(0) {
                    Ok(p) => {
                        found = Some(p);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            found.ok_or(last)?
        }
    };
    for s in [&pair.rtp, &pair.rtcp] {
        let fd = s.as_raw_fd();
        let size = buf_bytes.min(i32::MAX as usize) as libc::c_int;
        // Best effort: SO_*BUFFORCE needs CAP_NET_ADMIN, plain is capped by
        // net.core.{w,r}mem_max (see `cadence check-system`).
        if set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, size).is_err() {
            let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, size);
        }
        if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
            let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, size);
        }
    }
    Ok(pair)
}

/// Kernel send buffer of an RTSP connection, bytes (the kernel doubles it).
/// Fixed rather than autotuned, so that a client that stops reading backs up
/// into the connection's own write queue, where `--tcp-backlog` bounds it,
/// after at most this much; 128 KiB holds several seconds of a 300 kbit/s
/// interleaved stream.
pub const RTSP_SNDBUF: libc::c_int = 128 * 1024;

/// Sets TCP_NODELAY (small responses and interleaved packets should not wait
/// for Nagle) and the fixed send buffer on an accepted RTSP connection.
pub fn tune_accepted(fd: libc::c_int) {
    let _ = set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    let _ = set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, RTSP_SNDBUF);
}

/// Local and peer addresses of a connected socket.
pub fn addresses(fd: libc::c_int) -> Option<(SocketAddr, SocketAddr)> {
    // SAFETY: zeroed sockaddr storage is valid; the kernel fills it.
    let mut local: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut peer: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut ll = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    let mut pl = ll;
    // SAFETY: buffers are large enough for any INET/INET6 address.
    unsafe {
        if libc::getsockname(fd, &mut local as *mut _ as *mut libc::sockaddr, &mut ll) < 0 {
            return None;
        }
        if libc::getpeername(fd, &mut peer as *mut _ as *mut libc::sockaddr, &mut pl) < 0 {
            return None;
        }
    }
    Some((from_sockaddr(&local, ll)?, from_sockaddr(&peer, pl)?))
}
