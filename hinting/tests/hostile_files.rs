//! Hostile media files (issue 14 §2, found by fuzzing) must fail with a
//! typed error, in bounded memory and time, instead of aborting the server
//! on a huge allocation or holding its compile thread for minutes.
//!
//! Every file is generated here, byte by byte (`hostile_common`), and goes
//! through what the engine calls: [`cadence_hinting::compile`], then
//! [`schedule_plain`] for a file without hint tracks. Each attack runs in a
//! child process under a 1 GiB address-space limit and a 60 s guard, and
//! asserts the exact [`HintError::OverBudget`] (or [`HintError::InvalidBox`])
//! and a peak resident memory bounded by the [`Budget`]. Before the budget,
//! each of these files aborted the process (64 GiB, 1 GiB and 6 GiB
//! allocations), ran for 94 s, or wrapped a track ID past 2^32 - 1.

mod hostile_common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use cadence_hinting::cache::{self, CacheKey};
use cadence_hinting::packetize::plain::schedule_plain;
use cadence_hinting::{Budget, Deadline, FileSchedule, HintError, Limit};
use hostile_common::*;
use memmap2::Mmap;

/// The engine's MTU for un-hinted files.
const MTU: u32 = 1450;

/// What the engine does with a media file: compile its hint tracks, or
/// packetize it in memory when it has none.
fn serve(map: Arc<Mmap>) -> Result<FileSchedule, HintError> {
    match cadence_hinting::compile(map.clone()) {
        Err(HintError::NoHintTracks) => schedule_plain(map, MTU),
        r => r,
    }
}

/// Peak memory a file of `len` bytes may cost: the default budget's
/// schedule bytes, twice (vectors grow by doubling), the file twice (the
/// test's copy and the mapped pages) and 32 MiB for the test process.
fn memory_limit(len: usize) -> u64 {
    let len = len as u64;
    2 * Budget::default().schedule_bytes_for(len) + 2 * len + (32 << 20)
}

/// The fields of an [`HintError::OverBudget`], or a panic naming what came
/// instead.
fn over_budget<T>(what: &str, r: Result<T, HintError>) -> (String, Option<u32>, Limit, u64, u64) {
    match r {
        Err(HintError::OverBudget {
            at,
            track,
            what,
            limit,
            declared,
        }) => (at, track, what, limit, declared),
        Err(e) => panic!("{what}: expected OverBudget, got {e:?}"),
        Ok(_) => panic!("{what}: expected OverBudget, got a schedule"),
    }
}

/// An H.264 track of `count` 8-byte samples declared by a constant-size
/// 'stsz', in `chunks` chunks of `per_chunk` samples that all start at the
/// same byte.
fn plain_overlapping(count: u32, chunks: u32, per_chunk: u32) -> Vec<u8> {
    assert!(u64::from(chunks) * u64::from(per_chunk) >= u64::from(count));
    let mdat = H264_SAMPLE.repeat(per_chunk as usize);
    let track = TrackSpec::video(
        1,
        Sizes::Constant { size: 8, count },
        overlapping_chunks(chunks),
        per_chunk,
    );
    movie(&[track], &mdat)
}

/// A hint track of `refs` hint samples that all are the one hint sample
/// `sample` (one chunk each, every chunk at the same byte), with listed
/// sizes as the fuzzer wrote them.
fn hint_referenced(sample: &[u8], refs: u32) -> Vec<u8> {
    let size = u32::try_from(sample.len()).expect("sample size");
    let track = TrackSpec::hint(
        1,
        Sizes::Listed(vec![size; refs as usize]),
        overlapping_chunks(refs),
        1,
    );
    movie(&[track], sample)
}

#[test]
fn constant_size_stsz_declaring_2_32_samples_over_overlapping_chunks() {
    isolated(
        "constant_size_stsz_declaring_2_32_samples_over_overlapping_chunks",
        || {
            // 787 kB: 65,536 chunks of 65,536 samples at one offset. Before:
            // a 64 GiB Vec::with_capacity in plan.rs, abort.
            let file = plain_overlapping(u32::MAX, 1 << 16, 1 << 16);
            let len = file.len();
            let r = serve(write_and_map("stsz_2_32.mp4", &file));
            drop(file);
            let (at, track, what, limit, declared) = over_budget("2^32 samples", r);
            assert_eq!(at, "moov/trak[1]/mdia/minf/stbl/stsz");
            assert_eq!(track, Some(1));
            assert_eq!(what, Limit::SamplesPerTrack);
            assert_eq!(limit, 1 << 23);
            assert_eq!(declared, u64::from(u32::MAX));
            assert_peak_below("2^32 samples", memory_limit(len));
        },
    );
}

#[test]
fn constant_size_stsz_declaring_2_26_samples() {
    isolated("constant_size_stsz_declaring_2_26_samples", || {
        // 99 kB. Before: 3.1 GB resident in per-sample plans, then abort.
        let file = plain_overlapping(1 << 26, 1 << 13, 1 << 13);
        let len = file.len();
        let r = serve(write_and_map("stsz_2_26.mp4", &file));
        let (at, track, what, _, declared) = over_budget("2^26 samples", r);
        assert_eq!(at, "moov/trak[1]/mdia/minf/stbl/stsz");
        assert_eq!(track, Some(1));
        assert_eq!((what, declared), (Limit::SamplesPerTrack, 1 << 26));
        assert_peak_below("2^26 samples", memory_limit(len));
    });
}

