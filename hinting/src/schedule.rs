//! Compiled send schedules: the immutable, shareable output of the hint-track
//! compiler, and the input of the engine's pacer.
//!
//! A [`FileSchedule`] holds one [`TrackSchedule`] per hint track. A track schedule
//! is a flat list of [`ScheduledPacket`]s in send order; each packet names a
//! contiguous run of [`Segment`]s, and each segment is either a byte range of the
//! memory-mapped media file or a byte range of the track's small immediate-data
//! arena. A session streams a track by walking this list with a cursor; no media
//! byte is ever copied after compilation.

use std::sync::Arc;

use memmap2::Mmap;

/// Upper bound on payload segments per packet. The compiler coalesces adjacent
/// file ranges and, if a packet still has more segments, copies the tail into the
/// arena at compile time, so that the pacer can use a fixed-size iovec array
/// (1 header iovec + this many payload iovecs).
pub const MAX_SEGMENTS_PER_PACKET: usize = 15;

/// Where a [`Segment`]'s bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentSource {
    /// A byte range of the memory-mapped media file ([`FileSchedule::map`]).
    File,
    /// A byte range of the track's immediate-data arena ([`TrackSchedule::arena`]).
    Arena,
}

/// One payload byte range of a packet (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Byte offset into the file map or the arena, per `source`.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// Which buffer `offset` indexes.
    pub source: SegmentSource,
}

/// Per-packet flags (bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PacketFlags(pub u8);

impl PacketFlags {
    /// RTP marker bit (RFC 3550 §5.1), taken from the hint's RTP header info.
    pub const MARKER: u8 = 1;
    /// First packet of a hint sample whose media sample is a sync sample.
    /// The compiler takes this from the media sample the hint sample's first
    /// sample constructor references (media track 'stss', every sample when it
    /// has none); for hint samples holding their payload themselves, from the
    /// hint track's 'stss' (every sample when it has none, or when the media
    /// tracks have no 'stss'). See [`mod@crate::compile`]. Seeks start on such
    /// packets.
    pub const SYNC: u8 = 2;
    /// First packet of its hint sample.
    pub const SAMPLE_START: u8 = 4;

    /// True when the RTP marker bit is set.
    pub fn marker(self) -> bool {
        self.0 & Self::MARKER != 0
    }
    /// True when this packet starts a sync (random access) sample.
    pub fn sync(self) -> bool {
        self.0 & Self::SYNC != 0
    }
    /// True when this packet is the first of its hint sample.
    pub fn sample_start(self) -> bool {
        self.0 & Self::SAMPLE_START != 0
    }
}

/// One RTP packet of a track schedule (32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledPacket {
    /// Send time in µs from presentation start (npt 0): the hint sample's decode
    /// time plus the packet entry's relative transmission time, corrected by
    /// the hint track's edit list. Monotonic non-decreasing within a track.
    pub send_time_us: u64,
    /// RTP timestamp relative to the session's random timestamp base, in the
    /// track's RTP clock ticks ('tims', e.g. 90 kHz for video): the hint sample's
    /// time plus any 'rtpo' offset. Wraps modulo 2^32.
    pub rtp_time: u32,
    /// Index of the packet's first segment in [`TrackSchedule::segments`].
    pub first_segment: u32,
    /// Total payload length in bytes (sum of the segments' lengths; excludes
    /// the 12-byte RTP header).
    pub payload_len: u32,
    /// Number of segments, at most [`MAX_SEGMENTS_PER_PACKET`].
    pub segment_count: u8,
    /// RTP payload type (7 bits), from the hint's RTP header info.
    pub payload_type: u8,
    /// Marker / sync / sample-start flags.
    pub flags: PacketFlags,
}

