//! The schedule compiler: turns each RTP hint track of a parsed [`Movie`]
//! into an immutable [`TrackSchedule`].
//!
//! Per hint sample (in decode order) and per packet entry:
//! - send time (µs) = hint sample decode time + relative transmission time,
//!   shifted by the hint track's edit list (leading empty edits delay, the
//!   first edit's media time advances), clamped to ≥ 0 and to the previous
//!   packet's send time so that a track's send times never decrease;
//! - RTP time = hint sample decode time rescaled from the hint media
//!   timescale to the 'tims' clock, plus the packet's 'rtpo' offset
//!   (modulo 2^32, relative to the session's random base; 'tsro' is not
//!   applied);
//! - marker and payload type from the RTP header info (the V, P, X and CC
//!   bits are not kept: servers write version 2 and no padding/extension);
//! - payload segments: sample constructors become byte ranges of the file
//!   (resolved through the referenced track's sample table, with QuickTime
//!   compression blocks and chunk splits), immediate constructors,
//!   hint-sample-resident data (track reference -1) and sample-description
//!   constructors are copied into the track's arena. Adjacent ranges are
//!   coalesced; a packet with more than [`MAX_SEGMENTS_PER_PACKET`] segments
//!   gets its tail copied into the arena.
//!
//! Repeat packets (R flag) are dropped: the engine renumbers packets, so a
//! repeat would reach the client as a duplicate of new data.
//!
//! Flags: SAMPLE_START on the first packet of each hint sample; SYNC on it
//! too when the hint sample carries a sync sample. "Sync" is taken from the
//! media sample that the hint sample's first sample constructor references
//! (the media track's 'stss'), and from the hint track's own 'stss' only when
//! the hint sample references no media sample (and then every hint sample
//! is sync when the referenced media tracks have no 'stss'). Apple's H.264
//! hinter writes a hint 'stss' listing only the first sample, and its 3GP
//! AMR hint 'stss' lists the empty hint samples.
//!
//! Every constructor is validated against the referenced sample (or
//! sample description, or chunk run) and the file length. Every hint sample,
//! packet, constructor and chunk visited counts on the [`Budget`]'s work
//! units, and every packet, segment and arena byte on its schedule bytes and
//! packets, before the packet is kept ([`HintError::OverBudget`]).

use crate::budget::{Budget, Exceeded, Meter};
use crate::error::HintError;
use crate::hint_sample::{self, Constructor, PacketEntry};
use crate::mp4::{FourCC, Movie, Track};
use crate::rtp_entry::RtpEntry;
use crate::schedule::{
    PacketFlags, ScheduledPacket, Segment, SegmentSource, TrackSchedule, MAX_SEGMENTS_PER_PACKET,
};

/// Largest payload an RTP packet can carry here: 65535 bytes (the
/// interleaved-TCP length field) minus the 12-byte RTP header.
pub const MAX_PAYLOAD: u32 = 65535 - 12;

/// Arena growth allowed beyond the file's length, bytes.
const ARENA_SLACK: u64 = 1 << 20;

/// Schedules compiled from a byte slice; [`crate::compile()`] wraps this with
/// the memory map into a [`crate::FileSchedule`].
#[derive(Debug)]
pub struct CompiledSchedules {
    /// Session-level SDP (`moov/udta/hnti/'rtp '`), if any.
    pub session_sdp: Option<String>,
    /// One schedule per RTP hint track, in track order.
    pub tracks: Vec<TrackSchedule>,
    /// Presentation duration, µs ('mvhd').
    pub duration_us: u64,
}

/// True when `track` is an RTP hint track: handler 'hint' and a first sample
/// entry of format 'rtp '. (Other hint formats, e.g. reception hints, are
/// skipped.)
pub fn is_rtp_hint_track(track: &Track) -> bool {
    track.is_hint()
        && track
            .sample_entries
            .first()
            .is_some_and(|e| e.fourcc == FourCC(*b"rtp "))
}

/// Parses `data` (a whole file) and compiles every RTP hint track within
/// the default [`Budget`].
///
/// Errors: any [`HintError`] from [`Movie::parse`] or [`compile_track`];
/// [`HintError::NoHintTracks`] when the file has no RTP hint track;
/// [`HintError::OverBudget`] when the file exceeds the budget.
pub fn compile_slice(data: &[u8]) -> Result<CompiledSchedules, HintError> {
    compile_slice_with(data, &Budget::default())
}

