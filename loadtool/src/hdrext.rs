//! RTP header extensions (RFC 3550 §5.3.1, elements after RFC 8285, which
//! obsoletes RFC 5285) and the transmission time offset element
//! (`urn:ietf:params:rtp-hdrext:toffset`, RFC 5450 §3).
//!
//! Sans-IO: functions take the bytes of a packet (or its head) and return
//! values. The UDP receive path copies only the first
//! [`crate::net::udp::RTP_HEAD`] bytes of each datagram, so an extension
//! block may be cut short there; [`ExtensionBlock::truncated`] says so, and an
//! element that lies beyond the copied bytes is reported as absent rather
//! than malformed.

/// URI of the transmission time offset extension (RFC 5450 §5), as written
/// in `a=extmap:<id> <URI>` (RFC 8285 §5).
pub const TOFFSET_URI: &str = "urn:ietf:params:rtp-hdrext:toffset";

/// "Defined by profile" value of the one-byte header form (RFC 8285 §4.2).
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;

/// True for the two-byte header form's "defined by profile" value: 0x100 in
/// the top 12 bits, 4 application bits below (RFC 8285 §4.3).
pub fn is_two_byte_profile(profile: u16) -> bool {
    profile & 0xFFF0 == 0x1000
}

/// The header extension block of one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionBlock<'a> {
    /// The 16-bit "defined by profile" field.
    pub profile: u16,
    /// Extension data (the 32-bit words after the 4-byte extension header),
    /// or as much of it as `data` held.
    pub data: &'a [u8],
    /// True when the packet's head ended before the block did.
    pub truncated: bool,
}

/// Why a header extension cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtError {
    /// The extension length runs past the end of the packet.
    #[error("RTP header extension runs past the end of the packet")]
    Truncated,
    /// An element's length runs past the end of the extension block.
    #[error("RTP header extension element runs past the extension block")]
    ElementOverrun,
    /// The block is in neither the one-byte nor the two-byte form.
    #[error("RTP header extension profile 0x{0:04x} is not RFC 8285's one- or two-byte form")]
    UnknownProfile(u16),
    /// A toffset element whose length is not 3 bytes (RFC 5450 §3).
    #[error("toffset element of {0} bytes (RFC 5450 §3 gives 3)")]
    ToffsetLength(usize),
}

/// Locates the header extension of an RTP packet of `full_len` bytes whose
/// first bytes are `head` (the whole packet, or the head the UDP path
/// copied). `Ok(None)` when the X bit is clear or `head` is not RTP version 2
/// with a complete fixed header and CSRC list. `Err(Truncated)` when the
/// declared extension length runs past `full_len` (RFC 3550 §5.3.1: the
/// length counts 32-bit words after the 4-byte extension header).
pub fn extension_block(
    head: &[u8],
    full_len: usize,
) -> Result<Option<ExtensionBlock<'_>>, ExtError> {
    let Some(&b0) = head.first() else {
        return Ok(None);
    };
    if b0 >> 6 != 2 || b0 & 0x10 == 0 {
        return Ok(None);
    }
    let start = 12 + 4 * usize::from(b0 & 0x0f);
    let Some(header) = head.get(start..start + 4) else {
        // The head ends inside the CSRC list or the extension header.
        return if full_len < start + 4 {
            Err(ExtError::Truncated)
        } else {
            Ok(Some(ExtensionBlock {
                profile: 0,
                data: &[],
                truncated: true,
            }))
        };
    };
    let profile = u16::from_be_bytes([header[0], header[1]]);
    let words = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let data_start = start + 4;
    let data_end = data_start + 4 * words;
    if data_end > full_len {
        return Err(ExtError::Truncated);
    }
    let available = data_end.min(head.len());
    Ok(Some(ExtensionBlock {
        profile,
        data: &head[data_start..available],
        truncated: available < data_end,
    }))
}