#[test]
fn samples_at_the_track_limit_exhaust_the_memory_budget() {
    isolated(
        "samples_at_the_track_limit_exhaust_the_memory_budget",
        || {
            // 2^23 samples pass the per-track count but not the schedule bytes
            // of a 41 kB file: refused before the per-sample table is built.
            let file = plain_overlapping(1 << 23, 1 << 11, 1 << 12);
            let len = file.len();
            let r = serve(write_and_map("stsz_2_23.mp4", &file));
            let (at, track, what, limit, declared) = over_budget("2^23 samples", r);
            assert_eq!(at, "moov/trak[1]: sample 1");
            assert_eq!(track, Some(1));
            assert_eq!(what, Limit::ScheduleBytes);
            assert_eq!(limit, Budget::default().schedule_bytes_for(len as u64));
            assert!(declared > limit, "{declared} <= {limit}");
            assert_peak_below("2^23 samples", memory_limit(len));
        },
    );
}

#[test]
fn one_hint_sample_of_65535_packets_referenced_20000_times() {
    isolated(
        "one_hint_sample_of_65535_packets_referenced_20000_times",
        || {
            // 947 kB: one 786 kB hint sample of 65,535 empty packets, the
            // sample of all 20,000 hint samples. Before: the packet Vec of
            // compile.rs grew to 6 GiB, abort.
            let file = hint_referenced(&hint_sample(u16::MAX, 0), 20_000);
            let len = file.len();
            let r = serve(write_and_map("hint_65535x20000.mp4", &file));
            let (at, track, what, limit, declared) = over_budget("1.3G packets", r);
            assert!(
                at.starts_with("moov/trak[1]: hint sample ") && at.contains(", packet "),
                "{at}"
            );
            assert_eq!(track, Some(1));
            assert_eq!(what, Limit::ScheduleBytes);
            assert_eq!(limit, Budget::default().schedule_bytes_for(len as u64));
            assert!(declared > limit);
            assert_peak_below("1.3G packets", memory_limit(len));
        },
    );
}

#[test]
fn four_billion_empty_hint_samples() {
    isolated("four_billion_empty_hint_samples", || {
        // 525 kB: 2^32 - 1 hint samples of 4 bytes (no packets) over
        // 65,536 overlapping chunks. Before: 94 s of compiling.
        let track = TrackSpec::hint(
            1,
            Sizes::Constant {
                size: 4,
                count: u32::MAX,
            },
            overlapping_chunks(1 << 16),
            1 << 16,
        );
        let file = movie(&[track], &vec![0u8; 4 << 16]);
        let len = file.len();
        let r = serve(write_and_map("hint_empty_2_32.mp4", &file));
        let (at, track, what, _, declared) = over_budget("2^32 hint samples", r);
        assert_eq!(at, "moov/trak[1]/mdia/minf/stbl/stsz");
        assert_eq!(track, Some(1));
        assert_eq!(what, Limit::SamplesPerTrack);
        assert_eq!(declared, u64::from(u32::MAX));
        assert_peak_below("2^32 hint samples", memory_limit(len));
    });
}

#[test]
fn repeat_packets_referenced_20000_times_exhaust_the_work_budget() {
    isolated(
        "repeat_packets_referenced_20000_times_exhaust_the_work_budget",
        || {
            // Repeat packets are dropped, so nothing is kept and only the
            // work counts: 1.3 billion packet entries to walk.
            let file = hint_referenced(&hint_sample(u16::MAX, REPEAT), 20_000);
            let len = file.len();
            let r = serve(write_and_map("hint_repeats.mp4", &file));
            let (at, track, what, limit, declared) = over_budget("repeats", r);
            assert!(at.starts_with("moov/trak[1]: hint sample "), "{at}");
            assert_eq!(track, Some(1));
            assert_eq!(what, Limit::Work);
            assert_eq!(limit, Budget::default().work_for(len as u64));
            assert!(declared > limit);
            assert_peak_below("repeats", memory_limit(len));
        },
    );
}

#[test]
fn a_caller_deadline_stops_the_compile() {
    isolated("a_caller_deadline_stops_the_compile", || {
        // No work limit at all: only the caller's check (here, "stop at the
        // third call") ends the walk of the repeat packets.
        let file = hint_referenced(&hint_sample(u16::MAX, REPEAT), 20_000);
        let map = write_and_map("hint_repeats_deadline.mp4", &file);
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let budget = Budget {
            work_per_file_byte: 0,
            work_allowance: u64::MAX,
            max_work: u64::MAX,
            deadline: Some(Deadline::new(move || {
                counter.fetch_add(1, Ordering::Relaxed) + 1 >= 3
            })),
            ..Budget::default()
        };
        let r = cadence_hinting::compile_with(map, &budget);
        let (_, track, what, _, declared) = over_budget("deadline", r);
        assert_eq!((track, what), (Some(1), Limit::Deadline));
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        let every = cadence_hinting::budget::DEADLINE_CHECK_EVERY;
        assert!((3 * every..4 * every).contains(&declared), "{declared}");
        assert_peak_below("deadline", memory_limit(file.len()));
    });
}

