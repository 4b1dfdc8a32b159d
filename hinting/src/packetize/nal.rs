//! NAL-unit packetization shared by H.264 (RFC 6184) and H.265 (RFC 7798):
//! single NAL unit packets, aggregation packets (STAP-A / AP) for runs of
//! small NAL units and fragmentation units (FU-A / FU) for NAL units larger
//! than the payload budget.

use super::{
    plan_bytes, HintSamplePlan, MediaSample, PacketPlan, SampleError, HINT_SAMPLE_PLAN_BYTES,
    MAX_PIECES_PER_PACKET,
};

/// Which NAL unit syntax a sample uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalCodec {
    /// H.264: 1-byte NAL header; STAP-A type 24, FU-A type 28.
    H264,
    /// H.265: 2-byte NAL header; AP type 48, FU type 49.
    H265,
}

impl NalCodec {
    fn header_len(self) -> u32 {
        match self {
            NalCodec::H264 => 1,
            NalCodec::H265 => 2,
        }
    }

    /// Bytes of the payload header of an aggregation packet carrying NAL
    /// units whose headers are `headers` (RFC 6184 §5.7.1: F = OR of F bits,
    /// NRI = max NRI; RFC 7798 §4.4.2: LayerId and TID = the minima).
    fn aggregation_header(self, headers: &[[u8; 2]]) -> Vec<u8> {
        match self {
            NalCodec::H264 => {
                let f = headers.iter().fold(0, |a, h| a | (h[0] & 0x80));
                let nri = headers.iter().map(|h| h[0] & 0x60).max().unwrap_or(0);
                vec![f | nri | 24]
            }
            NalCodec::H265 => {
                let f = headers.iter().fold(0, |a, h| a | (h[0] & 0x80));
                let layer = headers
                    .iter()
                    .map(|h| u16::from(h[0] & 1) << 5 | u16::from(h[1] >> 3))
                    .min()
                    .unwrap_or(0);
                let tid = headers.iter().map(|h| h[1] & 7).min().unwrap_or(1);
                vec![
                    f | 48 << 1 | (layer >> 5) as u8,
                    ((layer & 0x1f) as u8) << 3 | tid,
                ]
            }
        }
    }

    /// Payload header + FU header of one fragment (RFC 6184 §5.8, RFC 7798 §4.4.3).
    fn fu_header(self, h: [u8; 2], start: bool, end: bool) -> Vec<u8> {
        let se = u8::from(start) << 7 | u8::from(end) << 6;
        match self {
            NalCodec::H264 => vec![(h[0] & 0xe0) | 28, se | (h[0] & 0x1f)],
            NalCodec::H265 => vec![(h[0] & 0x81) | 49 << 1, h[1], se | (h[0] >> 1 & 0x3f)],
        }
    }

    /// True when the NAL unit is a coded slice that no other picture
    /// references: H.264 VCL with nal_ref_idc 0; H.265 sub-layer
    /// non-reference VCL types (even types below 16).
    fn non_reference_slice(self, h: [u8; 2]) -> Option<bool> {
        match self {
            NalCodec::H264 => {
                let kind = h[0] & 0x1f;
                (1..=5).contains(&kind).then_some(h[0] & 0x60 == 0)
            }
            NalCodec::H265 => {
                let kind = h[0] >> 1 & 0x3f;
                (kind < 32).then_some(kind < 16 && kind % 2 == 0)
            }
        }
    }
}

/// Packetizes length-prefixed NAL-unit samples ('avcC'/'hvcC' framing).
#[derive(Debug, Clone)]
pub struct NalPacketizer {
    codec: NalCodec,
    /// Bytes of each NAL unit's length prefix (1, 2 or 4).
    length_size: u32,
    max_payload: u32,
}

/// Most NAL units in one aggregation packet: each needs a size immediate and
/// a sample range, two pieces, so that a packet stays within
/// [`MAX_PIECES_PER_PACKET`].
const MAX_AGGREGATED: usize = MAX_PIECES_PER_PACKET / 2;

/// One NAL unit of a sample: offset within the sample, length and header.
#[derive(Debug, Clone, Copy)]
struct Nal {
    offset: u32,
    len: u32,
    header: [u8; 2],
}

impl NalPacketizer {
    /// A packetizer for `codec` samples with `length_size`-byte NAL length
    /// prefixes and payloads of at most `max_payload` bytes.
    pub fn new(codec: NalCodec, length_size: u32, max_payload: u32) -> Self {
        Self {
            codec,
            length_size,
            max_payload,
        }
    }

