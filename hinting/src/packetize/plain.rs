//! Streaming an un-hinted file: the packet plans of [`super::plan`] turned
//! directly into the [`FileSchedule`] that the compiler ([`crate::compile()`])
//! would produce from the same file after hinting it with
//! [`crate::writer`]. Sample pieces become [`SegmentSource::File`] segments
//! (absolute offsets into the plain file), immediates go to the arena.

use std::sync::Arc;

use memmap2::Mmap;

use crate::budget::{Budget, Meter};
use crate::error::HintError;
use crate::mp4::{EditEntry, Movie};
use crate::schedule::{
    FileSchedule, PacketFlags, ScheduledPacket, Segment, SegmentSource, TrackSchedule,
    MAX_SEGMENTS_PER_PACKET,
};

use super::plan::{plan_movie_metered, FilePlan, PlanOptions, TrackPlan};
use super::Piece;

/// Builds the schedule of an un-hinted MP4/MOV file in memory, packetizing
/// every video and audio track with the payload formats of
/// [`super::packetizer_for`] and `mtu` (RTP header included, bytes).
///
/// The result equals what [`crate::compile()`] returns for the file that
/// `cadence-hint` writes from this one: same track IDs (the hint track IDs
/// the writer assigns), SDP, send times, RTP times, flags and payload bytes.
/// Tracks that cannot be packetized are left out with a `tracing` warning.
///
/// # Errors
/// [`HintError`] from [`Movie::parse`] for a malformed file;
/// [`HintError::Unsupported`] when no track can be packetized (the reason
/// lists every track and why; the engine answers DESCRIBE with 415);
/// [`HintError::OverBudget`] when the file exceeds the default [`Budget`];
/// [`HintError::InvalidBox`] when no track ID is left for a hint track.
pub fn schedule_plain(map: Arc<Mmap>, mtu: u32) -> Result<FileSchedule, HintError> {
    schedule_plain_with(map, mtu, &Budget::default())
}

/// [`schedule_plain`] within `budget`, which covers parsing, packetizing
/// and scheduling together. Errors as [`schedule_plain`].
pub fn schedule_plain_with(
    map: Arc<Mmap>,
    mtu: u32,
    budget: &Budget,
) -> Result<FileSchedule, HintError> {
    let mut meter = Meter::new(budget, map.len() as u64);
    let movie = Movie::parse_metered(&map, &mut meter)?;
    let plan = plan_movie_metered(&map, &movie, &PlanOptions { mtu, tracks: None }, &mut meter)?;
    let (tracks, session_sdp) = schedule_tracks_metered(&map, &movie, &plan, &mut meter)?;
    Ok(FileSchedule {
        session_sdp: Some(session_sdp),
        tracks,
        duration_us: plan.duration_us,
        map,
    })
}

/// The track schedules and session SDP of `plan` (made from `movie`, read
/// from `data`), within the default [`Budget`] (counted from this call).
/// Errors as [`schedule_plain`].
pub fn schedule_tracks(
    data: &[u8],
    movie: &Movie,
    plan: &FilePlan,
) -> Result<(Vec<TrackSchedule>, String), HintError> {
    schedule_tracks_with(data, movie, plan, &Budget::default())
}

/// [`schedule_tracks`] within `budget`. Errors as [`schedule_plain`].
pub fn schedule_tracks_with(
    data: &[u8],
    movie: &Movie,
    plan: &FilePlan,
    budget: &Budget,
) -> Result<(Vec<TrackSchedule>, String), HintError> {
    schedule_tracks_metered(
        data,
        movie,
        plan,
        &mut Meter::new(budget, data.len() as u64),
    )
}

fn schedule_tracks_metered(
    data: &[u8],
    movie: &Movie,
    plan: &FilePlan,
    meter: &mut Meter<'_>,
) -> Result<(Vec<TrackSchedule>, String), HintError> {
    for s in &plan.skipped {
        tracing::warn!(track = s.track_id, reason = %s.reason, "track not streamed");
    }
    if plan.tracks.is_empty() {
        let reasons: Vec<String> = plan
            .skipped
            .iter()
            .map(|s| format!("track {}: {}", s.track_id, s.reason))
            .collect();
        return Err(HintError::Unsupported {
            track: plan.skipped.first().map_or(0, |s| s.track_id),
            reason: if reasons.is_empty() {
                "no video or audio track to packetize".into()
            } else {
                format!("no track can be packetized ({})", reasons.join("; "))
            },
        });
    }
    let tracks = plan
        .tracks
        .iter()
        .map(|t| schedule_track(data, movie, t, meter))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((tracks, plan.session_sdp()))
}

/// µs by which an edit list shifts send times, as the compiler applies a
/// hint track's edit list: leading empty edits delay, the first real edit's
/// media time (here in RTP clock ticks) advances.
fn edit_shift_us(edits: &[EditEntry], movie_timescale: u32, clock: u32) -> i128 {
    let mut shift: i128 = 0;
    for e in edits {
        if e.media_time == -1 {
            shift = shift.saturating_add(
                i128::from(e.segment_duration) * 1_000_000 / i128::from(movie_timescale.max(1)),
            );
        } else {
            shift = shift
                .saturating_sub(i128::from(e.media_time) * 1_000_000 / i128::from(clock.max(1)));
            break;
        }
    }
    shift
}

