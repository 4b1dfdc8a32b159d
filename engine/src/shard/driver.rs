//! The ring driver: one io_uring per shard, with the operations the shard
//! keeps armed (multishot accept, multishot receives from the provided
//! buffer ring, RTCP receives, the wake-up eventfd READ), the completion
//! reaping, the wait for the next deadline, and the [`PacketSink`] that turns
//! paced packets into SENDMSG operations.

use std::time::Instant;

use io_uring::{opcode, squeue, types, IoUring};

use super::bufring::BufRing;
use super::conn::WriteItem;
use super::conns::ConnTable;
use super::ops::Op;
use super::slots::{segment_iovecs, SlotPool};
use crate::pacer::{OutPacket, PacketSink};
use crate::session::{ConnId, TrackTransport};

/// Provided receive buffers per shard, shared by all RTSP connections.
pub const RECV_BUFFERS: u16 = 256;
/// Size of one provided receive buffer, bytes.
pub const RECV_BUFFER_LEN: usize = 4096;
/// RTCP receives kept in flight on the RTCP socket, so that a burst of
/// receiver reports is read in one loop iteration.
pub const RTCP_RECVS: usize = 64;

/// Creates an io_uring, with single-issuer / deferred task running where the
/// kernel supports them.
pub fn new_ring(entries: u32) -> std::io::Result<IoUring> {
    let tuned = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_defer_taskrun()
        .setup_cqsize(entries * 4)
        .build(entries);
    match tuned {
        Ok(r) => Ok(r),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::builder().build(entries),
        Err(e) => Err(e),
    }
}

/// One RTCP receive: its msghdr, iovec, source address and buffer, boxed so
/// the kernel's pointers stay valid.
pub struct RtcpRecv {
    msg: libc::msghdr,
    iov: libc::iovec,
    addr: libc::sockaddr_in6,
    buf: [u8; 1500],
}

impl RtcpRecv {
    fn new() -> Box<RtcpRecv> {
        // SAFETY: zeroed msghdr/iovec/sockaddr are valid; pointers set below,
        // into the box, whose address does not change.
        let mut r = Box::new(RtcpRecv {
            msg: unsafe { std::mem::zeroed() },
            iov: unsafe { std::mem::zeroed() },
            addr: unsafe { std::mem::zeroed() },
            buf: [0; 1500],
        });
        r.iov.iov_base = r.buf.as_mut_ptr() as *mut libc::c_void;
        r.iov.iov_len = r.buf.len();
        r.msg.msg_iov = &mut r.iov;
        r.msg.msg_iovlen = 1;
        r.msg.msg_name = &mut r.addr as *mut _ as *mut libc::c_void;
        r
    }

    /// The first `n` received bytes.
    pub fn data(&self, n: usize) -> &[u8] {
        &self.buf[..n.min(self.buf.len())]
    }
}

/// Upper bounds (µs) of the buckets of [`WaitStats::submit_hist`]; the last
/// bucket counts everything above the last bound.
pub const SUBMIT_BUCKETS_US: [u64; 7] = [50, 100, 250, 500, 1_000, 2_000, 5_000];

/// Default work budget of one submitting `io_uring_enter`, µs
/// (`submit_budget_us`; 0 submits each batch in one call).
pub const DEFAULT_SUBMIT_BUDGET_US: u64 = 500;

/// Time spent in the kernel, for the shard's statistics.
#[derive(Debug, Default, Clone, Copy)]
pub struct WaitStats {
    /// io_uring_enter calls.
    pub enters: u64,
    /// Time inside io_uring_enter (submitting and waiting), µs.
    pub enter_us: u64,
    /// Longest single io_uring_enter, µs.
    pub max_enter_us: u64,
    /// Submitting calls (no wait): each runs the queued sends inline.
    pub submits: u64,
    /// Time inside submitting calls, µs.
    pub submit_us: u64,
    /// Longest single submitting call, µs.
    pub max_submit_us: u64,
    /// Submitting calls by duration: `SUBMIT_BUCKETS_US` bounds, then one
    /// bucket above the last bound.
    pub submit_hist: [u64; SUBMIT_BUCKETS_US.len() + 1],
}

impl WaitStats {
    /// Counts one submitting call of `us` µs.
    pub fn observe_submit(&mut self, us: u64) {
        self.submits += 1;
        self.submit_us += us;
        self.max_submit_us = self.max_submit_us.max(us);
        let i = SUBMIT_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(SUBMIT_BUCKETS_US.len());
        self.submit_hist[i] += 1;
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &WaitStats) {
        self.enters += other.enters;
        self.enter_us += other.enter_us;
        self.max_enter_us = self.max_enter_us.max(other.max_enter_us);
        self.submits += other.submits;
        self.submit_us += other.submit_us;
        self.max_submit_us = self.max_submit_us.max(other.max_submit_us);
        for (a, b) in self.submit_hist.iter_mut().zip(other.submit_hist) {
            *a += b;
        }
    }

