//! One worker thread: an epoll loop over its sessions' RTSP connections and its
//! shared UDP port pairs. Sessions are non-blocking state machines; there is no
//! thread per client.
//!
//! Per RTP packet the work is: parse the 12-byte header, look the SSRC up in a
//! hash map, update the stream's counters and record the lateness in a
//! histogram. UDP datagrams are read 64 at a time with recvmmsg and carry
//! kernel receive timestamps, so reading late (see `coalesce`) costs no
//! accuracy.

mod churn;
mod media;
mod session;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::churn::Churn;
use crate::demux::{Demux, StreamId};
use crate::media_kind::MediaKind;
use crate::net::epoll::{Epoll, READ};
use crate::net::udp::{RecvBatch, UdpPair, RTCP_SLOT, RTP_HEAD};
use crate::plan::{ClientPlan, Transport};
use crate::record::{SessionRecord, StreamRecord, Totals};
use crate::shared::{lateness_histogram, Shared};
use crate::stats::StreamStats;

use session::{Session, State};

/// Token kinds in the top byte of an epoll token.
const KIND_SESSION: u64 = 1;
const KIND_RTP: u64 = 2;
const KIND_RTCP: u64 = 3;
const KIND_SHIFT: u32 = 56;

fn token(kind: u64, index: usize) -> u64 {
    (kind << KIND_SHIFT) | index as u64
}

/// How often sessions are scanned for timeouts, keep-alives and RTCP.
const SCAN_INTERVAL: Duration = Duration::from_millis(20);
/// Longest coalescing while some session of the worker is being set up.
const SETUP_COALESCE: Duration = Duration::from_micros(250);
/// How often the gauges for the progress line are refreshed.
const PUBLISH_INTERVAL: Duration = Duration::from_millis(500);
/// A playing session whose streams got nothing for this long fails `no_data`.
pub const NO_DATA_AFTER: Duration = Duration::from_secs(3);

/// Settings of one worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Worker number (index into the shared gauges).
    pub id: usize,
    /// CPU to pin the thread to.
    pub cpu: Option<core_affinity::CoreId>,
    /// UDP RTP/RTCP port pairs per address family.
    pub udp_pairs: usize,
    /// Receive buffer to ask for, per UDP socket, bytes.
    pub rcvbuf: usize,
    /// Connect and request timeout.
    pub timeout: Duration,
    /// Minimum time between two passes of the event loop while every session
    /// plays (0: react at once). Lets the kernel queue packets so that each
    /// recvmmsg returns many.
    pub coalesce: Duration,
    /// Mean interval between RTCP receiver reports.
    pub rr_interval: Duration,
    /// Sessions start with DESCRIBE instead of OPTIONS.
    pub no_options: bool,
    /// Churn mode: lifetimes and replacement of sessions.
    pub churn: Option<Churn>,
    /// `--clients` of the whole run (session numbers of replacements are
    /// generation × this + slot).
    pub clients_total: usize,
}

/// Lateness distributions of the packets of one media kind.
#[derive(Debug, Clone)]
pub struct KindLateness {
    /// Lateness of every packet counted, µs (negative values as 0).
    pub lateness: Histogram<u64>,
    /// How early the early packets were, µs.
    pub earliness: Histogram<u64>,
}

impl Default for KindLateness {
    fn default() -> Self {
        Self {
            lateness: lateness_histogram(),
            earliness: lateness_histogram(),
        }
    }
}

/// What a worker hands back.
#[derive(Debug)]
pub struct WorkerResult {
    /// Its sessions.
    pub sessions: Vec<SessionRecord>,
    /// Lateness per media kind, indexed by [`MediaKind::index`].
    pub by_kind: [KindLateness; 3],
    /// Counters.
    pub totals: Totals,
    /// UDP port pairs it used.
    pub udp_pairs: usize,
    /// Receive buffer the kernel granted per UDP socket, bytes (0: no UDP).
    pub rcvbuf: usize,
    /// A fatal error that stopped the worker before its sessions ran.
    pub error: Option<String>,
    /// Datagrams the kernel dropped at this worker's UDP sockets.
    pub socket_drops: u64,
    /// CPU time of this worker thread, and the time it ran.
    pub thread_cpu: std::time::Duration,
    /// Wall time the worker thread ran.
    pub thread_wall: std::time::Duration,
}

