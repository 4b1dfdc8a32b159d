//! AAC packetizer, RFC 3640 mpeg4-generic in AAC-hbr mode: AU-headers of
//! 13-bit size and 3-bit index, several consecutive access units per packet
//! up to the payload budget, and fragmentation of access units larger than
//! it (RFC 3640 §3.2.3); configuration from 'esds' (AudioSpecificConfig,
//! ISO/IEC 14496-3 §1.6.2.1).

use super::entry::{parse_esds, SampleEntry};
use super::sdp::{hex, MediaSdp};
use super::{
    plan_bytes, HintSamplePlan, MediaSample, PacketPlan, Packetizer, SampleError,
    HINT_SAMPLE_PLAN_BYTES, MAX_PIECES_PER_PACKET,
};

/// Largest access unit an AAC-hbr AU-header can describe (sizelength=13), bytes.
pub const MAX_AU_SIZE: u32 = (1 << 13) - 1;

/// Most access units per packet: the AU-header section (2 + 2n bytes) takes
/// ceil((2 + 2n) / 14) immediate constructors in a hint sample and each AU one
/// sample constructor, and a packet keeps within [`MAX_PIECES_PER_PACKET`]
/// constructors (13 AUs: 2 + 13 = 15).
const MAX_AUS_PER_PACKET: usize = 13;

const _: () = assert!(
    MAX_AUS_PER_PACKET + (2 + 2 * MAX_AUS_PER_PACKET).div_ceil(14) <= MAX_PIECES_PER_PACKET
);

/// Most audio one packet carries, µs: a lost packet then costs at most this
/// much sound. 170 ms gives 7 AAC frames (1024 samples) per packet at 44.1
/// and 48 kHz, as ffmpeg's hinter aggregates.
pub const MAX_PACKET_SPAN_US: u64 = 170_000;

/// Sampling frequencies by samplingFrequencyIndex (ISO/IEC 14496-3 Table 1.16).
const FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The leading fields of an AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// audioObjectType (2 = AAC LC, 5 = SBR, 29 = PS, ...).
    pub object_type: u8,
    /// Sampling frequency, Hz.
    pub frequency: u32,
    /// channelConfiguration (0 = defined in a program config element).
    pub channels: u8,
}

impl AudioSpecificConfig {
    /// Parses the object type, frequency and channel configuration.
    ///
    /// # Errors
    /// A description when the config is truncated or uses a reserved index.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        let mut bits = Bits { b, at: 0 };
        let short = || "truncated AudioSpecificConfig".to_string();
        let mut object_type = bits.take(5).ok_or_else(short)?;
        if object_type == 31 {
            object_type = 32 + bits.take(6).ok_or_else(short)?;
        }
        let index = bits.take(4).ok_or_else(short)?;
        let frequency = if index == 15 {
            bits.take(24).ok_or_else(short)?
        } else {
            *FREQUENCIES
                .get(index as usize)
                .ok_or_else(|| format!("reserved samplingFrequencyIndex {index}"))?
        };
        let channels = bits.take(4).ok_or_else(short)?;
        Ok(Self {
            object_type: object_type as u8,
            frequency,
            channels: channels as u8,
        })
    }
}

/// A big-endian bit reader.
struct Bits<'a> {
    b: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.b.get(self.at / 8)?;
            v = v << 1 | u32::from(byte >> (7 - self.at % 8) & 1);
            self.at += 1;
        }
        Some(v)
    }
}

/// A held-back access unit.
#[derive(Debug, Clone, Copy)]
struct Au {
    index: u32,
    len: u32,
    decode_time: u64,
    duration: u32,
}

/// AAC packetizer (RFC 3640 AAC-hbr).
#[derive(Debug)]
pub struct AacPacketizer {
    config: Vec<u8>,
    clock_rate: u32,
    channels: u32,
    max_payload: u32,
    /// Media timescale of the samples' times and durations.
    media_timescale: u32,
    pending: Vec<Au>,
}

