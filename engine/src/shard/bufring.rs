//! A provided-buffer ring (io_uring `IORING_REGISTER_PBUF_RING`): one pool of
//! receive buffers per shard that every RTSP connection's multishot RECV draws
//! from. An idle connection then holds no receive memory at all, which keeps
//! the engine's memory per session small (see `results/`).

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::IoUring;

/// A registered buffer ring with its buffers.
pub struct BufRing {
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    entries: u16,
    buffers: Vec<u8>,
    buf_len: usize,
    group: u16,
    tail: u16,
}

impl BufRing {
    /// Allocates `entries` (a power of two ≤ 32768) buffers of `buf_len`
    /// bytes and registers them with `ring` as buffer group `group`.
    /// Errors: mmap or registration failures (kernels before 5.19).
    pub fn new(ring: &IoUring, entries: u16, buf_len: usize, group: u16) -> io::Result<BufRing> {
        if !entries.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "entries must be a power of two",
            ));
        }
        let ring_bytes = entries as usize * std::mem::size_of::<BufRingEntry>();
        // SAFETY: anonymous private mapping; checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut br = BufRing {
            ring: ptr as *mut BufRingEntry,
            ring_bytes,
            entries,
            buffers: vec![0u8; entries as usize * buf_len],
            buf_len,
            group,
            tail: 0,
        };
        // SAFETY: the ring memory is page-aligned, `entries` long, and lives
        // until `Drop` (after the io_uring, which the shard drops first).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ptr as u64, entries, group, 0)?
        };
        for bid in 0..entries {
            br.push(bid);
        }
        br.publish();
        Ok(br)
    }

    /// The buffer group ID for RECV operations.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// The first `len` bytes of buffer `bid` (as filled by a completion).
    pub fn data(&self, bid: u16, len: usize) -> &[u8] {
        let start = (bid as usize % self.entries as usize) * self.buf_len;
        &self.buffers[start..start + len.min(self.buf_len)]
    }

    fn push(&mut self, bid: u16) {
        let mask = self.entries - 1;
        let index = (self.tail & mask) as usize;
        let addr = self.buffers.as_ptr() as u64 + (bid as usize * self.buf_len) as u64;
        // SAFETY: index < entries, inside the mapping.
        let entry = unsafe { &mut *self.ring.add(index) };
        entry.set_addr(addr);
        entry.set_len(self.buf_len as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail is the u16 at byte offset 14 of the ring (it
        // overlays `resv` of entry 0); the kernel reads it with acquire.
        unsafe {
            let tail = (self.ring as *mut u8).add(14) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    /// Returns buffer `bid` to the kernel after its data was consumed.
    pub fn recycle(&mut self, bid: u16) {
        if bid < self.entries {
            self.push(bid);
            self.publish();
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.ring as *mut libc::c_void, self.ring_bytes) };
    }
}