#[test]
fn track_id_0xffffffff_leaves_no_id_for_the_hint_track() {
    isolated(
        "track_id_0xffffffff_leaves_no_id_for_the_hint_track",
        || {
            // Before: next_id + 1 overflowed in plan.rs (a panic with overflow
            // checks, hint track ID 0 without).
            let mut track =
                TrackSpec::video(1, Sizes::Constant { size: 8, count: 10 }, vec![0], 10);
            track.track_id = u32::MAX;
            let file = movie(&[track], &H264_SAMPLE.repeat(10));
            match serve(write_and_map("track_id_max.mp4", &file)) {
                Err(HintError::InvalidBox { box_path, reason }) => {
                    assert_eq!(box_path, "moov/trak[1]/tkhd");
                    assert!(reason.contains("4294967295"), "{reason}");
                }
                Err(e) => panic!("expected InvalidBox, got {e:?}"),
                Ok(s) => panic!(
                    "expected InvalidBox, got hint track IDs {:?}",
                    s.tracks.iter().map(|t| t.track_id).collect::<Vec<_>>()
                ),
            }
            assert_peak_below("track ID 2^32-1", memory_limit(file.len()));
        },
    );
}

#[test]
fn cache_entry_declaring_more_packets_than_bytes() {
    isolated("cache_entry_declaring_more_packets_than_bytes", || {
        // A 48 MiB cache entry whose one track declares a packet per byte.
        // Before: only the bytes left bounded the count, and 24 bytes were
        // reserved per declared packet (1.1 GiB here, which the child's
        // address-space limit refuses: abort).
        let media = plain_overlapping(10, 1, 10);
        let map = write_and_map("cache_media.mp4", &media);
        let key = CacheKey {
            len: media.len() as u64,
            mtime_ns: 1,
            mtu: MTU,
        };
        let mut entry = b"CDNSCHED".to_vec();
        entry.extend_from_slice(&cache::FORMAT_VERSION.to_le_bytes());
        entry.extend_from_slice(&key.len.to_le_bytes());
        entry.extend_from_slice(&key.mtime_ns.to_le_bytes());
        entry.extend_from_slice(&key.mtu.to_le_bytes());
        entry.extend_from_slice(&0u64.to_le_bytes()); // duration
        entry.push(0); // no session SDP
        entry.extend_from_slice(&1u64.to_le_bytes()); // tracks
        entry.extend_from_slice(&[0; 4 + 4 + 1 + 4 + 4 + 8]); // track fields
        entry.extend_from_slice(&0u64.to_le_bytes()); // empty SDP
        let body = 48 << 20;
        entry.extend_from_slice(&(body as u64).to_le_bytes()); // packets
        entry.resize(entry.len() + body, 0);
        assert!(cache::read(&entry, map, &key).is_none());
        // The entry itself and the test process.
        assert_peak_below("cache entry", entry.len() as u64 + (32 << 20));
    });
}

/// The generator makes files that stream when their counts are honest: the
/// attacks above fail on their counts, not on a malformed box.
#[test]
fn the_same_files_with_honest_counts_stream() {
    // 65,536 samples over 16 overlapping chunks: one packet each.
    let file = plain_overlapping(1 << 16, 16, 1 << 12);
    let s = serve(write_and_map("honest_plain.mp4", &file)).expect("plain file streams");
    assert_eq!(s.tracks.len(), 1);
    assert_eq!(s.tracks[0].track_id, 2);
    assert_eq!(s.tracks[0].packets.len(), 1 << 16);
    assert!(s.tracks[0].packets.iter().all(|p| p.payload_len == 4));

    // The 65,535-packet hint sample referenced 20 times.
    let file = hint_referenced(&hint_sample(u16::MAX, 0), 20);
    let s = serve(write_and_map("honest_hint.mp4", &file)).expect("hint track compiles");
    assert_eq!(s.tracks.len(), 1);
    assert_eq!(s.tracks[0].packets.len(), 20 * 65_535);

    // Repeat packets are dropped.
    let file = hint_referenced(&hint_sample(100, REPEAT), 20);
    let s = serve(write_and_map("honest_repeats.mp4", &file)).expect("repeats compile");
    assert!(s.tracks[0].packets.is_empty());

    // Track ID 2^32 - 2: the hint track takes the last ID.
    let mut track = TrackSpec::video(1, Sizes::Constant { size: 8, count: 10 }, vec![0], 10);
    track.track_id = u32::MAX - 1;
    let file = movie(&[track], &H264_SAMPLE.repeat(10));
    let s = serve(write_and_map("honest_track_id.mp4", &file)).expect("streams");
    assert_eq!(s.tracks[0].track_id, u32::MAX);
}
