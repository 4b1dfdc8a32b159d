//! Kernel receive timestamps (SO_TIMESTAMPNS, socket(7)) and the clock they use.

use std::io;
use std::os::fd::RawFd;

/// Space for the control messages of one received packet (bytes, 8-aligned).
pub const CMSG_SPACE: usize = 64;

/// CLOCK_REALTIME now, in ns since the Unix epoch: the clock of kernel receive
/// timestamps.
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Asks the kernel to timestamp every packet received on `fd`.
pub fn enable(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: valid pointer and length for an int option.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The SCM_TIMESTAMPNS value (ns since the epoch) in the control messages of
/// `msg`, if there is one.
///
/// # Safety
/// `msg.msg_control` / `msg_controllen` must describe the control buffer the
/// kernel filled for this message.
pub unsafe fn from_msghdr(msg: &libc::msghdr) -> Option<u64> {
    // SAFETY: per the contract, the control buffer is valid.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: cmsg points into the control buffer (CMSG_* walk it).
        let c = unsafe { &*cmsg };
        if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries a timespec.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast()) };
            return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}
