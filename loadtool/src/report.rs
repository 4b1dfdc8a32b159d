//! The run's report: aggregation of the workers' results, and the JSON schema
//! (documented key by key in `loadtool/README.md`).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::kernel::UdpCounters;
use crate::media_kind::MediaKind;
use crate::plan::{Transport, TransportMode};
use crate::record::{SessionRecord, Totals};
use crate::shared::lateness_histogram;

/// Name and version of the tool.
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    /// `cadence-loadtool`.
    pub name: &'static str,
    /// Crate version.
    pub version: &'static str,
}

/// Settings the run used.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Sessions started per second.
    pub ramp_per_s: f64,
    /// Requested measurement window, s.
    pub duration_s: f64,
    /// Connect / request timeout, s.
    pub timeout_s: f64,
    /// Worker threads.
    pub workers: usize,
    /// CPUs the workers were pinned to (empty: not pinned).
    pub cpus: Vec<usize>,
    /// UDP port pairs per worker and address family.
    pub udp_pairs: usize,
    /// Receive buffer granted per UDP socket, bytes (0: no UDP).
    pub rcvbuf_bytes: usize,
    /// Event-loop coalescing interval, µs.
    pub coalesce_us: u64,
    /// Highest loss that passes, percent.
    pub max_loss_pct: f64,
}

/// Client counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Clients {
    /// `--clients`.
    pub requested: usize,
    /// Clients whose connect was started.
    pub started: usize,
    /// Clients whose PLAY was answered 2xx.
    pub playing: usize,
    /// Clients with a failure (any phase, `failures` gives causes).
    pub failed: usize,
    /// Clients over UDP / TCP.
    pub udp: usize,
    /// Clients over TCP.
    pub tcp: usize,
}

/// Packet counts, all streams.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Packets {
    /// RTP packets received and counted (duplicates included).
    pub received: u64,
    /// Packets expected from sequence numbers.
    pub expected: u64,
    /// Packets lost (sum over streams of expected − distinct received).
    pub lost: u64,
    /// `lost / expected`, percent.
    pub loss_pct: f64,
    /// Duplicate packets.
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// UDP datagrams for no known stream.
    pub unknown_ssrc: u64,
    /// Datagrams or frames that arrived after counting ended (not counted).
    pub after_stop: u64,
    /// Datagrams or interleaved frames that are not RTP.
    pub malformed: u64,
    /// Packets of streams with toffset announced whose RTP header extension
    /// does not parse (measured as sent at their RTP time).
    pub bad_extension: u64,
}

/// Byte counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Bytes {
    /// RTP bytes received (header + payload, no UDP/IP/interleaved framing).
    pub received: u64,
}

/// Rates over the measurement window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rates {
    /// RTP packets per second.
    pub packets_per_s: f64,
    /// RTP megabits per second (10^6 bits).
    pub mbit_per_s: f64,
}

/// Lateness percentiles, µs (early packets count as 0).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lateness {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Highest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// Packets recorded.
    pub samples: u64,
    /// Packets that arrived before their time (negative lateness).
    pub early_packets: u64,
}

/// How early the packets that arrived before their time were, µs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Earliness {
    /// Median over early packets.
    pub p50: u64,
    /// 99th percentile over early packets.
    pub p99: u64,
    /// Most early.
    pub max: u64,
    /// Early packets.
    pub packets: u64,
}

/// Distribution over streams or sessions, ms.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MsDistribution {
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Highest, ms.
    pub max: f64,
    /// Values recorded.
    pub samples: u64,
}

/// Lateness, earliness and jitter of the streams of one media kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MediaReport {
    /// Streams of this kind.
    pub streams: u64,
    /// RTP packets counted, duplicates included.
    pub packets: u64,
    /// Streams whose SDP announced the RFC 5450 toffset extension.
    pub toffset_streams: u64,
    /// Packets measured from their transmission time (RTP timestamp +
    /// toffset).
    pub toffset_packets: u64,
    /// Lateness, µs (early packets count as 0).
    pub lateness_us: Lateness,
    /// Earliness of early packets, µs.
    pub earliness_us: Earliness,
    /// Final RFC 3550 jitter of each stream with ≥ 2 packets, ms.
    pub jitter_ms: MsDistribution,
}

/// [`MediaReport`] per media kind (SDP `m=` line).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ByMedia {
    /// `m=video` streams.
    pub video: MediaReport,
    /// `m=audio` streams.
    pub audio: MediaReport,
    /// Streams of any other media type.
    pub other: MediaReport,
}

