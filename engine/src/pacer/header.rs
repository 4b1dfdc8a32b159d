//! The per-packet header bytes: optional RTSP interleaved framing (RFC 2326
//! §10.12: `$`, channel, 16-bit length) followed by the 12-byte RTP fixed header
//! (RFC 3550 §5.1: V=2, no padding, no CSRC) and, for tracks whose packets
//! leave in another order than they are presented (B-frames), the RFC 5450
//! transmission time offset in an RFC 8285 one-byte-header extension. This is
//! the only per-packet memory the pacer writes; payload bytes stay in the
//! mapped file.

/// Size of the RTP fixed header, bytes.
pub const RTP_HEADER_LEN: usize = 12;
/// Size of the toffset header extension: 4-byte RFC 8285 header (0xBEDE,
/// one 32-bit word) + 1 byte ID/length + 3 bytes offset, bytes.
pub const TOFFSET_EXT_LEN: usize = 8;
/// The extension ID announced for toffset (`a=extmap:1 …`).
pub const TOFFSET_ID: u8 = 1;
/// The URI of the transmission time offset extension (RFC 5450 §2).
pub const TOFFSET_URI: &str = "urn:ietf:params:rtp-hdrext:toffset";
/// Largest header we build: 4 framing bytes + 12 RTP header bytes + 8 bytes
/// of toffset extension.
pub const MAX_HEADER_LEN: usize = 24;

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
    /// RFC 5450 transmission time offset, RTP clock ticks (sent time minus
    /// the RTP timestamp's time; 24-bit signed, clamped), when the track
    /// carries it.
    pub toffset: Option<i32>,
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
    let rtp_len = RTP_HEADER_LEN + fields.toffset.map_or(0, |_| TOFFSET_EXT_LEN);
    if let Some(ch) = channel {
        let frame = u16::try_from(rtp_len + payload_len).ok()?;
        out[0] = b'$';
        out[1] = ch;
        out[2..4].copy_from_slice(&frame.to_be_bytes());
        at = 4;
    }
    out[at] = if fields.toffset.is_some() { 0x90 } else { 0x80 };
    out[at + 1] = (u8::from(fields.marker) << 7) | (fields.payload_type & 0x7f);
    out[at + 2..at + 4].copy_from_slice(&fields.seq.to_be_bytes());
    out[at + 4..at + 8].copy_from_slice(&fields.timestamp.to_be_bytes());
    out[at + 8..at + 12].copy_from_slice(&fields.ssrc.to_be_bytes());
    if let Some(offset) = fields.toffset {
        let e = at + RTP_HEADER_LEN;
        // RFC 8285 §4.2: 0xBEDE, length 1 (32-bit words after this header).
        out[e..e + 4].copy_from_slice(&[0xBE, 0xDE, 0x00, 0x01]);
        // ID, length − 1 = 2, then the 24-bit two's complement offset.
        out[e + 4] = (TOFFSET_ID << 4) | 2;
        let v = offset.clamp(-(1 << 23), (1 << 23) - 1) as u32;
        out[e + 5..e + 8].copy_from_slice(&v.to_be_bytes()[1..]);
    }
    Some(at + rtp_len)
}

/// The RFC 5450 transmission time offset of a packet sent at schedule time
/// `send_time_us` whose RTP time (before the session base) is `rtp_time`, on
/// a track of `clock_rate` Hz whose npt 0 is RTP time `rtp_origin`: how many
/// ticks after its presentation time it is sent (negative: before).
pub fn transmission_offset(
    send_time_us: u64,
    rtp_time: u32,
    rtp_origin: u32,
    clock_rate: u32,
) -> i32 {
    let sent = (u128::from(send_time_us) * u128::from(clock_rate) / 1_000_000) as i64;
    let presented = i64::from(rtp_time.wrapping_sub(rtp_origin) as i32);
    (sent - presented).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
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
            toffset: None,
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

        // With the toffset extension: rtp-types sees the extension and the
        // 24-bit signed value round-trips.
        let with = RtpFields {
            toffset: Some(-3000),
            ..fields
        };
        let n = write(&with, None, 3, &mut hdr).expect("fits");
        assert_eq!(n, 20);
        let mut pkt = hdr[..n].to_vec();
        pkt.extend_from_slice(&[1, 2, 3]);
        let parsed = rtp_types::RtpPacket::parse(&pkt).expect("valid RTP");
        let (profile, ext) = parsed.extension().expect("extension");
        assert_eq!(profile, 0xBEDE);
        assert_eq!(ext, &[0x12, 0xff, 0xf4, 0x48]);
        assert_eq!(parsed.payload(), &[1, 2, 3]);
        let n = write(&with, Some(0), 3, &mut hdr).expect("fits");
        assert_eq!(n, 24);
        assert_eq!(&hdr[..4], &[b'$', 0, 0, 23]);
        assert_eq!(transmission_offset(1_000_000, 93_000, 0, 90_000), -3000);
        assert_eq!(transmission_offset(0, 0, 0, 90_000), 0);
    }
}
