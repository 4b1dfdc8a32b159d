//! Preallocated UDP send slots. Each in-flight UDP sendmsg owns one slot: its
//! `msghdr`, its iovecs (header + payload segments), the destination address
//! and a small buffer for the RTP header or an RTCP packet. The pool is
//! allocated once per shard, so sending a packet never allocates.

use std::net::SocketAddr;

use cadence_hinting::{FileSchedule, Segment, TrackSchedule, MAX_SEGMENTS_PER_PACKET};

use super::net::to_sockaddr;

/// Iovecs per slot: one header plus the payload segments.
pub const SLOT_IOVS: usize = 1 + MAX_SEGMENTS_PER_PACKET;
/// Bytes of the per-slot buffer (RTP header or RTCP compound packet).
pub const SLOT_BUF: usize = 128;

/// One slot. `repr(C)` and boxed in a fixed array: the kernel reads these
/// addresses until the completion arrives.
#[repr(C)]
pub struct SendSlot {
    /// The message header handed to the kernel.
    pub msg: libc::msghdr,
    /// Header iovec then payload iovecs.
    pub iov: [libc::iovec; SLOT_IOVS],
    /// Destination address.
    pub addr: libc::sockaddr_in6,
    /// Header / RTCP bytes.
    pub buf: [u8; SLOT_BUF],
}

/// A fixed pool of [`SendSlot`]s with a free list.
pub struct SlotPool {
    slots: Box<[SendSlot]>,
    free: Vec<u32>,
    v6_socket: bool,
}

/// Appends iovecs for `segments` to `iov` starting at `at`; returns the new
/// count, or `None` when a segment lies outside its buffer (never for a
/// compiled schedule) or `iov` is too short.
pub fn segment_iovecs(
    file: &FileSchedule,
    track: &TrackSchedule,
    segments: &[Segment],
    iov: &mut [libc::iovec],
    mut at: usize,
) -> Option<usize> {
    for seg in segments {
        let bytes = file.segment_bytes(track, seg)?;
        let slot = iov.get_mut(at)?;
        slot.iov_base = bytes.as_ptr() as *mut libc::c_void;
        slot.iov_len = bytes.len();
        at += 1;
    }
    Some(at)
}

impl SlotPool {
    /// A pool of `n` slots (at most 2^24) for a socket of the given family.
    pub fn new(n: usize, v6_socket: bool) -> Self {
        let n = n.min(1 << 24);
        let slots: Vec<SendSlot> = (0..n)
            .map(|_| SendSlot {
                // SAFETY: all-zero msghdr/iovec/sockaddr are valid values.
                msg: unsafe { std::mem::zeroed() },
                iov: unsafe { std::mem::zeroed() },
                addr: unsafe { std::mem::zeroed() },
                buf: [0; SLOT_BUF],
            })
            .collect();
        SlotPool {
            slots: slots.into_boxed_slice(),
            free: (0..n as u32).rev().collect(),
            v6_socket,
        }
    }

    /// Slots currently in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Takes a free slot, fills it for `dest` with `header` followed by the
    /// iovecs `payload` fills (via the closure), and returns its index and a
    /// pointer to its msghdr for the SENDMSG. `None` when no slot is free or
    /// the payload does not fit.
    pub fn fill(
        &mut self,
        dest: SocketAddr,
        header: &[u8],
        payload: impl FnOnce(&mut [libc::iovec]) -> Option<usize>,
    ) -> Option<(u32, *const libc::msghdr)> {
        let index = *self.free.last()?;
        let slot = &mut self.slots[index as usize];
        let n = header.len().min(SLOT_BUF);
        slot.buf[..n].copy_from_slice(&header[..n]);
        slot.iov[0] = libc::iovec {
            iov_base: slot.buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: n,
        };
        let count = payload(&mut slot.iov[1..])? + 1;
        let (addr, addr_len) = to_sockaddr(dest, self.v6_socket);
        slot.addr = addr;
        slot.msg.msg_name = &mut slot.addr as *mut _ as *mut libc::c_void;
        slot.msg.msg_namelen = addr_len;
        slot.msg.msg_iov = slot.iov.as_mut_ptr();
        slot.msg.msg_iovlen = count;
        slot.msg.msg_control = std::ptr::null_mut();
        slot.msg.msg_controllen = 0;
        slot.msg.msg_flags = 0;
        self.free.pop();
        Some((index, &slot.msg as *const libc::msghdr))
    }

    /// Returns slot `index` to the pool after its completion.
    pub fn release(&mut self, index: u32) {
        // Each slot completes exactly once per submission, so no double free.
        if (index as usize) < self.slots.len() && self.free.len() < self.slots.len() {
            self.free.push(index);
        }
    }
}
