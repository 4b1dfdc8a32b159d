//! The schedule cache: a compiled [`FileSchedule`] written to disk, so that a
//! server restart does not packetize un-hinted files again (`cadence
//! --hint-cache DIR`).
//!
//! Format (all integers little-endian): magic `CDNSCHED`, format version
//! (u32), the [`CacheKey`] of the media file it was built from, then the
//! schedule: duration (u64 µs), session SDP (u8 1, u64 length and UTF-8;
//! u8 0 for none), track count (u64) and per track its fields, packets, segments
//! and arena. A cache entry whose key or version does not match, or whose
//! segments do not fit the file, is ignored.
//!
//! A cache file is input like any other: every count in it is checked
//! against the bytes that remain (each record's size on disk) and against the
//! [`Budget`] of the media file (tracks, packets, schedule bytes) before
//! anything is allocated for it, and a cache file larger than the media
//! file's schedule-byte budget is not read at all.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use crate::budget::{Budget, Meter};
use crate::schedule::{
    FileSchedule, PacketFlags, ScheduledPacket, Segment, SegmentSource, TrackSchedule,
    MAX_SEGMENTS_PER_PACKET,
};

const MAGIC: &[u8; 8] = b"CDNSCHED";
/// Version of the on-disk format; bump on any change.
pub const FORMAT_VERSION: u32 = 1;
/// Most tracks, packets or bytes one cache entry may declare (guards against a
/// corrupt entry asking for huge allocations).
const MAX_COUNT: u64 = 1 << 28;
/// Bytes of one packet record on disk.
const PACKET_RECORD: u64 = 8 + 4 + 4 + 4 + 1 + 1 + 1;
/// Bytes of one segment record on disk.
const SEGMENT_RECORD: u64 = 8 + 4 + 1;
/// Bytes of a cache entry before the first track, and of one track's fixed
/// fields: slack on top of the schedule bytes when sizing a cache file.
const HEADER_SLACK: u64 = 1 << 16;

/// What a cache entry was built from: the media file's length and
/// modification time, and the packetization MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey {
    /// Media file length, bytes.
    pub len: u64,
    /// Media file modification time, ns since the Unix epoch.
    pub mtime_ns: i128,
    /// Packetization MTU, bytes.
    pub mtu: u32,
}

impl CacheKey {
    /// The key of the file at `path` for `mtu`. Errors: `stat` failures.
    pub fn of(path: &Path, mtu: u32) -> io::Result<CacheKey> {
        let meta = std::fs::metadata(path)?;
        let mtime = meta.modified()?;
        let mtime_ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Ok(CacheKey {
            len: meta.len(),
            mtime_ns,
            mtu,
        })
    }
}

struct W<'a, T: Write>(&'a mut T);

impl<T: Write> W<'_, T> {
    fn u8(&mut self, v: u8) -> io::Result<()> {
        self.0.write_all(&[v])
    }
    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.0.write_all(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.0.write_all(&v.to_le_bytes())
    }
    fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.u64(b.len() as u64)?;
        self.0.write_all(b)
    }
}

/// Writes `schedule` (built from a file with `key`) to `out`.
pub fn write(schedule: &FileSchedule, key: &CacheKey, out: &mut impl Write) -> io::Result<()> {
    let mut w = W(out);
    w.0.write_all(MAGIC)?;
    w.u32(FORMAT_VERSION)?;
    w.u64(key.len)?;
    w.0.write_all(&key.mtime_ns.to_le_bytes())?;
    w.u32(key.mtu)?;
    w.u64(schedule.duration_us)?;
    match &schedule.session_sdp {
        Some(s) => {
            w.u8(1)?;
            w.bytes(s.as_bytes())?;
        }
        None => w.u8(0)?,
    }
    w.u64(schedule.tracks.len() as u64)?;
    for t in &schedule.tracks {
        w.u32(t.track_id)?;
        w.u32(t.media_track_id.unwrap_or(0))?;
        w.u8(u8::from(t.media_track_id.is_some()))?;
        w.u32(t.clock_rate)?;
        w.u32(t.max_packet_size)?;
        w.u64(t.duration_us)?;
        w.bytes(t.sdp.as_bytes())?;
        w.u64(t.packets.len() as u64)?;
        for p in &t.packets {
            w.u64(p.send_time_us)?;
            w.u32(p.rtp_time)?;
            w.u32(p.first_segment)?;
            w.u32(p.payload_len)?;
            w.u8(p.segment_count)?;
            w.u8(p.payload_type)?;
            w.u8(p.flags.0)?;
        }
        w.u64(t.segments.len() as u64)?;
        for s in &t.segments {
            w.u64(s.offset)?;
            w.u32(s.len)?;
            w.u8(match s.source {
                SegmentSource::File => 0,
                SegmentSource::Arena => 1,
            })?;
        }
        w.bytes(&t.arena)?;
    }
    Ok(())
}

