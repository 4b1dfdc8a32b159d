//! RTP packetizers: turn the media samples of a plain MP4/MOV track into
//! packet plans, the codec-specific half of hinting.
//!
//! A [`Packetizer`] is pure: it reads one media sample's bytes at a time and
//! emits [`HintSamplePlan`]s, each a list of [`PacketPlan`]s made of
//! [`Piece`]s: small immediate byte strings (payload headers the packetizer
//! invents, such as FU-A headers or AU headers) and ranges of media samples
//! (the payload bytes, never copied). The same plans feed the hint-track
//! writer ([`crate::writer`], where pieces become immediate and sample
//! constructors) and the in-memory schedule of an un-hinted file
//! ([`plain::schedule_plain`], where they become arena and file segments).
//!
//! Payload formats: H.264 (RFC 6184, packetization-mode=1), H.265 (RFC 7798),
//! AAC (RFC 3640 mpeg4-generic, AAC-hbr) and MPEG-4 Visual (RFC 6416).
//! [`packetizer_for`] picks one from a track's sample entry.

mod aac;
mod entry;
mod h264;
mod h265;
mod mp4v;
mod nal;
pub mod plain;
pub mod plan;
pub mod sdp;

pub use sdp::MediaSdp;

/// Size of the fixed RTP header (RFC 3550 §5.1) without CSRCs, bytes.
pub const RTP_HEADER_LEN: u32 = 12;

/// Smallest accepted MTU (RTP header + payload), bytes. Below this an
/// aggregation or fragmentation unit cannot carry useful payload.
pub const MIN_MTU: u32 = 128;

/// Largest accepted MTU, bytes: the hint format's constructor lengths are
/// 16-bit and an RTP packet must fit one UDP datagram.
pub const MAX_MTU: u32 = 65_000;

/// Default MTU of the hinter, bytes (RTP header + payload), as ffmpeg's
/// `+rtphint` output declares in its 'rtp ' maxpacketsize.
pub const DEFAULT_MTU: u32 = 1450;

/// Most pieces a planned packet may have, so that a compiled schedule needs no
/// overflow copy (see [`crate::schedule::MAX_SEGMENTS_PER_PACKET`]).
pub const MAX_PIECES_PER_PACKET: usize = crate::schedule::MAX_SEGMENTS_PER_PACKET;

/// A four-character code ('avc1', 'mp4a', ...).
pub type FourCC = [u8; 4];

/// Renders a four-character code for messages, escaping non-printable bytes.
pub fn fourcc_str(code: &FourCC) -> String {
    code.iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// What a packetizer needs to know about a media track.
#[derive(Debug, Clone, Copy)]
pub struct TrackDesc<'a> {
    /// Track ID ('tkhd').
    pub track_id: u32,
    /// Handler type ('hdlr'): `vide`, `soun`, ...
    pub handler: FourCC,
    /// Media timescale ('mdhd'), ticks per second.
    pub timescale: u32,
    /// The first sample entry of 'stsd', as a complete box (32-bit size,
    /// fourcc, payload with its child boxes such as 'avcC' or 'esds').
    pub entry: &'a [u8],
}

/// One media sample handed to a packetizer.
#[derive(Debug, Clone, Copy)]
pub struct MediaSample<'a> {
    /// 0-based sample index in the media track (the hint format's sample
    /// numbers are this plus 1).
    pub index: u32,
    /// The sample's bytes.
    pub data: &'a [u8],
    /// Decode time in media timescale ticks ('stts').
    pub decode_time: u64,
    /// Duration in media timescale ticks ('stts' delta).
    pub duration: u32,
    /// Sync (random access) sample ('stss', or every sample without one).
    pub sync: bool,
}

/// One piece of an RTP payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes invented by the packetizer (payload headers). Short in practice;
    /// the writer splits them into 14-byte immediate constructors.
    Immediate(Vec<u8>),
    /// `len` bytes at `offset` within media sample `sample` (0-based).
    Sample {
        /// 0-based media sample index.
        sample: u32,
        /// Byte offset within the sample.
        offset: u32,
        /// Length in bytes.
        len: u32,
    },
}

