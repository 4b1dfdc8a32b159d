//! The media targets: hinted-file compile, plain-file packetizing and the
//! schedule cache reader, each followed by the schedule checks of
//! [`crate::check`] and by serving what came out ([`crate::schedules`]).

use cadence_hinting::cache::{self, CacheKey};
use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plain::schedule_plain_with;
use cadence_hinting::packetize::plan::{plan_movie_with, PlanOptions};
use cadence_hinting::writer::write_hinted;
use cadence_hinting::FileSchedule;

use crate::budget::fuzz_budget;
use crate::check::check_tracks;
use crate::fixture::anon_map;
use crate::input::Input;
use crate::schedules::serve;

/// MTUs (bytes, RTP header included) selected by the first byte of a
/// [`plain_schedule`] input: the engine's 1450 first, then edge cases.
pub const MTUS: [u32; 8] = [1450, 1500, 576, 9000, 100, 40, 13, 0];

/// Largest media file a [`schedule_cache`] entry may name; longer keys are
/// looked up against a one-byte file (and so rejected as stale).
const MAX_CACHED_FILE: u64 = 1 << 22;

/// A whole MP4/MOV/3GP file compiled from its hint tracks
/// (`cadence_hinting::compile_with`, the fuzzing budget), then checked and
/// served.
pub fn hint_compile(data: &[u8]) {
    let _ = hint_compile_tracks(data);
}

/// [`hint_compile`], returning how many tracks compiled (`None` when the
/// file did not compile).
pub fn hint_compile_tracks(data: &[u8]) -> Option<usize> {
    let map = anon_map(data).ok()?;
    let schedule = cadence_hinting::compile_with(map, &fuzz_budget()).ok()?;
    check_tracks(data.len(), &schedule.tracks);
    let n = schedule.tracks.len();
    serve(schedule);
    Some(n)
}

/// `[MTU selector][an un-hinted MP4/MOV/3GP file]`: the packet plan
/// (`plan_movie_with`) and the in-memory schedule (`schedule_plain_with`,
/// which runs the H.264, H.265, AAC and MPEG-4 Visual packetizers) with MTU
/// [`MTUS`]`[selector % 8]`, checked, compared with what the compiler makes
/// of the same file hinted by `cadence-hint` ([`write_hinted`]), and served.
pub fn plain_schedule(data: &[u8]) {
    let _ = plain_schedule_tracks(data);
}

/// [`plain_schedule`], returning how many tracks were packetized (`None`
/// when none was).
pub fn plain_schedule_tracks(data: &[u8]) -> Option<usize> {
    let mut input = Input::new(data);
    let mtu = MTUS[usize::from(input.u8() % 8)];
    let file = input.rest();
    let budget = fuzz_budget();
    let mut hinted = None;
    if let Ok(movie) = Movie::parse_with(file, &budget) {
        let options = PlanOptions { mtu, tracks: None };
        if let Ok(plan) = plan_movie_with(file, &movie, &options, &budget) {
            let mut out = Vec::new();
            if write_hinted(file, &movie, &plan, &mut out).is_ok() {
                hinted = Some(out);
            }
        }
    }
    let map = anon_map(file).ok()?;
    let schedule = schedule_plain_with(map, mtu, &budget).ok()?;
    check_tracks(file.len(), &schedule.tracks);
    if let Some(out) = hinted {
        same_as_hinted(&schedule, &out, &top_level_boxes(file, b"moov"));
    }
    let n = schedule.tracks.len();
    serve(schedule);
    Some(n)
}