struct R<'a>(&'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    /// A count of records of `record` bytes each, when that many remain.
    fn count(&mut self, record: u64) -> Option<usize> {
        let n = self.u64()?;
        let needed = n.checked_mul(record)?;
        (n <= MAX_COUNT && needed <= self.0.len() as u64).then_some(n as usize)
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.count(1)?;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
}

/// Reads a cache entry for the media file `map` with `key`, within the
/// default [`Budget`]. `None` when the entry is for another key or format
/// version, or is malformed, or when any segment lies outside the file or
/// its arena, or when a track's send times decrease, or when it exceeds the
/// budget (then the caller rebuilds).
pub fn read(data: &[u8], map: Arc<Mmap>, key: &CacheKey) -> Option<FileSchedule> {
    read_with(data, map, key, &Budget::default())
}

/// [`read`] within `budget` (its tracks, packets and schedule bytes for a
/// media file of `map.len()` bytes).
pub fn read_with(
    data: &[u8],
    map: Arc<Mmap>,
    key: &CacheKey,
    budget: &Budget,
) -> Option<FileSchedule> {
    let mut meter = Meter::new(budget, map.len() as u64);
    let mut r = R(data);
    if r.take(8)? != MAGIC || r.u32()? != FORMAT_VERSION {
        return None;
    }
    let len = r.u64()?;
    let mtime_ns = i128::from_le_bytes(r.take(16)?.try_into().ok()?);
    let mtu = r.u32()?;
    if (CacheKey { len, mtime_ns, mtu }) != *key || len != map.len() as u64 {
        return None;
    }
    let duration_us = r.u64()?;
    let session_sdp = match r.u8()? {
        0 => None,
        1 => Some(r.string()?),
        _ => return None,
    };
    let n_tracks = r.count(1)?;
    meter.tracks(n_tracks as u64).ok()?;
    meter
        .records(n_tracks as u64, size_of::<TrackSchedule>())
        .ok()?;
    let mut tracks = Vec::with_capacity(n_tracks);
    for _ in 0..n_tracks {
        let track_id = r.u32()?;
        let media = r.u32()?;
        let media_track_id = (r.u8()? == 1).then_some(media);
        let clock_rate = r.u32()?;
        let max_packet_size = r.u32()?;
        let track_duration = r.u64()?;
        let sdp = r.string()?;
        let n = r.count(PACKET_RECORD)?;
        meter.scheduled_packets(n as u64).ok()?;
        meter.records(n as u64, size_of::<ScheduledPacket>()).ok()?;
        let mut packets = Vec::with_capacity(n);
        for _ in 0..n {
            packets.push(ScheduledPacket {
                send_time_us: r.u64()?,
                rtp_time: r.u32()?,
                first_segment: r.u32()?,
                payload_len: r.u32()?,
                segment_count: r.u8()?,
                payload_type: r.u8()?,
                flags: PacketFlags(r.u8()?),
            });
        }
        let n = r.count(SEGMENT_RECORD)?;
        meter.records(n as u64, size_of::<Segment>()).ok()?;
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
        let arena = r.bytes()?;
        meter.bytes(arena.len() as u64).ok()?;
        let rtp_origin = crate::schedule::rtp_origin_of(&packets);
        let track = TrackSchedule {
            track_id,
            media_track_id,
            clock_rate,
            max_packet_size,
            sdp,
            packets,
            segments,
            arena,
            duration_us: track_duration,
            rtp_origin,
        };
        if !valid(&track, map.len() as u64) {
            return None;
        }
        tracks.push(track);
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(FileSchedule {
        map,
        session_sdp,
        tracks,
        duration_us,
    })
}

/// Every packet's segments exist, fit their buffer and add up to its length,
/// and send times never decrease (the pacer and seeks rely on it, as on a
/// compiled schedule).
fn valid(t: &TrackSchedule, file_len: u64) -> bool {
    let ordered = t
        .packets
        .windows(2)
        .all(|w| w[0].send_time_us <= w[1].send_time_us);
    let segments_ok = t.segments.iter().all(|s| {
        let end = s.offset.checked_add(u64::from(s.len));
        match s.source {
            SegmentSource::File => end.is_some_and(|e| e <= file_len),
            SegmentSource::Arena => end.is_some_and(|e| e <= t.arena.len() as u64),
        }
    });
    ordered
        && segments_ok
        && t.packets.iter().all(|p| {
            let start = p.first_segment as usize;
            let count = p.segment_count as usize;
            count <= MAX_SEGMENTS_PER_PACKET
                && t.segments
                    .get(start..start.saturating_add(count))
                    .is_some_and(|segs| {
                        segs.iter().map(|s| u64::from(s.len)).sum::<u64>()
                            == u64::from(p.payload_len)
                    })
        })
}

/// Loads the entry at `path` for `map`/`key` within the default [`Budget`];
/// `None` when absent, stale or bad.
pub fn load(path: &Path, map: Arc<Mmap>, key: &CacheKey) -> Option<FileSchedule> {
    load_with(path, map, key, &Budget::default())
}

/// [`load`] within `budget`: a cache file larger than the media file's
/// schedule bytes (plus 64 KiB of headers) is not read.
pub fn load_with(
    path: &Path,
    map: Arc<Mmap>,
    key: &CacheKey,
    budget: &Budget,
) -> Option<FileSchedule> {
    let limit = budget
        .schedule_bytes_for(map.len() as u64)
        .saturating_add(HEADER_SLACK);
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() > limit {
        return None;
    }
    let mut data = Vec::new();
    // The file may have grown since the check: never read past the limit.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .ok()?;
    if data.len() as u64 > limit {
        return None;
    }
    read_with(&data, map, key, budget)
}

/// Saves `schedule` to `path` atomically (write to a temporary file, then
/// rename). Errors: I/O failures.
pub fn save(path: &Path, schedule: &FileSchedule, key: &CacheKey) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut out = io::BufWriter::new(std::fs::File::create(&tmp)?);
    write(schedule, key, &mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_fixture() -> Option<std::path::PathBuf> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../media/sample.mp4");
        p.is_file().then_some(p)
    }

    #[test]
    fn round_trip_and_rejections() {
        let path = plain_fixture().expect("bundled media/sample.mp4");
        let schedule = crate::open(&path).expect("compiles");
        let key = CacheKey::of(&path, 1450).expect("stat");
        let mut bytes = Vec::new();
        write(&schedule, &key, &mut bytes).expect("write");
        let map = schedule.map.clone();
        let back = read(&bytes, map.clone(), &key).expect("reads back");
        assert_eq!(back.tracks.len(), schedule.tracks.len());
        for (a, b) in back.tracks.iter().zip(&schedule.tracks) {
            assert_eq!(a.packets, b.packets);
            assert_eq!(a.segments, b.segments);
            assert_eq!(a.arena, b.arena);
            assert_eq!(a.sdp, b.sdp);
            assert_eq!(a.track_id, b.track_id);
        }
        assert_eq!(back.session_sdp, schedule.session_sdp);
        // Another key, a truncated entry or a corrupt segment: rebuilt instead.
        let other = CacheKey { mtu: 1200, ..key };
        assert!(read(&bytes, map.clone(), &other).is_none());
        for cut in [0, 7, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                read(&bytes[..cut], map.clone(), &key).is_none(),
                "cut at {cut}"
            );
        }
        let mut corrupt = bytes.clone();
        let n = corrupt.len();
        corrupt[n / 2] ^= 0xff;
        corrupt[n / 3] ^= 0xff;
        // Either detected, or (if the flips hit payload-neutral bytes) valid.
        if let Some(s) = read(&corrupt, map, &key) {
            assert!(s.tracks.iter().all(|t| valid(t, s.map.len() as u64)));
        }
    }
}
