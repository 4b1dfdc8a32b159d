//! The progress line, once per second: sessions playing, packets/s, Mbit/s,
//! loss so far, and p99 lateness over the last second.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::shared::{lateness_histogram, Shared};

/// Totals read from the workers' gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted.
    pub bytes: u64,
    /// Packets lost so far.
    pub lost: u64,
    /// Packets expected so far.
    pub expected: u64,
    /// Sessions playing now.
    pub playing: u64,
    /// Sessions failed.
    pub failed: u64,
    /// Sessions playing or failed before play.
    pub settled: u64,
    /// Sessions started.
    pub started: u64,
    /// Churn mode: sessions that reached the end of their lifetime.
    pub ended: u64,
}

impl Snapshot {
    /// Sums the gauges of every worker.
    pub fn take(shared: &Shared) -> Self {
        let mut s = Snapshot::default();
        for g in &shared.gauges {
            s.packets += g.packets.load(Ordering::Relaxed);
            s.bytes += g.bytes.load(Ordering::Relaxed);
            s.lost += g.lost.load(Ordering::Relaxed);
            s.expected += g.expected.load(Ordering::Relaxed);
            s.playing += g.playing.load(Ordering::Relaxed);
            s.failed += g.failed.load(Ordering::Relaxed);
            s.settled += g.settled.load(Ordering::Relaxed);
            s.started += g.started.load(Ordering::Relaxed);
            s.ended += g.ended.load(Ordering::Relaxed);
        }
        s
    }
}

/// Takes the lateness the workers recorded since the last call, merged.
pub fn take_lateness(shared: &Shared) -> Histogram<u64> {
    let mut merged = lateness_histogram();
    for g in &shared.gauges {
        if let Ok(mut h) = g.lateness.lock() {
            let _ = merged.add(&*h);
            h.reset();
        }
    }
    merged
}

/// Writes the progress lines: through indicatif on a terminal, as plain
/// lines on stderr otherwise, or not at all when quiet.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last: Snapshot,
}

impl Progress {
    /// A progress writer; `quiet` silences it.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            return Self {
                bar: None,
                plain: false,
                last: Snapshot::default(),
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            Self {
                bar: Some(bar),
                plain: false,
                last: Snapshot::default(),
            }
        } else {
            Self {
                bar: None,
                plain: true,
                last: Snapshot::default(),
            }
        }
    }

    /// Prints one line for the `secs` seconds since the last one. `phase` is
    /// `ramp`, `measure` or `teardown`; `elapsed_s` the time since the start;
    /// `merged` the lateness of those seconds ([`take_lateness`]).
    pub fn line(
        &mut self,
        shared: &Shared,
        merged: &Histogram<u64>,
        requested: usize,
        phase: &str,
        elapsed_s: f64,
        secs: f64,
    ) {
        let now = Snapshot::take(shared);
        let mut p99 = 0u64;
        if !merged.is_empty() {
            p99 = merged.value_at_quantile(0.99);
        }
        let secs = secs.max(1e-3);
        let pps = now.packets.saturating_sub(self.last.packets) as f64 / secs;
        let mbit = now.bytes.saturating_sub(self.last.bytes) as f64 * 8.0 / secs / 1e6;
        let loss = if now.expected == 0 {
            0.0
        } else {
            now.lost as f64 * 100.0 / now.expected as f64
        };
        let churn = if now.ended > 0 {
            format!("  ended {} (replaced)", now.ended)
        } else {
            String::new()
        };
        let text = format!(
            "[{elapsed_s:6.1}s {phase:<8}] playing {}/{requested}  failed {}{churn}  {:.0} pkt/s  {:.2} Mbit/s  loss {:.3}%  p99 lateness {:.2} ms",
            now.playing,
            now.failed,
            pps,
            mbit,
            loss,
            p99 as f64 / 1000.0
        );
        self.last = now;
        if let Some(bar) = &self.bar {
            bar.println(&text);
            bar.set_message(format!(
                "{phase}: {} playing, {} failed",
                now.playing, now.failed
            ));
            bar.tick();
        } else if self.plain {
            eprintln!("{text}");
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