/// [`compile_slice`] within `budget`, which covers parsing and compiling
/// together. Errors as for [`compile_slice`].
pub fn compile_slice_with(data: &[u8], budget: &Budget) -> Result<CompiledSchedules, HintError> {
    let mut meter = Meter::new(budget, data.len() as u64);
    let movie = Movie::parse_metered(data, &mut meter)?;
    compile_movie_metered(data, &movie, &mut meter)
}

/// Compiles every RTP hint track of an already parsed `movie` read from
/// `data`, within the default [`Budget`] (counted from this call). Errors as
/// for [`compile_slice`].
pub fn compile_movie(data: &[u8], movie: &Movie) -> Result<CompiledSchedules, HintError> {
    compile_movie_with(data, movie, &Budget::default())
}

/// [`compile_movie`] within `budget`. Errors as for [`compile_slice`].
pub fn compile_movie_with(
    data: &[u8],
    movie: &Movie,
    budget: &Budget,
) -> Result<CompiledSchedules, HintError> {
    let mut meter = Meter::new(budget, data.len() as u64);
    meter
        .tracks(movie.tracks.len() as u64)
        .map_err(|e| e.at("moov", None))?;
    compile_movie_metered(data, movie, &mut meter)
}

fn compile_movie_metered(
    data: &[u8],
    movie: &Movie,
    meter: &mut Meter<'_>,
) -> Result<CompiledSchedules, HintError> {
    let tracks = movie
        .tracks
        .iter()
        .filter(|t| is_rtp_hint_track(t))
        .map(|t| compile_track_metered(data, movie, t, meter))
        .collect::<Result<Vec<_>, _>>()?;
    if tracks.is_empty() {
        return Err(HintError::NoHintTracks);
    }
    Ok(CompiledSchedules {
        session_sdp: movie.session_sdp.clone(),
        tracks,
        duration_us: movie.duration_us(),
    })
}

/// Where the current packet sits, for error messages (all 1-based).
#[derive(Clone, Copy)]
struct At {
    track: u32,
    sample: u32,
    packet: u32,
    constructor: u32,
}

impl At {
    fn bad(self, reason: impl Into<String>) -> HintError {
        HintError::BadConstructor {
            track: self.track,
            sample: self.sample,
            packet: self.packet,
            constructor: self.constructor,
            reason: reason.into(),
        }
    }
}

/// Accumulates one track's packets, segments and arena.
struct Builder<'d, 'm, 'b> {
    data: &'d [u8],
    track: u32,
    /// Path of the hint track's `trak` box, for budget errors.
    trak_path: &'d str,
    packets: Vec<ScheduledPacket>,
    segments: Vec<Segment>,
    arena: Vec<u8>,
    arena_limit: u64,
    /// Index in `segments` of the current packet's first segment.
    first: usize,
    meter: &'m mut Meter<'b>,
}