    /// Splits `data` into NAL units. Zero-length NAL units are skipped.
    fn nal_units(&self, sample: &MediaSample<'_>) -> Result<Vec<Nal>, SampleError> {
        let data = sample.data;
        let err = |reason: String| SampleError {
            sample: sample.index + 1,
            reason,
        };
        let ls = self.length_size as usize;
        let mut at = 0usize;
        let mut out = Vec::new();
        while at < data.len() {
            let prefix = data
                .get(at..at.saturating_add(ls))
                .ok_or_else(|| err(format!("truncated NAL length prefix at byte {at}")))?;
            let len = prefix.iter().fold(0usize, |a, &b| a << 8 | usize::from(b));
            at += ls;
            if len == 0 {
                continue;
            }
            let nal = data.get(at..at.saturating_add(len)).ok_or_else(|| {
                err(format!(
                    "NAL unit of {len} bytes at byte {at} runs past the sample end ({} bytes)",
                    data.len()
                ))
            })?;
            if (nal.len() as u32) < self.codec.header_len() {
                return Err(err(format!(
                    "NAL unit of {len} bytes is shorter than its header"
                )));
            }
            let header = [nal[0], nal.get(1).copied().unwrap_or(0)];
            // The sample is at most u32::MAX bytes: the sample table sizes are u32.
            out.push(Nal {
                offset: at as u32,
                len: len as u32,
                header,
            });
            at += len;
        }
        Ok(out)
    }

    /// An upper bound of the heap bytes [`NalPacketizer::packetize`] uses for
    /// `data` (see [`super::Packetizer::plan_bytes`]): per NAL unit its record
    /// and one packet of two pieces (an aggregated unit's size and range, or
    /// a single unit), or one such packet per fragment. Walks the NAL unit
    /// lengths only; stops at the first malformed one (where packetizing
    /// fails).
    pub fn plan_bytes(&self, data: &[u8]) -> u64 {
        let ls = self.length_size as usize;
        let hdr = u64::from(self.codec.header_len());
        let chunk = u64::from(self.max_payload).saturating_sub(hdr + 1).max(1);
        let per_packet = plan_bytes(2, 1);
        let mut total = HINT_SAMPLE_PLAN_BYTES;
        let mut at = 0usize;
        while let Some(prefix) = data.get(at..at.saturating_add(ls)) {
            let len = prefix.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
            at = at.saturating_add(ls);
            if len == 0 {
                continue;
            }
            let packets = if len > u64::from(self.max_payload) {
                len.saturating_sub(hdr).div_ceil(chunk)
            } else {
                1
            };
            total = total
                .saturating_add(size_of::<Nal>() as u64 + 1)
                .saturating_add(packets.saturating_mul(per_packet));
            let Some(next) = usize::try_from(len).ok().and_then(|l| at.checked_add(l)) else {
                break;
            };
            if next > data.len() {
                break;
            }
            at = next;
        }
        total
    }

    /// Packetizes one access unit: aggregation of consecutive small NAL
    /// units while they fit, fragmentation of NAL units larger than the
    /// payload budget, single NAL unit packets otherwise. The marker bit is
    /// set on the last packet of the access unit (RFC 6184 §5.1, RFC 7798 §4.1).
    pub fn packetize(&self, sample: &MediaSample<'_>) -> Result<HintSamplePlan, SampleError> {
        let nals = self.nal_units(sample)?;
        let mut packets = Vec::new();
        let mut group: Vec<Nal> = Vec::new();
        let hdr = self.codec.header_len();
        for nal in &nals {
            if nal.len > self.max_payload {
                self.flush(sample.index, &mut group, &mut packets);
                self.fragment(sample.index, nal, &mut packets);
                continue;
            }
            // Size of the aggregation packet if this unit joins the group.
            let as_aggregate = hdr + 2 + nal.len + group.iter().map(|n| 2 + n.len).sum::<u32>();
            if !group.is_empty()
                && (as_aggregate > self.max_payload || group.len() >= MAX_AGGREGATED)
            {
                self.flush(sample.index, &mut group, &mut packets);
            }
            group.push(*nal);
        }
        self.flush(sample.index, &mut group, &mut packets);
        if let Some(last) = packets.last_mut() {
            last.marker = true;
        }
        let kinds: Vec<bool> = nals
            .iter()
            .filter_map(|n| self.codec.non_reference_slice(n.header))
            .collect();
        Ok(HintSamplePlan {
            sample: sample.index,
            sync: sample.sync,
            droppable: !kinds.is_empty() && kinds.iter().all(|&k| k),
            packets,
        })
    }