impl Piece {
    /// Length of the piece in bytes.
    pub fn len(&self) -> u32 {
        match self {
            // Immediates are built by packetizers and never exceed a few bytes.
            Piece::Immediate(bytes) => u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            Piece::Sample { len, .. } => *len,
        }
    }

    /// True when the piece carries no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One planned RTP packet: its payload, as pieces, and its marker bit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketPlan {
    /// Payload pieces in order; adjacent immediates are merged and at most
    /// [`MAX_PIECES_PER_PACKET`] pieces are used.
    pub pieces: Vec<Piece>,
    /// RTP marker bit (RFC 3550 §5.1; its meaning is set by the payload format).
    pub marker: bool,
}

impl PacketPlan {
    /// An empty packet without marker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends immediate bytes, merging with a preceding immediate.
    pub fn push_immediate(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Piece::Immediate(last)) = self.pieces.last_mut() {
            last.extend_from_slice(bytes);
        } else {
            self.pieces.push(Piece::Immediate(bytes.to_vec()));
        }
    }

    /// Appends a range of a media sample, merging with a preceding range that
    /// ends where this one starts in the same sample.
    pub fn push_sample(&mut self, sample: u32, offset: u32, len: u32) {
        if len == 0 {
            return;
        }
        if let Some(Piece::Sample {
            sample: s,
            offset: o,
            len: l,
        }) = self.pieces.last_mut()
        {
            if *s == sample && o.checked_add(*l) == Some(offset) {
                if let Some(joined) = l.checked_add(len) {
                    *l = joined;
                    return;
                }
            }
        }
        self.pieces.push(Piece::Sample {
            sample,
            offset,
            len,
        });
    }

    /// Payload length in bytes (sum of the pieces, saturating at
    /// `u32::MAX`).
    pub fn payload_len(&self) -> u32 {
        self.pieces
            .iter()
            .map(Piece::len)
            .fold(0u32, u32::saturating_add)
    }

    /// The payload bytes, resolving sample pieces through `sample_bytes`
    /// (0-based index → the sample's bytes). `None` when a piece lies outside
    /// its sample. Used by tests and `--info`.
    pub fn resolve<'a>(
        &self,
        mut sample_bytes: impl FnMut(u32) -> Option<&'a [u8]>,
    ) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.payload_len() as usize);
        for piece in &self.pieces {
            match piece {
                Piece::Immediate(bytes) => out.extend_from_slice(bytes),
                Piece::Sample {
                    sample,
                    offset,
                    len,
                } => {
                    let data = sample_bytes(*sample)?;
                    let start = *offset as usize;
                    out.extend_from_slice(data.get(start..start.checked_add(*len as usize)?)?);
                }
            }
        }
        Some(out)
    }
}

/// One planned hint sample: packets that share one RTP timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintSamplePlan {
    /// 0-based index of the media sample whose times this hint sample takes:
    /// decode time → send time and hint sample time, presentation time
    /// (decode time + composition offset) → RTP timestamp.
    pub sample: u32,
    /// True when the media sample is a sync sample.
    pub sync: bool,
    /// True when the frame is not a reference for other frames (H.264
    /// nal_ref_idc 0, for example a non-reference B-frame): the hint packet's
    /// B flag, so a server may thin it.
    pub droppable: bool,
    /// The packets, in send order.
    pub packets: Vec<PacketPlan>,
}

/// A media sample the packetizer cannot split (for example a NAL unit length
/// running past the end of the sample).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sample {sample}: {reason}")]
pub struct SampleError {
    /// 1-based sample number (as in the hint format and in tools).
    pub sample: u32,
    /// What is wrong.
    pub reason: String,
}