impl Builder<'_, '_, '_> {
    /// The budget error `e`, naming the hint sample and packet at `at`.
    fn over(&self, e: Exceeded, at: At) -> HintError {
        e.at(
            format!(
                "{}: hint sample {}, packet {}",
                self.trak_path, at.sample, at.packet
            ),
            Some(self.track),
        )
    }

    fn push(&mut self, seg: Segment) {
        if seg.len == 0 {
            return;
        }
        if self.segments.len() > self.first {
            if let Some(last) = self.segments.last_mut() {
                let joined = u64::from(last.len) + u64::from(seg.len);
                if last.source == seg.source
                    && last.offset.checked_add(u64::from(last.len)) == Some(seg.offset)
                    && joined <= u64::from(u32::MAX)
                {
                    last.len = joined as u32;
                    return;
                }
            }
        }
        self.segments.push(seg);
    }

    fn push_file(&mut self, offset: u64, len: u64, at: At) -> Result<(), HintError> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.data.len() as u64);
        if end.is_none() {
            return Err(at.bad(format!(
                "bytes {offset}..{} lie outside the file ({} bytes)",
                offset.saturating_add(len),
                self.data.len()
            )));
        }
        self.push(Segment {
            offset,
            len: len as u32,
            source: SegmentSource::File,
        });
        Ok(())
    }

    /// Checks the arena limit for `more` bytes and counts them as schedule
    /// bytes.
    fn reserve_arena(&mut self, more: usize, at: At) -> Result<(), HintError> {
        if self.arena.len() as u64 + more as u64 > self.arena_limit {
            return Err(HintError::ArenaLimit {
                track: self.track,
                limit: self.arena_limit,
            });
        }
        self.meter.bytes(more as u64).map_err(|e| self.over(e, at))
    }

    fn push_arena(&mut self, bytes: &[u8], at: At) -> Result<(), HintError> {
        self.reserve_arena(bytes.len(), at)?;
        let offset = self.arena.len() as u64;
        self.arena.extend_from_slice(bytes);
        self.push(Segment {
            offset,
            len: bytes.len() as u32,
            source: SegmentSource::Arena,
        });
        Ok(())
    }

    /// Closes the current packet: overflow handling, totals, budget, record.
    fn finish(
        &mut self,
        send_time_us: u64,
        rtp_time: u32,
        payload_type: u8,
        flags: u8,
        at: At,
    ) -> Result<(), HintError> {
        if self.segments.len() - self.first > MAX_SEGMENTS_PER_PACKET {
            let keep = self.first + MAX_SEGMENTS_PER_PACKET - 1;
            let tail: Vec<Segment> = self.segments.drain(keep..).collect();
            let tail_len: u64 = tail.iter().map(|s| u64::from(s.len)).sum();
            if tail_len > u64::from(MAX_PAYLOAD) {
                return Err(too_long(tail_len, at));
            }
            self.reserve_arena(tail_len as usize, at)?;
            let start = self.arena.len() as u64;
            for s in &tail {
                let from = s.offset as usize;
                let to = from.saturating_add(s.len as usize);
                match s.source {
                    SegmentSource::File => {
                        let bytes = self
                            .data
                            .get(from..to)
                            .ok_or_else(|| at.bad("segment lies outside the file"))?;
                        self.arena.extend_from_slice(bytes);
                    }
                    SegmentSource::Arena => {
                        if to > self.arena.len() {
                            return Err(at.bad("segment lies outside the arena"));
                        }
                        self.arena.extend_from_within(from..to);
                    }
                }
            }
            self.push(Segment {
                offset: start,
                len: tail_len as u32,
                source: SegmentSource::Arena,
            });
        }
        let segs = &self.segments[self.first..];
        let payload_len: u64 = segs.iter().map(|s| u64::from(s.len)).sum();
        if payload_len > u64::from(MAX_PAYLOAD) {
            return Err(too_long(payload_len, at));
        }
        let segment_count = segs.len();
        let first_segment = u32::try_from(self.first).map_err(|_| HintError::BadHintSample {
            track: at.track,
            sample: at.sample,
            reason: format!("packet {}: more than 2^32 segments in the track", at.packet),
        })?;
        let record = size_of::<ScheduledPacket>() + size_of_val(segs);
        self.meter
            .bytes(record as u64)
            .and_then(|()| self.meter.scheduled_packets(1))
            .map_err(|e| self.over(e, at))?;
        self.packets.push(ScheduledPacket {
            send_time_us,
            rtp_time,
            first_segment,
            payload_len: payload_len as u32,
            segment_count: segment_count as u8,
            payload_type,
            flags: PacketFlags(flags),
        });
        self.first = self.segments.len();
        Ok(())
    }
}

/// The error for a packet whose payload exceeds [`MAX_PAYLOAD`].
fn too_long(payload_len: u64, at: At) -> HintError {
    HintError::BadHintSample {
        track: at.track,
        sample: at.sample,
        reason: format!(
            "packet {}: payload of {payload_len} bytes exceeds {MAX_PAYLOAD}",
            at.packet
        ),
    }
}

/// The tracks a hint track's constructors can name.
struct Refs<'m> {
    hint: &'m Track,
    /// Track for each 'tref'/'hint' entry (`None`: no such track).
    media: Vec<Option<&'m Track>>,
}

impl<'m> Refs<'m> {
    fn get(&self, index: i8, at: At) -> Result<&'m Track, HintError> {
        if index == -1 {
            return Ok(self.hint);
        }
        let t = usize::try_from(index)
            .ok()
            .and_then(|i| self.media.get(i))
            .ok_or_else(|| {
                at.bad(format!(
                    "track reference index {index} but the 'tref'/'hint' list has {} entries",
                    self.media.len()
                ))
            })?;
        let t = t.ok_or_else(|| {
            at.bad(format!(
                "track reference index {index} names a track that does not exist"
            ))
        })?;
        if !t.self_contained {
            return Err(HintError::Unsupported {
                track: t.track_id,
                reason: "media data in another file (external 'dref')".into(),
            });
        }
        Ok(t)
    }
}