/// The data of element `id` in `block`, in the one-byte (RFC 8285 §4.2) or
/// two-byte (§4.3) form; `Ok(None)` when the block has no such element (or,
/// in a truncated block, when the element lies beyond the copied bytes).
///
/// One-byte form: each element is a byte `ID (4 bits) | L (4 bits)` and
/// `L + 1` data bytes; a 0x00 byte is padding; ID 15 is reserved and ends
/// processing ("only the extension elements present prior to the element
/// with ID 15 should be considered", §4.2). A byte with ID 0 but a non-zero
/// length is no valid element and ends processing too. Two-byte form: a byte
/// ID, a byte length (0–255 data bytes), the data; a 0x00 ID byte is padding.
pub fn find_element<'a>(block: &ExtensionBlock<'a>, id: u8) -> Result<Option<&'a [u8]>, ExtError> {
    let data = block.data;
    let overrun = || {
        if block.truncated {
            Ok(None)
        } else {
            Err(ExtError::ElementOverrun)
        }
    };
    let mut i = 0usize;
    if block.profile == ONE_BYTE_PROFILE {
        while let Some(&b) = data.get(i) {
            let (eid, len) = (b >> 4, usize::from(b & 0x0f) + 1);
            if b == 0 {
                i += 1;
                continue;
            }
            if eid == 0 || eid == 15 {
                return Ok(None);
            }
            let Some(element) = data.get(i + 1..i + 1 + len) else {
                return overrun();
            };
            if eid == id {
                return Ok(Some(element));
            }
            i += 1 + len;
        }
        Ok(None)
    } else if is_two_byte_profile(block.profile) {
        while let Some(&eid) = data.get(i) {
            if eid == 0 {
                i += 1;
                continue;
            }
            let Some(&len) = data.get(i + 1) else {
                return overrun();
            };
            let len = usize::from(len);
            let Some(element) = data.get(i + 2..i + 2 + len) else {
                return overrun();
            };
            if eid == id {
                return Ok(Some(element));
            }
            i += 2 + len;
        }
        Ok(None)
    } else if block.truncated && data.is_empty() {
        // The head ended before the extension header: nothing to read.
        Ok(None)
    } else {
        Err(ExtError::UnknownProfile(block.profile))
    }
}

/// The transmission time offset of element `id` in `block`, in RTP clock
/// ticks: a 24-bit two's-complement integer, most significant byte first
/// (RFC 5450 §3). `Ok(None)` when the element is absent.
pub fn toffset(block: &ExtensionBlock<'_>, id: u8) -> Result<Option<i32>, ExtError> {
    match find_element(block, id)? {
        None => Ok(None),
        Some(&[a, b, c]) => Ok(Some(i32::from_be_bytes([a, b, c, 0]) >> 8)),
        Some(other) => Err(ExtError::ToffsetLength(other.len())),
    }
}

/// The toffset of element `id` in the RTP packet whose first bytes are `head`
/// and whose length is `full_len` (see [`extension_block`], [`toffset`]).
pub fn packet_toffset(head: &[u8], full_len: usize, id: u8) -> Result<Option<i32>, ExtError> {
    match extension_block(head, full_len)? {
        Some(block) => toffset(&block, id),
        None => Ok(None),
    }
}

