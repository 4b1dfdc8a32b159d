//! Resource budgets for reading, packetizing and compiling one media file.
//!
//! A hostile file can declare 2^32 samples in a dozen bytes, point thousands
//! of overlapping chunks at the same bytes, or reference one hint sample of
//! 65,535 packets from every sample of its track. Every count the file
//! supplies is checked against a [`Budget`] *before* anything is allocated or
//! looped over for it, so such a file fails with [`HintError::OverBudget`]
//! instead of aborting the process on a huge allocation or holding the compile
//! thread for minutes.
//!
//! Memory ("schedule bytes") and CPU ("work units") scale with the file's
//! length, because a real file pays for every packet with bytes of media and
//! hint data; the absolute caps bound what a very large file may cost.
//!
//! | budget | default | error ([`Limit`]) |
//! |---|---|---|
//! | [`Budget::max_tracks`] | 256 `trak` boxes | [`Limit::Tracks`] |
//! | [`Budget::max_samples_per_track`] | 2^23 = 8,388,608 samples | [`Limit::SamplesPerTrack`] |
//! | [`Budget::max_packets`] | 2^25 = 33,554,432 RTP packets per file | [`Limit::Packets`] |
//! | [`Budget::schedule_bytes_per_file_byte`], [`Budget::schedule_bytes_allowance`], [`Budget::max_schedule_bytes`] | 8 B per file byte + 64 MiB, at most 4 GiB | [`Limit::ScheduleBytes`] |
//! | [`Budget::work_per_file_byte`], [`Budget::work_allowance`], [`Budget::max_work`] | 1 unit per file byte + 2^24, at most 2^32 units | [`Limit::Work`] |
//! | [`Budget::deadline`] | none | [`Limit::Deadline`] |
//!
//! Why these numbers: a 2-hour movie at 10 Mbit/s (about 9.4 GB; H.264 at
//! 60 frames/s and AAC at 48 kHz) has 432,000 video samples and 6.7 million
//! RTP packets. Packetized in memory, its tables, plans and schedule count
//! 1.74 GB of schedule bytes (0.19 per file byte) and 174 million work units
//! (0.019 per byte); its hint tracks compile into 0.45 GB and 21 million
//! units. So the defaults leave it 19× on samples, 5× on packets, 2.5× on
//! schedule bytes (the 4 GiB cap; 9.6× from hint tracks) and 25× on work (the
//! 2^32 cap). Every test file needs at most 1.74 schedule bytes and 0.025
//! work units per file byte. Measured by `tests/budget_margins.rs` on a
//! 10 s clip of such a movie and on the test media; see the crate's README,
//! section "Budgets".

use std::fmt;
use std::sync::Arc;

use crate::error::HintError;

/// What a [`Budget`] limits; carried by [`HintError::OverBudget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// `trak` boxes in `moov` ([`Budget::max_tracks`]).
    Tracks,
    /// Samples of one track that is walked sample by sample: a hint track
    /// being compiled, a media track being packetized
    /// ([`Budget::max_samples_per_track`]).
    SamplesPerTrack,
    /// RTP packets in the file's schedule, all tracks together
    /// ([`Budget::max_packets`]).
    Packets,
    /// Bytes of sample tables, packet plans and schedules built from the file
    /// ([`Budget::schedule_bytes_per_file_byte`] and its allowance and cap).
    ScheduleBytes,
    /// Work units: samples, packets, constructors, NAL units and chunks
    /// visited, and 64-byte blocks of sample data scanned
    /// ([`Budget::work_per_file_byte`] and its allowance and cap).
    Work,
    /// The caller's [`Budget::deadline`] said stop.
    Deadline,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Tracks => "tracks",
            Limit::SamplesPerTrack => "samples per track",
            Limit::Packets => "RTP packets",
            Limit::ScheduleBytes => "schedule bytes",
            Limit::Work => "work units",
            Limit::Deadline => "deadline (work units done)",
        })
    }
}

/// A caller-supplied check, called every [`DEADLINE_CHECK_EVERY`] work units:
/// returns true when the work must stop. The library never reads a clock; the
/// caller's closure may (e.g. `move || Instant::now() > end`).
#[derive(Clone)]
pub struct Deadline(
    /// The check: true once the work must stop. Called from the thread doing
    /// the work.
    pub Arc<dyn Fn() -> bool + Send + Sync>,
);

impl Deadline {
    /// Wraps `expired`, which returns true once the work must stop.
    pub fn new(expired: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Deadline(Arc::new(expired))
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Deadline(..)")
    }
}

/// Work units between two calls of a [`Deadline`].
pub const DEADLINE_CHECK_EVERY: u64 = 1 << 16;

/// Bytes of sample data one work unit stands for when a packetizer scans a
/// sample (NAL unit lengths, MPEG-4 Visual start codes).
pub const SCAN_BYTES_PER_WORK_UNIT: u64 = 64;