/// Microseconds by which the hint track's edit list shifts its media time:
/// leading empty edits add their duration, the first real edit subtracts its
/// media time. Later edits are not applied. (No overflow: at most 2^32 edits
/// of at most 2^84 µs each.)
fn edit_shift_us(track: &Track, movie_timescale: u32) -> i128 {
    let mut shift: i128 = 0;
    for e in &track.edits {
        if e.media_time == -1 {
            shift = shift.saturating_add(
                i128::from(e.segment_duration) * 1_000_000 / i128::from(movie_timescale.max(1)),
            );
        } else {
            shift = shift.saturating_sub(
                i128::from(e.media_time) * 1_000_000 / i128::from(track.timescale.max(1)),
            );
            break;
        }
    }
    shift
}

/// Compiles one RTP hint track of `movie` (read from `data`) within the
/// default [`Budget`] (counted from this call).
///
/// Errors: [`HintError::BadHintSample`] / [`HintError::BadConstructor`]
/// naming the hint sample, packet and constructor at fault; the 'rtp '
/// entry's errors; [`HintError::Unsupported`] for external data references;
/// [`HintError::ArenaLimit`] when copies would exceed the file length + 1 MiB;
/// [`HintError::OverBudget`] when the track exceeds the budget.
pub fn compile_track(
    data: &[u8],
    movie: &Movie,
    track: &Track,
) -> Result<TrackSchedule, HintError> {
    compile_track_with(data, movie, track, &Budget::default())
}

/// [`compile_track`] within `budget`. Errors as [`compile_track`].
pub fn compile_track_with(
    data: &[u8],
    movie: &Movie,
    track: &Track,
    budget: &Budget,
) -> Result<TrackSchedule, HintError> {
    compile_track_metered(
        data,
        movie,
        track,
        &mut Meter::new(budget, data.len() as u64),
    )
}

fn compile_track_metered(
    data: &[u8],
    movie: &Movie,
    track: &Track,
    meter: &mut Meter<'_>,
) -> Result<TrackSchedule, HintError> {
    let track_id = track.track_id;
    meter
        .samples(track.samples.len())
        .map_err(|e| e.at(format!("{}/stsz", track.stbl.path), Some(track_id)))?;
    let entry_desc = track
        .sample_entries
        .first()
        .ok_or_else(|| HintError::missing(format!("{}/stsd/rtp ", track.stbl.path)))?;
    let entry_path = format!("{}/stsd/rtp ", track.stbl.path);
    let entry_bytes = usize::try_from(entry_desc.range.start)
        .ok()
        .zip(usize::try_from(entry_desc.range.end).ok())
        .and_then(|(s, e)| data.get(s..e))
        .ok_or_else(|| HintError::Truncated {
            box_path: entry_path.clone(),
            needed: entry_desc.range.end,
            available: data.len() as u64,
        })?;
    let entry = RtpEntry::parse(entry_bytes, &entry_path)?;
    if !track.self_contained {
        return Err(HintError::Unsupported {
            track: track_id,
            reason: "hint samples in another file (external 'dref')".into(),
        });
    }
    // Each reference is looked up among all tracks.
    meter
        .work((track.hint_refs.len() as u64).saturating_mul(movie.tracks.len() as u64))
        .map_err(|e| e.at(format!("{}/tref", track.trak.path), Some(track_id)))?;
    let refs = Refs {
        hint: track,
        media: track.hint_refs.iter().map(|&id| movie.track(id)).collect(),
    };
    // Hint samples without media references are all sync when every
    // referenced media track is (see `sample_is_sync`).
    let media_all_sync = refs.media.iter().any(Option::is_some)
        && refs
            .media
            .iter()
            .flatten()
            .all(|m| m.samples.sync_samples().is_none());
    let ts = i128::from(track.timescale.max(1));
    let clock = u128::from(entry.timescale);
    let shift = edit_shift_us(track, movie.timescale);
    let mut b = Builder {
        data,
        track: track_id,
        trak_path: &track.trak.path,
        packets: Vec::new(),
        segments: Vec::new(),
        arena: Vec::new(),
        arena_limit: data.len() as u64 + ARENA_SLACK,
        first: 0,
        meter,
    };
    let mut last_send: u64 = 0;
    let mut repeats = 0u64;
    for (index, info) in track.samples.iter() {
        let sample_no = index + 1;
        let bad_sample = |reason: String| HintError::BadHintSample {
            track: track_id,
            sample: sample_no,
            reason,
        };
        let sample_at = At {
            track: track_id,
            sample: sample_no,
            packet: 0,
            constructor: 0,
        };
        b.meter.work(1).map_err(|e| b.over(e, sample_at))?;
        let bytes = usize::try_from(info.offset)
            .ok()
            .and_then(|s| data.get(s..s.checked_add(info.size as usize)?))
            .ok_or_else(|| {
                bad_sample(format!(
                    "bytes at {} (+{}) lie outside the file",
                    info.offset, info.size
                ))
            })?;
        let hs = hint_sample::parse(bytes).map_err(|e| bad_sample(e.to_string()))?;
        b.meter
            .work(hs.packets.len() as u64)
            .map_err(|e| b.over(e, sample_at))?;
        let sync = sample_is_sync(&hs.packets, &refs, media_all_sync, track, index);
        // RTP times wrap modulo 2^32 (RFC 3550 §5.1): the truncation is meant.
        let rtp_base =
            (u128::from(info.decode_time) * clock / u128::from(track.timescale.max(1))) as u32;
        let mut first_packet = true;
        for (k, p) in hs.packets.iter().enumerate() {
            let mut at = At {
                track: track_id,
                sample: sample_no,
                packet: k as u32 + 1,
                constructor: 0,
            };
            if p.is_repeat() {
                repeats += 1;
                continue;
            }
            b.meter
                .work(p.constructor_count() as u64)
                .map_err(|e| b.over(e, at))?;
            let ticks = i128::from(info.decode_time) + i128::from(p.relative_time);
            let us = (ticks * 1_000_000).div_euclid(ts).saturating_add(shift);
            let send = u64::try_from(us.max(0)).unwrap_or(u64::MAX).max(last_send);
            last_send = send;
            let rtpo = p
                .rtp_offset()
                .map_err(|e| bad_sample(format!("packet {}: {e}", k + 1)))?
                .unwrap_or(0);
            let rtp_time = rtp_base.wrapping_add(rtpo as u32);
            for (ci, c) in p.constructors().enumerate() {
                at.constructor = ci as u32 + 1;
                let c = c.map_err(|e| at.bad(e.to_string()))?;
                add_constructor(&mut b, &refs, c, at)?;
            }
            let mut flags = if p.marker() { PacketFlags::MARKER } else { 0 };
            if first_packet {
                flags |= PacketFlags::SAMPLE_START;
                if sync {
                    flags |= PacketFlags::SYNC;
                }
                first_packet = false;
            }
            b.finish(send, rtp_time, p.payload_type(), flags, at)?;
        }
    }
    if repeats > 0 {
        tracing::debug!(track = track_id, repeats, "dropped repeat packets");
    }
    let rtp_origin = crate::schedule::rtp_origin_of(&b.packets);
    Ok(TrackSchedule {
        track_id,
        media_track_id: track.hint_refs.first().copied(),
        clock_rate: entry.timescale,
        max_packet_size: entry.max_packet_size,
        sdp: track.sdp.clone().unwrap_or_default(),
        packets: b.packets,
        segments: b.segments,
        arena: b.arena,
        duration_us: track.duration_us(),
        rtp_origin,
    })
}