impl AacPacketizer {
    /// A packetizer for an 'mp4a' sample entry carrying AAC. The RTP clock is
    /// the media timescale when it is an audio sampling rate (8 kHz..192 kHz),
    /// else the sample entry's rate, else the AudioSpecificConfig's.
    ///
    /// # Errors
    /// A description when 'esds' is missing, its object type is not MPEG-4
    /// Audio (0x40) or MPEG-2 AAC (0x66-0x68), or the audio object type is
    /// not an AAC variant.
    pub fn new(
        entry: &SampleEntry<'_>,
        media_timescale: u32,
        max_payload: u32,
    ) -> Result<Self, String> {
        let esds = entry.child(b"esds").ok_or("sample entry has no esds box")?;
        let esds = parse_esds(esds).ok_or("malformed esds box")?;
        match esds.object_type {
            0x40 | 0x66..=0x68 => {}
            0x69 | 0x6b => {
                return Err(
                    "MPEG-1/2 audio (MP3) has no RTP packetizer here; only AAC is supported".into(),
                )
            }
            other => {
                return Err(format!(
                    "esds objectTypeIndication 0x{other:02x} is not AAC"
                ))
            }
        }
        if esds.specific.is_empty() {
            return Err("esds has no AudioSpecificConfig".into());
        }
        let asc = AudioSpecificConfig::parse(esds.specific)?;
        if !matches!(asc.object_type, 1..=7 | 17 | 19..=23 | 29 | 42) {
            return Err(format!(
                "audio object type {} is not an AAC variant",
                asc.object_type
            ));
        }
        let clock_rate = if (8000..=192_000).contains(&media_timescale) {
            media_timescale
        } else if entry.sample_rate > 0 {
            entry.sample_rate
        } else {
            asc.frequency
        };
        if clock_rate == 0 {
            return Err("no sampling rate: media timescale, sample entry and \
                 AudioSpecificConfig all give none"
                .into());
        }
        let channels = if asc.channels > 0 {
            u32::from(asc.channels)
        } else {
            u32::from(entry.channels.max(1))
        };
        Ok(Self {
            config: esds.specific.to_vec(),
            clock_rate,
            channels,
            max_payload,
            media_timescale: media_timescale.max(1),
            pending: Vec::new(),
        })
    }

    /// Emits the held-back AUs as one packet: AU-headers-length, one AU
    /// header per AU, then the AUs. Marker set (RFC 3640 §3.2.1: the packet
    /// ends the last AU it carries).
    fn flush(&mut self, out: &mut Vec<HintSamplePlan>) {
        let Some(first) = self.pending.first() else {
            return;
        };
        let mut header = Vec::with_capacity(2 + 2 * self.pending.len());
        header.extend_from_slice(&((16 * self.pending.len()) as u16).to_be_bytes());
        for au in &self.pending {
            // len <= MAX_AU_SIZE, checked in push.
            header.extend_from_slice(&((au.len << 3) as u16).to_be_bytes());
        }
        let mut p = PacketPlan {
            pieces: Vec::new(),
            marker: true,
        };
        p.push_immediate(&header);
        for au in &self.pending {
            p.push_sample(au.index, 0, au.len);
        }
        out.push(HintSamplePlan {
            sample: first.index,
            sync: true,
            droppable: false,
            packets: vec![p],
        });
        self.pending.clear();
    }

    /// Emits one AU larger than the payload budget as fragments, each with a
    /// single AU header giving the whole AU's size; the marker is set on the
    /// last fragment only (RFC 3640 §3.2.3).
    fn fragment(&self, sample: &MediaSample<'_>, len: u32, out: &mut Vec<HintSamplePlan>) {
        let chunk = self.max_payload - 4;
        let mut packets = Vec::new();
        let mut at = 0;
        while at < len {
            let n = chunk.min(len - at);
            let mut p = PacketPlan {
                pieces: Vec::new(),
                marker: at + n == len,
            };
            p.push_immediate(&[0, 16]);
            p.push_immediate(&((len << 3) as u16).to_be_bytes());
            p.push_sample(sample.index, at, n);
            packets.push(p);
            at += n;
        }
        out.push(HintSamplePlan {
            sample: sample.index,
            sync: true,
            droppable: false,
            packets,
        });
    }
}