/// A track that cannot be packetized: unknown codec, or a codec
/// configuration ('avcC', 'hvcC', 'esds') that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("track {track_id}: cannot packetize '{}': {reason}", fourcc_str(.fourcc))]
pub struct Unsupported {
    /// Track ID of the media track.
    pub track_id: u32,
    /// Sample entry fourcc ('avc1', 'mp4a', 'SVQ3', ...).
    pub fourcc: FourCC,
    /// Why the track cannot be packetized.
    pub reason: String,
}

/// A codec-specific RTP packetizer for one track.
///
/// Feed it every media sample in decode order with [`Packetizer::push`], then
/// call [`Packetizer::finish`] once. Plans come out in send order.
pub trait Packetizer: Send {
    /// Payload format name for messages ("H264", "H265", "mpeg4-generic", "MP4V-ES").
    fn name(&self) -> &'static str;

    /// RTP clock rate in Hz (90 000 for video, the sampling rate for audio).
    fn clock_rate(&self) -> u32;

    /// Largest RTP payload the packetizer produces, bytes (MTU minus the
    /// 12-byte RTP header).
    fn max_payload(&self) -> u32;

    /// Packetizes one media sample, appending finished hint samples to `out`.
    /// Packetizers that aggregate (AAC) may hold the sample back until a later
    /// call or [`Packetizer::finish`].
    ///
    /// # Errors
    /// [`SampleError`] when the sample's bytes do not follow the codec's
    /// framing (for example a NAL unit length past the end of the sample).
    fn push(
        &mut self,
        sample: &MediaSample<'_>,
        out: &mut Vec<HintSamplePlan>,
    ) -> Result<(), SampleError>;

    /// Flushes held-back samples at the end of the track.
    fn finish(&mut self, out: &mut Vec<HintSamplePlan>);

    /// An upper bound of the heap bytes that [`Packetizer::push`] of `sample`
    /// (and the eventual flush of what it holds back) adds to the plans,
    /// transients included, counted with [`plan_bytes`] and
    /// [`HINT_SAMPLE_PLAN_BYTES`]. Computed without building the plans
    /// (walking NAL unit lengths at most), so that the caller can refuse a
    /// sample that would exceed its [`crate::Budget`] before it is built.
    fn plan_bytes(&self, sample: &MediaSample<'_>) -> u64;

    /// The codec-specific SDP of the track (RFC 4566 media kind, `a=rtpmap`
    /// and `a=fmtp` values) for payload type `payload_type`.
    fn media_sdp(&self, payload_type: u8) -> MediaSdp;
}

/// Heap bytes counted for the buffer of one immediate piece (a few bytes of
/// payload header, in the smallest heap allocation).
pub const IMMEDIATE_HEAP_BYTES: u64 = 16;

/// Bytes counted for one [`HintSamplePlan`], twice its size: the plan list
/// grows by doubling.
pub const HINT_SAMPLE_PLAN_BYTES: u64 = 2 * size_of::<HintSamplePlan>() as u64;

/// Heap bytes counted for one planned packet of `pieces` pieces, `immediates`
/// of them immediate: the packet record (twice, for the doubling packet
/// list), its piece list as the vector allocates it (at least 4, a power of
/// two) and the immediates' buffers.
pub fn plan_bytes(pieces: u64, immediates: u64) -> u64 {
    let capacity = pieces
        .max(4)
        .checked_next_power_of_two()
        .unwrap_or(u64::MAX);
    (2 * size_of::<PacketPlan>() as u64)
        .saturating_add(capacity.saturating_mul(size_of::<Piece>() as u64))
        .saturating_add(immediates.saturating_mul(IMMEDIATE_HEAP_BYTES))
}

/// Largest RTP payload for an MTU (RTP header + payload), bytes.
///
/// # Errors
/// An explanation when `mtu` is outside [`MIN_MTU`]..=[`MAX_MTU`].
pub fn max_payload_for(mtu: u32) -> Result<u32, String> {
    if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
        return Err(format!("MTU {mtu} is outside {MIN_MTU}..={MAX_MTU} bytes"));
    }
    Ok(mtu - RTP_HEADER_LEN)
}

