//! The coordinator: plans the clients, starts the workers, decides the
//! measurement window, prints progress, samples CPU and kernel counters, and
//! builds the report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpu::CpuTimes;
use crate::kernel::UdpCounters;
use crate::mark::Mark;
use crate::plan::{plan, resolve_urls, PlanError, TransportMode};
use crate::progress::{take_lateness, Progress, Snapshot};
use crate::report::{build, Report, RunFacts, Settings};
use crate::shared::Shared;
use crate::worker::{spawn, WorkerConfig};

/// Everything a run needs (the command line, validated).
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Clients to run.
    pub clients: usize,
    /// Clients started per second.
    pub ramp_per_s: f64,
    /// Measurement window.
    pub duration: Duration,
    /// Transport choice.
    pub transport: TransportMode,
    /// CPUs to pin workers to (one worker per CPU).
    pub cpus: Option<Vec<usize>>,
    /// Worker threads when `cpus` is not given (default: CPUs available).
    pub threads: Option<usize>,
    /// Connect / request timeout.
    pub timeout: Duration,
    /// UDP port pairs per worker and address family.
    pub udp_pairs: usize,
    /// Receive buffer per UDP socket, bytes.
    pub rcvbuf: usize,
    /// Event-loop coalescing interval.
    pub coalesce: Duration,
    /// Mean RTCP receiver-report interval.
    pub rr_interval: Duration,
    /// Sessions start with DESCRIBE (no OPTIONS).
    pub no_options: bool,
    /// Highest loss that passes, percent.
    pub max_loss_pct: f64,
    /// Server process to measure CPU of.
    pub server_pid: Option<u32>,
    /// Churn mode (`--churn`): lifetimes and replacement of sessions.
    pub churn: Option<crate::churn::Churn>,
    /// No progress lines.
    pub quiet: bool,
    /// URLs, assigned round-robin.
    pub urls: Vec<String>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A URL is unusable.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A CPU in `--cpus` does not exist or is not allowed.
    #[error("CPU {0} is not available to this process")]
    NoSuchCpu(usize),
    /// Not enough file descriptors.
    #[error("{needed} file descriptors needed, the limit is {limit} (ulimit -n); use fewer clients or UDP pairs")]
    TooFewFds {
        /// Needed.
        needed: u64,
        /// Limit.
        limit: u64,
    },
    /// A thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Spawn(std::io::Error),
}

/// Raises the soft fd limit to the hard one and returns it.
fn raise_fd_limit() -> u64 {
    // SAFETY: zeroed rlimit is valid; get/setrlimit read/write it.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 1024;
    }
    if rl.rlim_cur < rl.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return rl.rlim_max;
        }
    }
    rl.rlim_cur
}