impl ByMedia {
    /// The report of `kind`.
    pub fn get(&self, kind: MediaKind) -> &MediaReport {
        match kind {
            MediaKind::Video => &self.video,
            MediaKind::Audio => &self.audio,
            MediaKind::Other => &self.other,
        }
    }

    fn get_mut(&mut self, kind: MediaKind) -> &mut MediaReport {
        match kind {
            MediaKind::Video => &mut self.video,
            MediaKind::Audio => &mut self.audio,
            MediaKind::Other => &mut self.other,
        }
    }
}

/// RTCP counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rtcp {
    /// Receiver reports sent.
    pub rr_sent: u64,
    /// RTCP packets received.
    pub received: u64,
    /// Sender reports received (over all streams).
    pub sender_reports: u64,
    /// Streams that got a BYE.
    pub byes: u64,
    /// RTCP packets that did not parse.
    pub malformed: u64,
}

/// RTSP counts beyond setup.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rtsp {
    /// Keep-alive requests sent.
    pub keepalives: u64,
    /// Reconnections of closed idle control connections (UDP sessions).
    pub reconnects: u64,
}

/// Host UDP counters over the run, and drops at the tool's own sockets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KernelUdp {
    /// Host `InDatagrams`, after − before.
    pub in_datagrams: u64,
    /// Host `RcvbufErrors`, after − before.
    pub rcvbuf_errors: u64,
    /// Host `InErrors`, after − before.
    pub in_errors: u64,
    /// Host `NoPorts`, after − before.
    pub no_ports: u64,
    /// Host `InCsumErrors`, after − before.
    pub in_csum_errors: u64,
    /// Host input-backlog drops (/proc/net/softnet_stat), after − before.
    pub backlog_dropped: u64,
    /// Datagrams the kernel dropped at the tool's own UDP sockets
    /// (/proc/net/udp `drops` of their inodes): loss caused by the tool not
    /// reading fast enough.
    pub tool_socket_drops: u64,
}

/// CPU time of the tool (or the server) over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cpu {
    /// User CPU, s.
    pub user_s: f64,
    /// System CPU, s.
    pub system_s: f64,
    /// (user + system) / packets received, µs.
    pub us_per_packet: f64,
}

/// CPU use of the tool's worker threads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolCpu {
    /// User CPU of the process, s.
    pub user_s: f64,
    /// System CPU of the process, s.
    pub system_s: f64,
    /// (user + system) / packets received, µs.
    pub us_per_packet: f64,
    /// Each worker thread's CPU time / its run time, percent. Near 100 the
    /// tool, not the server, may be what limits the run.
    pub workers_busy_pct: Vec<f64>,
}

/// CPU time of the server process given with `--server-pid`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCpu {
    /// The process id.
    pub pid: u32,
    /// Its CPU time and cost per packet this tool received.
    #[serde(flatten)]
    pub cpu: Cpu,
}

/// CPU spent from the start of the run until every client had played or
/// failed (the ramp), measured at both ends rather than interpolated, so a
/// ramp shorter than a second is measured as precisely as a long one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RampCpu {
    /// Wall time between the two samples, s (the ramp, plus at most the
    /// coordinator's 2 ms polling period).
    pub wall_s: f64,
    /// CPU of this tool (all threads, user + system), s.
    pub tool_cpu_s: f64,
    /// `tool_cpu_s / wall_s`, percent (100 per fully busy CPU).
    pub tool_pct: f64,
    /// Run time of the server's threads (with `--server-pid`), s.
    pub server_run_s: Option<f64>,
    /// `server_run_s / wall_s`, percent.
    pub server_pct: Option<f64>,
    /// Time the server's threads were runnable but other tasks held the
    /// CPU, / `wall_s`, percent: above a few percent the ramp was slowed by
    /// a busy machine, not measured on an idle one.
    pub server_wait_pct: Option<f64>,
}

/// Share of its CPUs the tool used during the ramp (`RampCpu::tool_pct`
/// over `workers`) from which it may have set the setup rate, percent.
pub const RAMP_TOOL_BUSY_PCT: f64 = 80.0;