    /// The bucket bound (µs) at or below which `q` (0..=1) of the submitting
    /// calls fell; the longest call when that is the open top bucket, 0
    /// without calls.
    pub fn submit_quantile_us(&self, q: f64) -> u64 {
        let total: u64 = self.submit_hist.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.submit_hist.iter().enumerate() {
            seen += n;
            if seen >= want {
                return SUBMIT_BUCKETS_US
                    .get(i)
                    .copied()
                    .unwrap_or(self.max_submit_us);
            }
        }
        self.max_submit_us
    }
}

/// Splits a batch of queued sends into submitting calls of bounded work: the
/// chunk size (entries per call) follows the measured cost per entry so that
/// one call holds about `budget_us` of sends.
#[derive(Debug, Clone, Copy)]
pub struct SubmitChunker {
    /// Work budget of one call, µs (0: unbounded).
    budget_us: u64,
    /// Measured cost of one queued entry, ns (moving average).
    ns_per_entry: u64,
}

impl SubmitChunker {
    /// A chunker with a `budget_us` budget per call (0: unbounded).
    pub fn new(budget_us: u64) -> Self {
        SubmitChunker {
            budget_us,
            // A first guess of 4 µs per UDP SENDMSG; corrected by the first
            // measured calls.
            ns_per_entry: 4_000,
        }
    }

    /// Whether calls are bounded (a budget is set).
    pub fn bounded(&self) -> bool {
        self.budget_us > 0
    }

    /// Entries per submitting call (at least 8), `usize::MAX` when unbounded.
    pub fn chunk(&self) -> usize {
        if self.budget_us == 0 {
            return usize::MAX;
        }
        ((self.budget_us * 1000 / self.ns_per_entry.max(1)) as usize).max(8)
    }

    /// Learns from a call that ran `entries` entries in `ns` nanoseconds.
    pub fn observe(&mut self, entries: usize, ns: u64) {
        if entries < 8 {
            return;
        }
        let per = (ns / entries as u64).clamp(100, 100_000);
        // Moving average with weight 1/4 on the new figure.
        self.ns_per_entry = (self.ns_per_entry * 3 + per) / 4;
    }
}

/// Runs one submitting (non-waiting) `io_uring_enter` of what `ring` holds,
/// timed into `wait` and `chunker`. Returns false when the submit failed.
fn timed_submit(ring: &mut IoUring, wait: &mut WaitStats, chunker: &mut SubmitChunker) -> bool {
    let queued = ring.submission().len();
    let started = Instant::now();
    let ok = ring.submit().is_ok();
    let ns = started.elapsed().as_nanos() as u64;
    wait.observe_submit(ns / 1000);
    wait.enters += 1;
    wait.enter_us += ns / 1000;
    wait.max_enter_us = wait.max_enter_us.max(ns / 1000);
    chunker.observe(queued, ns);
    ok
}

/// The ring and the memory its long-lived operations point into.
pub struct Driver {
    ring: IoUring,
    bufs: BufRing,
    // Boxed: each msghdr points into its own box, which must not move.
    #[allow(clippy::vec_box)]
    rtcp_recv: Vec<Box<RtcpRecv>>,
    cqes: Vec<(u64, i32, u32)>,
    /// Where the wake-up READ puts the eventfd counter (boxed: the kernel
    /// writes it).
    wake_counter: Box<u64>,
    /// Wait statistics since the last [`Driver::take_wait_stats`].
    wait: WaitStats,
    submit_errors: u64,
    chunker: SubmitChunker,
}

impl Driver {
    /// A ring of `entries` submission entries with the provided-buffer ring
    /// for RTSP receives, whose submitting calls hold about `submit_budget_us`
    /// of sends each (0: a whole batch in one call). Errors: io_uring setup or
    /// buffer registration.
    pub fn new(entries: u32, submit_budget_us: u64) -> std::io::Result<Driver> {
        let ring = new_ring(entries)?;
        let bufs = BufRing::new(&ring, RECV_BUFFERS, RECV_BUFFER_LEN, 0)?;
        Ok(Driver {
            ring,
            bufs,
            rtcp_recv: (0..RTCP_RECVS).map(|_| RtcpRecv::new()).collect(),
            cqes: Vec::with_capacity(4096),
            wake_counter: Box::new(0),
            wait: WaitStats::default(),
            submit_errors: 0,
            chunker: SubmitChunker::new(submit_budget_us),
        })
    }