/// Starts a worker thread for `clients`.
pub fn spawn(
    config: WorkerConfig,
    clients: Vec<ClientPlan>,
    shared: Arc<Shared>,
) -> std::io::Result<JoinHandle<WorkerResult>> {
    std::thread::Builder::new()
        .name(format!("loadtool-worker-{}", config.id))
        .spawn(move || {
            if let Some(cpu) = config.cpu {
                core_affinity::set_for_current(cpu);
            }
            let n = clients.len();
            match Worker::new(config, clients, shared) {
                Ok(worker) => worker.run(),
                Err(e) => WorkerResult {
                    sessions: Vec::with_capacity(n),
                    by_kind: Default::default(),
                    totals: Totals::default(),
                    udp_pairs: 0,
                    rcvbuf: 0,
                    error: Some(e.to_string()),
                    socket_drops: 0,
                    thread_cpu: std::time::Duration::ZERO,
                    thread_wall: std::time::Duration::ZERO,
                },
            }
        })
}

/// A shared UDP port pair and the address family it serves.
struct Pair {
    sockets: UdpPair,
    v6: bool,
}

/// Where a stream's packets come from, for the demultiplexer and RTCP.
#[derive(Debug, Clone, Copy)]
struct StreamMeta {
    /// UDP pair, or None for interleaved TCP.
    pair: Option<u16>,
    ssrc: Option<u32>,
    /// Source-port key used while the SSRC is unknown.
    source_port: Option<u16>,
    /// Media kind (from the SDP `m=` line).
    kind: MediaKind,
    /// Local identifier of the RFC 5450 toffset extension, when the SDP
    /// announced it for this media.
    toffset_id: Option<u8>,
    /// Counting ended (churn mode): its demultiplexer keys stay until the
    /// stream is retired, and packets that still arrive are `after_stop`.
    stopped: bool,
}

/// One worker's state.
struct Worker {
    config: WorkerConfig,
    shared: Arc<Shared>,
    epoll: Epoll,
    sessions: Vec<Session>,
    /// Index of the next planned session to start (the first `planned`
    /// sessions are in start order).
    next_start: usize,
    /// Sessions planned at the start (one per client of this worker).
    planned: usize,
    /// Churn mode: successors due to start, in due order: (due, plan).
    successors: VecDeque<(Instant, ClientPlan)>,
    /// Churn mode: session slots whose session ended and was recorded.
    free_sids: Vec<usize>,
    /// Churn mode: streams of recorded sessions, and when to drop their
    /// demultiplexer keys and reuse their ids.
    retiring: BinaryHeap<Reverse<(Instant, StreamId)>>,
    /// Stream ids free for reuse.
    free_streams: Vec<StreamId>,
    /// Records of sessions that ended during the run (churn mode).
    records: Vec<SessionRecord>,
    streams: Vec<StreamStats>,
    meta: Vec<StreamMeta>,
    pairs: Vec<Pair>,
    next_pair_v4: usize,
    next_pair_v6: usize,
    demux: Demux,
    rtp_batch: RecvBatch,
    rtcp_batch: RecvBatch,
    scratch: Vec<u8>,
    by_kind: [KindLateness; 3],
    interval: Histogram<u64>,
    totals: Totals,
    rr_buf: [u8; crate::rtcp::MAX_RR + 4],
    cname: String,
    in_setup: usize,
    stopping: bool,
    started: Instant,
}

