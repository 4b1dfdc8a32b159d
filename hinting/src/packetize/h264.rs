//! H.264 packetizer, RFC 6184 with packetization-mode=1 (single NAL unit,
//! STAP-A and FU-A packets); configuration from 'avcC'
//! (ISO/IEC 14496-15 §5.3.3.1, AVCDecoderConfigurationRecord).

use super::entry::SampleEntry;
use super::nal::{NalCodec, NalPacketizer};
use super::sdp::{base64, hex, MediaSdp};
use super::{HintSamplePlan, MediaSample, Packetizer, SampleError};

/// The fields of an AVCDecoderConfigurationRecord the packetizer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// profile_idc, constraint flags, level_idc (the SDP profile-level-id).
    pub profile_level: [u8; 3],
    /// Bytes of each NAL unit length prefix (1, 2 or 4).
    pub length_size: u32,
    /// Sequence parameter set NAL units.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter set NAL units.
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    /// Parses an 'avcC' payload.
    ///
    /// # Errors
    /// A description when the record is truncated, has an unknown version or
    /// a length size of 3.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        let short = || "truncated avcC".to_string();
        if *b.first().ok_or_else(short)? != 1 {
            return Err(format!("avcC configurationVersion {} is not 1", b[0]));
        }
        let profile_level = [
            *b.get(1).ok_or_else(short)?,
            *b.get(2).ok_or_else(short)?,
            *b.get(3).ok_or_else(short)?,
        ];
        let length_size = u32::from(*b.get(4).ok_or_else(short)? & 3) + 1;
        if length_size == 3 {
            return Err("avcC lengthSizeMinusOne 2 is not allowed".into());
        }
        let mut at = 5;
        let mut sets = [Vec::new(), Vec::new()];
        for (i, list) in sets.iter_mut().enumerate() {
            let mut count = usize::from(*b.get(at).ok_or_else(short)?);
            if i == 0 {
                count &= 0x1f;
            }
            at += 1;
            for _ in 0..count {
                let len = usize::from(u16::from_be_bytes([
                    *b.get(at).ok_or_else(short)?,
                    *b.get(at + 1).ok_or_else(short)?,
                ]));
                list.push(b.get(at + 2..at + 2 + len).ok_or_else(short)?.to_vec());
                at += 2 + len;
            }
        }
        let [sps, pps] = sets;
        Ok(Self {
            profile_level,
            length_size,
            sps,
            pps,
        })
    }
}

/// H.264 packetizer (RFC 6184, packetization-mode=1).
#[derive(Debug)]
pub struct H264Packetizer {
    config: AvcConfig,
    nal: NalPacketizer,
    max_payload: u32,
    width: u16,
    height: u16,
}

impl H264Packetizer {
    /// A packetizer for an 'avc1'/'avc3' sample entry.
    ///
    /// # Errors
    /// A description when 'avcC' is missing or malformed.
    pub fn new(entry: &SampleEntry<'_>, max_payload: u32) -> Result<Self, String> {
        let avcc = entry.child(b"avcC").ok_or("sample entry has no avcC box")?;
        let config = AvcConfig::parse(avcc)?;
        Ok(Self {
            nal: NalPacketizer::new(NalCodec::H264, config.length_size, max_payload),
            config,
            max_payload,
            width: entry.width,
            height: entry.height,
        })
    }
}

impl Packetizer for H264Packetizer {
    fn name(&self) -> &'static str {
        "H264"
    }

    fn clock_rate(&self) -> u32 {
        90_000
    }

    fn max_payload(&self) -> u32 {
        self.max_payload
    }

    fn push(
        &mut self,
        sample: &MediaSample<'_>,
        out: &mut Vec<HintSamplePlan>,
    ) -> Result<(), SampleError> {
        out.push(self.nal.packetize(sample)?);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<HintSamplePlan>) {}

    fn plan_bytes(&self, sample: &MediaSample<'_>) -> u64 {
        self.nal.plan_bytes(sample.data)
    }

    /// `H264/90000`; fmtp `packetization-mode=1`, `profile-level-id` from the
    /// first SPS (or 'avcC' when it has none) and `sprop-parameter-sets`
    /// (RFC 6184 §8.1).
    fn media_sdp(&self, payload_type: u8) -> MediaSdp {
        let profile_level = self
            .config
            .sps
            .first()
            .and_then(|s| s.get(1..4))
            .map_or(self.config.profile_level, |p| [p[0], p[1], p[2]]);
        let mut fmtp = format!(
            "packetization-mode=1;profile-level-id={}",
            hex(&profile_level).to_uppercase()
        );
        let sets: Vec<String> = self
            .config
            .sps
            .iter()
            .chain(&self.config.pps)
            .map(|s| base64(s))
            .collect();
        if !sets.is_empty() {
            fmtp.push_str(";sprop-parameter-sets=");
            fmtp.push_str(&sets.join(","));
        }
        let mut attributes = Vec::new();
        if self.width > 0 && self.height > 0 {
            attributes.push(format!(
                "framesize:{payload_type} {}-{}",
                self.width, self.height
            ));
        }
        MediaSdp {
            media: "video",
            payload_type,
            rtpmap: "H264/90000".into(),
            fmtp: Some(fmtp),
            attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::packetize::entry::tests::{boxed, visual_entry};
    use crate::packetize::{packetizer_for, TrackDesc};

    fn avcc(sps: &[u8], pps: &[u8]) -> Vec<u8> {
        let mut b = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        b.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        b.extend_from_slice(sps);
        b.push(1);
        b.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        b.extend_from_slice(pps);
        b
    }

    #[test]
    fn sdp_from_avcc() {
        let sps = [0x67, 0x4d, 0x40, 0x15, 0xec, 0xa0];
        let pps = [0x68, 0xee, 0x3c, 0x80];
        let entry = visual_entry(b"avc1", &boxed(b"avcC", &avcc(&sps, &pps)));
        let desc = TrackDesc {
            track_id: 1,
            handler: *b"vide",
            timescale: 12800,
            entry: &entry,
        };
        let p = packetizer_for(&desc, 1450).expect("h264");
        assert_eq!(
            (p.name(), p.clock_rate(), p.max_payload()),
            ("H264", 90_000, 1438)
        );
        let sdp = p.media_sdp(96);
        assert_eq!(sdp.rtpmap, "H264/90000");
        assert_eq!(
            sdp.fmtp.as_deref(),
            Some("packetization-mode=1;profile-level-id=4D4015;sprop-parameter-sets=Z01AFeyg,aO48gA==")
        );
    }

    #[test]
    fn bad_avcc_is_unsupported() {
        for avcc in [
            vec![],
            vec![2, 0, 0, 0, 0xff, 0xe1],
            vec![1, 0x4d, 0, 0x15, 0xff, 0xe1, 0, 9, 0x67],
        ] {
            let entry = visual_entry(b"avc1", &boxed(b"avcC", &avcc));
            let desc = TrackDesc {
                track_id: 1,
                handler: *b"vide",
                timescale: 12800,
                entry: &entry,
            };
            assert!(packetizer_for(&desc, 1450).is_err());
        }
        let entry = visual_entry(b"avc1", &[]);
        let desc = TrackDesc {
            track_id: 1,
            handler: *b"vide",
            timescale: 12800,
            entry: &entry,
        };
        let err = packetizer_for(&desc, 1450).err().expect("no avcC");
        assert!(err.reason.contains("avcC"), "{err}");
    }
}