impl Packetizer for AacPacketizer {
    fn name(&self) -> &'static str {
        "mpeg4-generic"
    }

    fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// Holds the AU back while the next one may join its packet: AUs join
    /// while the packet fits the budget, stays within 13 AUs and
    /// [`MAX_PACKET_SPAN_US`] of audio, and the AUs are contiguous in time
    /// with equal durations (the receiver derives each AU's timestamp from
    /// the first one's).
    fn push(
        &mut self,
        sample: &MediaSample<'_>,
        out: &mut Vec<HintSamplePlan>,
    ) -> Result<(), SampleError> {
        let len = u32::try_from(sample.data.len()).unwrap_or(u32::MAX);
        if len > MAX_AU_SIZE {
            return Err(SampleError {
                sample: sample.index + 1,
                reason: format!(
                    "AAC access unit of {len} bytes exceeds the 13-bit AU size ({MAX_AU_SIZE})"
                ),
            });
        }
        if len == 0 {
            return Ok(());
        }
        if 4 + len > self.max_payload {
            self.flush(out);
            self.fragment(sample, len, out);
            return Ok(());
        }
        if let (Some(first), Some(last)) = (self.pending.first(), self.pending.last()) {
            let size = 2 + self.pending.iter().map(|a| 2 + a.len).sum::<u32>();
            let contiguous = last.decode_time.checked_add(u64::from(last.duration))
                == Some(sample.decode_time)
                && sample.duration == first.duration;
            let span = sample
                .decode_time
                .saturating_add(u64::from(sample.duration))
                .saturating_sub(first.decode_time);
            let span_us = u128::from(span) * 1_000_000 / u128::from(self.media_timescale);
            if !contiguous
                || span_us > u128::from(MAX_PACKET_SPAN_US)
                || size + 2 + len > self.max_payload
                || self.pending.len() >= MAX_AUS_PER_PACKET
            {
                self.flush(out);
            }
        }
        self.pending.push(Au {
            index: sample.index,
            len,
            decode_time: sample.decode_time,
            duration: sample.duration,
        });
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<HintSamplePlan>) {
        self.flush(out);
    }

    /// An AU held back joins a plan with one packet: at most one plan, one
    /// packet, one AU header and one sample piece per AU; a fragmented AU
    /// takes one plan and one packet per fragment.
    fn plan_bytes(&self, sample: &MediaSample<'_>) -> u64 {
        let len = sample.data.len() as u64;
        let pending = size_of::<Au>() as u64;
        if len == 0 || len > u64::from(MAX_AU_SIZE) {
            return 0;
        }
        let budget = u64::from(self.max_payload);
        if 4 + len > budget {
            let fragments = len.div_ceil(budget.saturating_sub(4).max(1));
            return HINT_SAMPLE_PLAN_BYTES + fragments.saturating_mul(plan_bytes(2, 1));
        }
        HINT_SAMPLE_PLAN_BYTES + plan_bytes(2, 1) + pending
    }

    /// `mpeg4-generic/<rate>/<channels>`; fmtp `streamtype=5`,
    /// `profile-level-id=1`, `mode=AAC-hbr`, `sizelength=13`, `indexlength=3`,
    /// `indexdeltalength=3`, `config=<AudioSpecificConfig hex>` (RFC 3640 §4.1, §3.3.6).
    fn media_sdp(&self, payload_type: u8) -> MediaSdp {
        MediaSdp {
            media: "audio",
            payload_type,
            rtpmap: format!("mpeg4-generic/{}/{}", self.clock_rate, self.channels),
            fmtp: Some(format!(
                "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={}",
                hex(&self.config)
            )),
            attributes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packetize::entry::tests::{audio_entry, esds};
    use crate::packetize::{packetizer_for, TrackDesc};

    fn aac(rate: u32) -> Box<dyn Packetizer> {
        let entry = audio_entry(b"mp4a", 2, rate, &esds(0x40, 5, &[0x12, 0x10]));
        let desc = TrackDesc {
            track_id: 2,
            handler: *b"soun",
            timescale: rate,
            entry: &entry,
        };
        packetizer_for(&desc, 1450).expect("aac")
    }

    /// Depacketizes AAC-hbr payloads into (AU sizes from headers, AU bytes).
    fn depacketize(payload: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let n = usize::from(u16::from_be_bytes([payload[0], payload[1]])) / 16;
        let mut at = 2 + 2 * n;
        (0..n)
            .map(|i| {
                let size =
                    usize::from(u16::from_be_bytes([payload[2 + 2 * i], payload[3 + 2 * i]]) >> 3);
                let end = (at + size).min(payload.len());
                let au = payload[at..end].to_vec();
                at = end;
                (size, au)
            })
            .collect()
    }

    #[test]
    fn aggregates_up_to_budget_and_fragments_big_aus() {
        let mut p = aac(44100);
        let aus: Vec<Vec<u8>> = [200usize, 200, 200, 200, 200, 200, 200, 300, 3000, 100]
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8; n])
            .collect();
        let mut out = Vec::new();
        for (i, au) in aus.iter().enumerate() {
            let s = MediaSample {
                index: i as u32,
                data: au,
                decode_time: 1024 * i as u64,
                duration: 1024,
                sync: true,
            };
            p.push(&s, &mut out).expect("push");
        }
        p.finish(&mut out);
        // 7 x 200 + 2 + 14 = 1416 fits 1438; the 300 B AU does not.
        let counts: Vec<(u32, usize)> = out.iter().map(|h| (h.sample, h.packets.len())).collect();
        assert_eq!(counts, vec![(0, 1), (7, 1), (8, 3), (9, 1)]);
        let bytes = |i: u32| Some(&aus[i as usize][..]);
        let first = out[0].packets[0].resolve(bytes).expect("resolve");
        assert_eq!(first.len(), 1416);
        let parsed = depacketize(&first);
        assert_eq!(parsed.len(), 7);
        assert!(parsed
            .iter()
            .enumerate()
            .all(|(i, (size, au))| *size == 200 && au == &aus[i]));
        // Fragments: every header gives the whole AU size; marker on the last.
        let frags: Vec<Vec<u8>> = out[2]
            .packets
            .iter()
            .map(|pk| pk.resolve(bytes).expect("frag"))
            .collect();
        assert!(frags
            .iter()
            .all(|f| f[..4] == [0, 16, (3000u16 << 3 >> 8) as u8, (3000u16 << 3) as u8]));
        let joined: Vec<u8> = frags.iter().flat_map(|f| f[4..].to_vec()).collect();
        assert_eq!(joined, aus[8]);
        let markers: Vec<bool> = out[2].packets.iter().map(|pk| pk.marker).collect();
        assert_eq!(markers, vec![false, false, true]);
        assert!(out
            .iter()
            .flat_map(|h| &h.packets)
            .all(|pk| pk.payload_len() <= 1438 && pk.pieces.len() <= 15));
    }

    #[test]
    fn time_gap_span_and_au_cap_split_packets() {
        let starts = |duration: u32, gap_at: u32| {
            let mut p = aac(48000);
            let au = vec![7u8; 10];
            let mut out = Vec::new();
            for i in 0..30u32 {
                let gap = if i >= gap_at { 5000 } else { 0 };
                let t = u64::from(duration) * u64::from(i) + gap;
                let s = MediaSample {
                    index: i,
                    data: &au,
                    decode_time: t,
                    duration,
                    sync: true,
                };
                p.push(&s, &mut out).expect("push");
            }
            p.finish(&mut out);
            out.iter().map(|h| h.sample).collect::<Vec<u32>>()
        };
        // 1024-sample frames at 48 kHz: 7 frames (149 ms) per packet, and a
        // time gap before frame 20 starts a new packet.
        assert_eq!(starts(1024, 20), vec![0, 7, 14, 20, 27]);
        // 480-sample frames (10 ms): the 13-AU cap applies first.
        assert_eq!(starts(480, 99), vec![0, 13, 26]);
    }

    #[test]
    fn sdp_and_rejections() {
        let sdp = aac(44100).media_sdp(97);
        assert_eq!(sdp.rtpmap, "mpeg4-generic/44100/2");
        assert_eq!(
            sdp.fmtp.as_deref(),
            Some("streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210")
        );
        let mp3 = audio_entry(b"mp4a", 2, 44100, &esds(0x6b, 5, &[]));
        let desc = TrackDesc {
            track_id: 2,
            handler: *b"soun",
            timescale: 44100,
            entry: &mp3,
        };
        let err = packetizer_for(&desc, 1450).err().expect("mp3 unsupported");
        assert!(err.reason.contains("MP3"), "{err}");
        let mut p = aac(44100);
        let big = vec![0u8; 9000];
        let err = p.push(
            &MediaSample {
                index: 0,
                data: &big,
                decode_time: 0,
                duration: 1024,
                sync: true,
            },
            &mut Vec::new(),
        );
        assert!(err.is_err());
        assert_eq!(
            AudioSpecificConfig::parse(&[0x11, 0x90]),
            Ok(AudioSpecificConfig {
                object_type: 2,
                frequency: 48000,
                channels: 2
            })
        );
        assert!(AudioSpecificConfig::parse(&[0x17]).is_err());
    }
}