/// Schedules one planned track, counting its packets, segments, arena and
/// work on `meter` before keeping them.
fn schedule_track(
    data: &[u8],
    movie: &Movie,
    plan: &TrackPlan,
    meter: &mut Meter<'_>,
) -> Result<TrackSchedule, HintError> {
    let media = movie
        .track(plan.media_track_id)
        .ok_or_else(|| HintError::Unsupported {
            track: plan.media_track_id,
            reason: "planned track vanished".into(),
        })?;
    let over = |e: crate::budget::Exceeded| e.at(media.trak.path.as_str(), Some(media.track_id));
    meter
        .scheduled_packets(plan.stats.packets)
        .and_then(|()| meter.records(plan.stats.packets, size_of::<ScheduledPacket>()))
        .map_err(over)?;
    let clock = i128::from(plan.clock_rate.max(1));
    let shift = edit_shift_us(&plan.edits, movie.timescale, plan.clock_rate);
    let mut packets = Vec::with_capacity(usize::try_from(plan.stats.packets).unwrap_or(0));
    let mut segments: Vec<Segment> = Vec::new();
    let mut arena = Vec::new();
    let mut last_send = 0u64;
    for (hs, timing) in plan.samples.iter().zip(&plan.timing) {
        let us = (i128::from(timing.time) * 1_000_000)
            .div_euclid(clock)
            .saturating_add(shift);
        let send = u64::try_from(us.max(0)).unwrap_or(u64::MAX).max(last_send);
        last_send = send;
        // RTP times wrap modulo 2^32 (RFC 3550 §5.1): the truncation is meant.
        let rtp_time = (timing.time as u32).wrapping_add(timing.rtp_offset as u32);
        for (k, p) in hs.packets.iter().enumerate() {
            let first = segments.len();
            let arena_before = arena.len();
            meter.work(1 + p.pieces.len() as u64).map_err(over)?;
            for piece in &p.pieces {
                let seg =
                    match piece {
                        Piece::Immediate(bytes) => {
                            let offset = arena.len() as u64;
                            arena.extend_from_slice(bytes);
                            Segment {
                                offset,
                                len: bytes.len() as u32,
                                source: SegmentSource::Arena,
                            }
                        }
                        Piece::Sample {
                            sample,
                            offset,
                            len,
                        } => {
                            let info = media.samples.sample(*sample).ok_or_else(|| {
                                HintError::BadSample {
                                    track: plan.media_track_id,
                                    sample: sample + 1,
                                    reason: "planned sample does not exist".into(),
                                }
                            })?;
                            if offset.checked_add(*len).is_none_or(|end| end > info.size) {
                                return Err(HintError::BadSample {
                                    track: plan.media_track_id,
                                    sample: sample + 1,
                                    reason: format!(
                                    "planned range {offset}+{len} exceeds the sample's {} bytes",
                                    info.size
                                ),
                                });
                            }
                            Segment {
                                offset: info.offset.saturating_add(u64::from(*offset)),
                                len: *len,
                                source: SegmentSource::File,
                            }
                        }
                    };
                push_coalesced(&mut segments, first, seg);
            }
            if segments.len() - first > MAX_SEGMENTS_PER_PACKET {
                // Never reached with the packetizers' piece limits; kept so the
                // schedule invariant holds for any plan.
                let keep = first + MAX_SEGMENTS_PER_PACKET - 1;
                let tail: Vec<Segment> = segments.drain(keep..).collect();
                let start = arena.len() as u64;
                for s in &tail {
                    let from = s.offset as usize;
                    let to = from.saturating_add(s.len as usize);
                    match s.source {
                        SegmentSource::File => {
                            arena.extend_from_slice(data.get(from..to).unwrap_or_default())
                        }
                        SegmentSource::Arena => {
                            if let Some(bytes) = arena.get(from..to) {
                                let bytes = bytes.to_vec();
                                arena.extend_from_slice(&bytes);
                            }
                        }
                    }
                }
                let len = (arena.len() as u64 - start) as u32;
                segments.push(Segment {
                    offset: start,
                    len,
                    source: SegmentSource::Arena,
                });
            }
            let mut flags = if p.marker { PacketFlags::MARKER } else { 0 };
            if k == 0 {
                flags |= PacketFlags::SAMPLE_START;
                if hs.sync {
                    flags |= PacketFlags::SYNC;
                }
            }
            let segs = &segments[first..];
            let grown = size_of_val(segs) + (arena.len() - arena_before);
            meter.bytes(grown as u64).map_err(over)?;
            let first_segment = u32::try_from(first).map_err(|_| HintError::BadSample {
                track: plan.media_track_id,
                sample: hs.sample + 1,
                reason: "more than 2^32 segments in the track".into(),
            })?;
            packets.push(ScheduledPacket {
                send_time_us: send,
                rtp_time,
                first_segment,
                payload_len: segs.iter().map(|s| s.len).fold(0, u32::saturating_add),
                segment_count: segs.len() as u8,
                payload_type: plan.payload_type,
                flags: PacketFlags(flags),
            });
        }
    }
    let rtp_origin = crate::schedule::rtp_origin_of(&packets);
    Ok(TrackSchedule {
        track_id: plan.hint_track_id,
        media_track_id: Some(plan.media_track_id),
        clock_rate: plan.clock_rate,
        max_packet_size: plan.stats.max_packet_size,
        sdp: plan.sdp.clone(),
        packets,
        segments,
        arena,
        duration_us: plan.duration_us(),
        rtp_origin,
    })
}

/// Appends `seg` to the packet whose segments start at `first`, joining it
/// to the previous segment when contiguous in the same buffer.
fn push_coalesced(segments: &mut Vec<Segment>, first: usize, seg: Segment) {
    if seg.len == 0 {
        return;
    }
    if segments.len() > first {
        if let Some(last) = segments.last_mut() {
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
    segments.push(seg);
}