/// The limits for one file. [`Budget::default()`] suits every real file we
/// know of (see the [module docs](self) for the numbers and why); a server
/// may lower them, or add a [`Deadline`].
#[derive(Debug, Clone)]
pub struct Budget {
    /// Most `trak` boxes in `moov`. Default 256.
    pub max_tracks: u32,
    /// Most samples in a track that is walked sample by sample (a hint track
    /// when compiling, a media track when packetizing), checked against the
    /// count 'stsz'/'stz2' declares before the walk. Tracks that are only
    /// referenced (for example QuickTime PCM sound, one "sample" per audio
    /// frame) are not walked and not limited. Default 2^23 = 8,388,608.
    pub max_samples_per_track: u32,
    /// Most RTP packets in the file's schedule, all tracks together. Default
    /// 2^25 = 33,554,432 (a schedule of 1 GiB of packet records alone).
    pub max_packets: u64,
    /// Bytes of memory built from the file (sample tables, packet plans,
    /// compiled schedule: packets, segments and arena, counted with
    /// `size_of` of their records) allowed per byte of the file. Default 8.
    pub schedule_bytes_per_file_byte: u64,
    /// Schedule bytes allowed on top of the per-byte share, so that small
    /// files are never limited by it. Default 64 MiB.
    pub schedule_bytes_allowance: u64,
    /// Most schedule bytes for any file, however long. Default 4 GiB.
    /// Vectors grow by doubling, so the heap in use can briefly reach twice
    /// the bytes counted.
    pub max_schedule_bytes: u64,
    /// Work units allowed per byte of the file. A unit is one sample, packet,
    /// constructor, NAL unit or chunk visited, or 64 bytes of sample data
    /// scanned; one unit is 10-60 ns. Default 1.
    pub work_per_file_byte: u64,
    /// Work units allowed on top of the per-byte share. Default 2^24
    /// (16,777,216; about a second at most).
    pub work_allowance: u64,
    /// Most work units for any file, however long. Default 2^32.
    pub max_work: u64,
    /// Optional wall-clock bound supplied by the caller; `None` by default.
    pub deadline: Option<Deadline>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_tracks: 256,
            max_samples_per_track: 1 << 23,
            max_packets: 1 << 25,
            schedule_bytes_per_file_byte: 8,
            schedule_bytes_allowance: 64 << 20,
            max_schedule_bytes: 4 << 30,
            work_per_file_byte: 1,
            work_allowance: 1 << 24,
            max_work: 1 << 32,
            deadline: None,
        }
    }
}

impl Budget {
    /// Schedule bytes allowed for a file of `file_len` bytes:
    /// `min(file_len × per-byte + allowance, max)`.
    pub fn schedule_bytes_for(&self, file_len: u64) -> u64 {
        file_len
            .saturating_mul(self.schedule_bytes_per_file_byte)
            .saturating_add(self.schedule_bytes_allowance)
            .min(self.max_schedule_bytes)
    }

    /// Work units allowed for a file of `file_len` bytes:
    /// `min(file_len × per-byte + allowance, max)`.
    pub fn work_for(&self, file_len: u64) -> u64 {
        file_len
            .saturating_mul(self.work_per_file_byte)
            .saturating_add(self.work_allowance)
            .min(self.max_work)
    }
}

/// A budget exceeded, before the caller adds where ([`Exceeded::at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub what: Limit,
    pub limit: u64,
    pub declared: u64,
}

impl Exceeded {
    /// The error, naming the box path (or scope) and track at fault.
    pub fn at(self, at: impl Into<String>, track: Option<u32>) -> HintError {
        HintError::OverBudget {
            at: at.into(),
            track,
            what: self.what,
            limit: self.limit,
            declared: self.declared,
        }
    }
}

/// The running account of one file against its [`Budget`].
#[derive(Debug)]
pub(crate) struct Meter<'b> {
    budget: &'b Budget,
    byte_limit: u64,
    work_limit: u64,
    bytes: u64,
    work: u64,
    next_deadline_check: u64,
    planned_packets: u64,
    scheduled_packets: u64,
}

impl<'b> Meter<'b> {
    /// A fresh account for a file of `file_len` bytes.
    pub fn new(budget: &'b Budget, file_len: u64) -> Self {
        Meter {
            budget,
            byte_limit: budget.schedule_bytes_for(file_len),
            work_limit: budget.work_for(file_len),
            bytes: 0,
            work: 0,
            next_deadline_check: DEADLINE_CHECK_EVERY,
            planned_packets: 0,
            scheduled_packets: 0,
        }
    }

    /// Counts `n` more schedule bytes.
    pub fn bytes(&mut self, n: u64) -> Result<(), Exceeded> {
        let total = self.bytes.saturating_add(n);
        if total > self.byte_limit {
            return Err(Exceeded {
                what: Limit::ScheduleBytes,
                limit: self.byte_limit,
                declared: total,
            });
        }
        self.bytes = total;
        Ok(())
    }

    /// Counts `n` schedule bytes of each of `count` records.
    pub fn records(&mut self, count: u64, n: usize) -> Result<(), Exceeded> {
        self.bytes(count.saturating_mul(n as u64))
    }

