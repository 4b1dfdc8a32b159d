//! A disk cache of the schedules built for un-hinted files
//! ([`super::plain::schedule_plain`]), for the server's `--hint-cache DIR`.
//!
//! An entry is keyed by what the schedule depends on: the file's length, a
//! 64-bit FNV-1a hash of its 'moov' box (every sample table, sample entry and
//! edit list), the MTU, and this crate's version. A file edited in place
//! changes its moov or length and misses the cache. Entries are checked
//! completely when loaded (every segment inside the file or the arena,
//! segment counts, payload lengths), so a damaged or foreign cache file is a
//! miss, never a bad schedule.
//!
//! File layout (big-endian): magic `CADSCHD1`, key (file length u64, moov
//! hash u64, MTU u32, version string), session SDP, duration µs, tracks:
//! IDs, clock, max packet size, SDP, duration, packets (23 bytes each),
//! segments (13 bytes each), arena.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::HintError;
use crate::mp4::Movie;
use crate::schedule::{
    FileSchedule, PacketFlags, ScheduledPacket, Segment, SegmentSource, TrackSchedule,
    MAX_SEGMENTS_PER_PACKET,
};

use super::plain::schedule_tracks;
use super::plan::{plan_movie, PlanOptions};

const MAGIC: &[u8; 8] = b"CADSCHD1";

/// What a cache entry depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    file_len: u64,
    moov_hash: u64,
    mtu: u32,
    version: String,
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Like [`super::plain::schedule_plain`], reusing a schedule saved in
/// `cache_dir` by an earlier call for the same file contents and MTU, and
/// saving a newly built one there. Cache read and write failures only cost
/// the rebuild (they are logged at debug level).
///
/// # Errors
/// As [`super::plain::schedule_plain`].
pub fn schedule_plain_cached(
    map: Arc<Mmap>,
    mtu: u32,
    cache_dir: &Path,
) -> Result<FileSchedule, HintError> {
    let movie = Movie::parse(&map)?;
    let moov = map
        .get(movie.moov.start as usize..movie.moov.end as usize)
        .ok_or_else(|| HintError::missing("moov"))?;
    let key = Key {
        file_len: map.len() as u64,
        moov_hash: fnv1a(moov),
        mtu,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let path = entry_path(cache_dir, &key);
    match fs::read(&path) {
        Ok(bytes) => match decode(&bytes, &key, map.len() as u64) {
            Some((session_sdp, tracks, duration_us)) => {
                tracing::debug!(path = %path.display(), "schedule loaded from the hint cache");
                return Ok(FileSchedule {
                    map,
                    session_sdp,
                    tracks,
                    duration_us,
                });
            }
            None => {
                tracing::debug!(path = %path.display(), "hint cache entry does not match; rebuilding")
            }
        },
        Err(e) => tracing::debug!(path = %path.display(), error = %e, "no hint cache entry"),
    }
    let plan = plan_movie(&map, &movie, &PlanOptions { mtu, tracks: None });
    let (tracks, session_sdp) = schedule_tracks(&map, &movie, &plan)?;
    let schedule = FileSchedule {
        session_sdp: Some(session_sdp),
        tracks,
        duration_us: plan.duration_us,
        map,
    };
    if let Err(e) = store(&path, &encode(&key, &schedule)) {
        tracing::debug!(path = %path.display(), error = %e, "cannot write the hint cache entry");
    }
    Ok(schedule)
}

fn entry_path(dir: &Path, key: &Key) -> PathBuf {
    dir.join(format!(
        "{:016x}-{}-{}.schedule",
        key.moov_hash, key.file_len, key.mtu
    ))
}

/// Writes `bytes` to a temporary name and renames it into place.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(key: &Key, s: &FileSchedule) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.file_len.to_be_bytes());
    out.extend_from_slice(&key.moov_hash.to_be_bytes());
    out.extend_from_slice(&key.mtu.to_be_bytes());
    put_str(&mut out, &key.version);
    match &s.session_sdp {
        Some(sdp) => {
            out.push(1);
            put_str(&mut out, sdp);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&s.duration_us.to_be_bytes());
    out.extend_from_slice(&(s.tracks.len() as u64).to_be_bytes());
    for t in &s.tracks {
        out.extend_from_slice(&t.track_id.to_be_bytes());
        out.extend_from_slice(&t.media_track_id.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&t.clock_rate.to_be_bytes());
        out.extend_from_slice(&t.max_packet_size.to_be_bytes());
        put_str(&mut out, &t.sdp);
        out.extend_from_slice(&t.duration_us.to_be_bytes());
        out.extend_from_slice(&(t.packets.len() as u64).to_be_bytes());
        for p in &t.packets {
            out.extend_from_slice(&p.send_time_us.to_be_bytes());
            out.extend_from_slice(&p.rtp_time.to_be_bytes());
            out.extend_from_slice(&p.first_segment.to_be_bytes());
            out.extend_from_slice(&p.payload_len.to_be_bytes());
            out.extend_from_slice(&[p.segment_count, p.payload_type, p.flags.0]);
        }
        out.extend_from_slice(&(t.segments.len() as u64).to_be_bytes());
        for g in &t.segments {
            out.extend_from_slice(&g.offset.to_be_bytes());
            out.extend_from_slice(&g.len.to_be_bytes());
            out.push(u8::from(g.source == SegmentSource::Arena));
        }
        out.extend_from_slice(&(t.arena.len() as u64).to_be_bytes());
        out.extend_from_slice(&t.arena);
    }
    out
}

/// A bounds-checked reader; every method returns `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.bytes(8)
            .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }
    /// A count of items of `size` bytes that must still fit the input.
    fn count(&mut self, size: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(size)? <= self.0.len()).then_some(n)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.count(1)?;
        String::from_utf8(self.bytes(n)?.to_vec()).ok()
    }
}