impl Worker {
    fn new(
        config: WorkerConfig,
        clients: Vec<ClientPlan>,
        shared: Arc<Shared>,
    ) -> std::io::Result<Self> {
        let epoll = Epoll::new()?;
        let wants_udp = |v6: bool| {
            clients
                .iter()
                .any(|c| c.transport == Transport::Udp && c.server.is_ipv6() == v6)
        };
        let mut pairs = Vec::new();
        for (v6, ip) in [
            (false, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            (true, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ] {
            if !wants_udp(v6) {
                continue;
            }
            for _ in 0..config.udp_pairs.max(1) {
                let sockets = UdpPair::bind(ip, config.rcvbuf)?;
                let index = pairs.len();
                epoll.add(sockets.rtp.as_raw_fd(), READ, token(KIND_RTP, index))?;
                epoll.add(sockets.rtcp.as_raw_fd(), READ, token(KIND_RTCP, index))?;
                pairs.push(Pair { sockets, v6 });
            }
        }
        let churn = config.churn;
        let sessions: Vec<Session> = clients
            .into_iter()
            .map(|plan| Session::new(plan, churn.as_ref()))
            .collect();
        let planned = sessions.len();
        Ok(Self {
            cname: format!(
                "cadence-loadtool-{}-{}@localhost",
                std::process::id(),
                config.id
            ),
            config,
            shared,
            epoll,
            sessions,
            next_start: 0,
            planned,
            successors: VecDeque::new(),
            free_sids: Vec::new(),
            retiring: BinaryHeap::new(),
            free_streams: Vec::new(),
            records: Vec::new(),
            streams: Vec::new(),
            meta: Vec::new(),
            pairs,
            next_pair_v4: 0,
            next_pair_v6: 0,
            demux: Demux::new(),
            rtp_batch: RecvBatch::new(RTP_HEAD),
            rtcp_batch: RecvBatch::new(RTCP_SLOT),
            scratch: vec![0u8; 64 * 1024],
            by_kind: Default::default(),
            interval: lateness_histogram(),
            totals: Totals::default(),
            rr_buf: [0u8; crate::rtcp::MAX_RR + 4],
            in_setup: 0,
            stopping: false,
            started: Instant::now(),
        })
    }

    fn gauges(&self) -> &crate::shared::Gauges {
        &self.shared.gauges[self.config.id]
    }

    fn run(mut self) -> WorkerResult {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        let mut last_scan = Instant::now();
        let mut last_publish = Instant::now();
        loop {
            let pass_start = Instant::now();
            self.start_due(pass_start);
            let timeout_ms = self.wait_ms(pass_start);
            let n = match self.epoll.wait(&mut events, timeout_ms) {
                Ok(n) => n,
                Err(e) => {
                    let mut result = self.finish_result();
                    result.error = Some(format!("epoll_wait: {e}"));
                    return result;
                }
            };
            for ev in &events[..n] {
                let (kind, index, bits) = (
                    ev.u64 >> KIND_SHIFT,
                    (ev.u64 & ((1 << KIND_SHIFT) - 1)) as usize,
                    ev.events,
                );
                match kind {
                    KIND_SESSION => self.on_session_event(index, bits),
                    KIND_RTP => self.on_rtp_socket(index),
                    KIND_RTCP => self.on_rtcp_socket(index),
                    _ => {}
                }
            }
            let now = Instant::now();
            if now.duration_since(last_scan) >= SCAN_INTERVAL {
                last_scan = now;
                self.scan(now);
                let g = &self.shared.gauges[self.config.id];
                g.packets.store(self.totals.packets, Ordering::Relaxed);
                g.bytes.store(self.totals.bytes, Ordering::Relaxed);
            }
            if now.duration_since(last_publish) >= PUBLISH_INTERVAL {
                last_publish = now;
                self.publish();
            }
            if self.stopping && self.all_done() {
                break;
            }
            // While sessions are being set up, pass at least every
            // SETUP_COALESCE so that replies wait little (setup latency).
            let coalesce = if self.in_setup == 0 && self.next_start >= self.planned {
                self.config.coalesce
            } else {
                self.config.coalesce.min(SETUP_COALESCE)
            };
            let spent = pass_start.elapsed();
            if spent < coalesce {
                std::thread::sleep(coalesce - spent);
            }
        }
        self.publish();
        self.finish_result()
    }

    /// How long epoll may block: until the next session start, at most one
    /// scan interval.
    fn wait_ms(&self, now: Instant) -> i32 {
        let mut wait = SCAN_INTERVAL;
        if let Some(next) = self
            .sessions
            .get(self.next_start)
            .filter(|_| self.next_start < self.planned)
        {
            let due = self.shared.t0 + next.plan.start;
            wait = wait.min(due.saturating_duration_since(now));
        }
        if let Some((due, _)) = self.successors.front() {
            wait = wait.min(due.saturating_duration_since(now));
        }
        if wait.is_zero() {
            0
        } else {
            (wait.as_micros().div_ceil(1000)).min(1000) as i32
        }
    }

    /// Starts the sessions whose ramp time has come.
    fn start_due(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        while let Some(s) = self.sessions.get(self.next_start) {
            if self.next_start >= self.planned || self.shared.t0 + s.plan.start > now {
                break;
            }
            let sid = self.next_start;
            self.next_start += 1;
            self.start_session(sid, now);
        }
        self.start_successors(now);
    }

    /// Picks the UDP pair for a new session (round-robin per family).
    fn pick_pair(&mut self, v6: bool) -> Option<u16> {
        let candidates: Vec<usize> = (0..self.pairs.len())
            .filter(|&i| self.pairs[i].v6 == v6)
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let counter = if v6 {
            &mut self.next_pair_v6
        } else {
            &mut self.next_pair_v4
        };
        let pick = candidates[*counter % candidates.len()];
        *counter += 1;
        Some(pick as u16)
    }

    /// Timeouts, keep-alives, RTCP receiver reports and the end of the run.
    fn scan(&mut self, now: Instant) {
        if !self.stopping {
            if let Some(stop) = self.shared.stop_time() {
                if now >= stop {
                    self.begin_stop(now);
                }
            }
        }
        self.retire_due(now);
        for sid in 0..self.sessions.len() {
            let s = &self.sessions[sid];
            if s.state == State::Playing && !self.stopping && s.ends_at.is_some_and(|e| now >= e) {
                self.end_lifetime(sid, now);
                continue;
            }
            if let Some(deadline) = s.deadline {
                if now >= deadline {
                    let phase = s.phase_name();
                    self.fail(
                        sid,
                        crate::failure::Cause::Timeout,
                        phase,
                        "no reply within the timeout".into(),
                    );
                    continue;
                }
            }
            if s.state != State::Playing || self.stopping {
                continue;
            }
            if now >= s.next_keepalive {
                self.send_keepalive(sid, now);
            }
            if now >= self.sessions[sid].next_rr {
                self.send_receiver_reports(sid, now);
            }
        }
    }

    /// Ends counting for every session and tears the sessions down.
    fn begin_stop(&mut self, now: Instant) {
        self.stopping = true;
        for sid in 0..self.sessions.len() {
            match self.sessions[sid].state {
                State::Waiting => self.sessions[sid].state = State::NotStarted,
                State::Setup => {
                    // Interrupted during setup: not a failure of the server.
                    self.in_setup = self.in_setup.saturating_sub(1);
                    self.unregister_streams(sid);
                    self.teardown(sid, now);
                }
                State::Playing => {
                    self.check_no_data(sid, now);
                    self.stop_counting(sid, now);
                    self.teardown(sid, now);
                }
                State::Stopping | State::Done | State::Failed | State::NotStarted => {}
            }
        }
    }

    fn all_done(&self) -> bool {
        self.sessions
            .iter()
            .all(|s| matches!(s.state, State::Done | State::Failed | State::NotStarted))
    }

    /// Refreshes the shared gauges and hands over the lateness recorded since
    /// the last refresh.
    fn publish(&mut self) {
        let g = &self.shared.gauges[self.config.id];
        g.packets.store(self.totals.packets, Ordering::Relaxed);
        g.bytes.store(self.totals.bytes, Ordering::Relaxed);
        let (mut lost, mut expected) = (0u64, 0u64);
        for s in &self.streams {
            lost += s.seq.lost();
            expected += s.seq.expected();
        }
        g.lost.store(lost, Ordering::Relaxed);
        g.expected.store(expected, Ordering::Relaxed);
        if let Ok(mut h) = g.lateness.lock() {
            let _ = h.add(&self.interval);
        }
        self.interval.reset();
    }

    fn finish_result(&mut self) -> WorkerResult {
        let inodes: Vec<u64> = self
            .pairs
            .iter()
            .flat_map(|p| [p.sockets.rtp.as_raw_fd(), p.sockets.rtcp.as_raw_fd()])
            .filter_map(crate::kernel::socket_inode)
            .collect();
        let socket_drops = crate::kernel::socket_drops(&inodes);
        let mut sessions = std::mem::take(&mut self.records);
        sessions.extend(
            (0..self.sessions.len())
                .filter(|&sid| !self.sessions[sid].recorded)
                .map(|sid| self.session_record(sid)),
        );
        WorkerResult {
            sessions,
            by_kind: std::mem::take(&mut self.by_kind),
            totals: std::mem::take(&mut self.totals),
            udp_pairs: self.pairs.len(),
            rcvbuf: self
                .pairs
                .iter()
                .map(|p| p.sockets.rcvbuf)
                .min()
                .unwrap_or(0),
            error: None,
            socket_drops,
            thread_cpu: crate::cpu::CpuTimes::this_thread().total(),
            thread_wall: self.started.elapsed(),
        }
    }

    fn session_record(&self, sid: usize) -> SessionRecord {
        let s = &self.sessions[sid];
        let streams = s
            .streams
            .iter()
            .map(|r| {
                let st = &self.streams[r.stream as usize];
                let has = st.seq.received > 0;
                StreamRecord {
                    control: r.control.clone(),
                    media: r.media.clone(),
                    kind: self.meta[r.stream as usize].kind,
                    clock_rate: st.clock_rate,
                    ssrc: self.meta[r.stream as usize].ssrc,
                    rtp_info_seq: r.rtp_info_seq,
                    first_seq: st.seq.first_seq(),
                    packets: st.seq.received,
                    bytes: st.bytes,
                    expected: st.seq.expected(),
                    lost: st.seq.lost(),
                    duplicates: st.seq.duplicates,
                    reordered: st.seq.reordered,
                    jitter_ms: st.jitter.ms(),
                    lateness_min_us: has.then_some(st.lateness_min_us).filter(|v| *v != i64::MAX),
                    lateness_max_us: has.then_some(st.lateness_max_us).filter(|v| *v != i64::MIN),
                    sender_reports: st.sr_received,
                    bye: st.bye,
                    toffset_id: self.meta[r.stream as usize].toffset_id,
                    toffset_packets: st.toffset_packets,
                }
            })
            .collect();
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
        SessionRecord {
            index: s.plan.index,
            slot: s.plan.slot,
            generation: s.plan.generation,
            lifetime_ms: s.lifetime.map(|l| l.as_secs_f64() * 1000.0),
            ended: s.ended,
            url: s.plan.url.to_string(),
            transport: s.plan.transport,
            started: s.t_connect.is_some(),
            setup_ms: s.t_connect.zip(s.t_playing).map(|(a, b)| ms(a, b)),
            play_ms: s
                .t_playing
                .map(|a| ms(a, s.t_stopped.unwrap_or_else(Instant::now))),
            failure: s.failure.clone(),
            reconnects: s.reconnects,
            streams,
        }
    }

    /// Registers a new stream of media `kind` with RTP clock `clock_rate`
    /// (Hz), received on UDP pair `pair` (None: interleaved), whose packets
    /// carry the toffset extension as `toffset_id`, and returns its id.
    fn new_stream(
        &mut self,
        clock_rate: u32,
        pair: Option<u16>,
        kind: MediaKind,
        toffset_id: Option<u8>,
    ) -> StreamId {
        let meta = StreamMeta {
            pair,
            ssrc: None,
            source_port: None,
            kind,
            toffset_id,
            stopped: false,
        };
        if let Some(id) = self.free_streams.pop() {
            self.streams[id as usize] = StreamStats::new(clock_rate);
            self.meta[id as usize] = meta;
            return id;
        }
        let id = self.streams.len() as StreamId;
        self.streams.push(StreamStats::new(clock_rate));
        self.meta.push(meta);
        id
    }
}
