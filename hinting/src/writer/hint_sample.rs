//! Encoding planned hint samples in the RTP hint sample format
//! (ISO/IEC 14496-12 §9.1.3, QuickTime "RTP hint track format"; the layout
//! [`crate::hint_sample`] parses):
//!
//! ```text
//! sample := entry_count u16, reserved u16, packet*
//! packet := relative_time i32 (0), header_info u16 (V=2, M, PT),
//!           sequence u16, flags u16 (X=4 when an 'rtpo' TLV follows,
//!           B=2 for a droppable frame), constructor_count u16,
//!           [tlv_len u32 = 16, 12, 'rtpo', offset i32],
//!           constructor*   -- 16 bytes each
//! ```
//!
//! Immediate pieces become type-1 constructors of at most 14 bytes (zero
//! padded); sample pieces become type-2 constructors with track reference
//! index 0 (the media track named by 'tref'/'hint'), 1-based sample number,
//! and bytes-per-block = samples-per-block = 1.

use crate::packetize::plan::HintTiming;
use crate::packetize::{HintSamplePlan, Piece};

use super::bytes::BoxBuf;

/// Bytes one immediate constructor carries.
pub const IMMEDIATE_CAPACITY: usize = 14;

/// Packet flag: an extra-information TLV table follows the packet header.
const FLAG_EXTRA_INFO: u16 = 4;
/// Packet flag: the packet belongs to a frame no other frame references.
const FLAG_B_FRAME: u16 = 2;

/// Appends the encoded hint sample of `plan` to `out`. `sequence` is the
/// track's running RTP sequence number seed, advanced by one per packet.
/// Every packet of a hint sample whose `timing.rtp_offset` is not 0 carries
/// an 'rtpo' TLV, as Apple's hinter writes for B-frames.
pub fn encode(
    plan: &HintSamplePlan,
    timing: &HintTiming,
    payload_type: u8,
    sequence: &mut u16,
    out: &mut BoxBuf,
) {
    out.u16(u16::try_from(plan.packets.len()).unwrap_or(u16::MAX))
        .u16(0);
    for packet in plan.packets.iter().take(usize::from(u16::MAX)) {
        let header_info = 0x8000 | u16::from(packet.marker) << 7 | u16::from(payload_type & 0x7f);
        let mut flags = 0;
        if timing.rtp_offset != 0 {
            flags |= FLAG_EXTRA_INFO;
        }
        if plan.droppable {
            flags |= FLAG_B_FRAME;
        }
        let constructors: usize = packet
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Immediate(b) => b.len().div_ceil(IMMEDIATE_CAPACITY),
                Piece::Sample { .. } => 1,
            })
            .sum();
        out.i32(0)
            .u16(header_info)
            .u16(*sequence)
            .u16(flags)
            .u16(u16::try_from(constructors).unwrap_or(u16::MAX));
        *sequence = sequence.wrapping_add(1);
        if timing.rtp_offset != 0 {
            out.u32(16).u32(12).raw(b"rtpo").i32(timing.rtp_offset);
        }
        for piece in &packet.pieces {
            match piece {
                Piece::Immediate(bytes) => {
                    for chunk in bytes.chunks(IMMEDIATE_CAPACITY) {
                        out.u8(1)
                            .u8(chunk.len() as u8)
                            .raw(chunk)
                            .zeros(IMMEDIATE_CAPACITY - chunk.len());
                    }
                }
                Piece::Sample {
                    sample,
                    offset,
                    len,
                } => {
                    // Packet payloads are below 64 KiB (MTU <= 65000), so a
                    // piece length fits the 16-bit constructor length.
                    out.u8(2)
                        .u8(0)
                        .u16(*len as u16)
                        .u32(sample + 1)
                        .u32(*offset)
                        .u16(1)
                        .u16(1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint_sample;
    use crate::packetize::PacketPlan;

    #[test]
    fn round_trips_through_the_reader() {
        let mut p1 = PacketPlan::new();
        p1.push_immediate(&(0u8..20).collect::<Vec<_>>());
        p1.push_sample(9, 100, 1400);
        let mut p2 = PacketPlan::new();
        p2.push_sample(9, 1500, 10);
        p2.marker = true;
        let plan = HintSamplePlan {
            sample: 9,
            sync: false,
            droppable: true,
            packets: vec![p1, p2],
        };
        let timing = HintTiming {
            time: 0,
            duration: 3600,
            rtp_offset: -3600,
        };
        let mut buf = BoxBuf::new();
        let mut seq = 65535;
        encode(&plan, &timing, 96, &mut seq, &mut buf);
        assert_eq!(seq, 1);
        let bytes = buf.finish();
        let parsed = hint_sample::parse(&bytes).expect("parses");
        assert_eq!(parsed.packets.len(), 2);
        let first = &parsed.packets[0];
        assert!(!first.marker() && first.is_b_frame());
        assert_eq!(first.payload_type(), 96);
        assert_eq!(first.rtp_offset(), Ok(Some(-3600)));
        let cs: Vec<_> = first
            .constructors()
            .collect::<Result<_, _>>()
            .expect("constructors");
        assert_eq!(cs.len(), 3);
        assert_eq!(
            cs[0],
            hint_sample::Constructor::Immediate(&(0u8..14).collect::<Vec<_>>())
        );
        assert_eq!(
            cs[1],
            hint_sample::Constructor::Immediate(&(14u8..20).collect::<Vec<_>>())
        );
        assert!(matches!(
            cs[2],
            hint_sample::Constructor::Sample {
                track_ref_index: 0,
                length: 1400,
                sample_number: 10,
                offset: 100,
                ..
            }
        ));
        assert!(parsed.packets[1].marker());
    }
}