/// Writes a one-byte-form toffset element with id `id` (1–14) and value
/// `offset` (clamped to 24 bits) followed by padding to a 32-bit word: the
/// 4 bytes of extension data a sender puts after the `0xBEDE, 1` header.
pub fn one_byte_toffset(id: u8, offset: i32) -> [u8; 4] {
    let v = offset.clamp(-(1 << 23), (1 << 23) - 1).to_be_bytes();
    [(id & 0x0f) << 4 | 2, v[1], v[2], v[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp_types::{RtpPacket, RtpPacketBuilder};

    fn packet(profile: u16, ext: &[u8], csrcs: u32, padding: u8) -> Vec<u8> {
        let mut b = RtpPacketBuilder::new()
            .payload_type(96)
            .sequence_number(7)
            .timestamp(90_000)
            .ssrc(0x1234_5678)
            .extension(profile, ext)
            .payload([0x65u8; 100].as_slice());
        for c in 0..csrcs {
            b = b.add_csrc(c);
        }
        if padding > 0 {
            b = b.padding(padding);
        }
        b.write_vec().unwrap()
    }

    #[test]
    fn toffset_alone_positive_and_negative() {
        for (offset, bytes) in [
            (1i32, [0x00, 0x00, 0x01]),
            (-1, [0xff, 0xff, 0xff]),
            (-7200, [0xff, 0xe3, 0xe0]),
            ((1 << 23) - 1, [0x7f, 0xff, 0xff]),
            (-(1 << 23), [0x80, 0x00, 0x00]),
        ] {
            let ext = [0x32, bytes[0], bytes[1], bytes[2]];
            let p = packet(ONE_BYTE_PROFILE, &ext, 0, 0);
            assert_eq!(packet_toffset(&p, p.len(), 3), Ok(Some(offset)));
            assert_eq!(one_byte_toffset(3, offset), ext);
            // Another id: absent.
            assert_eq!(packet_toffset(&p, p.len(), 4), Ok(None));
        }
    }

    #[test]
    fn other_elements_and_padding_before_toffset() {
        // audio level (id 1, 1 byte), two padding bytes, a 4-byte element
        // (id 5), then toffset (id 2) = -3600, then one padding byte.
        let ext = [
            0x10, 0x7f, 0x00, 0x00, 0x53, 1, 2, 3, 4, 0x22, 0xff, 0xf1, 0xf0, 0x00, 0x00, 0x00,
        ];
        let p = packet(ONE_BYTE_PROFILE, &ext, 2, 0);
        let parsed = RtpPacket::parse(&p).unwrap();
        let (profile, data) = parsed.extension().unwrap();
        let block = ExtensionBlock {
            profile,
            data,
            truncated: false,
        };
        assert_eq!(toffset(&block, 2), Ok(Some(-3600)));
        assert_eq!(find_element(&block, 5), Ok(Some([1u8, 2, 3, 4].as_slice())));
        assert_eq!(find_element(&block, 1), Ok(Some([0x7fu8].as_slice())));
        // The head-only reader agrees with rtp-types.
        assert_eq!(packet_toffset(&p, p.len(), 2), Ok(Some(-3600)));
    }

    #[test]
    fn rtp_padding_is_not_extension() {
        let p = packet(ONE_BYTE_PROFILE, &one_byte_toffset(1, 42), 0, 8);
        assert!(RtpPacket::parse(&p).is_ok());
        assert_eq!(packet_toffset(&p, p.len(), 1), Ok(Some(42)));
    }

    #[test]
    fn reserved_id_15_ends_processing() {
        let ext = [0xf0, 0x22, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00];
        let p = packet(ONE_BYTE_PROFILE, &ext, 0, 0);
        assert_eq!(packet_toffset(&p, p.len(), 2), Ok(None));
        // ID 0 with a non-zero length is not padding: processing stops too.
        let ext = [0x01, 0x22, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00];
        let p = packet(ONE_BYTE_PROFILE, &ext, 0, 0);
        assert_eq!(packet_toffset(&p, p.len(), 2), Ok(None));
    }

    #[test]
    fn two_byte_form_is_handled() {
        // id 200 with 0 bytes, padding, id 9 (toffset) with 3 bytes = 90000.
        let ext = [200, 0, 0, 9, 3, 0x01, 0x5f, 0x90];
        let p = packet(0x1000, &ext, 0, 0);
        assert_eq!(packet_toffset(&p, p.len(), 9), Ok(Some(90_000)));
        let p = packet(0x100f, &ext, 0, 0);
        assert_eq!(packet_toffset(&p, p.len(), 9), Ok(Some(90_000)));
        assert_eq!(packet_toffset(&p, p.len(), 8), Ok(None));
    }

    #[test]
    fn malformed_blocks_are_errors() {
        // Unknown profile.
        let p = packet(0xABCD, &[0x22, 0, 0, 1], 0, 0);
        assert_eq!(
            packet_toffset(&p, p.len(), 2),
            Err(ExtError::UnknownProfile(0xABCD))
        );
        // An element longer than the block.
        let p = packet(ONE_BYTE_PROFILE, &[0x1f, 0, 0, 0], 0, 0);
        assert_eq!(
            packet_toffset(&p, p.len(), 2),
            Err(ExtError::ElementOverrun)
        );
        // toffset with 2 bytes instead of 3.
        let p = packet(ONE_BYTE_PROFILE, &[0x21, 0, 1, 0], 0, 0);
        assert_eq!(
            packet_toffset(&p, p.len(), 2),
            Err(ExtError::ToffsetLength(2))
        );
        // Extension length past the end of the packet.
        let mut p = packet(ONE_BYTE_PROFILE, &one_byte_toffset(2, 5), 0, 0);
        p[14..16].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(packet_toffset(&p, p.len(), 2), Err(ExtError::Truncated));
        // No X bit: nothing.
        let mut p = packet(ONE_BYTE_PROFILE, &one_byte_toffset(2, 5), 0, 0);
        p[0] &= !0x10;
        assert_eq!(packet_toffset(&p, p.len(), 2), Ok(None));
        // Not RTP version 2, or empty.
        assert_eq!(packet_toffset(&[0x50; 20], 20, 2), Ok(None));
        assert_eq!(packet_toffset(&[], 0, 2), Ok(None));
    }

    #[test]
    fn truncated_head_reports_absence_not_error() {
        // 15 CSRCs (72 bytes) and a long block: the toffset element starts
        // at byte 127 of the packet, the 128-byte head holds only its first
        // byte.
        let mut ext = vec![0u8; 51];
        ext.extend_from_slice(&one_byte_toffset(2, -9));
        ext.extend_from_slice(&[0u8; 9]);
        let p = packet(ONE_BYTE_PROFILE, &ext, 15, 0);
        assert_eq!(packet_toffset(&p, p.len(), 2), Ok(Some(-9)));
        let head = &p[..128];
        let block = extension_block(head, p.len()).unwrap().unwrap();
        assert!(block.truncated);
        assert_eq!(toffset(&block, 2), Ok(None));
        // An element that fits in the head is still found.
        let mut ext = one_byte_toffset(2, -9).to_vec();
        ext.extend_from_slice(&[0u8; 60]);
        let p = packet(ONE_BYTE_PROFILE, &ext, 15, 0);
        assert_eq!(packet_toffset(&p[..128], p.len(), 2), Ok(Some(-9)));
        // The head ends inside the CSRC list of a long packet: absent.
        assert_eq!(packet_toffset(&p[..40], p.len(), 2), Ok(None));
    }
}
