//! The per-packet header bytes: optional RTSP interleaved framing (RFC 2326
//! §10.12: `$`, channel, 16-bit length) followed by the 12-byte RTP fixed header
//! (RFC 3550 §5.1: V=2, no padding, no extension, no CSRC). This is the only
//! per-packet memory the pacer writes; payload bytes stay in the mapped file.

/// Size of the RTP fixed header, bytes.
pub const RTP_HEADER_LEN: usize = 12;
/// Largest header we build: 4 framing bytes + 12 RTP header bytes.
pub const MAX_HEADER_LEN: usize = 16;

/// The RTP fields of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpFields {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
}

/// Writes the header into `out` and returns its length: 12 bytes for UDP, or
/// 16 with interleaved framing on `channel` for a payload of `payload_len`
/// bytes (the frame length covers RTP header + payload, so it must fit 16 bits;
/// `None` when it does not).
pub fn write(
    fields: &RtpFields,
    channel: Option<u8>,
    payload_len: usize,
    out: &mut [u8; MAX_HEADER_LEN],
) -> Option<usize> {
    let mut at = 0;
    if let Some(ch) = channel {
        let frame = u16::try_from(RTP_HEADER_LEN + payload_len).ok()?;
        out[0] = b'$';
        out[1] = ch;
        out[2..4].copy_from_slice(&frame.to_be_bytes());
        at = 4;
    }
    out[at] = 0x80;
    out[at + 1] = (u8::from(fields.marker) << 7) | (fields.payload_type & 0x7f);
    out[at + 2..at + 4].copy_from_slice(&fields.seq.to_be_bytes());
    out[at + 4..at + 8].copy_from_slice(&fields.timestamp.to_be_bytes());
    out[at + 8..at + 12].copy_from_slice(&fields.ssrc.to_be_bytes());
    Some(at + RTP_HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_types_reads_what_we_write() {
        let fields = RtpFields {
            marker: true,
            payload_type: 96,
            seq: 65535,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
        };
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let n = write(&fields, None, 3, &mut hdr).expect("fits");
        assert_eq!(n, 12);
        let mut pkt = hdr[..n].to_vec();
        pkt.extend_from_slice(&[1, 2, 3]);
        let parsed = rtp_types::RtpPacket::parse(&pkt).expect("valid RTP");
        assert_eq!(parsed.version(), 2);
        assert!(parsed.marker_bit());
        assert_eq!(parsed.payload_type(), 96);
        assert_eq!(parsed.sequence_number(), 65535);
        assert_eq!(parsed.timestamp(), 0xdead_beef);
        assert_eq!(parsed.ssrc(), 0x0102_0304);
        assert_eq!(parsed.payload(), &[1, 2, 3]);

        let n = write(&fields, Some(2), 3, &mut hdr).expect("fits");
        assert_eq!(n, 16);
        assert_eq!(&hdr[..4], &[b'$', 2, 0, 15]);
        assert!(write(&fields, Some(2), 70_000, &mut hdr).is_none());
    }
}