type Decoded = (Option<String>, Vec<TrackSchedule>, u64);

/// Decodes and validates an entry for `key` against a file of `file_len` bytes.
fn decode(bytes: &[u8], key: &Key, file_len: u64) -> Option<Decoded> {
    let mut r = Reader(bytes);
    if r.bytes(8)? != MAGIC {
        return None;
    }
    let stored = Key {
        file_len: r.u64()?,
        moov_hash: r.u64()?,
        mtu: r.u32()?,
        version: r.string()?,
    };
    if &stored != key {
        return None;
    }
    let session_sdp = match r.u8()? {
        0 => None,
        1 => Some(r.string()?),
        _ => return None,
    };
    let duration_us = r.u64()?;
    let track_count = r.count(1)?;
    let mut tracks = Vec::with_capacity(track_count);
    for _ in 0..track_count {
        let track_id = r.u32()?;
        let media = r.u32()?;
        let clock_rate = r.u32()?;
        let max_packet_size = r.u32()?;
        let sdp = r.string()?;
        let track_duration = r.u64()?;
        let n = r.count(23)?;
        let mut packets = Vec::with_capacity(n);
        for _ in 0..n {
            let send_time_us = r.u64()?;
            let rtp_time = r.u32()?;
            let first_segment = r.u32()?;
            let payload_len = r.u32()?;
            let [segment_count, payload_type, flags] = <[u8; 3]>::try_from(r.bytes(3)?).ok()?;
            packets.push(ScheduledPacket {
                send_time_us,
                rtp_time,
                first_segment,
                payload_len,
                segment_count,
                payload_type,
                flags: PacketFlags(flags),
            });
        }
        let n = r.count(13)?;
        let mut segments = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = r.u64()?;
            let len = r.u32()?;
            let source = match r.u8()? {
                0 => SegmentSource::File,
                1 => SegmentSource::Arena,
                _ => return None,
            };
            segments.push(Segment {
                offset,
                len,
                source,
            });
        }
        let n = r.count(1)?;
        let arena = r.bytes(n)?.to_vec();
        let track = TrackSchedule {
            track_id,
            media_track_id: (media != 0).then_some(media),
            clock_rate,
            max_packet_size,
            sdp,
            packets,
            segments,
            arena,
            duration_us: track_duration,
        };
        if !valid(&track, file_len) {
            return None;
        }
        tracks.push(track);
    }
    r.0.is_empty().then_some((session_sdp, tracks, duration_us))
}

