//! Shared UDP receive sockets: RTP/RTCP port pairs on consecutive ports, read
//! in batches with recvmmsg(2), each packet with its kernel receive timestamp.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use super::timestamp;

/// An RTP socket on an even port and its RTCP socket on the next port
/// (RFC 3550 §11), both non-blocking with kernel timestamps.
#[derive(Debug)]
pub struct UdpPair {
    /// RTP socket.
    pub rtp: UdpSocket,
    /// RTCP socket.
    pub rtcp: UdpSocket,
    /// Local RTP port (RTCP is `rtp_port + 1`).
    pub rtp_port: u16,
    /// Receive buffer the kernel granted each socket, bytes.
    pub rcvbuf: usize,
}

impl UdpPair {
    /// Binds a pair on `ip`, asking for `rcvbuf` bytes of receive buffer per
    /// socket (SO_RCVBUFFORCE, which needs CAP_NET_ADMIN, else SO_RCVBUF,
    /// which the kernel caps at net.core.rmem_max).
    pub fn bind(ip: IpAddr, rcvbuf: usize) -> io::Result<Self> {
        let mut last_err = None;
        for _ in 0..200 {
            let first = UdpSocket::bind(SocketAddr::new(ip, 0))?;
            let port = first.local_addr()?.port();
            // Pair the kernel's port with its even or odd neighbour.
            let (rtp_port, other_port) = if port % 2 == 0 {
                (port, port.checked_add(1))
            } else {
                (port - 1, Some(port - 1))
            };
            let Some(other_port) = other_port else {
                continue;
            };
            match UdpSocket::bind(SocketAddr::new(ip, other_port)) {
                Ok(other) => {
                    let (rtp, rtcp) = if port % 2 == 0 {
                        (first, other)
                    } else {
                        (other, first)
                    };
                    let mut granted = usize::MAX;
                    for s in [&rtp, &rtcp] {
                        s.set_nonblocking(true)?;
                        timestamp::enable(s.as_raw_fd())?;
                        granted = granted.min(set_rcvbuf(s.as_raw_fd(), rcvbuf)?);
                    }
                    return Ok(Self {
                        rtp,
                        rtcp,
                        rtp_port,
                        rcvbuf: granted,
                    });
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no free consecutive UDP port pair")))
    }
}

/// Sets the receive buffer of `fd` to `bytes` (SO_RCVBUFFORCE, else SO_RCVBUF)
/// and returns what the kernel granted (getsockopt reports twice the usable
/// size; the returned value is the usable half).
pub fn set_rcvbuf(fd: RawFd, bytes: usize) -> io::Result<usize> {
    let want = bytes.min(i32::MAX as usize / 2) as libc::c_int;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid int option pointer and length.
    let forced = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&want as *const libc::c_int).cast(),
            len,
        )
    };
    if forced < 0 {
        // SAFETY: as above.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&want as *const libc::c_int).cast(),
                len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let mut got: libc::c_int = 0;
    let mut got_len = len;
    // SAFETY: valid out pointers.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut got_len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((got.max(0) as usize) / 2)
}

/// Bytes kept of each RTP datagram: the fixed header, 15 CSRCs and the start
/// of a header extension. The rest is never copied to user space; recvmmsg
/// still reports each datagram's full length (MSG_TRUNC).
pub const RTP_HEAD: usize = 128;
/// Bytes kept of each RTCP datagram (a compound SR/SDES/BYE fits).
pub const RTCP_SLOT: usize = 2048;
/// Datagrams per recvmmsg call.
pub const BATCH: usize = 64;

/// One datagram of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// The first bytes of the datagram (at most the batch's slot size).
    pub data: &'a [u8],
    /// Full length of the datagram, bytes.
    pub len: usize,
    /// Kernel receive timestamp, ns since the epoch (None if the kernel gave
    /// none).
    pub timestamp_ns: Option<u64>,
    /// Source UDP port.
    pub source_port: u16,
}

impl Datagram<'_> {
    /// True when only part of the datagram was copied.
    pub fn truncated(&self) -> bool {
        self.len > self.data.len()
    }
}

/// Reusable buffers for recvmmsg: [`BATCH`] slots of `slot` bytes with their
/// source addresses and control messages. Not `Send` (it holds raw pointers
/// into its own heap buffers); create it on the thread that uses it.
pub struct RecvBatch {
    slot: usize,
    bufs: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    controls: Box<[[u64; timestamp::CMSG_SPACE / 8]]>,
    hdrs: Box<[libc::mmsghdr]>,
    filled: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slot", &self.slot)
            .field("filled", &self.filled)
            .finish()
    }
}

