//! H.265 packetizer, RFC 7798 (single NAL unit packets, aggregation packets
//! and fragmentation units, no DONL); configuration from 'hvcC'
//! (ISO/IEC 14496-15 §8.3.3.1, HEVCDecoderConfigurationRecord).

use super::entry::SampleEntry;
use super::nal::{NalCodec, NalPacketizer};
use super::sdp::{base64, MediaSdp};
use super::{HintSamplePlan, MediaSample, Packetizer, SampleError};

/// Bytes of the fixed part of an HEVCDecoderConfigurationRecord, up to and
/// including numOfArrays.
const HVCC_FIXED: usize = 23;

/// The fields of an HEVCDecoderConfigurationRecord the packetizer uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// general_profile_idc (SDP profile-id).
    pub profile_id: u8,
    /// general_tier_flag (SDP tier-flag).
    pub tier_flag: u8,
    /// general_level_idc (SDP level-id).
    pub level_id: u8,
    /// Bytes of each NAL unit length prefix (1, 2 or 4).
    pub length_size: u32,
    /// Parameter-set and SEI NAL units by type: VPS (32), SPS (33), PPS (34),
    /// prefix SEI (39).
    pub vps: Vec<Vec<u8>>,
    /// Sequence parameter sets.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter sets.
    pub pps: Vec<Vec<u8>>,
    /// Prefix SEI NAL units declared in the configuration.
    pub sei: Vec<Vec<u8>>,
}

impl HevcConfig {
    /// Parses an 'hvcC' payload.
    ///
    /// # Errors
    /// A description when the record is truncated or has an unknown version
    /// or a length size of 3.
    pub fn parse(b: &[u8]) -> Result<Self, String> {
        let short = || "truncated hvcC".to_string();
        let fixed = b.get(..HVCC_FIXED).ok_or_else(short)?;
        if fixed[0] != 1 {
            return Err(format!("hvcC configurationVersion {} is not 1", fixed[0]));
        }
        let length_size = u32::from(fixed[21] & 3) + 1;
        if length_size == 3 {
            return Err("hvcC lengthSizeMinusOne 2 is not allowed".into());
        }
        let mut config = Self {
            profile_id: fixed[1] & 0x1f,
            tier_flag: fixed[1] >> 5 & 1,
            level_id: fixed[12],
            length_size,
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
            sei: Vec::new(),
        };
        let mut at = HVCC_FIXED;
        for _ in 0..fixed[22] {
            let kind = *b.get(at).ok_or_else(short)? & 0x3f;
            let count = u16::from_be_bytes([
                *b.get(at + 1).ok_or_else(short)?,
                *b.get(at + 2).ok_or_else(short)?,
            ]);
            at += 3;
            for _ in 0..count {
                let len = usize::from(u16::from_be_bytes([
                    *b.get(at).ok_or_else(short)?,
                    *b.get(at + 1).ok_or_else(short)?,
                ]));
                let nal = b.get(at + 2..at + 2 + len).ok_or_else(short)?.to_vec();
                at += 2 + len;
                match kind {
                    32 => config.vps.push(nal),
                    33 => config.sps.push(nal),
                    34 => config.pps.push(nal),
                    39 => config.sei.push(nal),
                    _ => {}
                }
            }
        }
        Ok(config)
    }
}

/// H.265 packetizer (RFC 7798).
#[derive(Debug)]
pub struct H265Packetizer {
    config: HevcConfig,
    nal: NalPacketizer,
    max_payload: u32,
    width: u16,
    height: u16,
}

impl H265Packetizer {
    /// A packetizer for an 'hvc1'/'hev1' sample entry.
    ///
    /// # Errors
    /// A description when 'hvcC' is missing or malformed.
    pub fn new(entry: &SampleEntry<'_>, max_payload: u32) -> Result<Self, String> {
        let hvcc = entry.child(b"hvcC").ok_or("sample entry has no hvcC box")?;
        let config = HevcConfig::parse(hvcc)?;
        Ok(Self {
            nal: NalPacketizer::new(NalCodec::H265, config.length_size, max_payload),
            config,
            max_payload,
            width: entry.width,
            height: entry.height,
        })
    }
}

impl Packetizer for H265Packetizer {
    fn name(&self) -> &'static str {
        "H265"
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

    /// `H265/90000`; fmtp `profile-id`, `tier-flag`, `level-id` and
    /// `sprop-vps`/`sprop-sps`/`sprop-pps` (RFC 7798 §7.1).
    fn media_sdp(&self, payload_type: u8) -> MediaSdp {
        let c = &self.config;
        let mut fmtp = format!(
            "profile-id={};tier-flag={};level-id={}",
            c.profile_id, c.tier_flag, c.level_id
        );
        // Prefix SEI from 'hvcC' (often the encoder's options string, several
        // kB) is not needed to decode and is left out of the SDP.
        for (name, sets) in [("vps", &c.vps), ("sps", &c.sps), ("pps", &c.pps)] {
            if !sets.is_empty() {
                let list: Vec<String> = sets.iter().map(|s| base64(s)).collect();
                fmtp.push_str(&format!(";sprop-{name}={}", list.join(",")));
            }
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
            rtpmap: "H265/90000".into(),
            fmtp: Some(fmtp),
            attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packetize::entry::tests::{boxed, visual_entry};
    use crate::packetize::{packetizer_for, TrackDesc};

    fn hvcc(arrays: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![
            1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 90, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0,
            0x0f,
        ];
        b.push(arrays.len() as u8);
        for (kind, nal) in arrays {
            b.push(0x80 | kind);
            b.extend_from_slice(&1u16.to_be_bytes());
            b.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            b.extend_from_slice(nal);
        }
        b
    }

    #[test]
    fn sdp_from_hvcc() {
        let arrays = [
            (32, vec![0x40, 0x01, 0x0c]),
            (33, vec![0x42, 0x01, 0x01]),
            (34, vec![0x44, 0x01, 0xc1]),
        ];
        let entry = visual_entry(b"hvc1", &boxed(b"hvcC", &hvcc(&arrays)));
        let desc = TrackDesc {
            track_id: 1,
            handler: *b"vide",
            timescale: 12800,
            entry: &entry,
        };
        let p = packetizer_for(&desc, 1450).expect("h265");
        let sdp = p.media_sdp(96);
        assert_eq!(sdp.rtpmap, "H265/90000");
        assert_eq!(
            sdp.fmtp.as_deref(),
            Some(
                "profile-id=1;tier-flag=0;level-id=90;sprop-vps=QAEM;sprop-sps=QgEB;sprop-pps=RAHB"
            )
        );
        // Truncated records are refused, not panics.
        let full = hvcc(&arrays);
        for cut in 0..full.len() {
            assert!(HevcConfig::parse(&full[..cut]).is_err(), "cut {cut}");
        }
    }
}