/// Sync status of hint sample `index`: that of the media sample its first
/// media-referencing sample constructor names, else the hint track's 'stss'.
/// `media_all_sync`: the hint track references media tracks and none of them
/// has an 'stss'.
fn sample_is_sync(
    packets: &[PacketEntry<'_>],
    refs: &Refs<'_>,
    media_all_sync: bool,
    hint: &Track,
    index: u32,
) -> bool {
    for p in packets {
        for c in p.constructors() {
            if let Ok(Constructor::Sample {
                track_ref_index,
                sample_number,
                ..
            }) = c
            {
                let media = usize::try_from(track_ref_index)
                    .ok()
                    .and_then(|i| refs.media.get(i))
                    .copied()
                    .flatten();
                if let Some(m) = media {
                    if let Some(i) = sample_number
                        .checked_sub(1)
                        .filter(|&i| i < m.samples.len())
                    {
                        return m.samples.is_sync(i);
                    }
                }
            }
        }
    }
    // No media reference (payload held in the hint samples, track ref -1):
    // when every referenced media track is all-sync (audio, no 'stss'), so
    // is every hint sample. Apple's 3GP AMR hint track needs this: its hint
    // 'stss' lists the empty hint samples, not the ones carrying frames.
    if media_all_sync {
        return true;
    }
    hint.samples.is_sync(index)
}

fn add_constructor(
    b: &mut Builder<'_, '_, '_>,
    refs: &Refs<'_>,
    c: Constructor<'_>,
    at: At,
) -> Result<(), HintError> {
    match c {
        Constructor::NoOp => Ok(()),
        Constructor::Immediate(bytes) => b.push_arena(bytes, at),
        Constructor::Sample {
            track_ref_index,
            length,
            sample_number,
            offset,
            bytes_per_block,
            samples_per_block,
        } => {
            if length == 0 {
                return Ok(());
            }
            let t = refs.get(track_ref_index, at)?;
            let index = sample_number
                .checked_sub(1)
                .filter(|&i| i < t.samples.len())
                .ok_or_else(|| {
                    at.bad(format!(
                        "sample {sample_number} of track {} does not exist (it has {})",
                        t.track_id,
                        t.samples.len()
                    ))
                })?;
            let info = t.samples.sample(index).ok_or_else(|| {
                at.bad(format!(
                    "sample {sample_number} of track {} has no location",
                    t.track_id
                ))
            })?;
            let (offset, length) = (u64::from(offset), u64::from(length));
            if track_ref_index == -1 {
                // Data held in a hint sample: copy it next to the immediates.
                check_within(
                    offset,
                    length,
                    u64::from(info.size),
                    sample_number,
                    t.track_id,
                    at,
                )?;
                let start = info.offset.saturating_add(offset);
                let bytes = b
                    .data
                    .get(start as usize..start.saturating_add(length) as usize)
                    .ok_or_else(|| at.bad("hint sample data lies outside the file"))?;
                return b.push_arena(bytes, at);
            }
            let bpb = u64::from(bytes_per_block.max(1));
            let spb = u64::from(samples_per_block.max(1));
            // QuickTime sound declares a constant 'stsz' size of 1 (one
            // byte per sample unit) and locates bytes by the block formula;
            // a track with a size table whose sample happens to be 1 byte
            // long is read like any other.
            let compressed = bpb != 1 || spb != 1 || t.samples.constant_size() == Some(1);
            if !compressed {
                check_within(
                    offset,
                    length,
                    u64::from(info.size),
                    sample_number,
                    t.track_id,
                    at,
                )?;
                return b.push_file(info.offset.saturating_add(offset), length, at);
            }
            add_compressed(b, t, index, offset, length, bpb, spb, at)
        }
        Constructor::SampleDescription {
            track_ref_index,
            length,
            description_index,
            offset,
        } => {
            if length == 0 {
                return Ok(());
            }
            let t = refs.get(track_ref_index, at)?;
            let e = t.sample_entry(description_index).ok_or_else(|| {
                at.bad(format!(
                    "sample description {description_index} of track {} does not exist",
                    t.track_id
                ))
            })?;
            let (offset, length) = (u64::from(offset), u64::from(length));
            let size = e.range.end.saturating_sub(e.range.start);
            if offset + length > size {
                return Err(at.bad(format!(
                    "bytes {offset}..{} of sample description {description_index} of track {} ({size} bytes)",
                    offset + length,
                    t.track_id
                )));
            }
            let start = e.range.start + offset;
            let bytes = b
                .data
                .get(start as usize..(start + length) as usize)
                .ok_or_else(|| at.bad("sample description lies outside the file"))?;
            b.push_arena(bytes, at)
        }
    }
}

fn check_within(
    offset: u64,
    length: u64,
    size: u64,
    sample: u32,
    track: u32,
    at: At,
) -> Result<(), HintError> {
    if offset + length > size {
        return Err(at.bad(format!(
            "bytes {offset}..{} of sample {sample} of track {track}, which has {size} bytes",
            offset + length
        )));
    }
    Ok(())
}

/// QuickTime compressed sound: `offset` counts bytes from the start of the
/// compression block holding media sample `index`; blocks of `spb` samples
/// take `bpb` bytes. The byte position of a sample within its chunk is its
/// sample offset in the chunk × bpb / spb. A read running past the chunk's
/// end (sample count × bpb / spb bytes) continues at the next chunk.
#[allow(clippy::too_many_arguments)]
fn add_compressed(
    b: &mut Builder<'_, '_, '_>,
    t: &Track,
    index: u32,
    offset: u64,
    length: u64,
    bpb: u64,
    spb: u64,
    at: At,
) -> Result<(), HintError> {
    let blocks = offset / bpb;
    let sample = u64::from(index) + blocks * spb;
    let within = offset - blocks * bpb;
    let sample = u32::try_from(sample)
        .ok()
        .filter(|&s| s < t.samples.len())
        .ok_or_else(|| {
            at.bad(format!(
                "offset {offset} from sample {} of track {} runs past its last sample",
                index + 1,
                t.track_id
            ))
        })?;
    let chunks = t.samples.chunks();
    let mut ci = t.samples.chunk_index_of(sample).ok_or_else(|| {
        at.bad(format!(
            "sample {} of track {} is in no chunk",
            sample + 1,
            t.track_id
        ))
    })?;
    let chunk_bytes = |c: &crate::mp4::Chunk| u64::from(c.sample_count) * bpb / spb;
    // `chunk_index_of` returns an index into `chunks`, whose first sample
    // is at most `sample`.
    let c = *chunks.get(ci).ok_or_else(|| {
        at.bad(format!(
            "chunk {} of track {} is missing",
            ci + 1,
            t.track_id
        ))
    })?;
    let in_chunk = u64::from(sample.saturating_sub(c.first_sample));
    let mut pos = c.offset.saturating_add(in_chunk * bpb / spb + within);
    let mut chunk_end = c.offset.saturating_add(chunk_bytes(&c));
    if pos >= chunk_end {
        return Err(at.bad(format!(
            "byte {pos} lies past the end of chunk {} of track {} ({chunk_end})",
            ci + 1,
            t.track_id
        )));
    }
    let mut left = length;
    loop {
        // Empty chunks make this walk long: each step counts.
        b.meter.work(1).map_err(|e| b.over(e, at))?;
        let take = left.min(chunk_end.saturating_sub(pos));
        b.push_file(pos, take, at)?;
        left -= take;
        if left == 0 {
            return Ok(());
        }
        ci += 1;
        let next = chunks.get(ci).ok_or_else(|| {
            at.bad(format!(
                "{length} bytes from sample {} of track {} run past its last chunk",
                index + 1,
                t.track_id
            ))
        })?;
        pos = next.offset;
        chunk_end = next.offset.saturating_add(chunk_bytes(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4::{BoxRange, EditEntry, SampleTable};

    const AT: At = At {
        track: 1,
        sample: 1,
        packet: 1,
        constructor: 1,
    };

    fn builder<'d, 'm, 'b>(data: &'d [u8], meter: &'m mut Meter<'b>) -> Builder<'d, 'm, 'b> {
        Builder {
            data,
            track: 1,
            trak_path: "moov/trak[1]",
            packets: Vec::new(),
            segments: Vec::new(),
            arena: Vec::new(),
            arena_limit: 1 << 20,
            first: 0,
            meter,
        }
    }

    fn packet_bytes(b: &Builder<'_, '_, '_>, i: usize) -> Vec<u8> {
        let p = &b.packets[i];
        let segs = &b.segments[p.first_segment as usize..][..usize::from(p.segment_count)];
        segs.iter()
            .flat_map(|s| {
                let r = s.offset as usize..(s.offset + u64::from(s.len)) as usize;
                match s.source {
                    SegmentSource::File => b.data[r].to_vec(),
                    SegmentSource::Arena => b.arena[r].to_vec(),
                }
            })
            .collect()
    }

    #[test]
    fn overflowing_tail_is_copied_into_the_arena() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let budget = Budget::default();
        let mut meter = Meter::new(&budget, data.len() as u64);
        let mut b = builder(&data, &mut meter);
        let mut expected = Vec::new();
        for k in 0..20u64 {
            b.push_file(k * 100, 10, AT).unwrap();
            expected.extend_from_slice(&data[k as usize * 100..k as usize * 100 + 10]);
            b.push_arena(&[k as u8], AT).unwrap();
            expected.push(k as u8);
        }
        b.finish(0, 0, 96, 0, AT).unwrap();
        let p = b.packets[0];
        assert_eq!(usize::from(p.segment_count), MAX_SEGMENTS_PER_PACKET);
        assert_eq!(p.payload_len as usize, expected.len());
        assert_eq!(packet_bytes(&b, 0), expected);
    }

    #[test]
    fn adjacent_ranges_coalesce_within_a_packet_only() {
        let data = vec![0u8; 1000];
        let budget = Budget::default();
        let mut meter = Meter::new(&budget, data.len() as u64);
        let mut b = builder(&data, &mut meter);
        b.push_file(0, 10, AT).unwrap();
        b.push_file(10, 10, AT).unwrap();
        b.push_arena(&[1, 2], AT).unwrap();
        b.push_arena(&[3], AT).unwrap();
        b.finish(0, 0, 96, 0, AT).unwrap();
        b.push_file(20, 5, AT).unwrap();
        b.finish(0, 0, 96, 0, AT).unwrap();
        assert_eq!(b.packets[0].segment_count, 2);
        assert_eq!(b.segments[0].len, 20);
        assert_eq!(b.segments[1].len, 3);
        assert_eq!(b.packets[1].first_segment, 2);
        assert!(b.push_file(995, 10, AT).is_err());
    }

    #[test]
    fn arena_limit_and_payload_limit_are_enforced() {
        let data = vec![0u8; 70_000];
        let budget = Budget::default();
        let mut meter = Meter::new(&budget, data.len() as u64);
        let mut b = builder(&data, &mut meter);
        b.arena_limit = 4;
        assert!(b.push_arena(&[0; 4], AT).is_ok());
        assert!(matches!(
            b.push_arena(&[0], AT),
            Err(HintError::ArenaLimit { .. })
        ));
        b.push_file(0, 65_600, AT).unwrap();
        assert!(matches!(
            b.finish(0, 0, 96, 0, AT),
            Err(HintError::BadHintSample { .. })
        ));
    }

    fn track_with_edits(edits: Vec<EditEntry>) -> Track {
        let range = BoxRange {
            fourcc: FourCC(*b"trak"),
            path: "moov/trak[1]".into(),
            start: 0,
            header_len: 8,
            end: 8,
        };
        Track {
            ordinal: 1,
            trak: range.clone(),
            track_id: 1,
            tkhd_flags: 0,
            handler: FourCC(*b"hint"),
            timescale: 90_000,
            duration: 0,
            edits,
            hint_refs: Vec::new(),
            references: Vec::new(),
            sample_entries: Vec::new(),
            sdp: None,
            hint_stats: None,
            self_contained: true,
            samples: SampleTable::default(),
            stbl: range,
            chunk_offsets: None,
            udta: None,
        }
    }

    fn sample_constructor(sample_number: u32, length: u16) -> Constructor<'static> {
        Constructor::Sample {
            track_ref_index: 0,
            length,
            sample_number,
            offset: 0,
            bytes_per_block: 1,
            samples_per_block: 1,
        }
    }

    /// The payload of one packet made of sample constructors `(sample
    /// number, length)` (offset 0, 1 byte per block) naming a media track
    /// with sample table `table` (the raw box entries of
    /// `mp4::tables::tests::table`: stsz, stco, stsc, stts) over `data`.
    fn sample_payload(data: &[u8], table: [&[u32]; 4], constructors: &[(u32, u16)]) -> Vec<u8> {
        let mut media = track_with_edits(Vec::new());
        let [stsz, stco, stsc, stts] = table;
        media.samples = crate::mp4::tables::tests::table(stsz, stco, stsc, stts, None).unwrap();
        let hint = track_with_edits(Vec::new());
        let refs = Refs {
            hint: &hint,
            media: vec![Some(&media)],
        };
        let budget = Budget::default();
        let mut meter = Meter::new(&budget, data.len() as u64);
        let mut b = builder(data, &mut meter);
        for &(sample, len) in constructors {
            add_constructor(&mut b, &refs, sample_constructor(sample, len), AT).unwrap();
        }
        b.finish(0, 0, 96, 0, AT).unwrap();
        packet_bytes(&b, 0)
    }

    #[test]
    fn a_one_byte_sample_is_read_where_the_size_table_puts_it() {
        // Samples of 5, 1, 4 bytes in one chunk at 100: sample 2 is byte 105.
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let table: [&[u32]; 4] = [&[0, 3, 5, 1, 4], &[1, 100], &[1, 1, 3, 1], &[1, 3, 10]];
        assert_eq!(
            sample_payload(&data, table, &[(2, 1), (3, 4)]),
            data[105..110]
        );
    }

    #[test]
    fn constant_size_one_reads_by_blocks_across_chunks() {
        // QuickTime sound: 'stsz' size 1, chunks of 4 samples at 100 and 300.
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let table: [&[u32]; 4] = [&[1, 8], &[2, 100, 300], &[1, 1, 4, 1], &[1, 8, 1]];
        let want: Vec<u8> = [&data[102..104], &data[300..302]].concat();
        assert_eq!(sample_payload(&data, table, &[(3, 4)]), want);
    }

    #[test]
    fn edit_list_shifts_send_times() {
        let edit = |segment_duration, media_time| EditEntry {
            segment_duration,
            media_time,
            media_rate: 0x1_0000,
        };
        assert_eq!(edit_shift_us(&track_with_edits(vec![]), 600), 0);
        // 1 s empty edit (movie timescale 600), then media from 0.5 s.
        let t = track_with_edits(vec![edit(600, -1), edit(6000, 45_000)]);
        assert_eq!(edit_shift_us(&t, 600), 500_000);
        let t = track_with_edits(vec![edit(6000, 9000), edit(600, -1)]);
        assert_eq!(edit_shift_us(&t, 600), -100_000);
    }
}
