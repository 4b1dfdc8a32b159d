//! The fixed RTP header (RFC 3550 §5.1), read from the first 12 bytes of a
//! packet. The UDP receive path copies only the head of each datagram (see
//! [`crate::net::udp::RTP_HEAD`]), so a full parse (rtp-types, which checks
//! padding and extension lengths against the whole packet) is not possible
//! there; the three fields the measurements need sit at fixed offsets.

/// The fields of the fixed header the measurements use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp, in the stream's clock.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Reads the fixed header; `None` when `data` is shorter than 12 bytes
    /// or its version is not 2.
    #[inline]
    pub fn read(data: &[u8]) -> Option<Self> {
        let h: &[u8; 12] = data.get(..12)?.try_into().ok()?;
        if h[0] >> 6 != 2 {
            return None;
        }
        Some(Self {
            sequence_number: u16::from_be_bytes([h[2], h[3]]),
            timestamp: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            ssrc: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp_types::{RtpPacket, RtpPacketBuilder};

    #[test]
    fn agrees_with_rtp_types() {
        let payload = [0xabu8; 300];
        for (seq, ts, ssrc, csrcs) in [
            (0u16, 0u32, 1u32, 0usize),
            (65535, u32::MAX, 0xdead_beef, 3),
            (4242, 90_000, 7, 15),
        ] {
            let mut b = RtpPacketBuilder::new()
                .payload_type(96)
                .sequence_number(seq)
                .timestamp(ts)
                .ssrc(ssrc)
                .marker_bit(true)
                .payload(payload.as_slice());
            for c in 0..csrcs {
                b = b.add_csrc(c as u32);
            }
            let bytes = b.write_vec().unwrap();
            let parsed = RtpPacket::parse(&bytes).unwrap();
            let h = RtpHeader::read(&bytes[..bytes.len().min(128)]).unwrap();
            assert_eq!(h.sequence_number, parsed.sequence_number());
            assert_eq!(h.timestamp, parsed.timestamp());
            assert_eq!(h.ssrc, parsed.ssrc());
        }
    }

    #[test]
    fn rejects_short_and_wrong_version() {
        assert_eq!(RtpHeader::read(&[0x80; 11]), None);
        let mut v1 = [0u8; 12];
        v1[0] = 0x40;
        assert_eq!(RtpHeader::read(&v1), None);
    }
}
