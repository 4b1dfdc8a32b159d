//! Packetizing a whole movie: runs the packetizer of every media track over
//! its samples and gathers the result, with the timing and SDP of each future
//! hint track, into a [`FilePlan`]. Both the hint-track writer
//! ([`crate::writer`]) and the in-memory schedule of an un-hinted file
//! ([`super::plain`]) start from this one plan, so a hinted file and the
//! plain file it came from stream the same packets.

use crate::budget::{Budget, Meter, SCAN_BYTES_PER_WORK_UNIT};
use crate::error::HintError;
use crate::mp4::{EditEntry, Movie, Track};

use super::{fourcc_str, packetizer_for, HintSamplePlan, MediaSample, TrackDesc, RTP_HEADER_LEN};

/// First dynamic RTP payload type (RFC 3551 §6); tracks take 96, 97, ...
pub const FIRST_PAYLOAD_TYPE: u8 = 96;

/// What to packetize.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Largest RTP packet, 12-byte header included, bytes.
    pub mtu: u32,
    /// Media track IDs to packetize; `None` for every video and audio track.
    pub tracks: Option<Vec<u32>>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            mtu: super::DEFAULT_MTU,
            tracks: None,
        }
    }
}

/// Timing of one hint sample, in the RTP clock (the hint track's timescale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintTiming {
    /// Hint sample time: the media sample's decode time, RTP clock ticks.
    pub time: u64,
    /// Hint sample duration ('stts' delta of the hint track), RTP clock ticks.
    pub duration: u32,
    /// RTP timestamp minus `time`: the media sample's composition offset in
    /// RTP clock ticks (the 'rtpo' TLV; 0 for most samples).
    pub rtp_offset: i32,
}

/// Packet statistics of a planned track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanStats {
    /// RTP packets.
    pub packets: u64,
    /// Payload bytes (RTP headers excluded).
    pub payload_bytes: u64,
    /// Largest packet including its 12-byte RTP header, bytes.
    pub max_packet_size: u32,
}

/// The planned hint track of one media track.
#[derive(Debug, Clone)]
pub struct TrackPlan {
    /// Track ID of the media track.
    pub media_track_id: u32,
    /// Track ID the hint track gets.
    pub hint_track_id: u32,
    /// Payload format name ("H264", "mpeg4-generic", ...).
    pub codec: &'static str,
    /// RTP payload type.
    pub payload_type: u8,
    /// RTP clock rate, Hz (also the hint track's media timescale and 'tims').
    pub clock_rate: u32,
    /// Timescale of the media track, ticks per second.
    pub media_timescale: u32,
    /// Hint samples, in send order.
    pub samples: Vec<HintSamplePlan>,
    /// Timing of each hint sample (same length as `samples`).
    pub timing: Vec<HintTiming>,
    /// Media duration of the hint track, RTP clock ticks.
    pub duration: u64,
    /// The media track's edit list, copied to the hint track with media
    /// times converted to the RTP clock (empty edits keep -1).
    pub edits: Vec<EditEntry>,
    /// Track-level SDP (udta/hnti/'sdp '), CRLF line ends, `a=control:trackID=<hint track ID>`.
    pub sdp: String,
    /// Packet statistics.
    pub stats: PlanStats,
}

impl TrackPlan {
    /// Mean bitrate including RTP headers, kbit/s rounded up (0 for an empty
    /// or zero-length track). The SDP `b=AS` value.
    pub fn bitrate_kbps(&self) -> u32 {
        let bits = self
            .stats
            .packets
            .saturating_mul(u64::from(RTP_HEADER_LEN))
            .saturating_add(self.stats.payload_bytes)
            .saturating_mul(8);
        if self.duration == 0 || self.clock_rate == 0 {
            return 0;
        }
        let kbps =
            u128::from(bits) * u128::from(self.clock_rate) / u128::from(self.duration).max(1);
        u32::try_from(kbps.div_ceil(1000)).unwrap_or(u32::MAX)
    }

    /// Duration in µs (saturating at `u64::MAX`).
    pub fn duration_us(&self) -> u64 {
        crate::mp4::ticks_to_us(self.duration, self.clock_rate)
    }
}

/// A media track left without a hint track, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTrack {
    /// Track ID of the media track.
    pub track_id: u32,
    /// Why it cannot be packetized (codec, malformed configuration or sample).
    pub reason: String,
}