/// True when every packet's segments exist, fit their buffers and add up to
/// its payload length, and send times never decrease.
fn valid(t: &TrackSchedule, file_len: u64) -> bool {
    let segments_ok = t.segments.iter().all(|s| {
        let end = s.offset.checked_add(u64::from(s.len));
        let limit = match s.source {
            SegmentSource::File => file_len,
            SegmentSource::Arena => t.arena.len() as u64,
        };
        end.is_some_and(|e| e <= limit)
    });
    let packets_ok = t.packets.iter().all(|p| {
        let first = p.first_segment as usize;
        let count = usize::from(p.segment_count);
        count <= MAX_SEGMENTS_PER_PACKET
            && first
                .checked_add(count)
                .is_some_and(|e| e <= t.segments.len())
            && t.segments[first..first + count]
                .iter()
                .map(|s| u64::from(s.len))
                .sum::<u64>()
                == u64::from(p.payload_len)
    });
    segments_ok
        && packets_ok
        && t.packets
            .windows(2)
            .all(|w| w[0].send_time_us <= w[1].send_time_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> TrackSchedule {
        TrackSchedule {
            track_id: 3,
            media_track_id: Some(1),
            clock_rate: 90_000,
            max_packet_size: 1450,
            sdp: "m=video 0 RTP/AVP 96\r\n".into(),
            packets: vec![ScheduledPacket {
                send_time_us: 5,
                rtp_time: 7,
                first_segment: 0,
                payload_len: 12,
                segment_count: 2,
                payload_type: 96,
                flags: PacketFlags(5),
            }],
            segments: vec![
                Segment {
                    offset: 0,
                    len: 2,
                    source: SegmentSource::Arena,
                },
                Segment {
                    offset: 100,
                    len: 10,
                    source: SegmentSource::File,
                },
            ],
            arena: vec![0x7c, 0x85],
            duration_us: 40_000,
        }
    }

    #[test]
    fn entries_round_trip_and_reject_damage() {
        let map = memmap2::MmapMut::map_anon(1000)
            .expect("anon map")
            .make_read_only()
            .expect("read-only");
        let schedule = FileSchedule {
            map: Arc::new(map),
            session_sdp: Some("b=AS:1\r\n".into()),
            tracks: vec![track()],
            duration_us: 40_000,
        };
        let key = Key {
            file_len: 1000,
            moov_hash: 42,
            mtu: 1450,
            version: "0.1.0".into(),
        };
        let bytes = encode(&key, &schedule);
        let (sdp, tracks, duration) = decode(&bytes, &key, 1000).expect("decodes");
        assert_eq!((sdp, duration), (schedule.session_sdp.clone(), 40_000));
        let (got, want) = (&tracks[0], &schedule.tracks[0]);
        assert_eq!(
            (&got.packets, &got.segments, &got.arena),
            (&want.packets, &want.segments, &want.arena)
        );
        assert_eq!(
            (got.track_id, got.media_track_id, &got.sdp),
            (3, Some(1), &want.sdp)
        );
        // Another key, a shorter file, any truncation or a stray byte: misses.
        assert!(decode(
            &bytes,
            &Key {
                mtu: 1400,
                ..key.clone()
            },
            1000
        )
        .is_none());
        assert!(
            decode(
                &bytes,
                &Key {
                    file_len: 105,
                    ..key.clone()
                },
                105
            )
            .is_none(),
            "key"
        );
        assert!(
            decode(&bytes, &key, 105).is_none(),
            "segment past the file end"
        );
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], &key, 1000).is_none(), "cut {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, &key, 1000).is_none());
        // A packet whose segments do not add up is refused.
        let mut bad = schedule.tracks[0].packets.clone();
        bad[0].payload_len += 1;
        let broken = TrackSchedule {
            packets: bad,
            ..track()
        };
        assert!(!valid(&broken, 1000));
    }
}
