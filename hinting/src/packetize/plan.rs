//! Packetizing a whole movie: runs the packetizer of every media track over
//! its samples and gathers the result, with the timing and SDP of each future
//! hint track, into a [`FilePlan`]. Both the hint-track writer
//! ([`crate::writer`]) and the in-memory schedule of an un-hinted file
//! ([`super::plain`]) start from this one plan, so a hinted file and the
//! plain file it came from stream the same packets.

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
        let bits = (self.stats.payload_bytes + self.stats.packets * u64::from(RTP_HEADER_LEN)) * 8;
        if self.duration == 0 || self.clock_rate == 0 {
            return 0;
        }
        let kbps =
            u128::from(bits) * u128::from(self.clock_rate) / u128::from(self.duration).max(1);
        u32::try_from(kbps.div_ceil(1000)).unwrap_or(u32::MAX)
    }

    /// Duration in µs.
    pub fn duration_us(&self) -> u64 {
        (u128::from(self.duration) * 1_000_000 / u128::from(self.clock_rate.max(1))) as u64
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

/// Packetizes the media tracks of `movie` (whose file bytes are `data`).
///
/// Hint tracks already in the file are ignored; the new hint tracks get IDs
/// after the largest non-hint track ID, in track order, and payload types 96,
/// 97, ... Tracks that are not video or audio are skipped silently unless
/// named in `options.tracks`; video and audio tracks that cannot be
/// packetized are listed in [`FilePlan::skipped`] with the reason.
pub fn plan_movie(data: &[u8], movie: &Movie, options: &PlanOptions) -> FilePlan {
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
            .saturating_add(plan.tracks.len() as u8)
            .min(127);
        match plan_track(data, track, next_id + 1, payload_type, options.mtu) {
            Ok(t) => {
                next_id += 1;
                plan.tracks.push(t);
            }
            Err(reason) => plan.skipped.push(SkippedTrack {
                track_id: track.track_id,
                reason,
            }),
        }
    }
    plan
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

/// Packetizes one track. Errors are human-readable reasons.
fn plan_track(
    data: &[u8],
    track: &Track,
    hint_track_id: u32,
    payload_type: u8,
    mtu: u32,
) -> Result<TrackPlan, String> {
    if track.is_hint() {
        return Err("is a hint track".into());
    }
    if !track.self_contained {
        return Err("media data is in another file (external data reference)".into());
    }
    let entry = track
        .sample_entries
        .first()
        .ok_or("no sample description")?;
    let entry_bytes = usize::try_from(entry.range.start)
        .ok()
        .zip(usize::try_from(entry.range.end).ok())
        .and_then(|(s, e)| data.get(s..e))
        .ok_or("sample description outside the file")?;
    let desc = TrackDesc {
        track_id: track.track_id,
        handler: track.handler.0,
        timescale: track.timescale,
        entry: entry_bytes,
    };
    let mut packetizer = packetizer_for(&desc, mtu)
        .map_err(|e| format!("cannot packetize '{}': {}", fourcc_str(&e.fourcc), e.reason))?;
    if track.samples.constant_size() == Some(1) {
        return Err(format!(
            "'{}' samples are described per PCM frame (QuickTime sound)",
            fourcc_str(&entry.fourcc.0)
        ));
    }
    let mut samples = Vec::new();
    let mut infos = Vec::with_capacity(track.samples.len() as usize);
    let skip_until = audio_presentation_start(track);
    for (index, info) in track.samples.iter() {
        infos.push((info.decode_time, info.composition_offset));
        let end = i128::from(info.decode_time)
            + i128::from(info.composition_offset)
            + i128::from(info.duration);
        if end <= skip_until {
            continue;
        }
        if info.description_index != 1 {
            return Err(format!(
                "sample {} uses sample description {}; only one is supported",
                index + 1,
                info.description_index
            ));
        }
        let bytes = usize::try_from(info.offset)
            .ok()
            .and_then(|s| data.get(s..s.checked_add(info.size as usize)?))
            .ok_or_else(|| format!("sample {} lies outside the file", index + 1))?;
        let sample = MediaSample {
            index,
            data: bytes,
            decode_time: info.decode_time,
            duration: info.duration,
            sync: info.sync,
        };
        packetizer
            .push(&sample, &mut samples)
            .map_err(|e| format!("{}: {e}", packetizer.name()))?;
    }
    packetizer.finish(&mut samples);
    if samples.is_empty() {
        return Err("track has no samples".into());
    }
    let clock = packetizer.clock_rate();
    let ts = track.timescale;
    let duration = rescale(track.samples.total_duration(), ts, clock);
    let mut timing = Vec::with_capacity(samples.len());
    for s in &samples {
        let (decode, cto) = infos[s.sample as usize];
        let time = rescale(decode, ts, clock);
        let pts = rescale_signed(i128::from(decode) + i128::from(cto), ts, clock);
        let rtp_offset = i32::try_from(pts - i128::from(time))
            .map_err(|_| format!("composition offset of sample {} out of range", s.sample + 1))?;
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
        timing[i].duration = u32::try_from(end - timing[i].time)
            .map_err(|_| "hint sample longer than 2^32 ticks".to_string())?;
    }
    let mut stats = PlanStats::default();
    for p in samples.iter().flat_map(|s| &s.packets) {
        stats.packets += 1;
        stats.payload_bytes += u64::from(p.payload_len());
        stats.max_packet_size = stats.max_packet_size.max(p.payload_len() + RTP_HEADER_LEN);
    }
    let edits = track
        .edits
        .iter()
        .map(|e| EditEntry {
            media_time: if e.media_time < 0 {
                e.media_time
            } else {
                rescale(e.media_time as u64, ts, clock) as i64
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
    Ok(plan)
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
