//! The shard: one thread pinned to one CPU, owning one io_uring, one RTSP
//! listener (SO_REUSEPORT), one UDP RTP/RTCP socket pair and its sessions.
//!
//! The shard is the I/O around a sans-IO [`Endpoint`], in three parts:
//! - [`driver`]: the io_uring, its armed operations, reaping and waiting;
//! - [`conns`]: the connection table (generation-checked lookups, a state
//!   per connection) and [`conn`], one connection's write queue;
//! - [`router`]: connection input to requests, requests through the
//!   endpoint, responses back, forwarding to other shards, and requests
//!   parked while their file compiles.
//!
//! Each loop iteration: reap completions (accepts, RTSP input, finished
//! sends, RTCP), take messages from other shards, run the pacer tick (which
//! queues every due packet of every session as SENDMSG operations), run the
//! endpoint's timers, send its RTCP, flush connection write queues, then
//! submit everything in one `io_uring_enter` that sleeps until the
//! endpoint's next deadline or the next completion.

mod admin;
pub mod bufring;
pub mod conn;
pub mod conns;
pub mod driver;
pub mod ip_limit;
pub mod mailbox;
pub mod net;
pub mod ops;
mod router;
mod rtcp_send;
pub mod slots;
mod stats;
pub mod tunnel;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtsp_types::Request;

use crate::catalog::Catalog;
use crate::endpoint::{Endpoint, EndpointConfig};
use crate::log_limit::LogLimiter;
use crate::pipeline::{CloseReason, Pipeline};
use crate::session::{ConnId, SessionId};
use conns::ConnTable;
pub use driver::{new_ring, Driver, RECV_BUFFERS, RECV_BUFFER_LEN, RTCP_RECVS};
pub use mailbox::ShardHandle;
use ops::Op;
use slots::SlotPool;
pub use stats::ShardStats;

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
    /// Bounded send-ahead, µs (see [`crate::pacer::Pacer::send_ahead_us`];
    /// 0: none).
    pub send_ahead_us: u64,
    /// Work budget of one submitting io_uring_enter, µs (0: a whole tick's
    /// batch in one call).
    pub submit_budget_us: u64,
    /// Longest run of control work in one loop turn before the pacer
    /// runs, µs (0: every ready completion first); see `Shard::reap`.
    pub control_slice_us: u64,
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
    /// A connection must complete a request within this long of starting
    /// it (or of connecting), µs; otherwise it gets 408 and is closed.
    pub request_timeout_us: u64,
    /// A connection that holds no session and sends nothing for this long
    /// is closed, µs.
    pub idle_timeout_us: u64,
    /// Most RTSP connections per client address, process-wide (0: no cap).
    pub max_connections_per_ip: u32,
    /// Limits on PLAY's Scale and Speed (`max_scale`, `max_speed`).
    pub rate_limits: crate::session::RateLimits,
    /// Addresses SETUP's `destination=` may name besides the client's.
    pub allow_destination: Arc<Vec<ipnet::IpNet>>,
    /// Peers whose connections start with a PROXY protocol header
    /// (`trusted_proxies`); a header from any other peer is refused.
    pub trusted_proxies: Arc<crate::proxy_protocol::TrustedProxies>,
    /// Extra listeners for RTSP over HTTP tunnels (`--http-tunnel`).
    pub http_tunnel: Vec<SocketAddr>,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8554)),
            udp_port_base: 6970,
            tick_us: 500,
            send_ahead_us: 0,
            submit_budget_us: 0,
            control_slice_us: DEFAULT_CONTROL_SLICE_US,
            session_timeout_s: 60,
            tcp_backlog_bytes: 4 << 20,
            send_slots: 8192,
            ring_entries: 4096,
            udp_buffer_bytes: 4 << 20,
            sr_interval_us: 5_000_000,
            request_timeout_us: 10_000_000,
            idle_timeout_us: 60_000_000,
            max_connections_per_ip: 1000,
            rate_limits: crate::session::RateLimits::default(),
            allow_destination: Arc::default(),
            trusted_proxies: Arc::default(),
            http_tunnel: Vec::new(),
        }
    }
}

