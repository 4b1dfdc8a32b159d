//! [`CompileLimits`]: what the operator allows one file's compile and the
//! whole catalog's schedules (flags `--max-packets-per-file`,
//! `--max-schedule-bytes-per-file-byte`, `--max-samples-per-track`,
//! `--max-tracks-per-file`, `--compile-timeout-ms`, `--schedule-memory-mb`).

use std::time::{Duration, Instant};

use cadence_hinting::{Budget, Deadline};

/// The budgets each compile runs within (passed to `cadence-hinting` as a
/// [`Budget`]) and the memory limit of the catalog's schedules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileLimits {
    /// Most RTP packets in one file's schedule, all tracks together
    /// ([`Budget::max_packets`]). Default 2^25.
    pub max_packets_per_file: u64,
    /// Schedule bytes (sample tables, packet plans, schedule) allowed per
    /// byte of the file, on top of a 64 MiB allowance
    /// ([`Budget::schedule_bytes_per_file_byte`]). Default 8.
    pub max_schedule_bytes_per_file_byte: u64,
    /// Most samples of one walked track, as 'stsz'/'stz2' declares them
    /// ([`Budget::max_samples_per_track`]). Default 2^23.
    pub max_samples_per_track: u32,
    /// Most 'trak' boxes in 'moov' ([`Budget::max_tracks`]). Default 256.
    pub max_tracks_per_file: u32,
    /// Wall-clock limit of one compile, ms; 0 for none
    /// ([`Budget::deadline`]). Default 30,000.
    pub compile_timeout_ms: u64,
    /// Most bytes of compiled schedules held in memory, all files together
    /// (see [`schedule_heap_bytes`](super::schedule_heap_bytes)); 0 for no
    /// limit. Default 0.
    pub schedule_memory_bytes: u64,
}

/// Default of [`CompileLimits::compile_timeout_ms`].
pub const DEFAULT_COMPILE_TIMEOUT_MS: u64 = 30_000;

impl Default for CompileLimits {
    fn default() -> Self {
        let b = Budget::default();
        CompileLimits {
            max_packets_per_file: b.max_packets,
            max_schedule_bytes_per_file_byte: b.schedule_bytes_per_file_byte,
            max_samples_per_track: b.max_samples_per_track,
            max_tracks_per_file: b.max_tracks,
            compile_timeout_ms: DEFAULT_COMPILE_TIMEOUT_MS,
            schedule_memory_bytes: 0,
        }
    }
}

impl CompileLimits {
    /// The [`Budget`] of one compile starting now: the counts above over
    /// [`Budget::default()`], and a [`Deadline`] `compile_timeout_ms` from
    /// now (none when 0).
    pub fn budget(&self) -> Budget {
        let deadline = (self.compile_timeout_ms > 0).then(|| {
            let end = Instant::now() + Duration::from_millis(self.compile_timeout_ms);
            Deadline::new(move || Instant::now() > end)
        });
        Budget {
            max_tracks: self.max_tracks_per_file,
            max_samples_per_track: self.max_samples_per_track,
            max_packets: self.max_packets_per_file,
            schedule_bytes_per_file_byte: self.max_schedule_bytes_per_file_byte,
            deadline,
            ..Budget::default()
        }
    }

    /// True when `other` differs in a budget of one compile (not counting
    /// the memory limit): errors compiled under the old budgets are stale.
    pub fn budgets_differ(&self, other: &CompileLimits) -> bool {
        let strip = |l: &CompileLimits| CompileLimits {
            schedule_memory_bytes: 0,
            ..l.clone()
        };
        strip(self) != strip(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_carries_the_limits_and_a_deadline() {
        let l = CompileLimits {
            max_packets_per_file: 10,
            max_tracks_per_file: 2,
            compile_timeout_ms: 0,
            ..CompileLimits::default()
        };
        let b = l.budget();
        assert_eq!((b.max_packets, b.max_tracks), (10, 2));
        assert!(b.deadline.is_none());
        let b = CompileLimits::default().budget();
        let d = b.deadline.expect("a deadline");
        assert!(!(d.0)(), "30 s have not passed");
        let soon = CompileLimits {
            compile_timeout_ms: 1,
            ..CompileLimits::default()
        };
        let d = soon.budget().deadline.expect("a deadline");
        std::thread::sleep(Duration::from_millis(5));
        assert!((d.0)());
        assert!(!l.budgets_differ(&CompileLimits {
            schedule_memory_bytes: 5,
            ..l.clone()
        }));
        assert!(l.budgets_differ(&CompileLimits::default()));
    }
}