/// Panics unless `hinted` (the file `cadence-hint` writes: the plain file
/// with hint tracks added) compiles to the packets `plain` streams: same
/// tracks, send and RTP times, flags and payload bytes, as
/// [`schedule_plain_with`] documents. Files the writer's output cannot
/// compile within the budget are skipped.
///
/// Payloads that read bytes of the plain file's `moov` (`moov` ranges
/// given; only a malformed file points samples there) are not compared:
/// the writer rebuilds that box, so those bytes cannot stay the same.
fn same_as_hinted(plain: &FileSchedule, hinted: &[u8], moov: &[std::ops::Range<u64>]) {
    let Ok(map) = anon_map(hinted) else {
        return;
    };
    let Ok(compiled) = cadence_hinting::compile_with(map, &fuzz_budget()) else {
        return;
    };
    assert_eq!(
        plain.tracks.len(),
        compiled.tracks.len(),
        "plain and hinted schedules have different track counts"
    );
    for (a, b) in plain.tracks.iter().zip(&compiled.tracks) {
        assert_eq!(a.track_id, b.track_id, "track IDs differ");
        assert_eq!(
            a.packets.len(),
            b.packets.len(),
            "track {}: packet counts differ",
            a.track_id
        );
        for (i, (p, q)) in a.packets.iter().zip(&b.packets).enumerate() {
            let what = format!("track {} packet {i}", a.track_id);
            assert_eq!(
                (
                    p.send_time_us,
                    p.rtp_time,
                    p.payload_type,
                    p.flags,
                    p.payload_len
                ),
                (
                    q.send_time_us,
                    q.rtp_time,
                    q.payload_type,
                    q.flags,
                    q.payload_len
                ),
                "{what}: plain and hinted differ"
            );
            let bytes = |f: &FileSchedule, t: &cadence_hinting::TrackSchedule, p| -> Vec<u8> {
                t.segments_of(p)
                    .iter()
                    .flat_map(|s| f.segment_bytes(t, s).unwrap_or_default().to_vec())
                    .collect()
            };
            let in_moov = a.segments_of(p).iter().any(|s| {
                let end = s.offset.saturating_add(u64::from(s.len));
                s.source == cadence_hinting::SegmentSource::File
                    && moov.iter().any(|m| s.offset < m.end && m.start < end)
            });
            assert!(
                in_moov || bytes(plain, a, p) == bytes(&compiled, b, q),
                "{what}: payload bytes differ"
            );
        }
    }
}

/// Byte ranges of the top-level boxes of type `kind` in `file`.
fn top_level_boxes(file: &[u8], kind: &[u8; 4]) -> Vec<std::ops::Range<u64>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    let len = file.len() as u64;
    while at + 8 <= len {
        let i = at as usize;
        let size32 = u32::from_be_bytes([file[i], file[i + 1], file[i + 2], file[i + 3]]);
        let size = match size32 {
            0 => len - at,
            1 if at + 16 <= len => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&file[i + 8..i + 16]);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let end = at.saturating_add(size.max(8)).min(len);
        if &file[i + 4..i + 8] == kind {
            out.push(at..end);
        }
        at = end;
    }
    out
}

/// A schedule cache file (`--hint-cache`), read for the media file its key
/// names (a zero-filled map of that length, up to 4 MiB: a cache entry only
/// points into the file) within the fuzzing budget. An entry that is read is
/// checked, must write back to the same bytes it reads as, and is served.
pub fn schedule_cache(data: &[u8]) {
    let _ = schedule_cache_tracks(data);
}

/// [`schedule_cache`], returning how many tracks the entry held (`None`
/// when it was not read).
pub fn schedule_cache_tracks(data: &[u8]) -> Option<usize> {
    let key = key_of(data);
    let len = if key.len <= MAX_CACHED_FILE {
        key.len
    } else {
        1
    };
    let map = anon_map(&vec![0u8; len as usize]).ok()?;
    let file_len = map.len();
    let schedule = cache::read_with(data, map.clone(), &key, &fuzz_budget())?;
    check_tracks(file_len, &schedule.tracks);
    let mut written = Vec::new();
    cache::write(&schedule, &key, &mut written).expect("writing to memory");
    let again = cache::read_with(&written, map, &key, &fuzz_budget())
        .expect("a cache entry written from a schedule read back");
    let mut rewritten = Vec::new();
    cache::write(&again, &key, &mut rewritten).expect("writing to memory");
    assert!(
        written == rewritten,
        "a cache entry does not read back as written"
    );
    let n = schedule.tracks.len();
    serve(schedule);
    Some(n)
}

/// The [`CacheKey`] a cache file declares (magic, version, then length u64,
/// mtime i128 and MTU u32, little-endian), zeros where it is too short.
fn key_of(data: &[u8]) -> CacheKey {
    let mut f = [0u8; 28];
    let header = data.get(12..).unwrap_or_default();
    let n = header.len().min(f.len());
    f[..n].copy_from_slice(&header[..n]);
    let (mut len, mut mtime, mut mtu) = ([0u8; 8], [0u8; 16], [0u8; 4]);
    len.copy_from_slice(&f[..8]);
    mtime.copy_from_slice(&f[8..24]);
    mtu.copy_from_slice(&f[24..]);
    CacheKey {
        len: u64::from_le_bytes(len),
        mtime_ns: i128::from_le_bytes(mtime),
        mtu: u32::from_le_bytes(mtu),
    }
}