    /// Queues `entry`, submitting first when the submission queue is full.
    pub fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every entry we push points at memory that stays valid
            // until its completion (slots, connection buffers, boxed msghdrs).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if self.ring.submit().is_err() {
                // Counted, not logged per failure; the caller's loop retries.
                self.submit_errors += 1;
            }
        }
    }

    /// Arms the multishot accept on listener `index` (socket `fd`).
    pub fn arm_accept(&mut self, fd: libc::c_int, index: u32) {
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(Op::Accept(index).encode());
        self.push(e);
    }

    /// Arms the READ of the shard's wake-up eventfd `fd`.
    pub fn arm_wake(&mut self, fd: libc::c_int) {
        let buf = &mut *self.wake_counter as *mut u64 as *mut u8;
        let e = opcode::Read::new(types::Fd(fd), buf, 8)
            .build()
            .user_data(Op::Wake.encode());
        self.push(e);
    }

    /// Number of RTCP receive slots.
    pub fn rtcp_slots(&self) -> usize {
        self.rtcp_recv.len()
    }

    /// Arms RTCP receive slot `index` on the RTCP socket `fd`.
    pub fn arm_rtcp_recv(&mut self, fd: libc::c_int, index: usize) {
        let Some(r) = self.rtcp_recv.get_mut(index) else {
            return;
        };
        r.msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        let e = opcode::RecvMsg::new(types::Fd(fd), &mut r.msg)
            .build()
            .user_data(Op::RtcpRecv(index as u32).encode());
        self.push(e);
    }

    /// The bytes RTCP receive slot `index` got.
    pub fn rtcp_data(&self, index: usize, n: usize) -> Option<&[u8]> {
        self.rtcp_recv.get(index).map(|r| r.data(n))
    }

    /// Arms a multishot receive on connection `conn` (socket `fd`), drawing
    /// from the provided buffer ring.
    pub fn arm_recv(&mut self, fd: libc::c_int, conn: ConnId) {
        let e = opcode::RecvMulti::new(types::Fd(fd), self.bufs.group())
            .build()
            .user_data(Op::Recv(conn).encode());
        self.push(e);
    }

    /// Cancels the operation with `user_data`.
    pub fn cancel(&mut self, op: Op) {
        let e = opcode::AsyncCancel::new(op.encode())
            .build()
            .user_data(Op::Cancel.encode());
        self.push(e);
    }

    /// Queues a SENDMSG of `msg` on `fd` for `op`.
    pub fn sendmsg(&mut self, fd: libc::c_int, msg: *const libc::msghdr, flags: u32, op: Op) {
        let e = opcode::SendMsg::new(types::Fd(fd), msg)
            .flags(flags)
            .build()
            .user_data(op.encode());
        self.push(e);
    }

    /// The bytes of provided buffer `bid` (`n` received), to copy out before
    /// [`Driver::recycle`].
    pub fn buffer(&self, bid: u16, n: usize) -> &[u8] {
        self.bufs.data(bid, n)
    }

    /// Returns provided buffer `bid` to the ring.
    pub fn recycle(&mut self, bid: u16) {
        self.bufs.recycle(bid);
    }

    /// Moves every completion out of the ring: `(user_data, result, flags)`.
    pub fn reap(&mut self) -> Vec<(u64, i32, u32)> {
        let mut out = std::mem::take(&mut self.cqes);
        out.clear();
        for cqe in self.ring.completion() {
            out.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
        out
    }

    /// Gives back the vector [`Driver::reap`] returned, to keep its allocation.
    pub fn recycle_cqes(&mut self, v: Vec<(u64, i32, u32)>) {
        self.cqes = v;
    }

    /// Submits everything queued and waits up to `wait_us` for a completion.
    /// With a submit budget, the queued sends first go in one timed,
    /// non-waiting call, so that the submit statistics see them apart from
    /// the sleep; without one, a single call submits and waits, as it costs
    /// one system call less per loop turn. Timeouts and interruptions are
    /// not errors.
    pub fn submit_and_wait(&mut self, wait_us: u64) -> std::io::Result<()> {
        if self.chunker.bounded()
            && !self.ring.submission().is_empty()
            && !timed_submit(&mut self.ring, &mut self.wait, &mut self.chunker)
        {
            self.submit_errors += 1;
        }
        let ts = types::Timespec::new()
            .sec(wait_us / 1_000_000)
            .nsec(((wait_us % 1_000_000) * 1000) as u32);
        let args = types::SubmitArgs::new().timespec(&ts);
        let entered = Instant::now();
        let result = self.ring.submitter().submit_with_args(1, &args);
        let spent = entered.elapsed().as_micros() as u64;
        self.wait.enters += 1;
        self.wait.enter_us += spent;
        self.wait.max_enter_us = self.wait.max_enter_us.max(spent);
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Submits everything queued without waiting.
    pub fn submit(&mut self) {
        if self.ring.submit().is_err() {
            self.submit_errors += 1;
        }
    }

    /// The wait statistics since the last call, and resets them.
    pub fn take_wait_stats(&mut self) -> (WaitStats, u64) {
        (
            std::mem::take(&mut self.wait),
            std::mem::take(&mut self.submit_errors),
        )
    }

    /// A [`PacketSink`] over this ring: UDP packets from `slots` on socket
    /// `rtp_fd`, interleaved ones into `conns`.
    pub fn sink<'a>(
        &'a mut self,
        slots: &'a mut SlotPool,
        conns: &'a mut ConnTable,
        rtp_fd: libc::c_int,
    ) -> UringSink<'a> {
        UringSink {
            ring: &mut self.ring,
            wait: &mut self.wait,
            chunk: self.chunker.chunk(),
            chunker: &mut self.chunker,
            slots,
            conns,
            rtp_fd,
        }
    }
}