    /// Gives back `n` schedule bytes (a transient freed).
    pub fn release(&mut self, n: u64) {
        self.bytes = self.bytes.saturating_sub(n);
    }

    /// Counts `n` more work units, consulting the deadline every
    /// [`DEADLINE_CHECK_EVERY`] units.
    pub fn work(&mut self, n: u64) -> Result<(), Exceeded> {
        let total = self.work.saturating_add(n);
        if total > self.work_limit {
            return Err(Exceeded {
                what: Limit::Work,
                limit: self.work_limit,
                declared: total,
            });
        }
        self.work = total;
        if total >= self.next_deadline_check {
            self.next_deadline_check = total.saturating_add(DEADLINE_CHECK_EVERY);
            if let Some(d) = &self.budget.deadline {
                if (d.0)() {
                    return Err(Exceeded {
                        what: Limit::Deadline,
                        limit: self.work_limit,
                        declared: total,
                    });
                }
            }
        }
        Ok(())
    }

    /// Counts `n` more planned packets (packetizing a plain file).
    pub fn planned_packets(&mut self, n: u64) -> Result<(), Exceeded> {
        Self::packets(&mut self.planned_packets, n, self.budget.max_packets)
    }

    /// Counts `n` more scheduled packets (compiling or scheduling).
    pub fn scheduled_packets(&mut self, n: u64) -> Result<(), Exceeded> {
        Self::packets(&mut self.scheduled_packets, n, self.budget.max_packets)
    }

    fn packets(count: &mut u64, n: u64, limit: u64) -> Result<(), Exceeded> {
        let total = count.saturating_add(n);
        if total > limit {
            return Err(Exceeded {
                what: Limit::Packets,
                limit,
                declared: total,
            });
        }
        *count = total;
        Ok(())
    }

    /// Checks a walked track's declared sample count.
    pub fn samples(&self, count: u32) -> Result<(), Exceeded> {
        let limit = self.budget.max_samples_per_track;
        if count > limit {
            return Err(Exceeded {
                what: Limit::SamplesPerTrack,
                limit: u64::from(limit),
                declared: u64::from(count),
            });
        }
        Ok(())
    }

    /// Checks that a `count`-th track is allowed.
    pub fn tracks(&self, count: u64) -> Result<(), Exceeded> {
        let limit = u64::from(self.budget.max_tracks);
        if count > limit {
            return Err(Exceeded {
                what: Limit::Tracks,
                limit,
                declared: count,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn limits_scale_with_the_file_and_saturate() {
        let b = Budget::default();
        assert_eq!(b.schedule_bytes_for(0), 64 << 20);
        assert_eq!(b.schedule_bytes_for(1 << 20), (8 << 20) + (64 << 20));
        assert_eq!(b.schedule_bytes_for(u64::MAX), 4 << 30);
        assert_eq!(b.work_for(1000), 1000 + (1 << 24));
        assert_eq!(b.work_for(u64::MAX), 1 << 32);
    }

    #[test]
    fn meter_counts_and_refuses_past_the_limit() {
        let b = Budget {
            schedule_bytes_allowance: 100,
            schedule_bytes_per_file_byte: 0,
            work_allowance: 10,
            work_per_file_byte: 0,
            max_packets: 3,
            ..Budget::default()
        };
        let mut m = Meter::new(&b, 1 << 30);
        assert!(m.bytes(60).is_ok());
        let e = m.records(2, 25).unwrap_err();
        assert_eq!(
            (e.what, e.limit, e.declared),
            (Limit::ScheduleBytes, 100, 110)
        );
        m.release(60);
        assert!(m.bytes(100).is_ok());
        assert!(m.work(10).is_ok());
        assert_eq!(m.work(1).unwrap_err().what, Limit::Work);
        assert!(m.planned_packets(3).is_ok());
        assert!(m.scheduled_packets(3).is_ok());
        assert_eq!(m.scheduled_packets(1).unwrap_err().declared, 4);
        assert_eq!(m.samples(1 << 23).map_err(|e| e.what), Ok(()));
        assert_eq!(
            m.samples((1 << 23) + 1).unwrap_err().what,
            Limit::SamplesPerTrack
        );
        assert!(m.tracks(256).is_ok() && m.tracks(257).is_err());
    }

    #[test]
    fn deadline_is_consulted_every_so_many_units() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let b = Budget {
            deadline: Some(Deadline::new(move || {
                c.fetch_add(1, Ordering::Relaxed) >= 2
            })),
            ..Budget::default()
        };
        let mut m = Meter::new(&b, 0);
        let mut stopped = None;
        for i in 0..10 * DEADLINE_CHECK_EVERY {
            if let Err(e) = m.work(1) {
                stopped = Some((i, e.what));
                break;
            }
        }
        assert_eq!(
            stopped,
            Some((3 * DEADLINE_CHECK_EVERY - 1, Limit::Deadline))
        );
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }
}