/// Runs the load and returns the report.
pub fn run(cfg: &RunConfig) -> Result<Report, RunError> {
    let targets = resolve_urls(&cfg.urls)?;
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let cpus: Vec<usize> = cfg.cpus.clone().unwrap_or_default();
    for &c in &cpus {
        if !available.is_empty() && !available.contains(&c) {
            return Err(RunError::NoSuchCpu(c));
        }
    }
    let default_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = if cpus.is_empty() {
        cfg.threads.unwrap_or(default_threads)
    } else {
        cpus.len()
    }
    .clamp(1, cfg.clients.max(1));

    let plans = plan(
        cfg.clients,
        &targets,
        cfg.transport,
        cfg.ramp_per_s,
        workers,
    );
    let families = {
        let v4 = targets.iter().any(|(_, a)| a.is_ipv4());
        let v6 = targets.iter().any(|(_, a)| a.is_ipv6());
        u64::from(v4) + u64::from(v6)
    };
    let uses_udp = cfg.transport != TransportMode::Tcp;
    let per_worker = 2 + if uses_udp {
        2 * cfg.udp_pairs as u64 * families
    } else {
        0
    };
    // In churn mode an ending session may still wait for its TEARDOWN reply
    // while its successor connects: up to two connections per client.
    let per_client = if cfg.churn.is_some() { 2 } else { 1 };
    let needed = per_client * cfg.clients as u64 + workers as u64 * per_worker + 32;
    let limit = raise_fd_limit();
    if needed > limit {
        return Err(RunError::TooFewFds { needed, limit });
    }

    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal exits at once (status 130); the first ends the
        // window and lets the sessions tear down.
        let _ =
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&interrupted));
        let _ = signal_hook::flag::register(signal, Arc::clone(&interrupted));
    }

    // SIGUSR1 opens the marked window, a second one closes it (crate::mark).
    let mark_signal = Arc::new(AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&mark_signal));

    let kernel_before = UdpCounters::sample();
    let cpu_before = CpuTimes::this_process();
    let server_before = cfg.server_pid.and_then(CpuTimes::of_pid);
    let ramp_before = RampSample::take(cfg.server_pid);
    let shared = Arc::new(Shared::new(workers));
    let mut handles = Vec::with_capacity(workers);
    for (id, clients) in plans.into_iter().enumerate() {
        let config = WorkerConfig {
            id,
            cpu: cpus.get(id).map(|&id| core_affinity::CoreId { id }),
            udp_pairs: cfg.udp_pairs,
            rcvbuf: cfg.rcvbuf,
            timeout: cfg.timeout,
            coalesce: cfg.coalesce,
            rr_interval: cfg.rr_interval,
            no_options: cfg.no_options,
            churn: cfg.churn,
            clients_total: cfg.clients,
        };
        match spawn(config, clients, Arc::clone(&shared)) {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.stop_at(Instant::now());
                for h in handles {
                    let _ = h.join();
                }
                return Err(RunError::Spawn(e));
            }
        }
    }

    let mut progress = Progress::new(cfg.quiet);
    let t0 = shared.t0;
    let mut last_line = t0;
    let mut settled_at: Option<(Instant, Snapshot)> = None;
    let mut stop: Option<(Instant, Snapshot)> = None;
    let mut ramp_after: Option<RampSample> = None;
    let mut mark = Mark::new();
    loop {
        // Poll often during the ramp so that the CPU sample that closes it
        // is taken within a few ms of its end.
        std::thread::sleep(if settled_at.is_none() {
            RAMP_POLL
        } else {
            Duration::from_millis(50)
        });
        let now = Instant::now();
        let snap = Snapshot::take(&shared);
        let early_exit = handles.iter().any(|h| h.is_finished());
        if settled_at.is_none() && (snap.settled as usize >= cfg.clients || early_exit) {
            ramp_after = Some(RampSample::take(cfg.server_pid));
            settled_at = Some((now, snap));
            shared.stop_at(now + cfg.duration);
        }
        if interrupted.load(Ordering::Relaxed) && !shared.interrupted.swap(true, Ordering::SeqCst) {
            let at = now;
            if settled_at.is_none() {
                settled_at = Some((at, snap));
            }
            shared.stop_at(at);
        }
        if mark_signal.swap(false, Ordering::SeqCst) && stop.is_none() {
            // What was recorded before the signal belongs outside the window
            // (to within the workers' 0.5 s publishing interval).
            if !mark.is_open() {
                drop(take_lateness(&shared));
            } else {
                mark.second(&take_lateness(&shared));
            }
            mark.toggle(now.duration_since(t0).as_secs_f64(), snap);
        }
        if stop.is_none() {
            if let Some(at) = shared.stop_time() {
                if now >= at {
                    stop = Some((now, snap));
                }
            }
        }
        if now.duration_since(last_line) >= Duration::from_secs(1) {
            let phase = match (settled_at, stop) {
                (None, _) => "ramp",
                (Some(_), None) => "measure",
                (Some(_), Some(_)) => "teardown",
            };
            let secs = now.duration_since(last_line).as_secs_f64();
            let merged = take_lateness(&shared);
            if stop.is_none() {
                mark.second(&merged);
            }
            progress.line(
                &shared,
                &merged,
                cfg.clients,
                phase,
                now.duration_since(t0).as_secs_f64(),
                secs,
            );
            last_line = now;
        }
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
    }
    progress.finish();
    let end = Instant::now();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| {
            h.join().unwrap_or_else(|_| crate::worker::WorkerResult {
                sessions: Vec::new(),
                by_kind: Default::default(),
                totals: Default::default(),
                udp_pairs: 0,
                rcvbuf: 0,
                error: Some("a worker thread panicked".into()),
                socket_drops: 0,
                thread_cpu: Duration::ZERO,
                thread_wall: Duration::ZERO,
            })
        })
        .collect();
    let cpu = CpuTimes::this_process().since(&cpu_before);
    let kernel_udp = kernel_before
        .zip(UdpCounters::sample())
        .map(|(b, a)| a.since(&b));
    let server_cpu = cfg
        .server_pid
        .zip(server_before)
        .and_then(|(pid, before)| CpuTimes::of_pid(pid).map(|after| (pid, after.since(&before))));

    let (settled_time, settled_snap) = settled_at.unwrap_or((end, Snapshot::default()));
    // The ramp ends when the last client settled (exact, from the workers),
    // not when the coordinator noticed; the coordinator's time is the
    // fallback when the run ended before every client settled.
    let ramp_s = shared
        .last_settled()
        .filter(|_| settled_snap.settled as usize >= cfg.clients)
        .unwrap_or_else(|| settled_time.saturating_duration_since(t0))
        .as_secs_f64();
    let ramp_cpu = ramp_after.map(|after| after.since(&ramp_before));
    let (stop_time, stop_snap) = stop.unwrap_or((end, Snapshot::take(&shared)));
    if mark.is_open() {
        mark.second(&take_lateness(&shared));
    }
    let marked = mark.finish(stop_time.duration_since(t0).as_secs_f64(), stop_snap);
    let facts = RunFacts {
        urls: cfg.urls.clone(),
        transport: cfg.transport,
        settings: Settings {
            ramp_per_s: cfg.ramp_per_s,
            duration_s: cfg.duration.as_secs_f64(),
            timeout_s: cfg.timeout.as_secs_f64(),
            workers,
            cpus,
            udp_pairs: cfg.udp_pairs,
            rcvbuf_bytes: 0,
            coalesce_us: cfg.coalesce.as_micros() as u64,
            max_loss_pct: cfg.max_loss_pct,
        },
        requested: cfg.clients,
        duration_s: stop_time
            .saturating_duration_since(settled_time)
            .as_secs_f64(),
        ramp_s,
        ramp_cpu,
        wall_s: end.saturating_duration_since(t0).as_secs_f64(),
        interrupted: shared.interrupted.load(Ordering::Relaxed),
        window_packets: stop_snap.packets.saturating_sub(settled_snap.packets),
        window_bytes: stop_snap.bytes.saturating_sub(settled_snap.bytes),
        kernel_udp,
        cpu,
        server_cpu,
        churn: cfg.churn,
        marked,
    };
    Ok(build(facts, results, cfg.max_loss_pct))
}

