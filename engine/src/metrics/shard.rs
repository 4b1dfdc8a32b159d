//! The per-shard block of atomic counters. Its shard is the only writer and
//! increments it directly with relaxed atomics (no lock, no allocation, no
//! syscall); the scrape reads every shard's block from the admin thread.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::labels::{
    state_index, status_slot, AuthFailure, EndReason, RtspMethod, Transport, SESSION_STATES,
    STATUS_SLOTS,
};
use super::lateness::{AtomicLateness, LatenessTally};
use crate::pacer::TickStats;
use crate::session::SessionState;

const TRANSPORTS: usize = Transport::ALL.len();
const STATES: usize = SESSION_STATES.len();
const REASONS: usize = EndReason::ALL.len();
const METHODS: usize = RtspMethod::ALL.len();
const AUTH: usize = AuthFailure::ALL.len();

/// Counters of one shard. Aligned to 128 bytes (two cache lines, the unit
/// the adjacent-line prefetcher pulls in), so two shards' blocks never share
/// a line; allocate one per shard (`Arc<ShardMetrics>`), hand one clone to
/// the shard and all of them to [`ServerMetrics`](super::ServerMetrics).
///
/// All methods take `&self` and cost one or two relaxed atomic adds. The
/// per-packet figures are meant to be added once per pacer tick
/// ([`ShardMetrics::add_tick`], [`ShardMetrics::add_lateness`]), not per
/// packet.
#[derive(Debug)]
#[repr(C, align(128))]
pub struct ShardMetrics {
    index: usize,
    rtp_packets: AtomicU64,
    rtp_bytes: AtomicU64,
    late_packets: AtomicU64,
    lateness: AtomicLateness,
    sessions: [[AtomicI64; STATES]; TRANSPORTS],
    started: [AtomicU64; TRANSPORTS],
    ended: [AtomicU64; REASONS],
    requests: [[AtomicU64; STATUS_SLOTS]; METHODS],
    auth_failures: [AtomicU64; AUTH],
    tcp_backlog_drops: AtomicU64,
    admission_refusals: AtomicU64,
    /// `f64::to_bits` of the busy share.
    busy_share: AtomicU64,
}

/// A point-in-time copy of one shard's session and traffic totals, e.g. for
/// the admin API's `/api/v1/server`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardTotals {
    /// Sessions that exist now (any state).
    pub sessions: u64,
    /// Sessions playing now.
    pub playing: u64,
    /// Sessions started since the server started.
    pub sessions_started: u64,
    /// RTP packets sent since the server started.
    pub rtp_packets: u64,
    /// RTP bytes sent (RTP header + payload, plus the 4-byte interleave
    /// header on TCP) since the server started.
    pub rtp_bytes: u64,
}

