//! Invariants of a compiled schedule that the pacer relies on: it indexes
//! segments and file bytes without further checks on the packet path, and
//! seeks by binary search on send times. A schedule that breaks one of them
//! is a compiler (or cache reader) bug even when serving it happens not to
//! crash, so the targets panic.

use cadence_hinting::{SegmentSource, TrackSchedule, MAX_SEGMENTS_PER_PACKET};

/// Panics unless every track of a schedule over a file of `file_len` bytes
/// is well formed: each packet names at most [`MAX_SEGMENTS_PER_PACKET`]
/// existing segments whose lengths add up to its payload length, each
/// segment lies inside the file or the track's arena, and send times never
/// decrease within a track.
pub fn check_tracks(file_len: usize, tracks: &[TrackSchedule]) {
    for (t, track) in tracks.iter().enumerate() {
        let mut last_send = 0u64;
        for (i, p) in track.packets.iter().enumerate() {
            let count = usize::from(p.segment_count);
            assert!(
                count <= MAX_SEGMENTS_PER_PACKET,
                "track {t} packet {i}: {count} segments"
            );
            let start = p.first_segment as usize;
            let segments = start
                .checked_add(count)
                .and_then(|end| track.segments.get(start..end))
                .unwrap_or_else(|| {
                    panic!(
                        "track {t} packet {i}: segments {start}+{count} of {}",
                        track.segments.len()
                    )
                });
            let mut total = 0u64;
            for s in segments {
                let limit = match s.source {
                    SegmentSource::File => file_len,
                    SegmentSource::Arena => track.arena.len(),
                };
                let end = s.offset.checked_add(u64::from(s.len));
                assert!(
                    end.is_some_and(|e| e <= limit as u64),
                    "track {t} packet {i}: segment {s:?} outside its buffer of {limit} bytes"
                );
                total += u64::from(s.len);
            }
            assert_eq!(
                total,
                u64::from(p.payload_len),
                "track {t} packet {i}: segment lengths and payload length differ"
            );
            assert!(
                p.send_time_us >= last_send,
                "track {t} packet {i}: send time {} before the previous packet's {last_send}",
                p.send_time_us
            );
            last_send = p.send_time_us;
        }
    }
}
