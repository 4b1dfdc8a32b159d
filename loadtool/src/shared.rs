//! State shared between the coordinating thread and the workers: the end of
//! the measurement window, and per-worker gauges for the progress line.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest lateness a histogram tracks, µs (one hour).
pub const MAX_LATENESS_US: u64 = 3_600_000_000;

/// A lateness histogram: 1 µs to one hour, 3 significant digits.
pub fn lateness_histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_LATENESS_US, 3).expect("constant histogram bounds are valid")
}

/// Live counters of one worker, written by it and read by the progress line.
#[derive(Debug)]
pub struct Gauges {
    /// RTP packets counted so far.
    pub packets: AtomicU64,
    /// RTP bytes counted so far.
    pub bytes: AtomicU64,
    /// Packets lost so far (sum over streams, refreshed each second).
    pub lost: AtomicU64,
    /// Packets expected so far (refreshed each second).
    pub expected: AtomicU64,
    /// Sessions playing now.
    pub playing: AtomicU64,
    /// Sessions that failed.
    pub failed: AtomicU64,
    /// Sessions that reached PLAY or failed before it.
    pub settled: AtomicU64,
    /// Sessions started (connect begun).
    pub started: AtomicU64,
    /// Churn mode: sessions that reached the end of their lifetime.
    pub ended: AtomicU64,
    /// When the last first session (generation 0) of this worker played or
    /// failed, ns after [`Shared::t0`] (0: none yet). The ramp ends at the
    /// highest of these, exactly, whatever the coordinator's polling period.
    pub last_settled_ns: AtomicU64,
    /// Lateness recorded since the progress line last took it.
    pub lateness: Mutex<Histogram<u64>>,
}

impl Default for Gauges {
    fn default() -> Self {
        Self {
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            playing: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            settled: AtomicU64::new(0),
            started: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            last_settled_ns: AtomicU64::new(0),
            lateness: Mutex::new(lateness_histogram()),
        }
    }
}

/// Shared run state.
#[derive(Debug)]
pub struct Shared {
    /// Start of the run (client start offsets are relative to it).
    pub t0: Instant,
    /// End of counting, ns after `t0`; `u64::MAX` while not decided.
    stop_at_ns: AtomicU64,
    /// True when the run was interrupted (SIGINT/SIGTERM).
    pub interrupted: AtomicBool,
    /// One per worker.
    pub gauges: Vec<Gauges>,
}

impl Shared {
    /// State for `workers` workers, starting now.
    pub fn new(workers: usize) -> Self {
        Self {
            t0: Instant::now(),
            stop_at_ns: AtomicU64::new(u64::MAX),
            interrupted: AtomicBool::new(false),
            gauges: (0..workers).map(|_| Gauges::default()).collect(),
        }
    }

    /// Sets the end of counting to `at`, or keeps an earlier end already set.
    pub fn stop_at(&self, at: Instant) {
        let ns = at
            .saturating_duration_since(self.t0)
            .as_nanos()
            .min(u128::from(u64::MAX - 1)) as u64;
        self.stop_at_ns.fetch_min(ns, Ordering::SeqCst);
    }

    /// Records that a worker's session settled now (see
    /// [`Gauges::last_settled_ns`]).
    pub fn note_settled(&self, worker: usize) {
        let ns = self.t0.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        if let Some(g) = self.gauges.get(worker) {
            g.last_settled_ns.fetch_max(ns.max(1), Ordering::Relaxed);
        }
    }

    /// When the last session settled over all workers, after `t0`; `None`
    /// before any did.
    pub fn last_settled(&self) -> Option<Duration> {
        let ns = self
            .gauges
            .iter()
            .map(|g| g.last_settled_ns.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        (ns > 0).then(|| Duration::from_nanos(ns))
    }

    /// The end of counting, once decided.
    pub fn stop_time(&self) -> Option<Instant> {
        match self.stop_at_ns.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(self.t0 + Duration::from_nanos(ns)),
        }
    }
}