impl ShardMetrics {
    /// An all-zero block for shard `index` (the `shard` label).
    pub fn new(index: usize) -> ShardMetrics {
        ShardMetrics {
            index,
            rtp_packets: AtomicU64::new(0),
            rtp_bytes: AtomicU64::new(0),
            late_packets: AtomicU64::new(0),
            lateness: AtomicLateness::default(),
            sessions: Default::default(),
            started: Default::default(),
            ended: Default::default(),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            auth_failures: Default::default(),
            tcp_backlog_drops: AtomicU64::new(0),
            admission_refusals: AtomicU64::new(0),
            busy_share: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// The shard index given to [`ShardMetrics::new`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// Adds one pacer tick's packets, bytes and late packets (three relaxed
    /// adds, skipped when zero).
    #[inline]
    pub fn add_tick(&self, t: &TickStats) {
        self.add_rtp(t.packets, t.bytes, t.late);
    }

    /// Adds `packets` RTP packets of `bytes` bytes sent, `late` of them past
    /// the late tolerance.
    #[inline]
    pub fn add_rtp(&self, packets: u64, bytes: u64, late: u64) {
        if packets != 0 {
            self.rtp_packets.fetch_add(packets, Relaxed);
            self.rtp_bytes.fetch_add(bytes, Relaxed);
        }
        if late != 0 {
            self.late_packets.fetch_add(late, Relaxed);
        }
    }

    /// Folds a tick's lateness tally into the histogram (one relaxed add per
    /// non-empty bucket). The caller then clears its tally.
    #[inline]
    pub fn add_lateness(&self, t: &LatenessTally) {
        self.lateness.add(t);
    }

    /// Records the lateness of a single packet, µs (two relaxed adds); prefer
    /// [`ShardMetrics::add_lateness`] on the hot path.
    #[inline]
    pub fn observe_lateness_us(&self, late_us: u64) {
        self.lateness.observe(late_us);
    }

    /// A session was created (first SETUP) with `transport`; it is counted
    /// as started and as [`SessionState::Ready`].
    pub fn session_started(&self, transport: Transport) {
        self.started[transport.index()].fetch_add(1, Relaxed);
        self.sessions[transport.index()][state_index(SessionState::Ready)].fetch_add(1, Relaxed);
    }

    /// A session moved from state `from` to `to` (PLAY, PAUSE, end of the
    /// PLAY range).
    pub fn session_state(&self, transport: Transport, from: SessionState, to: SessionState) {
        if from != to {
            let row = &self.sessions[transport.index()];
            row[state_index(from)].fetch_sub(1, Relaxed);
            row[state_index(to)].fetch_add(1, Relaxed);
        }
    }

    /// A session in state `state` ended for `reason`.
    pub fn session_ended(&self, transport: Transport, state: SessionState, reason: EndReason) {
        self.sessions[transport.index()][state_index(state)].fetch_sub(1, Relaxed);
        self.ended[reason.index()].fetch_add(1, Relaxed);
    }

    /// An RTSP response with `status` was sent to a `method` request.
    pub fn rtsp_request(&self, method: RtspMethod, status: u16) {
        self.requests[method.index()][status_slot(status)].fetch_add(1, Relaxed);
    }

    /// A request was refused by authentication or authorization.
    pub fn auth_failure(&self, why: AuthFailure) {
        self.auth_failures[why.index()].fetch_add(1, Relaxed);
    }

    /// A TCP-interleaved client was dropped for exceeding `--tcp-backlog`.
    pub fn tcp_backlog_drop(&self) {
        self.tcp_backlog_drops.fetch_add(1, Relaxed);
    }

    /// A SETUP was refused with 453 Not Enough Bandwidth (admission control).
    pub fn admission_refusal(&self) {
        self.admission_refusals.fetch_add(1, Relaxed);
    }

    /// Sets the share of wall time the shard spent working (not waiting in
    /// io_uring_enter) over its last measurement window, 0..=1 (clamped;
    /// NaN counts as 0).
    pub fn set_busy_share(&self, share: f64) {
        let v = if share.is_nan() {
            0.0
        } else {
            share.clamp(0.0, 1.0)
        };
        self.busy_share.store(v.to_bits(), Relaxed);
    }

    /// Reads the session and traffic totals.
    pub fn totals(&self) -> ShardTotals {
        let mut t = ShardTotals::default();
        for row in &self.sessions {
            for (s, n) in SESSION_STATES.iter().zip(row.iter()) {
                let n = n.load(Relaxed).max(0) as u64;
                t.sessions += n;
                if *s == SessionState::Playing {
                    t.playing += n;
                }
            }
        }
        t.sessions_started = self.started.iter().map(|a| a.load(Relaxed)).sum();
        t.rtp_packets = self.rtp_packets.load(Relaxed);
        t.rtp_bytes = self.rtp_bytes.load(Relaxed);
        t
    }

    // Readers for the collector.

    pub(crate) fn rtp_packets(&self) -> u64 {
        self.rtp_packets.load(Relaxed)
    }
    pub(crate) fn rtp_bytes(&self) -> u64 {
        self.rtp_bytes.load(Relaxed)
    }
    pub(crate) fn late_packets(&self) -> u64 {
        self.late_packets.load(Relaxed)
    }
    pub(crate) fn lateness_into(&self, into: &mut LatenessTally) {
        self.lateness.read_into(into)
    }
    /// Current sessions; a transient negative (a state change seen half-way)
    /// reads as 0.
    pub(crate) fn sessions(&self, t: Transport, s: SessionState) -> u64 {
        self.sessions[t.index()][state_index(s)]
            .load(Relaxed)
            .max(0) as u64
    }
    pub(crate) fn started(&self, t: Transport) -> u64 {
        self.started[t.index()].load(Relaxed)
    }
    pub(crate) fn ended(&self, r: EndReason) -> u64 {
        self.ended[r.index()].load(Relaxed)
    }
    pub(crate) fn requests(&self, m: RtspMethod, slot: usize) -> u64 {
        self.requests[m.index()][slot].load(Relaxed)
    }
    pub(crate) fn auth_failures(&self, a: AuthFailure) -> u64 {
        self.auth_failures[a.index()].load(Relaxed)
    }
    pub(crate) fn tcp_backlog_drops(&self) -> u64 {
        self.tcp_backlog_drops.load(Relaxed)
    }
    pub(crate) fn admission_refusals(&self) -> u64 {
        self.admission_refusals.load(Relaxed)
    }
    pub(crate) fn busy_share(&self) -> f64 {
        f64::from_bits(self.busy_share.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_is_cache_line_aligned() {
        assert_eq!(std::mem::align_of::<ShardMetrics>(), 128);
        assert_eq!(std::mem::size_of::<ShardMetrics>() % 128, 0);
    }

    #[test]
    fn session_gauges_follow_transitions() {
        let m = ShardMetrics::new(3);
        m.session_started(Transport::Udp);
        m.session_started(Transport::Udp);
        m.session_started(Transport::Tcp);
        m.session_state(Transport::Udp, SessionState::Ready, SessionState::Playing);
        m.session_ended(Transport::Tcp, SessionState::Ready, EndReason::Timeout);
        assert_eq!(m.sessions(Transport::Udp, SessionState::Ready), 1);
        assert_eq!(m.sessions(Transport::Udp, SessionState::Playing), 1);
        assert_eq!(m.sessions(Transport::Tcp, SessionState::Ready), 0);
        assert_eq!(m.ended(EndReason::Timeout), 1);
        let t = m.totals();
        assert_eq!((t.sessions, t.playing, t.sessions_started), (2, 1, 3));
        m.set_busy_share(1.7);
        assert_eq!(m.busy_share(), 1.0);
        m.set_busy_share(f64::NAN);
        assert_eq!(m.busy_share(), 0.0);
    }
}