/// The compiled schedule of one hint track.
#[derive(Debug)]
pub struct TrackSchedule {
    /// Track ID ('tkhd') of the hint track; the SDP control is `trackID=<this>`.
    pub track_id: u32,
    /// Track ID of the media track the hint track references ('tref'/'hint'),
    /// if any.
    pub media_track_id: Option<u32>,
    /// RTP clock rate in Hz ('rtp ' sample entry 'tims').
    pub clock_rate: u32,
    /// Largest packet the hint track declares ('rtp ' maxpacketsize), bytes.
    pub max_packet_size: u32,
    /// Track-level SDP text from udta/hnti/'sdp ', verbatim (CRLF or LF line
    /// ends as in the file); the `m=` line and attributes of this track.
    pub sdp: String,
    /// Packets in send order.
    pub packets: Vec<ScheduledPacket>,
    /// Payload segments, indexed by [`ScheduledPacket::first_segment`].
    pub segments: Vec<Segment>,
    /// Immediate-data bytes (immediate constructors, hint-sample-resident data,
    /// overflow segments), indexed by [`SegmentSource::Arena`] segments.
    pub arena: Vec<u8>,
    /// Duration of the track in µs (media duration of the hint track).
    pub duration_us: u64,
    /// RTP time (track clock, before the session's random base) of
    /// presentation time npt 0: the earliest RTP time of any packet, which with
    /// B-frames is not the first packet's (see [`rtp_origin_of`]). A packet's
    /// presentation time is `(rtp_time − rtp_origin) / clock_rate`.
    pub rtp_origin: u32,
}

/// The earliest RTP time among `packets`, comparing modulo 2^32 relative to
/// the first packet (RTP times move back by a few frames with B-frames and may
/// wrap). 0 for an empty list.
pub fn rtp_origin_of(packets: &[ScheduledPacket]) -> u32 {
    let Some(first) = packets.first().map(|p| p.rtp_time) else {
        return 0;
    };
    let back = packets
        .iter()
        .map(|p| p.rtp_time.wrapping_sub(first) as i32)
        .min()
        .unwrap_or(0)
        .min(0);
    first.wrapping_add(back as u32)
}

impl TrackSchedule {
    /// Total payload bytes across all packets.
    pub fn payload_bytes(&self) -> u64 {
        self.packets.iter().map(|p| u64::from(p.payload_len)).sum()
    }

    /// The segments of `packet`.
    pub fn segments_of(&self, packet: &ScheduledPacket) -> &[Segment] {
        let start = packet.first_segment as usize;
        &self.segments[start..start + packet.segment_count as usize]
    }

    /// Presentation time of `packet` in µs from npt 0 (negative values, for
    /// samples before the edit list's start, clamp to 0).
    pub fn presentation_us(&self, packet: &ScheduledPacket) -> u64 {
        let ticks = packet.rtp_time.wrapping_sub(self.rtp_origin) as i32;
        if ticks <= 0 || self.clock_rate == 0 {
            return 0;
        }
        ticks as u64 * 1_000_000 / u64::from(self.clock_rate)
    }

    /// RTP time (before the session base) of presentation time `npt_us`.
    pub fn rtp_at(&self, npt_us: u64) -> u32 {
        let ticks = (u128::from(npt_us) * u128::from(self.clock_rate) / 1_000_000) as u32;
        self.rtp_origin.wrapping_add(ticks)
    }

    /// Index of the first packet whose send time is at or after `time_us`
    /// (`packets.len()` when none is).
    pub fn first_at_or_after(&self, time_us: u64) -> usize {
        self.packets.partition_point(|p| p.send_time_us < time_us)
    }
}

/// The compiled schedules of one hinted file, shared read-only by every session
/// and shard (behind an `Arc`).
#[derive(Debug)]
pub struct FileSchedule {
    /// The memory-mapped file that [`SegmentSource::File`] segments index.
    pub map: Arc<Mmap>,
    /// Session-level SDP lines from moov/udta/hnti/'rtp ' (Apple files), if any.
    pub session_sdp: Option<String>,
    /// One schedule per hint track, in track order.
    pub tracks: Vec<TrackSchedule>,
    /// Presentation duration in µs ('mvhd' duration / timescale).
    pub duration_us: u64,
}

impl FileSchedule {
    /// The bytes of `segment` within `track`. Returns `None` when the segment's
    /// range lies outside its buffer (never the case for a compiled schedule).
    pub fn segment_bytes<'a>(
        &'a self,
        track: &'a TrackSchedule,
        segment: &Segment,
    ) -> Option<&'a [u8]> {
        let start = usize::try_from(segment.offset).ok()?;
        let end = start.checked_add(segment.len as usize)?;
        match segment.source {
            SegmentSource::File => self.map.get(start..end),
            SegmentSource::Arena => track.arena.get(start..end),
        }
    }
}