/// The packetization of a whole movie.
#[derive(Debug, Clone)]
pub struct FilePlan {
    /// One plan per packetized media track, in track order.
    pub tracks: Vec<TrackPlan>,
    /// Video and audio tracks that could not be packetized.
    pub skipped: Vec<SkippedTrack>,
    /// Movie duration in µs ('mvhd').
    pub duration_us: u64,
}

impl FilePlan {
    /// Session-level SDP for moov/udta/hnti/'rtp ' (see [`super::sdp::session_sdp`]).
    pub fn session_sdp(&self) -> String {
        let total = self
            .tracks
            .iter()
            .map(TrackPlan::bitrate_kbps)
            .fold(0u32, u32::saturating_add);
        super::sdp::session_sdp(total, self.duration_us)
    }
}

/// Converts `t` ticks of `from` Hz to `to` Hz, rounding to nearest.
pub fn rescale(t: u64, from: u32, to: u32) -> u64 {
    let from = u128::from(from.max(1));
    ((u128::from(t) * u128::from(to) + from / 2) / from).min(u128::from(u64::MAX)) as u64
}

/// Signed [`rescale`].
fn rescale_signed(t: i128, from: u32, to: u32) -> i128 {
    let from = i128::from(from.max(1));
    let scaled = t * i128::from(to);
    if scaled >= 0 {
        (scaled + from / 2) / from
    } else {
        -((-scaled + from / 2) / from)
    }
}

/// Packetizes the media tracks of `movie` (whose file bytes are `data`)
/// within the default [`Budget`] (counted from this call).
///
/// Hint tracks already in the file are ignored; the new hint tracks get IDs
/// after the largest non-hint track ID, in track order, and payload types 96,
/// 97, ... Tracks that are not video or audio are skipped silently unless
/// named in `options.tracks`; video and audio tracks that cannot be
/// packetized are listed in [`FilePlan::skipped`] with the reason. When
/// [`plan_movie_with`] fails (the budget is exceeded, or no track ID is left
/// for a hint track), the plan has no track and one skipped entry giving the
/// error.
pub fn plan_movie(data: &[u8], movie: &Movie, options: &PlanOptions) -> FilePlan {
    match plan_movie_with(data, movie, options, &Budget::default()) {
        Ok(plan) => plan,
        Err(e) => FilePlan {
            tracks: Vec::new(),
            skipped: vec![SkippedTrack {
                track_id: match &e {
                    HintError::OverBudget { track, .. } => track.unwrap_or(0),
                    _ => 0,
                },
                reason: e.to_string(),
            }],
            duration_us: movie.duration_us(),
        },
    }
}

/// [`plan_movie`] within `budget`.
///
/// # Errors
/// [`HintError::OverBudget`] when the tracks, a track's samples, the planned
/// packets, their memory or the work exceed `budget`;
/// [`HintError::InvalidBox`] naming a media track's 'tkhd' when the largest
/// track ID leaves no ID for its hint track (IDs are 32-bit).
pub fn plan_movie_with(
    data: &[u8],
    movie: &Movie,
    options: &PlanOptions,
    budget: &Budget,
) -> Result<FilePlan, HintError> {
    plan_movie_metered(
        data,
        movie,
        options,
        &mut Meter::new(budget, data.len() as u64),
    )
}

pub(crate) fn plan_movie_metered(
    data: &[u8],
    movie: &Movie,
    options: &PlanOptions,
    meter: &mut Meter<'_>,
) -> Result<FilePlan, HintError> {
    meter
        .tracks(movie.tracks.len() as u64)
        .map_err(|e| e.at("moov", None))?;
    let mut next_id = movie
        .tracks
        .iter()
        .filter(|t| !t.is_hint())
        .map(|t| t.track_id)
        .max()
        .unwrap_or(0);
    let mut plan = FilePlan {
        tracks: Vec::new(),
        skipped: Vec::new(),
        duration_us: movie.duration_us(),
    };
    if let Some(wanted) = &options.tracks {
        for id in wanted {
            if movie.track(*id).is_none() {
                plan.skipped.push(SkippedTrack {
                    track_id: *id,
                    reason: "no such track".into(),
                });
            }
        }
    }
    for track in &movie.tracks {
        let named = options.tracks.as_ref().map(|w| w.contains(&track.track_id));
        if named == Some(false) || (track.is_hint() && named.is_none()) {
            continue;
        }
        let media = matches!(&track.handler.0, b"vide" | b"soun");
        if !media && named.is_none() {
            continue;
        }
        let payload_type = FIRST_PAYLOAD_TYPE
            .saturating_add(u8::try_from(plan.tracks.len()).unwrap_or(u8::MAX))
            .min(127);
        let hint_track_id = next_id.checked_add(1).ok_or_else(|| {
            HintError::invalid(
                format!("{}/tkhd", track.trak.path),
                format!(
                    "no track ID left for the hint track of track {}: the largest track ID is {next_id}",
                    track.track_id
                ),
            )
        })?;
        match plan_track(data, track, hint_track_id, payload_type, options.mtu, meter)? {
            Ok(t) => {
                next_id = hint_track_id;
                plan.tracks.push(t);
            }
            Err(reason) => plan.skipped.push(SkippedTrack {
                track_id: track.track_id,
                reason,
            }),
        }
    }
    Ok(plan)
}

