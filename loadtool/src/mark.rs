//! The marked window: a span of the run opened and closed from outside
//! (SIGUSR1), over which loss and lateness are reported on their own. A
//! benchmark uses it to measure already-playing sessions while something
//! else happens to the server (another load tool's flash crowd), without the
//! ramp or the quiet seconds before diluting the figures.
//!
//! The coordinator feeds it once per second with the lateness recorded in
//! that second (merged from the workers' gauges) and the gauge totals; the
//! window's figures are the differences of the totals between its ends, and
//! the distribution of the lateness seconds inside it.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::progress::Snapshot;
use crate::shared::lateness_histogram;

/// What the report says about the marked window (`marked` in the JSON).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MarkedReport {
    /// Opening, s after the start of the run.
    pub start_s: f64,
    /// Closing (or the end of counting when the window was still open), s
    /// after the start of the run.
    pub end_s: f64,
    /// `end_s − start_s`.
    pub duration_s: f64,
    /// False when the window was still open at the end of counting.
    pub closed: bool,
    /// Sessions playing at the opening.
    pub playing_at_start: u64,
    /// Sessions playing at the closing.
    pub playing_at_end: u64,
    /// Sessions that failed inside the window.
    pub failed: u64,
    /// RTP packets counted inside the window.
    pub packets: u64,
    /// Packets lost inside the window (RFC 3550 A.1 counts, difference of
    /// the running totals, refreshed by the workers every 0.5 s).
    pub lost: u64,
    /// Packets expected inside the window (same source as `lost`).
    pub expected: u64,
    /// `lost` / `expected`, percent.
    pub loss_pct: f64,
    /// Lateness of the packets inside the window, µs.
    pub lateness_us: MarkedLateness,
    /// The highest p99 lateness of any one second inside the window, µs
    /// ("p99 throughout").
    pub max_second_p99_us: u64,
}

/// Lateness percentiles of the marked window, µs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MarkedLateness {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Highest.
    pub max: u64,
}

#[derive(Debug)]
enum State {
    Idle,
    Open,
    Closed,
}

/// The marked window's accumulator.
#[derive(Debug)]
pub struct Mark {
    state: State,
    start_s: f64,
    end_s: f64,
    at_start: Snapshot,
    at_end: Snapshot,
    lateness: Histogram<u64>,
    max_second_p99: u64,
}

impl Default for Mark {
    fn default() -> Self {
        Mark {
            state: State::Idle,
            start_s: 0.0,
            end_s: 0.0,
            at_start: Snapshot::default(),
            at_end: Snapshot::default(),
            lateness: lateness_histogram(),
            max_second_p99: 0,
        }
    }
}

impl Mark {
    /// A window not opened yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One signal: opens the window the first time, closes it the second;
    /// later signals are ignored. `at_s` is seconds since the start of the
    /// run, `snap` the gauge totals then.
    pub fn toggle(&mut self, at_s: f64, snap: Snapshot) {
        match self.state {
            State::Idle => {
                self.state = State::Open;
                self.start_s = at_s;
                self.at_start = snap;
            }
            State::Open => self.close(at_s, snap),
            State::Closed => {}
        }
    }

    fn close(&mut self, at_s: f64, snap: Snapshot) {
        self.state = State::Closed;
        self.end_s = at_s;
        self.at_end = snap;
    }

