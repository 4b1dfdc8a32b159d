//! MPEG-4 Visual packetizer, RFC 6416 §5 (MP4V-ES): each VOP is carried in
//! one packet, or fragmented over several packets when larger than the
//! payload budget; configuration (VOS/VO/VOL headers) from 'esds'.

use super::entry::{parse_esds, SampleEntry};
use super::sdp::{hex, MediaSdp};
use super::{
    plan_bytes, HintSamplePlan, MediaSample, PacketPlan, Packetizer, SampleError,
    HINT_SAMPLE_PLAN_BYTES,
};

/// The visual_object_sequence_start_code suffix (00 00 01 B0), followed by
/// profile_and_level_indication.
const VOS_START: [u8; 4] = [0, 0, 1, 0xb0];

/// MPEG-4 Visual packetizer (RFC 6416).
#[derive(Debug)]
pub struct Mp4vPacketizer {
    config: Vec<u8>,
    max_payload: u32,
    width: u16,
    height: u16,
}

impl Mp4vPacketizer {
    /// A packetizer for an 'mp4v' sample entry with an MPEG-4 Visual 'esds'
    /// (objectTypeIndication 0x20).
    ///
    /// # Errors
    /// A description when 'esds' is missing or names another codec (MPEG-1/2
    /// video, JPEG, ...).
    pub fn new(entry: &SampleEntry<'_>, max_payload: u32) -> Result<Self, String> {
        let esds = entry.child(b"esds").ok_or("sample entry has no esds box")?;
        let esds = parse_esds(esds).ok_or("malformed esds box")?;
        if esds.object_type != 0x20 {
            return Err(format!(
                "esds objectTypeIndication 0x{:02x} is not MPEG-4 Visual (0x20)",
                esds.object_type
            ));
        }
        Ok(Self {
            config: esds.specific.to_vec(),
            max_payload,
            width: entry.width,
            height: entry.height,
        })
    }

    /// profile_and_level_indication from the VOS header, 1 (Simple Profile
    /// Level 1, the RFC 6416 default) when the config has none.
    fn profile_level(&self) -> u8 {
        self.config
            .windows(5)
            .find(|w| w[..4] == VOS_START)
            .map_or(1, |w| w[4])
    }
}

impl Packetizer for Mp4vPacketizer {
    fn name(&self) -> &'static str {
        "MP4V-ES"
    }

    fn clock_rate(&self) -> u32 {
        90_000
    }

    fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// One packet per VOP, or consecutive fragments of the budget's size; the
    /// marker is set on the packet that ends the VOP (RFC 6416 §5.1).
    fn push(
        &mut self,
        sample: &MediaSample<'_>,
        out: &mut Vec<HintSamplePlan>,
    ) -> Result<(), SampleError> {
        let len = u32::try_from(sample.data.len()).map_err(|_| SampleError {
            sample: sample.index + 1,
            reason: "sample larger than 4 GiB".into(),
        })?;
        let mut packets = Vec::new();
        let mut at = 0;
        while at < len {
            let n = self.max_payload.min(len - at);
            let mut p = PacketPlan {
                pieces: Vec::new(),
                marker: at + n == len,
            };
            p.push_sample(sample.index, at, n);
            packets.push(p);
            at += n;
        }
        // vop_coding_type 2 (B-VOP) is never a reference.
        let droppable = sample
            .data
            .windows(5)
            .find(|w| w[..4] == [0, 0, 1, 0xb6])
            .is_some_and(|w| w[4] >> 6 == 2);
        out.push(HintSamplePlan {
            sample: sample.index,
            sync: sample.sync,
            droppable,
            packets,
        });
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<HintSamplePlan>) {}

    /// One plan, one packet of one piece per `max_payload` bytes.
    fn plan_bytes(&self, sample: &MediaSample<'_>) -> u64 {
        let packets = (sample.data.len() as u64).div_ceil(u64::from(self.max_payload.max(1)));
        HINT_SAMPLE_PLAN_BYTES.saturating_add(packets.saturating_mul(plan_bytes(1, 0)))
    }

    /// `MP4V-ES/90000`; fmtp `profile-level-id` and `config` (RFC 6416 §7.1).
    fn media_sdp(&self, payload_type: u8) -> MediaSdp {
        let mut fmtp = format!("profile-level-id={}", self.profile_level());
        if !self.config.is_empty() {
            fmtp.push_str(&format!(";config={}", hex(&self.config).to_uppercase()));
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
            rtpmap: "MP4V-ES/90000".into(),
            fmtp: Some(fmtp),
            attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packetize::entry::tests::{esds, visual_entry};
    use crate::packetize::{packetizer_for, TrackDesc};

    #[test]
    fn fragments_and_sdp() {
        let config = [0, 0, 1, 0xb0, 0xf5, 0, 0, 1, 0xb5];
        let entry = visual_entry(b"mp4v", &esds(0x20, 4, &config));
        let desc = TrackDesc {
            track_id: 1,
            handler: *b"vide",
            timescale: 30000,
            entry: &entry,
        };
        let mut p = packetizer_for(&desc, 1000).expect("mp4v");
        assert_eq!(
            p.media_sdp(96).fmtp.as_deref(),
            Some("profile-level-id=245;config=000001B0F5000001B5")
        );
        let mut vop = vec![0, 0, 1, 0xb6, 0x80];
        vop.resize(2500, 3);
        let mut out = Vec::new();
        p.push(
            &MediaSample {
                index: 0,
                data: &vop,
                decode_time: 0,
                duration: 1001,
                sync: false,
            },
            &mut out,
        )
        .expect("push");
        let plan = &out[0];
        assert!(plan.droppable);
        let lens: Vec<u32> = plan.packets.iter().map(PacketPlan::payload_len).collect();
        assert_eq!(lens, vec![988, 988, 524]);
        let markers: Vec<bool> = plan.packets.iter().map(|x| x.marker).collect();
        assert_eq!(markers, vec![false, false, true]);
        let joined: Vec<u8> = plan
            .packets
            .iter()
            .flat_map(|x| x.resolve(|_| Some(&vop[..])).expect("r"))
            .collect();
        assert_eq!(joined, vop);
        let jpeg = visual_entry(b"mp4v", &esds(0x6c, 4, &[]));
        let desc = TrackDesc {
            track_id: 1,
            handler: *b"vide",
            timescale: 30000,
            entry: &jpeg,
        };
        assert!(packetizer_for(&desc, 1450).is_err());
    }
}