    /// Emits the pending group as one single NAL unit packet or one
    /// aggregation packet.
    fn flush(&self, sample: u32, group: &mut Vec<Nal>, packets: &mut Vec<PacketPlan>) {
        let mut p = PacketPlan::new();
        match group.as_slice() {
            [] => return,
            [one] => p.push_sample(sample, one.offset, one.len),
            many => {
                let headers: Vec<[u8; 2]> = many.iter().map(|n| n.header).collect();
                p.push_immediate(&self.codec.aggregation_header(&headers));
                for nal in many {
                    // NAL units in a group fit the payload budget, so u16.
                    p.push_immediate(&(nal.len as u16).to_be_bytes());
                    p.push_sample(sample, nal.offset, nal.len);
                }
            }
        }
        packets.push(p);
        group.clear();
    }

    /// Emits fragmentation units for one NAL unit. The NAL header is not sent
    /// (it is rebuilt from the FU headers); each fragment carries up to the
    /// payload budget minus the FU headers.
    fn fragment(&self, sample: u32, nal: &Nal, packets: &mut Vec<PacketPlan>) {
        let hdr = self.codec.header_len();
        let fu_len = hdr + 1;
        let chunk = self.max_payload - fu_len;
        let mut at = nal.offset + hdr;
        let end = nal.offset + nal.len;
        let mut first = true;
        while at < end {
            let n = chunk.min(end - at);
            let mut p = PacketPlan::new();
            p.push_immediate(&self.codec.fu_header(nal.header, first, at + n == end));
            p.push_sample(sample, at, n);
            packets.push(p);
            at += n;
            first = false;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::packetize::Piece;

    /// A length-prefixed (4-byte) sample from NAL units.
    pub fn sample_of(nals: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    }

    /// An H.264 NAL unit of `len` bytes with header byte `header`.
    pub fn nal264(header: u8, len: usize) -> Vec<u8> {
        let mut v = vec![header];
        v.extend((1..len).map(|i| (i * 7 % 251) as u8));
        v
    }

    fn media(data: &[u8]) -> MediaSample<'_> {
        MediaSample {
            index: 4,
            data,
            decode_time: 0,
            duration: 3600,
            sync: true,
        }
    }

    /// Depacketizes RFC 6184 payloads back to NAL units.
    pub fn depacketize_h264(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        for p in payloads {
            match p[0] & 0x1f {
                24 => {
                    let mut at = 1;
                    while at < p.len() {
                        let n = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                        out.push(p[at + 2..at + 2 + n].to_vec());
                        at += 2 + n;
                    }
                }
                28 => {
                    if p[1] & 0x80 != 0 {
                        fu = Some(vec![(p[0] & 0xe0) | (p[1] & 0x1f)]);
                    }
                    let buf = fu.as_mut().expect("FU start");
                    buf.extend_from_slice(&p[2..]);
                    if p[1] & 0x40 != 0 {
                        out.push(fu.take().expect("FU"));
                    }
                }
                _ => out.push(p.clone()),
            }
        }
        out
    }

    fn payloads(plan: &HintSamplePlan, data: &[u8]) -> Vec<Vec<u8>> {
        plan.packets
            .iter()
            .map(|p| p.resolve(|_| Some(data)).expect("in range"))
            .collect()
    }

    #[test]
    fn h264_small_units_aggregate_large_fragment() {
        let nals = vec![
            nal264(0x06, 30),
            nal264(0x65, 4000),
            nal264(0x06, 20),
            nal264(0x06, 25),
        ];
        let data = sample_of(&nals);
        let pk = NalPacketizer::new(NalCodec::H264, 4, 1438);
        let plan = pk.packetize(&media(&data)).expect("plan");
        let kinds: Vec<u8> = payloads(&plan, &data).iter().map(|p| p[0] & 0x1f).collect();
        // SEI alone (next unit is too big), 3 FU-A, then a STAP-A of two SEIs.
        assert_eq!(kinds, vec![6, 28, 28, 28, 24]);
        assert_eq!(depacketize_h264(&payloads(&plan, &data)), nals);
        let markers: Vec<bool> = plan.packets.iter().map(|p| p.marker).collect();
        assert_eq!(markers, vec![false, false, false, false, true]);
        assert!(plan.packets.iter().all(|p| p.payload_len() <= 1438));
        // FU-A carries 1436 bytes of NAL data per full fragment.
        assert_eq!(plan.packets[1].payload_len(), 1438);
        assert!(!plan.droppable);
        assert_eq!(plan.sample, 4);
        // STAP-A NRI is the max of the aggregated units (both 0 here).
        assert_eq!(payloads(&plan, &data)[4][0], 24);
    }

    #[test]
    fn aggregation_respects_budget_and_piece_limit() {
        let nals: Vec<Vec<u8>> = (0..20).map(|_| nal264(0x41, 10)).collect();
        let data = sample_of(&nals);
        let plan = NalPacketizer::new(NalCodec::H264, 4, 1438)
            .packetize(&media(&data))
            .expect("plan");
        assert!(plan
            .packets
            .iter()
            .all(|p| p.pieces.len() <= MAX_PIECES_PER_PACKET));
        assert_eq!(plan.packets.len(), 3); // 7 + 7 + 6
        assert_eq!(depacketize_h264(&payloads(&plan, &data)), nals);
        // Exact fit: two units of 100 fit a 1 + 2*(2+100) = 205 byte budget, not 204.
        let two = sample_of(&[nal264(0x41, 100), nal264(0x41, 100)]);
        assert_eq!(
            NalPacketizer::new(NalCodec::H264, 4, 205)
                .packetize(&media(&two))
                .expect("p")
                .packets
                .len(),
            1
        );
        assert_eq!(
            NalPacketizer::new(NalCodec::H264, 4, 204)
                .packetize(&media(&two))
                .expect("p")
                .packets
                .len(),
            2
        );
    }

    #[test]
    fn non_reference_frames_are_droppable() {
        let data = sample_of(&[nal264(0x01, 500)]);
        assert!(
            NalPacketizer::new(NalCodec::H264, 4, 1438)
                .packetize(&media(&data))
                .expect("plan")
                .droppable
        );
        let data = sample_of(&[nal264(0x06, 5), nal264(0x21, 500)]);
        assert!(
            !NalPacketizer::new(NalCodec::H264, 4, 1438)
                .packetize(&media(&data))
                .expect("plan")
                .droppable
        );
    }

    #[test]
    fn malformed_samples_are_errors() {
        let pk = NalPacketizer::new(NalCodec::H264, 4, 1438);
        let mut data = sample_of(&[nal264(0x65, 100)]);
        data.truncate(50);
        let err = pk.packetize(&media(&data)).expect_err("truncated");
        assert_eq!(err.sample, 5);
        assert!(pk.packetize(&media(&[0, 0, 1])).is_err());
        // Zero-length units are skipped, an empty sample gives no packet.
        assert_eq!(
            pk.packetize(&media(&[0, 0, 0, 0]))
                .expect("empty")
                .packets
                .len(),
            0
        );
    }

    #[test]
    fn h265_fu_and_ap_headers() {
        // IDR_W_RADL (19), layer 0, tid 1: header 0x26 0x01.
        let big: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain((0..3000).map(|i| i as u8))
            .collect();
        let vps: Vec<u8> = [0x40, 0x01].into_iter().chain(0..20).collect();
        let sps: Vec<u8> = [0x42, 0x01].into_iter().chain(0..30).collect();
        let data = sample_of(&[vps.clone(), sps.clone(), big.clone()]);
        let plan = NalPacketizer::new(NalCodec::H265, 4, 1438)
            .packetize(&media(&data))
            .expect("plan");
        let p = payloads(&plan, &data);
        assert_eq!(p.len(), 4);
        assert_eq!((p[0][0] >> 1, p[0][1]), (48, 1)); // AP, tid 1
        assert_eq!(u16::from_be_bytes([p[0][2], p[0][3]]) as usize, vps.len());
        assert_eq!((p[1][0] >> 1 & 0x3f, p[1][1], p[1][2]), (49, 1, 0x80 | 19));
        assert_eq!(p[3][2], 0x40 | 19);
        let rebuilt: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain(p[1..].iter().flat_map(|x| x[3..].to_vec()))
            .collect();
        assert_eq!(rebuilt, big);
        assert!(plan.packets.iter().all(|x| x.payload_len() <= 1438));
        assert!(plan
            .packets
            .iter()
            .map(|x| x
                .pieces
                .iter()
                .filter(|q| matches!(q, Piece::Immediate(_)))
                .count())
            .all(|n| n >= 1));
    }
}