/// A message to a shard.
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
    /// As a cookie's home: a tunnel GET registers.
    TunnelRegisterGet {
        /// Its cookie.
        cookie: crate::tunnel::Cookie,
        /// Where it lives.
        at: tunnel::GetAt,
    },
    /// As a cookie's home: a tunnel GET closed.
    TunnelGetClosed {
        /// Its cookie.
        cookie: crate::tunnel::Cookie,
        /// Where it lived.
        at: tunnel::GetAt,
    },
    /// As a cookie's home: a tunnel POST arrives (its socket moves with it).
    TunnelOfferPost {
        /// Its cookie.
        cookie: crate::tunnel::Cookie,
        /// The POST.
        post: tunnel::PostHandoff,
    },
    /// As the GET's shard: the POST joins GET connection `get`.
    TunnelAdoptPost {
        /// The GET connection on the receiving shard.
        get: ConnId,
        /// The POST.
        post: tunnel::PostHandoff,
    },
    /// As the GET's shard: close the unpaired GET connection `get`.
    TunnelCloseGet {
        /// The GET connection on the receiving shard.
        get: ConnId,
    },
    /// End session `id` (an operator's request); the answer says whether it
    /// was found.
    EndSession {
        /// The session.
        id: SessionId,
        /// Why.
        reason: CloseReason,
        /// Where to answer.
        reply: Sender<bool>,
    },
    /// List the shard's sessions (admin API).
    ListSessions {
        /// Where to answer.
        reply: Sender<Vec<crate::admin::SessionInfo>>,
    },
    /// These catalog paths were rewritten in place: end the sessions still
    /// playing their old bytes.
    FilesChanged(Arc<Vec<String>>),
    /// Stop: send RTCP BYE on every session and return from [`Shard::run`].
    Stop,
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