/// A warning when the tool's CPU during the ramp, averaged over its
/// `workers` (one per CPU), reached [`RAMP_TOOL_BUSY_PCT`]: a setup rate
/// measured then is partly the tool's, not only the server's. The ramp is
/// short, so the whole-run busy share (which includes the window) hides it.
pub fn ramp_warning(ramp: Option<&RampCpu>, workers: usize) -> Option<String> {
    let r = ramp?;
    let per_cpu = r.tool_pct / workers.max(1) as f64;
    (per_cpu >= RAMP_TOOL_BUSY_PCT).then(|| {
        format!(
            "the tool was busy {per_cpu:.0}% of its CPUs during the ramp: it may have set the setup rate"
        )
    })
}

/// Churn mode: settings and what happened to the sessions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnReport {
    /// Shortest lifetime (play time), s.
    pub min_s: f64,
    /// Longest lifetime, s.
    pub max_s: f64,
    /// Percent of ending sessions that close without TEARDOWN.
    pub no_teardown_pct: f64,
    /// Seed of the lifetime draws (`--seed` repeats the run's draws).
    pub seed: u64,
    /// Sessions started, first sessions and successors.
    pub sessions: u64,
    /// Sessions that reached the end of their lifetime.
    pub ended: u64,
    /// Ended sessions that left as intended: TEARDOWN answered 2xx, or the
    /// connection closed without TEARDOWN by choice.
    pub completed: u64,
    /// Ended sessions torn down (TEARDOWN answered 2xx).
    pub teardowns: u64,
    /// Ended sessions that closed without TEARDOWN.
    pub closed_without_teardown: u64,
    /// Successor sessions started (generation ≥ 1).
    pub replaced: u64,
    /// Sessions that failed (any phase, TEARDOWN included).
    pub failed: u64,
}

/// Pass / fail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// True when no client failed and loss is at most `max_loss_pct`.
    pub passed: bool,
    /// Why it failed (empty when passed).
    pub reasons: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Tool name and version.
    pub tool: Tool,
    /// URLs, in round-robin order.
    pub urls: Vec<String>,
    /// `--transport`.
    pub transport: TransportMode,
    /// Settings used.
    pub settings: Settings,
    /// Measurement window: from the moment every client played or failed
    /// (or the first failure-free end of the ramp) to the end of counting, s.
    pub duration_s: f64,
    /// From the start of the run to that moment, s.
    pub ramp_s: f64,
    /// Whole run including TEARDOWN, s.
    pub wall_s: f64,
    /// True when SIGINT/SIGTERM cut the run short.
    pub interrupted: bool,
    /// Client counts.
    pub clients: Clients,
    /// Packet counts.
    pub packets: Packets,
    /// Byte counts.
    pub bytes: Bytes,
    /// Rates during the measurement window.
    pub rates: Rates,
    /// Lateness, µs.
    pub lateness_us: Lateness,
    /// Earliness of early packets, µs.
    pub earliness_us: Earliness,
    /// RFC 3550 jitter at the end of each stream, ms, over streams.
    pub jitter_ms: MsDistribution,
    /// Lateness, earliness and jitter per media kind.
    pub media: ByMedia,
    /// Connect to PLAY reply, ms, over sessions that played.
    pub setup_ms: MsDistribution,
    /// RTCP.
    pub rtcp: Rtcp,
    /// RTSP.
    pub rtsp: Rtsp,
    /// Host UDP counters, after − before (null when /proc is unreadable).
    pub kernel_udp: Option<KernelUdp>,
    /// Tool CPU.
    pub cpu: ToolCpu,
    /// Server CPU (with `--server-pid`).
    pub server_cpu: Option<ServerCpu>,
    /// CPU spent during the ramp (start of the run to the moment every
    /// client had settled); null when the run ended before that.
    pub ramp_cpu: Option<RampCpu>,
    /// Churn mode (`--churn`); null otherwise.
    pub churn: Option<ChurnReport>,
    /// The window opened and closed by SIGUSR1 (see `crate::mark`); null
    /// when no SIGUSR1 arrived.
    pub marked: Option<crate::mark::MarkedReport>,
    /// Failure cause → clients.
    pub failures: BTreeMap<String, u64>,
    /// Errors that stopped workers (sockets could not be created, …).
    pub errors: Vec<String>,
    /// Pass / fail.
    pub verdict: Verdict,
    /// Conditions that make the measurement doubtful without failing it
    /// (a saturated worker, drops at the tool's own sockets).
    pub warnings: Vec<String>,
    /// One entry per client.
    pub sessions: Vec<SessionRecord>,
}

