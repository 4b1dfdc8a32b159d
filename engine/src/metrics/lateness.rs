//! The lateness histogram: how long after its due time each RTP packet left,
//! in fixed µs buckets from 100 µs to 1 s.
//!
//! The pacer fills a plain [`LatenessTally`] per tick (no atomics, a few
//! compares per packet); the shard folds it into its
//! [`ShardMetrics`](super::ShardMetrics) once per tick with one relaxed add
//! per non-empty bucket.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the buckets, µs (Prometheus `le`, inclusive). Packets
/// later than the last bound fall in the `+Inf` bucket.
pub const LATENESS_BOUNDS_US: [u64; 13] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000,
];

/// Buckets including `+Inf`.
pub const LATENESS_SLOTS: usize = LATENESS_BOUNDS_US.len() + 1;

/// Bucket of a lateness in µs: the first bound ≥ `late_us`, or `+Inf`.
#[inline]
pub fn lateness_slot(late_us: u64) -> usize {
    // Most packets are on time: the first compare usually ends the loop.
    LATENESS_BOUNDS_US
        .iter()
        .position(|&b| late_us <= b)
        .unwrap_or(LATENESS_BOUNDS_US.len())
}

/// A shard-local, non-atomic lateness histogram for one tick (or any
/// batch). `Default` is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatenessTally {
    /// Packets per bucket (not cumulative), indexed like
    /// [`LATENESS_BOUNDS_US`] plus `+Inf`.
    pub buckets: [u64; LATENESS_SLOTS],
    /// Sum of the observed lateness, µs.
    pub sum_us: u64,
}

impl LatenessTally {
    /// Records one packet that left `late_us` µs after its due time (0 when
    /// on time or early).
    #[inline]
    pub fn observe(&mut self, late_us: u64) {
        self.buckets[lateness_slot(late_us)] += 1;
        self.sum_us = self.sum_us.saturating_add(late_us);
    }

    /// Packets recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Empties the tally for the next tick.
    pub fn clear(&mut self) {
        *self = LatenessTally::default();
    }
}

/// The atomic form, one per shard, read at scrape time.
#[derive(Debug, Default)]
pub(crate) struct AtomicLateness {
    buckets: [AtomicU64; LATENESS_SLOTS],
    sum_us: AtomicU64,
}

impl AtomicLateness {
    pub(crate) fn observe(&self, late_us: u64) {
        self.buckets[lateness_slot(late_us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(late_us, Relaxed);
    }

    pub(crate) fn add(&self, t: &LatenessTally) {
        for (a, &n) in self.buckets.iter().zip(t.buckets.iter()) {
            if n != 0 {
                a.fetch_add(n, Relaxed);
            }
        }
        if t.sum_us != 0 {
            self.sum_us.fetch_add(t.sum_us, Relaxed);
        }
    }

    /// Adds this shard's buckets and sum into `into`.
    pub(crate) fn read_into(&self, into: &mut LatenessTally) {
        for (dst, a) in into.buckets.iter_mut().zip(self.buckets.iter()) {
            *dst = dst.wrapping_add(a.load(Relaxed));
        }
        into.sum_us = into.sum_us.wrapping_add(self.sum_us.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_edges_are_inclusive() {
        assert_eq!(lateness_slot(0), 0);
        assert_eq!(lateness_slot(100), 0);
        assert_eq!(lateness_slot(101), 1);
        assert_eq!(lateness_slot(1_000_000), 12);
        assert_eq!(lateness_slot(1_000_001), 13);
        assert_eq!(lateness_slot(u64::MAX), 13);
    }

    #[test]
    fn tally_folds_into_atomic() {
        let mut t = LatenessTally::default();
        for us in [0, 50, 150, 3_000, 2_000_000] {
            t.observe(us);
        }
        assert_eq!(t.count(), 5);
        assert_eq!(t.sum_us, 2_003_200);
        let a = AtomicLateness::default();
        a.add(&t);
        a.observe(150);
        let mut out = LatenessTally::default();
        a.read_into(&mut out);
        assert_eq!(out.buckets[0], 2);
        assert_eq!(out.buckets[1], 2);
        assert_eq!(out.buckets[5], 1);
        assert_eq!(out.buckets[13], 1);
        assert_eq!(out.sum_us, 2_003_350);
        t.clear();
        assert_eq!(t.count(), 0);
    }
}