    /// True while the window is open.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open)
    }

    /// The lateness recorded in one second (or less) of the run: counted
    /// when the window is open.
    pub fn second(&mut self, lateness: &Histogram<u64>) {
        if !self.is_open() || lateness.is_empty() {
            return;
        }
        let _ = self.lateness.add(lateness);
        self.max_second_p99 = self.max_second_p99.max(lateness.value_at_quantile(0.99));
    }

    /// The report at the end of counting (`at_s`, `snap`): None when the
    /// window was never opened; a window still open ends there.
    pub fn finish(mut self, at_s: f64, snap: Snapshot) -> Option<MarkedReport> {
        let closed = match self.state {
            State::Idle => return None,
            State::Open => {
                self.close(at_s, snap);
                false
            }
            State::Closed => true,
        };
        let (a, b) = (&self.at_start, &self.at_end);
        let lost = b.lost.saturating_sub(a.lost);
        let expected = b.expected.saturating_sub(a.expected);
        let h = &self.lateness;
        let q = |x: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(x)
            }
        };
        Some(MarkedReport {
            start_s: self.start_s,
            end_s: self.end_s,
            duration_s: (self.end_s - self.start_s).max(0.0),
            closed,
            playing_at_start: a.playing,
            playing_at_end: b.playing,
            failed: b.failed.saturating_sub(a.failed),
            packets: b.packets.saturating_sub(a.packets),
            lost,
            expected,
            loss_pct: if expected == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / expected as f64
            },
            lateness_us: MarkedLateness {
                p50: q(0.5),
                p99: q(0.99),
                p999: q(0.999),
                max: if h.is_empty() { 0 } else { h.max() },
            },
            max_second_p99_us: self.max_second_p99,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(packets: u64, lost: u64, expected: u64, playing: u64, failed: u64) -> Snapshot {
        Snapshot {
            packets,
            lost,
            expected,
            playing,
            failed,
            ..Snapshot::default()
        }
    }

    fn second_of(values: &[u64]) -> Histogram<u64> {
        let mut h = lateness_histogram();
        for v in values {
            h.record(*v).unwrap();
        }
        h
    }

    #[test]
    fn never_opened_reports_nothing() {
        let mut m = Mark::new();
        m.second(&second_of(&[5_000]));
        assert_eq!(m.finish(10.0, snap(1, 0, 1, 1, 0)), None);
    }

    #[test]
    fn counts_only_the_seconds_between_the_signals() {
        let mut m = Mark::new();
        // Before the window: a very late second that must not count.
        m.second(&second_of(&[900_000]));
        m.toggle(2.0, snap(1_000, 3, 1_003, 100, 1));
        let quiet: Vec<u64> = (1..=1000).collect(); // 1..1000 µs
        m.second(&second_of(&quiet));
        let busy: Vec<u64> = (1..=1000).map(|v| v * 4).collect(); // up to 4 ms
        m.second(&second_of(&busy));
        m.toggle(4.5, snap(3_000, 13, 3_013, 150, 2));
        // After the window: ignored, and a third signal changes nothing.
        m.second(&second_of(&[800_000]));
        m.toggle(6.0, snap(9_000, 99, 9_099, 10, 50));
        let r = m.finish(8.0, snap(9_999, 100, 10_000, 0, 60)).unwrap();
        assert!(r.closed);
        assert_eq!((r.start_s, r.end_s, r.duration_s), (2.0, 4.5, 2.5));
        assert_eq!((r.packets, r.lost, r.expected), (2_000, 10, 2_010));
        assert!((r.loss_pct - 10.0 * 100.0 / 2_010.0).abs() < 1e-9);
        assert_eq!(
            (r.playing_at_start, r.playing_at_end, r.failed),
            (100, 150, 1)
        );
        // 2,000 values: 1..1000, and 4..4000 in steps of 4; the 1,000th
        // smallest is 800 (800 of the first, 200 of the second).
        assert!(
            r.lateness_us.max >= 3_998 && r.lateness_us.max <= 4_002,
            "{r:?}"
        );
        assert!(
            r.lateness_us.p99 >= 3_900 && r.lateness_us.p99 <= 3_930,
            "{r:?}"
        );
        assert!(
            r.lateness_us.p50 >= 795 && r.lateness_us.p50 <= 805,
            "{r:?}"
        );
        // The worst second's p99 (the busy one), not the window's.
        assert!(
            r.max_second_p99_us >= 3_955 && r.max_second_p99_us <= 3_965,
            "{r:?}"
        );
    }

    #[test]
    fn a_window_left_open_ends_with_counting() {
        let mut m = Mark::new();
        m.toggle(1.0, snap(10, 0, 10, 5, 0));
        m.second(&second_of(&[100, 200]));
        let r = m.finish(3.0, snap(30, 1, 31, 5, 0)).unwrap();
        assert!(!r.closed);
        assert_eq!((r.end_s, r.packets, r.lost), (3.0, 20, 1));
        assert_eq!(r.lateness_us.max, 200);
    }

    #[test]
    fn counters_that_go_back_do_not_underflow() {
        let mut m = Mark::new();
        m.toggle(1.0, snap(10, 5, 10, 5, 3));
        m.toggle(2.0, snap(5, 1, 4, 1, 0));
        let r = m.finish(3.0, Snapshot::default()).unwrap();
        assert_eq!((r.packets, r.lost, r.expected, r.failed), (0, 0, 0, 0));
        assert_eq!(r.loss_pct, 0.0);
        assert_eq!(r.lateness_us, MarkedLateness::default());
    }
}