/// Inputs to [`build`] that come from the coordinator rather than workers.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// URLs.
    pub urls: Vec<String>,
    /// Transport mode.
    pub transport: TransportMode,
    /// Settings.
    pub settings: Settings,
    /// Requested clients.
    pub requested: usize,
    /// Measurement window, s.
    pub duration_s: f64,
    /// Ramp, s.
    pub ramp_s: f64,
    /// Whole run, s.
    pub wall_s: f64,
    /// Interrupted by a signal.
    pub interrupted: bool,
    /// Packets and bytes counted during the window.
    pub window_packets: u64,
    /// Bytes counted during the window.
    pub window_bytes: u64,
    /// Kernel UDP counters, after − before.
    pub kernel_udp: Option<UdpCounters>,
    /// Tool CPU over the run.
    pub cpu: crate::cpu::CpuTimes,
    /// Server pid and CPU over the run.
    pub server_cpu: Option<(u32, crate::cpu::CpuTimes)>,
    /// CPU during the ramp.
    pub ramp_cpu: Option<RampCpu>,
    /// Churn settings, in churn mode.
    pub churn: Option<crate::churn::Churn>,
    /// The SIGUSR1 window, when one was opened.
    pub marked: Option<crate::mark::MarkedReport>,
}

fn ms_histogram() -> Histogram<u64> {
    // µs resolution, up to an hour.
    lateness_histogram()
}

fn ms_distribution(h: &Histogram<u64>) -> MsDistribution {
    if h.is_empty() {
        return MsDistribution::default();
    }
    MsDistribution {
        p50: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1000.0,
        max: h.max() as f64 / 1000.0,
        samples: h.len(),
    }
}

/// What happened to the sessions of a churn run.
fn churn_report(c: &crate::churn::Churn, sessions: &[SessionRecord]) -> ChurnReport {
    use crate::churn::Ending;
    let mut r = ChurnReport {
        min_s: c.min.as_secs_f64(),
        max_s: c.max.as_secs_f64(),
        no_teardown_pct: c.no_teardown_pct,
        seed: c.seed,
        ..ChurnReport::default()
    };
    for s in sessions.iter().filter(|s| s.started) {
        r.sessions += 1;
        r.replaced += u64::from(s.generation > 0);
        r.failed += u64::from(s.failure.is_some());
        let Some(ended) = s.ended else { continue };
        r.ended += 1;
        if s.failure.is_none() {
            match ended {
                Ending::Teardown => r.teardowns += 1,
                Ending::Close => r.closed_without_teardown += 1,
            }
        }
    }
    r.completed = r.teardowns + r.closed_without_teardown;
    r
}

/// Lateness percentiles of `h` (µs), with `early_packets` early packets.
fn lateness_of(h: &Histogram<u64>, early_packets: u64) -> Lateness {
    if h.is_empty() {
        return Lateness {
            early_packets,
            ..Lateness::default()
        };
    }
    Lateness {
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        mean: h.mean(),
        samples: h.len(),
        early_packets,
    }
}

/// Earliness percentiles of `h` (µs).
fn earliness_of(h: &Histogram<u64>) -> Earliness {
    if h.is_empty() {
        return Earliness::default();
    }
    Earliness {
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
        packets: h.len(),
    }
}

fn cpu_of(t: &crate::cpu::CpuTimes, packets: u64) -> Cpu {
    Cpu {
        user_s: t.user.as_secs_f64(),
        system_s: t.system.as_secs_f64(),
        us_per_packet: if packets == 0 {
            0.0
        } else {
            t.total().as_secs_f64() * 1e6 / packets as f64
        },
    }
}

/// Adds worker `totals` into `sum`.
fn add_totals(sum: &mut Totals, t: &Totals) {
    sum.packets += t.packets;
    sum.bytes += t.bytes;
    sum.early_packets += t.early_packets;
    sum.unknown_ssrc += t.unknown_ssrc;
    sum.after_stop += t.after_stop;
    sum.malformed_rtp += t.malformed_rtp;
    sum.bad_extension += t.bad_extension;
    sum.unknown_channel += t.unknown_channel;
    sum.rtcp_received += t.rtcp_received;
    sum.rtcp_sent += t.rtcp_sent;
    sum.rtcp_malformed += t.rtcp_malformed;
    sum.keepalives += t.keepalives;
}