/// Chooses the packetizer for a track from its sample entry.
///
/// `mtu` is the largest RTP packet (12-byte header included), bytes; it must
/// be within [`MIN_MTU`]..=[`MAX_MTU`].
///
/// # Errors
/// [`Unsupported`] for a handler other than `vide`/`soun`, an unknown sample
/// entry fourcc, a missing or malformed codec configuration box, or an MTU out
/// of range.
pub fn packetizer_for(track: &TrackDesc<'_>, mtu: u32) -> Result<Box<dyn Packetizer>, Unsupported> {
    let entry = entry::SampleEntry::parse(track.entry).ok_or_else(|| Unsupported {
        track_id: track.track_id,
        fourcc: *b"????",
        reason: "malformed sample entry".into(),
    })?;
    let fail = |reason: String| Unsupported {
        track_id: track.track_id,
        fourcc: entry.fourcc,
        reason,
    };
    let max_payload = max_payload_for(mtu).map_err(fail)?;
    match (&track.handler, &entry.fourcc) {
        (b"vide", b"avc1" | b"avc3") => h264::H264Packetizer::new(&entry, max_payload)
            .map(|p| Box::new(p) as Box<dyn Packetizer>)
            .map_err(fail),
        (b"vide", b"hvc1" | b"hev1") => h265::H265Packetizer::new(&entry, max_payload)
            .map(|p| Box::new(p) as Box<dyn Packetizer>)
            .map_err(fail),
        (b"vide", b"mp4v") => mp4v::Mp4vPacketizer::new(&entry, max_payload)
            .map(|p| Box::new(p) as Box<dyn Packetizer>)
            .map_err(fail),
        (b"soun", b"mp4a") => aac::AacPacketizer::new(&entry, track.timescale, max_payload)
            .map(|p| Box::new(p) as Box<dyn Packetizer>)
            .map_err(fail),
        (b"vide" | b"soun", _) => Err(fail(
            "no RTP packetizer for this codec (supported: avc1/avc3, hvc1/hev1, mp4v, mp4a AAC)"
                .into(),
        )),
        (handler, _) => Err(fail(format!(
            "'{}' tracks are not streamed",
            fourcc_str(handler)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_plan_merges_adjacent_pieces() {
        let mut p = PacketPlan::new();
        p.push_immediate(&[1]);
        p.push_immediate(&[2, 3]);
        p.push_sample(4, 10, 5);
        p.push_sample(4, 15, 5);
        p.push_sample(5, 20, 1);
        p.push_sample(5, 30, 0);
        assert_eq!(
            p.pieces,
            vec![
                Piece::Immediate(vec![1, 2, 3]),
                Piece::Sample {
                    sample: 4,
                    offset: 10,
                    len: 10
                },
                Piece::Sample {
                    sample: 5,
                    offset: 20,
                    len: 1
                }
            ]
        );
        assert_eq!(p.payload_len(), 14);
    }

    #[test]
    fn resolve_rejects_out_of_range_pieces() {
        let mut p = PacketPlan::new();
        p.push_sample(0, 2, 4);
        let data = [0u8, 1, 2, 3, 4, 5];
        assert_eq!(p.resolve(|_| Some(&data[..])), Some(vec![2, 3, 4, 5]));
        let short = [0u8, 1, 2];
        assert_eq!(p.resolve(|_| Some(&short[..])), None);
    }

    #[test]
    fn mtu_bounds() {
        assert_eq!(max_payload_for(1450), Ok(1438));
        assert!(max_payload_for(20).is_err());
        assert!(max_payload_for(70_000).is_err());
    }

    #[test]
    fn unknown_codec_is_unsupported_with_its_fourcc() {
        let entry = entry::tests::visual_entry(b"SVQ3", &[]);
        let desc = TrackDesc {
            track_id: 7,
            handler: *b"vide",
            timescale: 600,
            entry: &entry,
        };
        let err = packetizer_for(&desc, 1450)
            .err()
            .map(|e| (e.track_id, e.fourcc));
        assert_eq!(err, Some((7, *b"SVQ3")));
    }
}