/// Media time (media timescale) before which an audio track's samples are
/// not presented: the media time of its edit list's first real edit, when the
/// list is one optional empty edit and one edit at normal rate (the AAC
/// priming frames ffmpeg and Apple encoders put before the edit). Audio
/// samples that end by then are not sent: a client could only play them
/// before the start. Video keeps every sample (later frames may reference
/// them); other edit lists keep everything. `i128::MIN` when nothing is skipped.
fn audio_presentation_start(track: &Track) -> i128 {
    if track.handler.0 != *b"soun" {
        return i128::MIN;
    }
    match track.edits.as_slice() {
        [e] | [EditEntry { media_time: -1, .. }, e]
            if e.media_time >= 0 && e.media_rate == 0x0001_0000 =>
        {
            i128::from(e.media_time)
        }
        _ => i128::MIN,
    }
}

/// Packetizes one track. The inner error is a human-readable reason to skip
/// the track; the outer one a budget exceeded (which fails the whole file).
fn plan_track(
    data: &[u8],
    track: &Track,
    hint_track_id: u32,
    payload_type: u8,
    mtu: u32,
    meter: &mut Meter<'_>,
) -> Result<Result<TrackPlan, String>, HintError> {
    if track.is_hint() {
        return Ok(Err("is a hint track".into()));
    }
    if !track.self_contained {
        return Ok(Err(
            "media data is in another file (external data reference)".into(),
        ));
    }
    let Some(entry) = track.sample_entries.first() else {
        return Ok(Err("no sample description".into()));
    };
    let Some(entry_bytes) = usize::try_from(entry.range.start)
        .ok()
        .zip(usize::try_from(entry.range.end).ok())
        .and_then(|(s, e)| data.get(s..e))
    else {
        return Ok(Err("sample description outside the file".into()));
    };
    let desc = TrackDesc {
        track_id: track.track_id,
        handler: track.handler.0,
        timescale: track.timescale,
        entry: entry_bytes,
    };
    let mut packetizer = match packetizer_for(&desc, mtu) {
        Ok(p) => p,
        Err(e) => {
            return Ok(Err(format!(
                "cannot packetize '{}': {}",
                fourcc_str(&e.fourcc),
                e.reason
            )))
        }
    };
    if track.samples.constant_size() == Some(1) {
        return Ok(Err(format!(
            "'{}' samples are described per PCM frame (QuickTime sound)",
            fourcc_str(&entry.fourcc.0)
        )));
    }
    let track_id = track.track_id;
    let count = track.samples.len();
    meter
        .samples(count)
        .map_err(|e| e.at(format!("{}/stsz", track.stbl.path), Some(track_id)))?;
    let at_sample = |i: u32| {
        move |e: crate::budget::Exceeded| {
            e.at(
                format!("{}: sample {}", track.trak.path, i + 1),
                Some(track_id),
            )
        }
    };
    meter
        .records(u64::from(count), size_of::<(u64, i32)>())
        .map_err(at_sample(0))?;
    let mut samples = Vec::new();
    let mut infos = Vec::with_capacity(count as usize);
    let skip_until = audio_presentation_start(track);
    for (index, info) in track.samples.iter() {
        meter
            .work(1 + u64::from(info.size) / SCAN_BYTES_PER_WORK_UNIT)
            .map_err(at_sample(index))?;
        infos.push((info.decode_time, info.composition_offset));
        let end = i128::from(info.decode_time)
            + i128::from(info.composition_offset)
            + i128::from(info.duration);
        if end <= skip_until {
            continue;
        }
        if info.description_index != 1 {
            return Ok(Err(format!(
                "sample {} uses sample description {}; only one is supported",
                index + 1,
                info.description_index
            )));
        }
        let Some(bytes) = usize::try_from(info.offset)
            .ok()
            .and_then(|s| data.get(s..s.checked_add(info.size as usize)?))
        else {
            return Ok(Err(format!("sample {} lies outside the file", index + 1)));
        };
        let sample = MediaSample {
            index,
            data: bytes,
            decode_time: info.decode_time,
            duration: info.duration,
            sync: info.sync,
        };
        // Refuse the sample before its plans are built.
        meter
            .bytes(packetizer.plan_bytes(&sample))
            .map_err(at_sample(index))?;
        let before = samples.len();
        if let Err(e) = packetizer.push(&sample, &mut samples) {
            return Ok(Err(format!("{}: {e}", packetizer.name())));
        }
        let planned: usize = samples[before..].iter().map(|s| s.packets.len()).sum();
        meter
            .planned_packets(planned as u64)
            .and_then(|()| meter.work(planned as u64))
            .map_err(at_sample(index))?;
    }
    let before = samples.len();
    packetizer.finish(&mut samples);
    let flushed: usize = samples[before..].iter().map(|s| s.packets.len()).sum();
    meter
        .planned_packets(flushed as u64)
        .map_err(at_sample(count.saturating_sub(1)))?;
    if samples.is_empty() {
        return Ok(Err("track has no samples".into()));
    }
    let clock = packetizer.clock_rate();
    let ts = track.timescale;
    let duration = rescale(track.samples.total_duration(), ts, clock);
    meter
        .records(samples.len() as u64, size_of::<HintTiming>())
        .map_err(at_sample(count.saturating_sub(1)))?;
    let mut timing = Vec::with_capacity(samples.len());
    for s in &samples {
        let Some(&(decode, cto)) = infos.get(s.sample as usize) else {
            return Ok(Err(format!(
                "planned sample {} does not exist",
                s.sample + 1
            )));
        };
        let time = rescale(decode, ts, clock);
        let pts = rescale_signed(i128::from(decode) + i128::from(cto), ts, clock);
        let Ok(rtp_offset) = i32::try_from(pts - i128::from(time)) else {
            return Ok(Err(format!(
                "composition offset of sample {} out of range",
                s.sample + 1
            )));
        };
        timing.push(HintTiming {
            time,
            duration: 0,
            rtp_offset,
        });
    }
    for i in 0..timing.len() {
        // Decode times never decrease; `max` keeps a hostile table from
        // underflowing.
        let end = timing
            .get(i + 1)
            .map_or(duration, |n| n.time)
            .max(timing[i].time);
        let Ok(d) = u32::try_from(end - timing[i].time) else {
            return Ok(Err("hint sample longer than 2^32 ticks".to_string()));
        };
        timing[i].duration = d;
    }
    let mut stats = PlanStats::default();
    for p in samples.iter().flat_map(|s| &s.packets) {
        stats.packets += 1;
        stats.payload_bytes = stats
            .payload_bytes
            .saturating_add(u64::from(p.payload_len()));
        stats.max_packet_size = stats
            .max_packet_size
            .max(p.payload_len().saturating_add(RTP_HEADER_LEN));
    }
    meter
        .records(track.edits.len() as u64, size_of::<EditEntry>())
        .map_err(at_sample(count.saturating_sub(1)))?;
    let edits = track
        .edits
        .iter()
        .map(|e| EditEntry {
            media_time: if e.media_time < 0 {
                e.media_time
            } else {
                i64::try_from(rescale(e.media_time as u64, ts, clock)).unwrap_or(i64::MAX)
            },
            ..*e
        })
        .collect();
    let mut plan = TrackPlan {
        media_track_id: track.track_id,
        hint_track_id,
        codec: packetizer.name(),
        payload_type,
        clock_rate: clock,
        media_timescale: ts,
        samples,
        timing,
        duration,
        edits,
        sdp: String::new(),
        stats,
    };
    plan.sdp = packetizer
        .media_sdp(payload_type)
        .to_track_sdp(plan.bitrate_kbps(), hint_track_id);
    Ok(Ok(plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds() {
        assert_eq!(rescale(512, 12800, 90_000), 3600);
        assert_eq!(rescale(1, 3, 2), 1);
        assert_eq!(rescale(1001, 30000, 90_000), 3003);
        assert_eq!(rescale_signed(-512, 12800, 90_000), -3600);
        assert_eq!(rescale(u64::MAX, 1, 90_000), u64::MAX);
    }
}