/// Coordinator polling period until every client settled, so the ramp's
/// closing CPU sample is at most this late.
const RAMP_POLL: Duration = Duration::from_millis(2);

/// CPU counters at one instant, to measure the ramp.
#[derive(Debug, Clone, Copy)]
struct RampSample {
    at: Instant,
    tool: CpuTimes,
    server: Option<crate::cpu::SchedTimes>,
}

impl RampSample {
    fn take(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            tool: CpuTimes::this_process(),
            server: server_pid.and_then(crate::cpu::sched_times_of_pid),
        }
    }

    /// What was spent from `before` to `self`.
    fn since(&self, before: &Self) -> crate::report::RampCpu {
        let wall = self.at.saturating_duration_since(before.at).as_secs_f64();
        let pct = |cpu: f64| if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 };
        let tool = self.tool.since(&before.tool).total().as_secs_f64();
        let server = self.server.zip(before.server).map(|(a, b)| {
            (
                a.run.saturating_sub(b.run).as_secs_f64(),
                a.wait.saturating_sub(b.wait).as_secs_f64(),
            )
        });
        crate::report::RampCpu {
            wall_s: wall,
            tool_cpu_s: tool,
            tool_pct: pct(tool),
            server_run_s: server.map(|s| s.0),
            server_pct: server.map(|s| pct(s.0)),
            server_wait_pct: server.map(|s| pct(s.1)),
        }
    }
}
