//! Non-blocking TCP connections for RTSP control (and interleaved media).

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use super::timestamp;

/// Starts a non-blocking connect to `addr`. Returns the socket and whether the
/// connection is already established; otherwise wait for writability and call
/// [`connect_result`]. The socket has TCP_NODELAY and kernel receive
/// timestamps enabled.
pub fn start_connect(addr: SocketAddr) -> io::Result<(TcpStream, bool)> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own; TcpStream closes it on drop.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    stream.set_nodelay(true)?;
    timestamp::enable(fd)?;
    let (storage, len) = sockaddr(addr);
    // SAFETY: storage holds a valid sockaddr of `len` bytes.
    let r = unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) };
    if r == 0 {
        return Ok((stream, true));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok((stream, false))
    } else {
        Err(e)
    }
}

/// The outcome of a non-blocking connect once the socket became writable
/// (SO_ERROR).
pub fn connect_result(stream: &TcpStream) -> io::Result<()> {
    match stream.take_error()? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Reads into `buf` and returns the byte count (0 at end of stream) and the
/// kernel receive timestamp of the last segment read (ns since the epoch),
/// when the kernel gave one.
pub fn recv_timestamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; timestamp::CMSG_SPACE / 8];
    // SAFETY: zeroed msghdr is valid; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = timestamp::CMSG_SPACE as _;
    // SAFETY: msg points at valid buffers for the duration of the call.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled msg's control buffer.
    let ts = unsafe { timestamp::from_msghdr(&msg) };
    Ok((n as usize, ts))
}

/// The raw fd of a stream.
pub fn fd(stream: &TcpStream) -> RawFd {
    stream.as_raw_fd()
}

/// Converts `addr` to a sockaddr_storage and its length.
pub fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    #[test]
    fn connect_and_receive_with_timestamp() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (stream, _connected) = start_connect(addr).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        // Wait until the connect completed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while stream.peer_addr().is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        connect_result(&stream).unwrap();
        // Enabling timestamps turns on a kernel static key asynchronously;
        // give it a moment, as a real session's handshake does.
        std::thread::sleep(Duration::from_millis(50));
        server.write_all(b"hello").unwrap();
        let before = timestamp::realtime_ns();
        let mut buf = [0u8; 16];
        let mut got = None;
        while Instant::now() < deadline {
            match recv_timestamped(fd(&stream), &mut buf) {
                Ok(r) => {
                    got = Some(r);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("recv failed: {e}"),
            }
        }
        let (n, ts) = got.expect("no data within 5 s");
        assert_eq!(&buf[..n], b"hello");
        let ts = ts.expect("kernel gave no timestamp");
        // The timestamp is on the same clock, within a few seconds of now.
        assert!(ts.abs_diff(before) < 5_000_000_000);
        drop(stream);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
    }

    #[test]
    fn refused_connect_reports_error() {
        // Bind then drop to get a port that is (very likely) closed.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        match start_connect(addr) {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            Ok((stream, _)) => {
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    match connect_result(&stream) {
                        Err(e) => {
                            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
                            break;
                        }
                        Ok(()) if Instant::now() > deadline => {
                            panic!("connect to a closed port did not fail")
                        }
                        Ok(()) => std::thread::sleep(Duration::from_millis(1)),
                    }
                }
            }
        }
    }
}
