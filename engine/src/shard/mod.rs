//! The shard: one thread pinned to one CPU, owning one io_uring, one RTSP
//! listener (SO_REUSEPORT), one UDP RTP/RTCP socket pair and its sessions.
//!
//! Each loop iteration: reap completions (accepts, RTSP input, finished
//! sends, RTCP), take messages from other shards, run the pacer tick (which
//! queues every due packet of every session as SENDMSG operations), flush
//! connection write queues, do housekeeping (timeouts, sender reports), then
//! submit everything in one `io_uring_enter` that also waits for the next tick.

pub mod bufring;
pub mod conn;
pub mod mailbox;
pub mod net;
pub mod ops;
mod reports;
pub mod slots;
mod stats;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};
use rtsp_types::Request;
use slab::Slab;

use crate::catalog::Catalog;
use crate::pacer::{OutPacket, Pacer, PacketSink};
use crate::rtcp;
use crate::rtsp::framing::{self, Input};
use crate::rtsp::{Controller, ControllerConfig, Effect, RequestCtx};
use crate::session::{ConnId, TrackTransport};
use conn::{Conn, WriteItem};
pub use mailbox::ShardHandle;
use ops::Op;
use slots::{segment_iovecs, SlotPool};
pub use stats::ShardStats;

/// Provided receive buffers per shard, shared by all RTSP connections.
pub const RECV_BUFFERS: u16 = 256;
/// Size of one provided receive buffer, bytes.
pub const RECV_BUFFER_LEN: usize = 4096;

/// Settings shared by all shards.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// RTSP listen address.
    pub listen: SocketAddr,
    /// Preferred UDP RTP port of shard 0; shard i tries `base + 2i`.
    pub udp_port_base: u16,
    /// Pacer tick, µs (100..=1000; default 500: a tick's batch of sends then
    /// stays well inside the 2 ms lateness budget at 200k packets/s).
    pub tick_us: u64,
    /// Session timeout, seconds.
    pub session_timeout_s: u64,
    /// TCP interleaved backlog limit per connection, bytes; a client whose
    /// queue grows beyond it is dropped.
    pub tcp_backlog_bytes: usize,
    /// UDP send slots (packets in flight) per shard.
    pub send_slots: usize,
    /// io_uring submission queue entries.
    pub ring_entries: u32,
    /// UDP socket buffer size request, bytes.
    pub udp_buffer_bytes: usize,
    /// RTCP sender report interval, µs.
    pub sr_interval_us: u64,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8554)),
            udp_port_base: 6970,
            tick_us: 500,
            session_timeout_s: 60,
            tcp_backlog_bytes: 4 << 20,
            send_slots: 8192,
            ring_entries: 4096,
            udp_buffer_bytes: 4 << 20,
            sr_interval_us: 5_000_000,
        }
    }
}

/// A message between shards.
pub enum ShardMsg {
    /// A request naming a session of the receiving shard, from connection
    /// `conn` of shard `from`.
    Request {
        /// Originating shard.
        from: usize,
        /// Connection on the originating shard.
        conn: ConnId,
        /// Client address.
        peer: SocketAddr,
        /// Our address on that connection.
        local: SocketAddr,
        /// The request.
        request: Box<Request<Vec<u8>>>,
    },
    /// The catalog path was compiled (or failed to): handle the requests
    /// parked for it.
    Compiled(String),
    /// The serialized response to a forwarded request, for connection `conn`.
    Response {
        /// Connection on the receiving shard.
        conn: ConnId,
        /// Response bytes.
        bytes: Vec<u8>,
        /// Close the connection after writing.
        close: bool,
    },
}

/// A request to compile a catalog path off the shards; the compile thread
/// answers the shard with [`ShardMsg::Compiled`].
#[derive(Debug, Clone)]
pub struct CompileJob {
    /// Catalog path.
    pub path: String,
    /// Shard to notify.
    pub shard: usize,
}

/// A request parked until its file is compiled.
struct Parked {
    ctx: RequestCtx,
    req: Request<Vec<u8>>,
    reply_to: Option<usize>,
    path: String,
}