impl RecvBatch {
    /// Allocates the buffers: [`BATCH`] slots that keep the first `slot`
    /// bytes of each datagram.
    pub fn new(slot: usize) -> Self {
        let slot = slot.max(1);
        let mut bufs = vec![0u8; slot * BATCH].into_boxed_slice();
        let mut iovs: Box<[libc::iovec]> = bufs
            .chunks_mut(slot)
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: slot,
            })
            .collect();
        // SAFETY: all-zero sockaddr_storage and mmsghdr are valid values.
        let mut names: Box<[libc::sockaddr_storage]> =
            (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        let mut controls = vec![[0u64; timestamp::CMSG_SPACE / 8]; BATCH].into_boxed_slice();
        let hdrs: Box<[libc::mmsghdr]> = (0..BATCH)
            .map(|i| {
                // SAFETY: see above.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = &mut iovs[i];
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                h.msg_hdr.msg_control = controls[i].as_mut_ptr().cast();
                h
            })
            .collect();
        Self {
            slot,
            bufs,
            iovs,
            names,
            controls,
            hdrs,
            filled: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams from `fd` without blocking. Returns
    /// how many arrived (0 when none was waiting).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for h in self.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_controllen = timestamp::CMSG_SPACE as _;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // The pointers in hdrs point into bufs/iovs/names/controls, which are
        // heap allocations owned by self and never reallocated.
        let _ = (&self.bufs, &self.iovs, &self.names, &self.controls);
        // SAFETY: hdrs describes BATCH valid, writable message buffers.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.filled = 0;
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        self.filled = n as usize;
        Ok(self.filled)
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] (`i` below its result).
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        if i >= self.filled {
            return None;
        }
        let h = &self.hdrs[i];
        let len = h.msg_len as usize;
        let start = i * self.slot;
        // SAFETY: the kernel filled this header's control buffer.
        let timestamp_ns = unsafe { timestamp::from_msghdr(&h.msg_hdr) };
        Some(Datagram {
            data: &self.bufs[start..start + len.min(self.slot)],
            len,
            timestamp_ns,
            source_port: source_port(&self.names[i]),
        })
    }
}

fn source_port(name: &libc::sockaddr_storage) -> u16 {
    match i32::from(name.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(name as *const libc::sockaddr_storage).cast() };
            u16::from_be(sin.sin_port)
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast() };
            u16::from_be(sin6.sin6_port)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    #[test]
    fn pair_is_consecutive_and_batch_receives_with_timestamps() {
        let pair = UdpPair::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), 1 << 20).unwrap();
        assert_eq!(pair.rtp_port % 2, 0);
        assert_eq!(pair.rtcp.local_addr().unwrap().port(), pair.rtp_port + 1);
        assert!(pair.rcvbuf > 0);

        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let from = sender.local_addr().unwrap().port();
        for i in 0..10u8 {
            sender
                .send_to(&[i; 100], ("127.0.0.1", pair.rtp_port))
                .unwrap();
        }
        sender
            .send_to(&vec![7u8; 1500], ("127.0.0.1", pair.rtp_port))
            .unwrap();
        let mut batch = RecvBatch::new(RTP_HEAD);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 11 && Instant::now() < deadline {
            let n = batch.recv(pair.rtp.as_raw_fd()).unwrap();
            for i in 0..n {
                let d = batch.get(i).unwrap();
                assert!(d.timestamp_ns.is_some());
                assert_eq!(d.source_port, from);
                got.push((d.data.to_vec(), d.len, d.truncated()));
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(got.len(), 11);
        for (i, (data, len, truncated)) in got.iter().take(10).enumerate() {
            assert_eq!(data.as_slice(), &[i as u8; 100]);
            assert_eq!(*len, 100);
            assert!(!truncated);
        }
        // Only the head of a long datagram is copied; its full length is known.
        let (data, len, truncated) = &got[10];
        assert_eq!(data.len(), RTP_HEAD);
        assert_eq!(*len, 1500);
        assert!(truncated);
        assert_eq!(batch.recv(pair.rtp.as_raw_fd()).unwrap(), 0);
    }
}