/// Builds the report from the workers' results.
pub fn build(
    facts: RunFacts,
    results: Vec<crate::worker::WorkerResult>,
    max_loss_pct: f64,
) -> Report {
    let mut totals = Totals::default();
    let mut lateness = lateness_histogram();
    let mut earliness = lateness_histogram();
    let mut kind_lateness: [crate::worker::KindLateness; 3] = Default::default();
    let mut sessions = Vec::new();
    let mut errors = Vec::new();
    let mut rcvbuf = usize::MAX;
    let mut socket_drops = 0u64;
    let mut busy = Vec::new();
    for r in results {
        socket_drops += r.socket_drops;
        if !r.thread_wall.is_zero() {
            busy.push(
                (r.thread_cpu.as_secs_f64() / r.thread_wall.as_secs_f64() * 1000.0).round() / 10.0,
            );
        }
        add_totals(&mut totals, &r.totals);
        for (sum, k) in kind_lateness.iter_mut().zip(&r.by_kind) {
            let _ = lateness.add(&k.lateness);
            let _ = earliness.add(&k.earliness);
            let _ = sum.lateness.add(&k.lateness);
            let _ = sum.earliness.add(&k.earliness);
        }
        sessions.extend(r.sessions);
        if let Some(e) = r.error {
            errors.push(e);
        }
        if r.udp_pairs > 0 {
            rcvbuf = rcvbuf.min(r.rcvbuf);
        }
    }
    sessions.sort_by_key(|s| s.index);
    let mut settings = facts.settings;
    settings.rcvbuf_bytes = if rcvbuf == usize::MAX { 0 } else { rcvbuf };

    let mut clients = Clients {
        requested: facts.requested,
        ..Clients::default()
    };
    let mut packets = Packets::default();
    let mut rtcp = Rtcp {
        rr_sent: totals.rtcp_sent,
        received: totals.rtcp_received,
        malformed: totals.rtcp_malformed,
        ..Rtcp::default()
    };
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut jitter = ms_histogram();
    let mut kind_jitter = [ms_histogram(), ms_histogram(), ms_histogram()];
    let mut media = ByMedia::default();
    let mut setup = ms_histogram();
    let mut reconnects = 0u64;
    for s in &sessions {
        match s.transport {
            Transport::Udp => clients.udp += 1,
            Transport::Tcp => clients.tcp += 1,
        }
        clients.started += usize::from(s.started);
        clients.playing += usize::from(s.setup_ms.is_some());
        reconnects += u64::from(s.reconnects);
        if let Some(f) = &s.failure {
            clients.failed += 1;
            *failures.entry(f.cause.clone()).or_default() += 1;
        }
        if let Some(ms) = s.setup_ms {
            setup.saturating_record((ms * 1000.0).round() as u64);
        }
        for st in &s.streams {
            packets.expected += st.expected;
            packets.lost += st.lost;
            packets.duplicates += st.duplicates;
            packets.reordered += st.reordered;
            rtcp.sender_reports += st.sender_reports;
            rtcp.byes += u64::from(st.bye);
            let m = media.get_mut(st.kind);
            m.streams += 1;
            m.packets += st.packets;
            m.toffset_streams += u64::from(st.toffset_id.is_some());
            m.toffset_packets += st.toffset_packets;
            if st.packets > 1 {
                let us = (st.jitter_ms * 1000.0).round() as u64;
                jitter.saturating_record(us);
                kind_jitter[st.kind.index()].saturating_record(us);
            }
        }
    }
    packets.received = totals.packets;
    packets.unknown_ssrc = totals.unknown_ssrc;
    packets.after_stop = totals.after_stop;
    packets.malformed = totals.malformed_rtp;
    packets.bad_extension = totals.bad_extension;
    packets.loss_pct = if packets.expected == 0 {
        0.0
    } else {
        packets.lost as f64 * 100.0 / packets.expected as f64
    };

    let lateness_us = lateness_of(&lateness, totals.early_packets);
    for kind in MediaKind::ALL {
        let k = &kind_lateness[kind.index()];
        let m = media.get_mut(kind);
        m.lateness_us = lateness_of(&k.lateness, k.earliness.len());
        m.earliness_us = earliness_of(&k.earliness);
        m.jitter_ms = ms_distribution(&kind_jitter[kind.index()]);
    }

    let window = facts.duration_s;
    let rates = if window > 0.0 {
        Rates {
            packets_per_s: facts.window_packets as f64 / window,
            mbit_per_s: facts.window_bytes as f64 * 8.0 / window / 1e6,
        }
    } else {
        Rates::default()
    };

    let mut reasons = Vec::new();
    if clients.failed > 0 {
        reasons.push(format!(
            "{} of {} clients failed",
            clients.failed, clients.requested
        ));
    }
    if packets.loss_pct > max_loss_pct {
        reasons.push(format!(
            "loss {:.4}% exceeds {}%",
            packets.loss_pct, max_loss_pct
        ));
    }
    if !errors.is_empty() {
        reasons.push(format!("{} worker error(s)", errors.len()));
    }
    let mut warnings = Vec::new();
    for (i, b) in busy.iter().enumerate() {
        if *b >= 90.0 {
            warnings.push(format!(
                "worker {i} was busy {b:.0}% of the run: the tool may have limited the measurement"
            ));
        }
    }
    if let Some(w) = ramp_warning(facts.ramp_cpu.as_ref(), settings.workers) {
        warnings.push(w);
    }
    if socket_drops > 0 {
        warnings.push(format!(
            "{socket_drops} datagrams were dropped at the tool's own sockets (its receive buffers were full)"
        ));
    }
    // First sessions that never started (successors that were still queued
    // at the end are not sessions).
    let not_run = sessions
        .iter()
        .filter(|s| s.generation == 0 && !s.started)
        .count();
    let churn = facts.churn.map(|c| churn_report(&c, &sessions));
    if not_run > 0 && !facts.interrupted {
        reasons.push(format!("{not_run} clients never started"));
    }

    Report {
        tool: Tool {
            name: "cadence-loadtool",
            version: env!("CARGO_PKG_VERSION"),
        },
        urls: facts.urls,
        transport: facts.transport,
        settings,
        duration_s: facts.duration_s,
        ramp_s: facts.ramp_s,
        wall_s: facts.wall_s,
        interrupted: facts.interrupted,
        clients,
        bytes: Bytes {
            received: totals.bytes,
        },
        rates,
        lateness_us,
        earliness_us: earliness_of(&earliness),
        jitter_ms: ms_distribution(&jitter),
        media,
        setup_ms: ms_distribution(&setup),
        rtcp,
        rtsp: Rtsp {
            keepalives: totals.keepalives,
            reconnects,
        },
        kernel_udp: facts.kernel_udp.map(|k| KernelUdp {
            in_datagrams: k.in_datagrams,
            rcvbuf_errors: k.rcvbuf_errors,
            in_errors: k.in_errors,
            no_ports: k.no_ports,
            in_csum_errors: k.in_csum_errors,
            backlog_dropped: k.backlog_dropped,
            tool_socket_drops: socket_drops,
        }),
        cpu: {
            let c = cpu_of(&facts.cpu, totals.packets);
            ToolCpu {
                user_s: c.user_s,
                system_s: c.system_s,
                us_per_packet: c.us_per_packet,
                workers_busy_pct: busy,
            }
        },
        server_cpu: facts.server_cpu.map(|(pid, t)| ServerCpu {
            pid,
            cpu: cpu_of(&t, totals.packets),
        }),
        ramp_cpu: facts.ramp_cpu,
        churn,
        marked: facts.marked,
        failures,
        errors,
        verdict: Verdict {
            passed: reasons.is_empty(),
            reasons,
        },
        warnings,
        packets,
        sessions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(tool_pct: f64) -> RampCpu {
        RampCpu {
            wall_s: 0.6,
            tool_cpu_s: 0.6 * tool_pct / 100.0,
            tool_pct,
            server_run_s: None,
            server_pct: None,
            server_wait_pct: None,
        }
    }

    #[test]
    fn ramp_warning_is_per_cpu_of_the_tool() {
        assert!(ramp_warning(None, 1).is_none());
        assert!(ramp_warning(Some(&ramp(79.0)), 1).is_none());
        let w = ramp_warning(Some(&ramp(92.0)), 1).unwrap();
        assert!(w.contains("92%"), "{w}");
        // 150% over two workers is 75% of each: no warning.
        assert!(ramp_warning(Some(&ramp(150.0)), 2).is_none());
        assert!(ramp_warning(Some(&ramp(170.0)), 2).is_some());
        // Zero workers does not divide by zero.
        assert!(ramp_warning(Some(&ramp(90.0)), 0).is_some());
    }
}