/// Why a shard could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// io_uring could not be set up (ENOSYS: kernel without io_uring; EPERM:
    /// disabled by sysctl kernel.io_uring_disabled or a seccomp profile).
    #[error("io_uring is unavailable: {0} ({hint})", hint = uring_hint(.0))]
    Uring(std::io::Error),
    /// A socket could not be bound.
    #[error("cannot bind {what}: {source}")]
    Bind {
        /// Which socket.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn uring_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSYS) => "the kernel was built without io_uring (ENOSYS)",
        Some(libc::EPERM) => {
            "io_uring is disabled: check sysctl kernel.io_uring_disabled, or the container's seccomp profile (EPERM)"
        }
        Some(libc::ENOMEM) => "not enough locked memory for the ring (RLIMIT_MEMLOCK)",
        _ => "see `cadence check-system`",
    }
}

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

/// The sockets a shard owns, bound before its thread starts so that bind
/// errors are reported at startup.
pub struct ShardSockets {
    listener: TcpListener,
    udp: net::UdpPair,
}

impl ShardSockets {
    /// Binds the listener (on `listen`, the address every shard shares) and
    /// the UDP pair of shard `index`.
    pub fn bind(
        index: usize,
        listen: SocketAddr,
        config: &ShardConfig,
    ) -> Result<Self, ShardError> {
        let listener = net::reuseport_listener(listen).map_err(|source| ShardError::Bind {
            what: format!("RTSP listener {listen}"),
            source,
        })?;
        let ip = config.listen.ip();
        let preferred = config.udp_port_base.saturating_add(2 * index as u16);
        let udp = net::udp_pair(ip, preferred, config.udp_buffer_bytes).map_err(|source| {
            ShardError::Bind {
                what: format!("UDP RTP/RTCP pair on {ip}"),
                source,
            }
        })?;
        Ok(ShardSockets { listener, udp })
    }