/// The production [`PacketSink`]: UDP packets become SENDMSG operations on the
/// shard's RTP socket from preallocated slots; interleaved packets join their
/// connection's write queue.
pub struct UringSink<'a> {
    ring: &'a mut IoUring,
    wait: &'a mut WaitStats,
    chunker: &'a mut SubmitChunker,
    /// Entries queued before a submitting call (the chunk of the budget).
    chunk: usize,
    slots: &'a mut SlotPool,
    conns: &'a mut ConnTable,
    rtp_fd: libc::c_int,
}

impl PacketSink for UringSink<'_> {
    fn emit(&mut self, p: &OutPacket<'_>) -> bool {
        match *p.transport {
            TrackTransport::Udp { rtp, .. } => {
                let segments = p.track.segments_of(p.packet);
                let Some((index, msg)) = self.slots.fill(rtp, p.header, |iov| {
                    segment_iovecs(p.file, p.track, segments, iov, 0)
                }) else {
                    return false;
                };
                let e = opcode::SendMsg::new(types::Fd(self.rtp_fd), msg)
                    .build()
                    .user_data(Op::Slot(index).encode());
                loop {
                    // SAFETY: the slot stays untouched until its completion.
                    if unsafe { self.ring.submission().push(&e) }.is_ok() {
                        // Bounded work per call: a chunk's sends leave now,
                        // while the rest of the tick is still being built.
                        if self.ring.submission().len() >= self.chunk {
                            let _ = timed_submit(self.ring, self.wait, self.chunker);
                            self.chunk = self.chunker.chunk();
                        }
                        return true;
                    }
                    if !timed_submit(self.ring, self.wait, self.chunker) {
                        self.slots.release(index);
                        return false;
                    }
                }
            }
            TrackTransport::Interleaved { conn, .. } => {
                let mut header = [0u8; crate::pacer::header::MAX_HEADER_LEN];
                header[..p.header.len()].copy_from_slice(p.header);
                // A connection that is gone takes nothing; its session ends
                // with it.
                self.conns.enqueue_rtp(
                    conn,
                    WriteItem::Rtp {
                        header,
                        header_len: p.header.len() as u8,
                        file: &**p.file as *const _,
                        track: p.track_index as u32,
                        packet: p.packet_index as u32,
                    },
                    p.file,
                );
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_histogram_quantiles_and_chunk_follow_the_measured_cost() {
        let mut w = WaitStats::default();
        for _ in 0..98 {
            w.observe_submit(40);
        }
        w.observe_submit(700);
        w.observe_submit(9_000);
        assert_eq!(w.submits, 100);
        assert_eq!(w.submit_quantile_us(0.5), 50);
        assert_eq!(w.submit_quantile_us(0.99), 1_000);
        assert_eq!(w.submit_quantile_us(1.0), 9_000);
        assert_eq!(w.max_submit_us, 9_000);

        let mut c = SubmitChunker::new(500);
        assert_eq!(c.chunk(), 125);
        for _ in 0..20 {
            c.observe(100, 100 * 2_000);
        }
        assert!((240..=260).contains(&c.chunk()), "{}", c.chunk());
        assert_eq!(SubmitChunker::new(0).chunk(), usize::MAX);
    }
}
