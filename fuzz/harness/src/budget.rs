//! The [`Budget`] fuzz inputs are compiled within: small enough that no
//! input costs more than a few tens of milliseconds or megabytes, large
//! enough that the seed media (a second or two of low-resolution video and
//! audio) compiles in full.

use cadence_hinting::Budget;

/// The fuzzing budget: 16 tracks, 2^16 samples per track, 2^18 RTP
/// packets, 8 schedule bytes per file byte plus 8 MiB (64 MiB at most),
/// 1 work unit per file byte plus 2^21 (2^24 at most).
pub fn fuzz_budget() -> Budget {
    Budget {
        max_tracks: 16,
        max_samples_per_track: 1 << 16,
        max_packets: 1 << 18,
        schedule_bytes_per_file_byte: 8,
        schedule_bytes_allowance: 8 << 20,
        max_schedule_bytes: 64 << 20,
        work_per_file_byte: 1,
        work_allowance: 1 << 21,
        max_work: 1 << 24,
        deadline: None,
    }
}