    /// The UDP RTP port.
    pub fn rtp_port(&self) -> u16 {
        self.udp.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The actual RTSP listen address (resolves port 0).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// RTCP receives kept in flight on the RTCP socket, so that a burst of
/// receiver reports is read in one loop iteration.
pub const RTCP_RECVS: usize = 64;

struct RtcpRecv {
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
}

/// One shard.
pub struct Shard {
    index: usize,
    config: ShardConfig,
    ring: IoUring,
    bufs: bufring::BufRing,
    /// Connections whose multishot RECV ended for lack of buffers.
    rearm: Vec<usize>,
    sockets: ShardSockets,
    controller: Controller,
    pacer: Pacer,
    slots: SlotPool,
    conns: Slab<Conn>,
    next_generation: u32,
    dirty: Vec<usize>,
    // Boxed: each msghdr points into its own box, which must not move.
    #[allow(clippy::vec_box)]
    rtcp_recv: Vec<Box<RtcpRecv>>,
    cqes: Vec<(u64, i32, u32)>,
    mailbox: mailbox::Mailbox,
    peers: Vec<ShardHandle>,
    compiler: Sender<CompileJob>,
    parked: Vec<Parked>,
    compiling: Vec<String>,
    /// Scratch space for outgoing RTCP (kept to avoid allocating).
    rtcp_scratch: Vec<reports::TrackRtcp>,
    /// Scratch space for session keys in housekeeping.
    key_scratch: Vec<usize>,
    /// Largest lateness since the last housekeeping, µs (admission control).
    window_max_late_us: u64,
    /// Send slots ran out since the last housekeeping (admission control).
    window_slots_full: bool,
    shutdown: Arc<AtomicBool>,
    epoch: Instant,
    stats: ShardStats,
    accept_armed: bool,
}

/// Shard clock: µs since the process-wide epoch.
fn now_us(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

impl Shard {
    /// Builds shard `index` from its bound sockets. Creates the io_uring here
    /// (call on the shard's own thread).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        config: ShardConfig,
        sockets: ShardSockets,
        catalog: Arc<Catalog>,
        mailbox: mailbox::Mailbox,
        peers: Vec<ShardHandle>,
        compiler: Sender<CompileJob>,
        shutdown: Arc<AtomicBool>,
        epoch: Instant,
    ) -> Result<Self, ShardError> {
        let ring = new_ring(config.ring_entries).map_err(ShardError::Uring)?;
        let bufs = bufring::BufRing::new(&ring, RECV_BUFFERS, RECV_BUFFER_LEN, 0)
            .map_err(ShardError::Uring)?;
        let v6 = config.listen.is_ipv6();
        let controller = Controller::new(
            ControllerConfig {
                shard: index,
                session_timeout_s: config.session_timeout_s,
                server_rtp_port: sockets.rtp_port(),
            },
            catalog,
            rand::random(),
        );
        let now = now_us(epoch);
        let pacer = Pacer::new(now, config.tick_us);
        let rtcp_recv = (0..RTCP_RECVS).map(|_| RtcpRecv::new()).collect();
        Ok(Shard {
            index,
            slots: SlotPool::new(config.send_slots, v6),
            config,
            ring,
            bufs,
            rearm: Vec::new(),
            sockets,
            controller,
            pacer,
            conns: Slab::new(),
            next_generation: 1,
            dirty: Vec::with_capacity(256),
            rtcp_recv,
            cqes: Vec::with_capacity(4096),
            mailbox,
            peers,
            compiler,
            parked: Vec::new(),
            compiling: Vec::new(),
            rtcp_scratch: Vec::with_capacity(8),
            key_scratch: Vec::new(),
            window_max_late_us: 0,
            window_slots_full: false,
            shutdown,
            epoch,
            stats: ShardStats::default(),
            accept_armed: false,
        })
    }

    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every entry we push points at memory that stays valid
            // until its completion (slots, connection buffers, boxed msghdrs).
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                tracing::warn!(shard = self.index, error = %e, "io_uring submit failed");
            }
        }
    }

    fn arm_wake(&mut self) {
        let fd = self.mailbox.wake.as_raw_fd();
        let buf = &mut *self.mailbox.counter as *mut u64 as *mut u8;
        let e = opcode::Read::new(types::Fd(fd), buf, 8)
            .build()
            .user_data(Op::Wake.encode());
        self.push(e);
    }

    fn arm_accept(&mut self) {
        let fd = self.sockets.listener.as_raw_fd();
        let e = opcode::AcceptMulti::new(types::Fd(fd))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(Op::Accept.encode());
        self.push(e);
        self.accept_armed = true;
    }

    fn arm_rtcp_recv(&mut self, index: usize) {
        let fd = self.sockets.udp.rtcp.as_raw_fd();
        let Some(r) = self.rtcp_recv.get_mut(index) else {
            return;
        };
        r.msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        let e = opcode::RecvMsg::new(types::Fd(fd), &mut r.msg)
            .build()
            .user_data(Op::RtcpRecv(index as u32).encode());
        self.push(e);
    }

    fn arm_recv(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.recv_pending || c.closing {
            return;
        }
        let e = opcode::RecvMulti::new(types::Fd(c.raw_fd()), self.bufs.group())
            .build()
            .user_data(Op::Recv(key as u32, c.generation).encode());
        c.recv_pending = true;
        self.push(e);
    }

    /// Runs the shard until shutdown is requested; then sends RTCP BYE on
    /// every session and returns.
    pub fn run(mut self) {
        self.arm_accept();
        self.arm_wake();
        for i in 0..self.rtcp_recv.len() {
            self.arm_rtcp_recv(i);
        }
        let mut next_housekeeping = 0u64;
        let mut next_report = now_us(self.epoch) + 10_000_000;
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                self.stop();
                return;
            }
            let now = now_us(self.epoch);
            self.reap(now);
            self.drain_messages(now);
            self.pace(now);
            self.flush_dirty();
            for key in std::mem::take(&mut self.rearm) {
                self.arm_recv(key);
            }
            if now >= next_housekeeping {
                self.housekeeping(now);
                next_housekeeping = now + 100_000;
            }
            if now >= next_report {
                self.stats
                    .log(self.index, self.controller.sessions.len(), 10);
                next_report = now + 10_000_000;
            }
            // Sleep until the next tick boundary while sessions play; an idle
            // shard sleeps until its next housekeeping. Completions (requests,
            // RTCP) and messages (eventfd) wake it earlier.
            let tick = self.config.tick_us.max(1);
            let after = now_us(self.epoch);
            let wait = if self.pacer.scheduled() > 0 || !self.dirty.is_empty() {
                tick - (after % tick)
            } else {
                next_housekeeping.saturating_sub(after).clamp(1, 100_000)
            };
            let ts = types::Timespec::new()
                .sec(wait / 1_000_000)
                .nsec(((wait % 1_000_000) * 1000) as u32);
            let args = types::SubmitArgs::new().timespec(&ts);
            self.stats.loops += 1;
            let entered = now_us(self.epoch);
            let result = self.ring.submitter().submit_with_args(1, &args);
            let spent = now_us(self.epoch).saturating_sub(entered);
            self.stats.enter_us += spent;
            self.stats.max_enter_us = self.stats.max_enter_us.max(spent);
            match result {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
                    ) => {}
                Err(e) => {
                    tracing::error!(shard = self.index, error = %e, "io_uring_enter failed");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    fn reap(&mut self, now: u64) {
        self.cqes.clear();
        for cqe in self.ring.completion() {
            self.cqes.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
        for i in 0..self.cqes.len() {
            let (data, res, flags) = self.cqes[i];
            match Op::decode(data) {
                Some(Op::Slot(index)) => {
                    self.slots.release(index);
                    if res < 0 {
                        self.stats.send_errors += 1;
                    }
                }
                Some(Op::Accept) => self.on_accept(res, flags),
                Some(Op::Recv(i, g)) => self.on_recv(i as usize, g, res, flags, now),
                Some(Op::Write(i, g)) => self.on_write(i as usize, g, res),
                Some(Op::RtcpRecv(i)) => self.on_rtcp(i as usize, res, now),
                Some(Op::Wake) => {
                    // Messages are drained every iteration; just re-arm.
                    if !self.shutdown.load(Ordering::Relaxed) {
                        self.arm_wake();
                    }
                }
                Some(Op::Cancel) | None => {}
            }
        }
    }

    fn on_accept(&mut self, res: i32, flags: u32) {
        if !io_uring::cqueue::more(flags) {
            self.accept_armed = false;
        }
        if res < 0 {
            if res != -libc::ECANCELED {
                tracing::warn!(shard = self.index, error = %std::io::Error::from_raw_os_error(-res), "accept failed");
            }
            if !self.accept_armed && !self.shutdown.load(Ordering::Relaxed) {
                // EMFILE and friends: back off a little by re-arming next loop.
                self.arm_accept();
            }
            return;
        }
        // SAFETY: a successful accept returns a new descriptor we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(res) };
        if !self.accept_armed {
            self.arm_accept();
        }
        net::tune_accepted(fd.as_raw_fd());
        let Some((local, peer)) = net::addresses(fd.as_raw_fd()) else {
            return;
        };
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let key = self.conns.insert(Conn::new(fd, generation, peer, local));
        if key >= 1 << 24 {
            self.conns.remove(key);
            return;
        }
        tracing::debug!(shard = self.index, %peer, "RTSP connection");
        self.arm_recv(key);
    }

    fn conn_id(&self, key: usize) -> Option<ConnId> {
        self.conns.get(key).map(|c| ConnId {
            index: key as u32,
            generation: c.generation,
        })
    }

    fn on_recv(&mut self, key: usize, generation: u32, res: i32, flags: u32, now: u64) {
        let bid = io_uring::cqueue::buffer_select(flags);
        let more = io_uring::cqueue::more(flags);
        let Some(c) = self
            .conns
            .get_mut(key)
            .filter(|c| c.generation == generation)
        else {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            return;
        };
        if !more {
            c.recv_pending = false;
        }
        if c.closing {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            self.maybe_free(key);
            return;
        }
        if res == -libc::ENOBUFS {
            // Every buffer is in use: re-arm once this loop has recycled some.
            self.rearm.push(key);
            return;
        }
        if res <= 0 {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            self.close_conn(key);
            return;
        }
        if let Some(bid) = bid {
            let data = self.bufs.data(bid, res as usize);
            c.rbuf.extend_from_slice(data);
            self.bufs.recycle(bid);
        }
        self.process_input(key, now);
        if !more {
            self.arm_recv(key);
        }
    }

    fn process_input(&mut self, key: usize, now: u64) {
        loop {
            let Some(c) = self.conns.get_mut(key) else {
                return;
            };
            if c.closing || c.close_after_write {
                c.rbuf.clear();
                return;
            }
            if c.paused {
                // A request of this connection waits for its file to compile.
                if c.rbuf.len() > 4 * framing::MAX_MESSAGE {
                    tracing::info!(shard = self.index, peer = %c.peer, "too much input while a request waits; closing");
                    self.close_conn(key);
                }
                return;
            }
            let Some((input, used)) = framing::next(&c.rbuf) else {
                return;
            };
            c.rbuf.drain(..used);
            let (peer, local) = (c.peer, c.local);
            match input {
                Input::Request(req) => {
                    let Some(conn) = self.conn_id(key) else {
                        return;
                    };
                    let ctx = RequestCtx {
                        conn,
                        peer,
                        local,
                        now_us: now,
                        forwarded: false,
                    };
                    self.handle_request(ctx, req, None);
                }
                Input::Data { channel, payload } => {
                    if rtcp::looks_like_rtcp(&payload) {
                        let ok = Self::take_rtcp(&mut self.controller, &payload, now);
                        self.stats.count_rtcp(ok);
                    }
                    let _ = channel;
                }
                Input::Response => {}
                Input::Malformed => {
                    tracing::info!(shard = self.index, %peer, "malformed RTSP input; closing");
                    let body = b"RTSP/1.0 400 Bad Request\r\nServer: Cadence\r\n\r\n".to_vec();
                    if let Some(c) = self.conns.get_mut(key) {
                        c.enqueue(WriteItem::Bytes(body));
                        c.close_after_write = true;
                    }
                    self.mark_dirty(key);
                    return;
                }
            }
        }
    }

    /// Handles a request, locally or forwarded. `reply_to` is the originating
    /// shard for forwarded requests.
    fn handle_request(&mut self, ctx: RequestCtx, req: Request<Vec<u8>>, reply_to: Option<usize>) {
        let reply = self.controller.handle(&ctx, &req);
        if let Some(Effect::Defer(path)) = reply.effects.first() {
            self.park(ctx, req, reply_to, path.clone());
            return;
        }
        if let Some(Effect::Forward(owner)) = reply.effects.first() {
            let owner = *owner;
            let cseq = req
                .header(&rtsp_types::headers::CSEQ)
                .map(|v| v.as_str().to_string());
            if let Some(tx) = self.peers.get(owner) {
                let msg = ShardMsg::Request {
                    from: self.index,
                    conn: ctx.conn,
                    peer: ctx.peer,
                    local: ctx.local,
                    request: Box::new(req),
                };
                if tx.send(msg) {
                    self.stats.forwarded += 1;
                    return;
                }
            }
            // No such shard: the session cannot exist.
            let mut r = rtsp_types::Response::builder(
                rtsp_types::Version::V1_0,
                rtsp_types::StatusCode::SessionNotFound,
            )
            .build(Vec::new());
            if let Some(cseq) = cseq {
                r.insert_header(rtsp_types::headers::CSEQ, cseq);
            }
            self.send_response(ctx.conn, r, false, reply_to);
            return;
        }
        let mut close = false;
        for effect in reply.effects {
            match effect {
                Effect::Forward(_) | Effect::Defer(_) => {}
                Effect::Schedule(key) => {
                    if let Some(s) = self.controller.sessions.get(key) {
                        self.pacer.schedule(key, s);
                    }
                }
                Effect::Teardown(session) => self.bye(&session),
                Effect::Close => close = true,
            }
        }
        self.send_response(ctx.conn, reply.response, close, reply_to);
    }

    /// Parks a request until `path` is compiled; a local connection stops
    /// reading requests meanwhile, so that replies keep their order.
    fn park(
        &mut self,
        ctx: RequestCtx,
        req: Request<Vec<u8>>,
        reply_to: Option<usize>,
        path: String,
    ) {
        if reply_to.is_none() {
            if let Some(c) = self.conns.get_mut(ctx.conn.index as usize) {
                if c.generation == ctx.conn.generation {
                    c.paused = true;
                }
            }
        }
        if !self.compiling.contains(&path) {
            let job = CompileJob {
                path: path.clone(),
                shard: self.index,
            };
            if self.compiler.send(job).is_err() {
                tracing::error!(shard = self.index, "compile thread is gone");
            }
            self.compiling.push(path.clone());
        }
        self.parked.push(Parked {
            ctx,
            req,
            reply_to,
            path,
        });
    }

    /// Handles the requests parked for `path`, in arrival order, and resumes
    /// their connections.
    fn compiled(&mut self, path: &str, now: u64) {
        self.compiling.retain(|p| p != path);
        let (ready, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.path == path);
        self.parked = waiting;
        for p in ready {
            let mut ctx = p.ctx;
            ctx.now_us = now;
            let local = p.reply_to.is_none();
            let key = ctx.conn.index as usize;
            if local {
                if let Some(c) = self.conns.get_mut(key) {
                    if c.generation == ctx.conn.generation {
                        c.paused = false;
                    }
                }
            }
            self.handle_request(ctx, p.req, p.reply_to);
            if local
                && self
                    .conns
                    .get(key)
                    .is_some_and(|c| c.generation == ctx.conn.generation && !c.paused)
            {
                self.process_input(key, now);
            }
        }
    }

    fn send_response(
        &mut self,
        conn: ConnId,
        response: rtsp_types::Response<Vec<u8>>,
        close: bool,
        reply_to: Option<usize>,
    ) {
        let mut bytes = Vec::with_capacity(256 + response.body().len());
        if response.write(&mut bytes).is_err() {
            return;
        }
        match reply_to {
            Some(shard) if shard != self.index => {
                if let Some(tx) = self.peers.get(shard) {
                    tx.send(ShardMsg::Response { conn, bytes, close });
                }
            }
            _ => self.write_to_conn(conn, bytes, close),
        }
    }

    fn write_to_conn(&mut self, conn: ConnId, bytes: Vec<u8>, close: bool) {
        let key = conn.index as usize;
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.generation != conn.generation || c.closing {
            return;
        }
        c.enqueue(WriteItem::Bytes(bytes));
        c.close_after_write |= close;
        self.mark_dirty(key);
    }

    fn mark_dirty(&mut self, key: usize) {
        if let Some(c) = self.conns.get_mut(key) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    fn flush_dirty(&mut self) {
        let mut i = 0;
        while i < self.dirty.len() {
            let key = self.dirty[i];
            i += 1;
            self.flush(key);
        }
        self.dirty.clear();
    }

    fn flush(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        c.dirty = false;
        if c.closing {
            return;
        }
        if c.queued_bytes > self.config.tcp_backlog_bytes {
            tracing::info!(shard = self.index, peer = %c.peer, queued = c.queued_bytes, "client is not reading; dropping it");
            self.stats.dropped_slow += 1;
            self.close_conn(key);
            return;
        }
        if let Some(msg) = c.prepare_write() {
            let e = opcode::SendMsg::new(types::Fd(c.raw_fd()), msg)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
                .user_data(Op::Write(key as u32, c.generation).encode());
            self.push(e);
        } else if c.write_idle() && c.close_after_write {
            self.close_conn(key);
        }
    }

    fn on_write(&mut self, key: usize, generation: u32, res: i32) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.generation != generation {
            return;
        }
        if res < 0 {
            c.write_pending = false;
            self.close_conn(key);
            return;
        }
        c.wrote(res as usize);
        if c.closing {
            self.maybe_free(key);
            return;
        }
        self.flush(key);
    }

    /// Starts closing a connection: its interleaved sessions end, in-flight
    /// operations are cancelled, and the slab entry is freed when they finish.
    fn close_conn(&mut self, key: usize) {
        let Some(c) = self.conns.get_mut(key) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        let id = ConnId {
            index: key as u32,
            generation: c.generation,
        };
        // SAFETY: shutdown on our own socket makes pending operations complete.
        unsafe { libc::shutdown(c.raw_fd(), libc::SHUT_RDWR) };
        let recv_pending = c.recv_pending;
        let generation = c.generation;
        for s in self.controller.connection_closed(id) {
            tracing::debug!(shard = self.index, session = %s.id, "session ended with its connection");
        }
        if recv_pending {
            let e = opcode::AsyncCancel::new(Op::Recv(key as u32, generation).encode())
                .build()
                .user_data(Op::Cancel.encode());
            self.push(e);
        }
        self.maybe_free(key);
    }

    fn maybe_free(&mut self, key: usize) {
        if let Some(c) = self.conns.get(key) {
            if c.closing && !c.busy() {
                self.conns.remove(key);
            }
        }
    }

    fn on_rtcp(&mut self, index: usize, res: i32, now: u64) {
        if res > 0 {
            if let Some(r) = self.rtcp_recv.get(index) {
                let n = (res as usize).min(r.buf.len());
                let ok = Self::take_rtcp(&mut self.controller, &r.buf[..n], now);
                self.stats.count_rtcp(ok);
            }
        }
        if !self.shutdown.load(Ordering::Relaxed) {
            self.arm_rtcp_recv(index);
        }
    }

    /// Feeds an RTCP compound packet from a client to the controller; false
    /// when it is malformed.
    fn take_rtcp(controller: &mut Controller, data: &[u8], now: u64) -> bool {
        rtcp::for_each_report_block(data, |b| {
            controller.on_report_block(b.source, b.fraction_lost, b.cumulative_lost, b.jitter, now);
        })
        .is_ok()
    }

    fn drain_messages(&mut self, now: u64) {
        while let Ok(msg) = self.mailbox.rx.try_recv() {
            match msg {
                ShardMsg::Request {
                    from,
                    conn,
                    peer,
                    local,
                    request,
                } => {
                    let ctx = RequestCtx {
                        conn,
                        peer,
                        local,
                        now_us: now,
                        forwarded: true,
                    };
                    self.handle_request(ctx, *request, Some(from));
                }
                ShardMsg::Response { conn, bytes, close } => self.write_to_conn(conn, bytes, close),
                ShardMsg::Compiled(path) => self.compiled(&path, now),
            }
        }
    }

    fn pace(&mut self, now: u64) {
        let mut sink = UringSink {
            ring: &mut self.ring,
            slots: &mut self.slots,
            conns: &mut self.conns,
            dirty: &mut self.dirty,
            rtp_fd: self.sockets.udp.rtp.as_raw_fd(),
        };
        let tick = self
            .pacer
            .tick(now, &mut self.controller.sessions, &mut sink);
        self.stats.add_tick(&tick);
        self.window_max_late_us = self.window_max_late_us.max(tick.max_late_us);
        self.window_slots_full |= tick.sink_full;
        for i in 0..self.pacer.finished.len() {
            let key = self.pacer.finished[i];
            if let Some(s) = self.controller.sessions.get_mut(key) {
                // End of the PLAY range: back to Ready, positioned at the end.
                s.state = crate::session::SessionState::Ready;
                s.paused_npt_us = s.clock.map(|c| c.npt_at(now));
                s.clock = None;
                s.epoch = s.epoch.wrapping_add(1);
            }
            self.bye_key(key);
        }
    }

    fn housekeeping(&mut self, now: u64) {
        for s in self.controller.expire(now) {
            tracing::info!(shard = self.index, session = %s.id, "session timed out");
            self.bye(&s);
        }
        self.send_due_reports(now);
        self.update_admission();
    }

    fn stop(&mut self) {
        let keys: Vec<usize> = self.controller.sessions.iter().map(|(k, _)| k).collect();
        let n = keys.len();
        for key in keys {
            let s = self.controller.remove(key);
            self.bye(&s);
        }
        self.flush_dirty();
        let _ = self.ring.submit();
        // Give the BYEs a moment to leave.
        let deadline = Instant::now() + Duration::from_millis(300);
        while self.slots.in_flight() > 0 && Instant::now() < deadline {
            let ts = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            let now = now_us(self.epoch);
            self.reap(now);
            self.flush_dirty();
        }
        tracing::info!(
            shard = self.index,
            sessions = n,
            "shard stopped; sent RTCP BYE"
        );
    }
}

/// The production [`PacketSink`]: UDP packets become SENDMSG operations on the
/// shard's RTP socket from preallocated slots; interleaved packets join their
/// connection's write queue.
struct UringSink<'a> {
    ring: &'a mut IoUring,
    slots: &'a mut SlotPool,
    conns: &'a mut Slab<Conn>,
    dirty: &'a mut Vec<usize>,
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
                        return true;
                    }
                    if self.ring.submit().is_err() {
                        self.slots.release(index);
                        return false;
                    }
                }
            }
            TrackTransport::Interleaved { conn, .. } => {
                let key = conn.index as usize;
                let Some(c) = self.conns.get_mut(key) else {
                    return true;
                };
                if c.generation != conn.generation || c.closing {
                    return true;
                }
                let mut header = [0u8; crate::pacer::header::MAX_HEADER_LEN];
                header[..p.header.len()].copy_from_slice(p.header);
                c.enqueue(WriteItem::Rtp {
                    header,
                    header_len: p.header.len() as u8,
                    file: p.file as *const _,
                    track: p.track_index as u32,
                    packet: p.packet_index as u32,
                });
                if !c.dirty {
                    c.dirty = true;
                    self.dirty.push(key);
                }
                true
            }
        }
    }
}