/// The sockets a shard owns, bound before its thread starts so that bind
/// errors are reported at startup.
pub struct ShardSockets {
    listener: TcpListener,
    /// Listeners for RTSP over HTTP tunnels only (`--http-tunnel`).
    tunnel_listeners: Vec<TcpListener>,
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
        let mut tunnel_listeners = Vec::new();
        for addr in &config.http_tunnel {
            tunnel_listeners.push(net::reuseport_listener(*addr).map_err(|source| {
                ShardError::Bind {
                    what: format!("HTTP tunnel listener {addr}"),
                    source,
                }
            })?);
        }
        Ok(ShardSockets {
            listener,
            tunnel_listeners,
            udp,
        })
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

/// What a shard is built from.
pub struct ShardParts {
    /// Index of the shard.
    pub index: usize,
    /// Settings.
    pub config: ShardConfig,
    /// Its bound sockets.
    pub sockets: ShardSockets,
    /// The catalog.
    pub catalog: Arc<dyn Catalog>,
    /// Its extensions.
    pub pipeline: Pipeline,
    /// Its mailbox.
    pub mailbox: mailbox::Mailbox,
    /// Handles of every shard, by index (itself included).
    pub peers: Vec<ShardHandle>,
    /// The compile thread.
    pub compiler: Sender<CompileJob>,
    /// The process-wide clock origin of shard clocks.
    pub epoch: Instant,
    /// The process-wide per-address connection counter.
    pub limiter: Arc<ip_limit::IpLimiter>,
    /// Where the shard publishes its send rate.
    pub load: Arc<crate::server::ServerLoad>,
    /// The shard's metrics block.
    pub metrics: Arc<crate::metrics::ShardMetrics>,
}

/// A request parked until its file is compiled.
struct Parked {
    ctx: crate::rtsp::RequestCtx,
    parked: crate::endpoint::Parked,
    reply_to: Option<usize>,
    path: String,
    /// The connection whose input waits with the request.
    source: ConnId,
}

/// One shard.
pub struct Shard {
    index: usize,
    config: ShardConfig,
    driver: Driver,
    /// Connections whose multishot RECV ended for lack of buffers.
    rearm: Vec<ConnId>,
    sockets: ShardSockets,
    endpoint: Endpoint,
    slots: SlotPool,
    conns: ConnTable,
    mailbox: mailbox::Mailbox,
    peers: Vec<ShardHandle>,
    compiler: Sender<CompileJob>,
    parked: Vec<Parked>,
    compiling: Vec<String>,
    epoch: Instant,
    stats: ShardStats,
    accept_armed: bool,
    /// While out of descriptors, accepting resumes at this shard clock, µs.
    accept_paused_until: Option<u64>,
    accept_log: LogLimiter,
    refused_log: LogLimiter,
    /// Internal faults (io_uring_enter errors, the compile thread gone):
    /// they can repeat every loop turn, so a few lines per 10 s.
    fault_log: LogLimiter,
    next_sweep_us: u64,
    expired: Vec<(ConnId, conns::Expiry)>,
    stopping: bool,
    /// Tunnel listeners whose multishot accept is armed.
    tunnel_accept_armed: Vec<bool>,
    /// As home shard of some tunnel cookies: their pairing registry.
    tunnels: tunnel::Registry,
    load: Arc<crate::server::ServerLoad>,
    metrics: Arc<crate::metrics::ShardMetrics>,
    stats_since: Instant,
}

/// How often connection deadlines are checked, µs.
const SWEEP_US: u64 = 500_000;
/// How long accepting pauses after EMFILE/ENFILE, µs.
const ACCEPT_BACKOFF_US: u64 = 100_000;
/// Connections shed per EMFILE/ENFILE.
const SHED_PER_EMFILE: usize = 16;

/// Shard clock: µs since the process-wide epoch.
fn now_us(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// Wall clock: µs since the Unix epoch.
fn unix_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Longest sleep in one wait, µs (the loop wakes at least this often).
const MAX_WAIT_US: u64 = 1_000_000;

/// Default of [`ShardConfig::control_slice_us`], the longest run of control
/// work (accepting, RTSP requests and responses, RTCP) in one loop turn
/// before the pacer runs, µs. A burst of setups (a
/// flash crowd's DESCRIBE/SETUP/PLAY at ~70 µs each) would otherwise hold
/// the playing sessions' packets until the whole completion batch is
/// handled; past this slice the due packets are sent and submitted first.
/// 0 (off): measured with a flash crowd on a 2-vCPU guest, a turn's control
/// work rarely passed 500 µs (about 5 turns a second) and p99 lateness did
/// not change beyond the run-to-run spread (results/haltpoll-0.2.0/).
pub const DEFAULT_CONTROL_SLICE_US: u64 = 0;

impl Shard {
    /// Builds a shard from its parts. Creates the io_uring here (call on the
    /// shard's own thread).
    pub fn new(parts: ShardParts) -> Result<Self, ShardError> {
        let ShardParts {
            index,
            config,
            sockets,
            catalog,
            pipeline,
            mailbox,
            peers,
            compiler,
            epoch,
            limiter,
            load,
            metrics,
        } = parts;
        let driver =
            Driver::new(config.ring_entries, config.submit_budget_us).map_err(ShardError::Uring)?;
        let sockets_tunnels = sockets.tunnel_listeners.len();
        let tunnel_timeout_us = config.request_timeout_us;
        let v6 = config.listen.is_ipv6();
        let endpoint = Endpoint::new(
            EndpointConfig {
                shard: index,
                session_timeout_s: config.session_timeout_s,
                server_rtp_port: sockets.rtp_port(),
                tick_us: config.tick_us,
                send_ahead_us: config.send_ahead_us,
                sr_interval_us: config.sr_interval_us,
                rate_limits: config.rate_limits,
                allow_destination: config.allow_destination.clone(),
                ..EndpointConfig::default()
            },
            catalog,
            pipeline,
            rand::random(),
            now_us(epoch),
        );
        Ok(Shard {
            index,
            slots: SlotPool::new(config.send_slots, v6),
            config,
            driver,
            rearm: Vec::new(),
            sockets,
            endpoint,
            conns: ConnTable::new(limiter),
            mailbox,
            peers,
            compiler,
            parked: Vec::new(),
            compiling: Vec::new(),
            epoch,
            stats: ShardStats::default(),
            accept_armed: false,
            accept_paused_until: None,
            accept_log: LogLimiter::new(1, 10_000_000),
            refused_log: LogLimiter::new(1, 10_000_000),
            fault_log: LogLimiter::new(3, 10_000_000),
            next_sweep_us: 0,
            expired: Vec::new(),
            stopping: false,
            tunnel_accept_armed: vec![false; sockets_tunnels],
            tunnels: tunnel::Registry::new(crate::tunnel::RegistryConfig {
                pending_timeout_us: tunnel_timeout_us,
                ..Default::default()
            }),
            load,
            metrics,
            stats_since: Instant::now(),
        })
    }

    fn now(&self) -> u64 {
        now_us(self.epoch)
    }

    fn arm_accept(&mut self) {
        self.driver.arm_accept(self.sockets.listener.as_raw_fd(), 0);
        self.accept_armed = true;
    }

    fn arm_tunnel_accept(&mut self, index: usize) {
        if let Some(l) = self.sockets.tunnel_listeners.get(index) {
            self.driver.arm_accept(l.as_raw_fd(), index as u32 + 1);
            if let Some(a) = self.tunnel_accept_armed.get_mut(index) {
                *a = true;
            }
        }
    }

    fn arm_rtcp_recv(&mut self, index: usize) {
        self.driver
            .arm_rtcp_recv(self.sockets.udp.rtcp.as_raw_fd(), index);
    }

    fn arm_recv(&mut self, id: ConnId) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.recv_pending() || c.is_closing() {
            return;
        }
        c.set_recv_pending(true);
        let fd = c.raw_fd();
        self.driver.arm_recv(fd, id);
    }

    /// Runs the shard until [`ShardMsg::Stop`]; then sends RTCP BYE on every
    /// session and returns.
    pub fn run(mut self) {
        self.arm_accept();
        self.rearm_tunnel_accepts();
        self.driver.arm_wake(self.mailbox.wake.as_raw_fd());
        for i in 0..self.driver.rtcp_slots() {
            self.arm_rtcp_recv(i);
        }
        loop {
            let now = self.now();
            self.reap(now);
            self.drain_messages(now);
            if self.stopping {
                self.stop();
                return;
            }
            // Control work above took time: pace against a fresh clock.
            let now = self.now();
            self.pace(now);
            let unix = unix_now_us();
            let events = self.endpoint.poll_timers(now, unix);
            if events.housekeeping {
                self.load
                    .set_shard_rate(self.index, self.endpoint.send_rate_bps());
                self.load
                    .set_shard_committed(self.index, self.endpoint.committed_bps());
                self.load
                    .set_shard_connections(self.index, self.conns.len());
            }
            if events.stats {
                let (wait, submit_errors) = self.driver.take_wait_stats();
                self.stats.add_wait(&wait, submit_errors);
                // Busy share: the part of the window not spent waiting in
                // io_uring_enter.
                let window = self.stats_since.elapsed().as_micros().max(1) as f64;
                self.metrics
                    .set_busy_share((1.0 - self.stats.enter_us as f64 / window).clamp(0.0, 1.0));
                self.stats_since = Instant::now();
                self.stats
                    .log(self.index, self.endpoint.controller().len(), 10);
            }
            if now >= self.next_sweep_us {
                self.sweep(now);
                self.expire_tunnels(now);
                self.next_sweep_us = now + SWEEP_US;
            }
            if self.accept_paused_until.is_some_and(|t| now >= t) {
                self.accept_paused_until = None;
                if !self.accept_armed {
                    self.arm_accept();
                }
                self.rearm_tunnel_accepts();
            }
            self.send_rtcp();
            self.flush_dirty();
            for id in std::mem::take(&mut self.rearm) {
                self.arm_recv(id);
            }
            let after = self.now();
            let wait = if self.conns.has_dirty() {
                0
            } else {
                let mut deadline = self.next_sweep_us;
                if let Some(d) = self.endpoint.next_deadline(after) {
                    deadline = deadline.min(d);
                }
                if let Some(t) = self.accept_paused_until {
                    deadline = deadline.min(t);
                }
                deadline.saturating_sub(after).min(MAX_WAIT_US)
            };
            if let Err(e) = self.driver.submit_and_wait(wait) {
                let now = self.now();
                if let Some(suppressed) = self.fault_log.allow(now) {
                    tracing::error!(shard = self.index, error = %e, suppressed, "io_uring_enter failed");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Handles the ready completions. Control work (everything but send
    /// slots) is timed: once it has run `control_slice_us` since the turn
    /// began or the pacer last ran, the pacer runs and its sends are
    /// submitted before the next completion is handled.
    fn reap(&mut self, now: u64) {
        let cqes = self.driver.reap();
        let mut slice_start = now;
        let slice_us = self.config.control_slice_us;
        for &(data, res, flags) in &cqes {
            let op = Op::decode(data);
            if slice_us > 0 && !matches!(op, Some(Op::Slot(_)) | None) {
                let t = self.now();
                if t.saturating_sub(slice_start) >= slice_us {
                    self.stats.control_slices += 1;
                    self.pace(t);
                    self.flush_dirty();
                    self.driver.submit();
                    slice_start = t;
                }
            }
            match op {
                Some(Op::Slot(index)) => {
                    self.slots.release(index);
                    if res < 0 {
                        self.stats.send_errors += 1;
                    }
                }
                Some(Op::Accept(0)) => self.on_accept(res, flags, now),
                Some(Op::Accept(i)) => self.on_tunnel_accept(i as usize - 1, res, flags, now),
                Some(Op::Recv(id)) => self.on_recv(id, res, flags, now),
                Some(Op::Write(id)) => self.on_write(id, res, now),
                Some(Op::RtcpRecv(i)) => self.on_rtcp(i as usize, res, now),
                Some(Op::Wake) => {
                    // Messages are drained every iteration; just re-arm.
                    if !self.stopping {
                        self.driver.arm_wake(self.mailbox.wake.as_raw_fd());
                    }
                }
                Some(Op::Cancel) | None => {}
            }
        }
        self.driver.recycle_cqes(cqes);
    }

    fn on_accept(&mut self, res: i32, flags: u32, now: u64) {
        if !io_uring::cqueue::more(flags) {
            self.accept_armed = false;
        }
        if res < 0 {
            if res == -libc::ECANCELED {
                return;
            }
            self.stats.accept_errors += 1;
            let out_of_fds = res == -libc::EMFILE || res == -libc::ENFILE;
            let shed = if out_of_fds {
                self.out_of_descriptors(now)
            } else {
                0
            };
            if let Some(suppressed) = self.accept_log.allow(now) {
                tracing::warn!(
                    shard = self.index,
                    error = %std::io::Error::from_raw_os_error(-res),
                    failures_since_last_line = suppressed + 1,
                    shed,
                    connections = self.conns.len(),
                    "accept failed"
                );
            }
            if !self.accept_armed && !self.stopping && self.accept_paused_until.is_none() {
                self.arm_accept();
            }
            return;
        }
        if !self.accept_armed && self.accept_paused_until.is_none() {
            self.arm_accept();
        }
        self.on_accepted(res, now);
    }

    /// A completion of a tunnel listener's multishot accept.
    fn on_tunnel_accept(&mut self, index: usize, res: i32, flags: u32, now: u64) {
        if !io_uring::cqueue::more(flags) {
            if let Some(a) = self.tunnel_accept_armed.get_mut(index) {
                *a = false;
            }
        }
        if res < 0 {
            if res == -libc::EMFILE || res == -libc::ENFILE {
                self.stats.accept_errors += 1;
                self.out_of_descriptors(now);
            }
        } else {
            self.on_accepted(res, now);
        }
        if self.accept_paused_until.is_none() && !self.stopping {
            self.rearm_tunnel_accepts();
        }
    }

    fn rearm_tunnel_accepts(&mut self) {
        for i in 0..self.tunnel_accept_armed.len() {
            if !self.tunnel_accept_armed[i] {
                self.arm_tunnel_accept(i);
            }
        }
    }

    /// A new connection `res` (a descriptor, or a negative errno already
    /// handled): counted against its address unless it comes from a
    /// trusted proxy (whose PROXY header names the client), then read.
    fn on_accepted(&mut self, res: i32, now: u64) {
        if res < 0 {
            return;
        }
        // SAFETY: a successful accept returns a new descriptor we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(res) };
        net::tune_accepted(fd.as_raw_fd());
        let Some((local, peer)) = net::addresses(fd.as_raw_fd()) else {
            return;
        };
        let from_proxy = self.config.trusted_proxies.contains(peer.ip());
        let slot = if from_proxy {
            None
        } else {
            self.conns.limiter().acquire(peer.ip())
        };
        if slot.is_none() && !from_proxy {
            self.stats.refused_per_ip += 1;
            if let Some(suppressed) = self.refused_log.allow(now) {
                tracing::warn!(
                    shard = self.index,
                    %peer,
                    max = self.conns.limiter().max(),
                    refused_since_last_line = suppressed + 1,
                    "connection refused: address at max_connections_per_ip"
                );
            }
            return;
        }
        let deadline = now.saturating_add(self.config.request_timeout_us);
        let Some(id) = self.conns.insert(fd, peer, local, slot, now, deadline) else {
            return;
        };
        if from_proxy {
            if let Some(c) = self.conns.get_mut(id) {
                c.proxy_header = Some(Vec::new());
            }
        }
        tracing::debug!(shard = self.index, %peer, "RTSP connection");
        self.arm_recv(id);
    }

    /// EMFILE/ENFILE: stop accepting for a moment (the multishot accept
    /// would otherwise fail again at once, forever) and shed the oldest
    /// connections that hold no session, so that a client with a session
    /// to set up finds a descriptor. Playing sessions are never shed.
    /// Returns how many were shed.
    fn out_of_descriptors(&mut self, now: u64) -> usize {
        if self.accept_armed {
            self.driver.cancel(Op::Accept(0));
        }
        self.accept_paused_until = Some(now + ACCEPT_BACKOFF_US);
        let endpoint = &self.endpoint;
        let victims = self.conns.oldest_sessionless(SHED_PER_EMFILE, |id| {
            endpoint.controller().conn_has_sessions(id)
        });
        let n = victims.len();
        for id in victims {
            self.stats.shed += 1;
            self.close_conn(id, CloseReason::Disconnect, now);
        }
        n
    }

    /// Ends the connections past their deadlines: 408 for a request not
    /// completed in time, a quiet close for an idle connection without
    /// session.
    fn sweep(&mut self, now: u64) {
        let mut expired = std::mem::take(&mut self.expired);
        let endpoint = &self.endpoint;
        self.conns.expired(
            now,
            self.config.idle_timeout_us,
            |id| endpoint.controller().conn_has_sessions(id),
            &mut expired,
        );
        for &(id, why) in &expired {
            match why {
                conns::Expiry::RequestTimeout => {
                    self.stats.request_timeouts += 1;
                    self.write_to_conn(id, crate::rtsp::response::request_timeout_bytes(), true);
                }
                conns::Expiry::Idle => {
                    self.stats.idle_closed += 1;
                    self.close_conn(id, CloseReason::Disconnect, now);
                }
            }
        }
        expired.clear();
        self.expired = expired;
    }

    fn on_recv(&mut self, id: ConnId, res: i32, flags: u32, now: u64) {
        let bid = io_uring::cqueue::buffer_select(flags);
        let more = io_uring::cqueue::more(flags);
        let Some(c) = self.conns.get_mut(id) else {
            if let Some(bid) = bid {
                self.driver.recycle(bid);
            }
            return;
        };
        if !more {
            c.set_recv_pending(false);
        }
        if c.is_closing() {
            if let Some(bid) = bid {
                self.driver.recycle(bid);
            }
            self.conns.free_if_done(id);
            return;
        }
        let handing_off = matches!(c.role, conn::Role::HandingOff { .. });
        if res == -libc::ENOBUFS && !handing_off {
            // Every buffer is in use: re-arm once this loop has recycled some.
            self.rearm.push(id);
            return;
        }
        if res <= 0 {
            if let Some(bid) = bid {
                self.driver.recycle(bid);
            }
            if handing_off && res < 0 {
                // The receive ended as asked: the descriptor may move.
                self.finish_handoff(id, now);
            } else {
                self.close_conn(id, CloseReason::Disconnect, now);
            }
            return;
        }
        c.input_at(now);
        let mut bad_body = false;
        let mut untrusted_proxy = false;
        if let Some(bid) = bid {
            let data = self.driver.buffer(bid, res as usize);
            match &mut c.role {
                conn::Role::Rtsp => match &mut c.proxy_header {
                    Some(header) => header.extend_from_slice(data),
                    None => {
                        let first = c.framer.scanned_bytes() == 0 && c.framer.buffered() == 0;
                        untrusted_proxy = first
                            && (data.starts_with(b"PROXY ")
                                || data.starts_with(&crate::proxy_protocol::V2_SIGNATURE[..]));
                        c.framer.push(data);
                    }
                },
                conn::Role::TunnelPost { body, .. } => bad_body = body.push(data).is_err(),
                conn::Role::HandingOff { body, .. } => body.extend_from_slice(data),
                // The server→client half of a tunnel: interleaved RTCP.
                conn::Role::TunnelGet { .. } => c.framer.push(data),
            }
            self.driver.recycle(bid);
        }
        if untrusted_proxy {
            self.stats.malformed += 1;
            if let Some(suppressed) = self.refused_log.allow(now) {
                let peer = self.conns.get(id).map(|c| c.peer());
                tracing::warn!(
                    shard = self.index,
                    ?peer,
                    suppressed,
                    "PROXY protocol header from a peer not in trusted_proxies; closing"
                );
            }
            self.close_conn(id, CloseReason::Disconnect, now);
            return;
        }
        if bad_body {
            tracing::debug!(
                shard = self.index,
                "malformed base64 in a tunnel POST; closing it"
            );
            self.close_conn(id, CloseReason::Disconnect, now);
            return;
        }
        if handing_off {
            if !more {
                self.finish_handoff(id, now);
            }
            return;
        }
        if !self.take_proxy_header(id, now) {
            return;
        }
        self.process_input(id, now);
        let timeout = self.config.request_timeout_us;
        if let Some(c) = self.conns.get_mut(id) {
            c.update_request_deadline(now, timeout);
        }
        if !more {
            self.arm_recv(id);
        }
    }

    fn on_write(&mut self, id: ConnId, res: i32, now: u64) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if res < 0 {
            c.write_failed();
            self.close_conn(id, CloseReason::Disconnect, now);
            return;
        }
        c.wrote(res as usize);
        if c.is_closing() {
            self.conns.free_if_done(id);
            return;
        }
        self.flush(id, now);
    }

    fn flush_dirty(&mut self) {
        let now = self.now();
        let list = self.conns.take_dirty();
        for &id in &list {
            self.flush(id, now);
        }
        self.conns.restore_dirty(list);
    }

    fn flush(&mut self, id: ConnId, now: u64) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        c.clear_dirty();
        if c.is_closing() {
            return;
        }
        if c.queued_bytes() > self.config.tcp_backlog_bytes {
            tracing::info!(shard = self.index, peer = %c.peer(), queued = c.queued_bytes(), "client is not reading; dropping it");
            self.stats.dropped_slow += 1;
            self.metrics.tcp_backlog_drop();
            self.close_conn(id, CloseReason::SlowClient, now);
            return;
        }
        if let Some(msg) = c.prepare_write() {
            let fd = c.raw_fd();
            self.driver
                .sendmsg(fd, msg, libc::MSG_NOSIGNAL as u32, Op::Write(id));
        } else if c.write_idle() && c.state() == conn::ConnState::Draining {
            self.close_conn(id, CloseReason::Disconnect, now);
        }
    }

    /// Starts closing a connection: its interleaved sessions end (for
    /// `reason`), in-flight operations are cancelled, and the slot is freed
    /// when they finish.
    fn close_conn(&mut self, id: ConnId, reason: CloseReason, now: u64) {
        let Some(c) = self.conns.get_mut(id) else {
            return;
        };
        if c.is_closing() {
            return;
        }
        c.set_state(conn::ConnState::Closing);
        c.framer = Default::default();
        let tunnel_cookie = match &c.role {
            conn::Role::TunnelGet { cookie } => Some(cookie.clone()),
            _ => None,
        };
        // SAFETY: shutdown on our own socket makes pending operations complete.
        unsafe { libc::shutdown(c.raw_fd(), libc::SHUT_RDWR) };
        let recv_pending = c.recv_pending();
        if let Some(cookie) = tunnel_cookie {
            self.tunnel_get_closed(cookie, id);
        }
        self.endpoint
            .connection_closed(id, reason, now, unix_now_us());
        if recv_pending {
            self.driver.cancel(Op::Recv(id));
        }
        self.conns.free_if_done(id);
    }

    fn on_rtcp(&mut self, index: usize, res: i32, now: u64) {
        if res > 0 {
            if let Some(data) = self.driver.rtcp_data(index, res as usize) {
                let ok = self.endpoint.on_rtcp(data, now);
                self.stats.count_rtcp(ok);
            }
        }
        if !self.stopping {
            self.arm_rtcp_recv(index);
        }
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
                    let ctx =
                        crate::endpoint::request_ctx(conn, peer, local, now, unix_now_us(), true);
                    self.handle_request(ctx, *request, Some(from), conn);
                }
                ShardMsg::Response { conn, bytes, close } => self.write_to_conn(conn, bytes, close),
                ShardMsg::Compiled(path) => self.compiled(&path, now),
                ShardMsg::EndSession { id, reason, reply } => {
                    let found = self.endpoint.end_session(id, reason, now, unix_now_us());
                    let _ = reply.send(found);
                }
                ShardMsg::TunnelRegisterGet { cookie, at } => self.register_get(cookie, at, now),
                ShardMsg::TunnelGetClosed { cookie, at } => self.unregister_get(&cookie, at),
                ShardMsg::TunnelOfferPost { cookie, post } => self.offer_post(cookie, post, now),
                ShardMsg::TunnelAdoptPost { get, post } => self.adopt_post(get, post, now),
                ShardMsg::TunnelCloseGet { get } => {
                    self.close_conn(get, CloseReason::Disconnect, now)
                }
                ShardMsg::ListSessions { reply } => {
                    let _ = reply.send(admin::session_infos(&self.endpoint, self.index, now));
                }
                ShardMsg::FilesChanged(paths) => {
                    self.endpoint.files_changed(&paths, now, unix_now_us());
                }
                ShardMsg::Stop => self.stopping = true,
            }
        }
    }

    fn pace(&mut self, now: u64) {
        let unix = unix_now_us();
        let mut sink = self.driver.sink(
            &mut self.slots,
            &mut self.conns,
            self.sockets.udp.rtp.as_raw_fd(),
        );
        let tick = self.endpoint.tick(now, unix, &mut sink);
        self.stats.add_tick(&tick);
        self.metrics.add_tick(&tick);
        if tick.packets > 0 {
            self.metrics.add_lateness(&tick.lateness);
        }
    }

    fn stop(&mut self) {
        let n = self.endpoint.controller().len();
        let now = self.now();
        self.endpoint.shutdown(now, unix_now_us());
        self.send_rtcp();
        self.flush_dirty();
        self.driver.submit();
        // Give the BYEs a moment to leave.
        let deadline = Instant::now() + Duration::from_millis(300);
        while (self.slots.in_flight() > 0 || self.conns.has_dirty()) && Instant::now() < deadline {
            let _ = self.driver.submit_and_wait(10_000);
            let now = self.now();
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
