//! The RTP hint sample format (ISO/IEC 14496-12 §9.1.3, QuickTime "RTP hint
//! track format"): a packet table, per packet an optional extra-information
//! TLV table ('rtpo') and 16-byte constructors, then the sample's additional
//! data (payload bytes that constructors with track reference index -1 copy).
//!
//! ```text
//! sample  := entry_count u16, reserved u16, packet[entry_count], extra_data*
//! packet  := relative_time i32, header_info u16 (V2 P1 X1 CC4 M1 PT7),
//!            sequence u16, flags u16 (.. X=4 B=2 R=1), constructor_count u16,
//!            [tlv_len u32 (includes itself), box*]   -- when flags & X
//!            constructor[constructor_count]          -- 16 bytes each
//! ```
//!
//! Parsing borrows from the sample bytes and allocates only the packet list
//! (bounded by the sample's length).

/// A malformed hint sample; the compiler adds track, sample and packet
/// numbers when it turns this into a [`crate::HintError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// A field runs past the end of the sample.
    #[error("{what} at byte {at} needs {needed} bytes, the sample has {len}")]
    Truncated {
        /// The field.
        what: &'static str,
        /// Its offset in the sample.
        at: usize,
        /// Bytes it needs.
        needed: usize,
        /// Sample length.
        len: usize,
    },
    /// The extra-information table's length is below 4 or its entries are
    /// malformed.
    #[error("malformed extra-information table: {0}")]
    BadExtraInfo(String),
    /// An immediate constructor declares more than 14 bytes.
    #[error("immediate constructor declares {0} bytes (at most 14 fit)")]
    ImmediateTooLong(u8),
    /// A constructor type other than 0–3.
    #[error("unknown constructor type {0}")]
    UnknownConstructor(u8),
}

/// One decoded 16-byte constructor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constructor<'a> {
    /// Type 0: contributes nothing.
    NoOp,
    /// Type 1: up to 14 literal bytes (the rest of the 16 is padding, often
    /// garbage in Apple files).
    Immediate(&'a [u8]),
    /// Type 2: bytes of a sample of a referenced track.
    Sample {
        /// -1: this hint track's own samples; `i >= 0`: the track whose ID is
        /// entry `i` of the 'tref'/'hint' list.
        track_ref_index: i8,
        /// Bytes to copy.
        length: u16,
        /// 1-based sample number in the referenced track.
        sample_number: u32,
        /// Byte offset within the sample (or, for compressed QuickTime sound,
        /// within the run of compression blocks starting at the sample).
        offset: u32,
        /// Bytes per compression block; 0 means 1.
        bytes_per_block: u16,
        /// Samples per compression block; 0 means 1.
        samples_per_block: u16,
    },
    /// Type 3: bytes of a sample description ('stsd' entry) of a referenced
    /// track.
    SampleDescription {
        /// As for [`Constructor::Sample`].
        track_ref_index: i8,
        /// Bytes to copy.
        length: u16,
        /// 1-based 'stsd' entry index.
        description_index: u32,
        /// Byte offset within the entry (counted from its size field).
        offset: u32,
    },
}

impl<'a> Constructor<'a> {
    /// Decodes one 16-byte constructor.
    pub fn decode(c: &'a [u8; 16]) -> Result<Self, FormatError> {
        let u16_at = |i: usize| u16::from_be_bytes([c[i], c[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
        match c[0] {
            0 => Ok(Constructor::NoOp),
            1 => {
                let n = c[1];
                if n > 14 {
                    return Err(FormatError::ImmediateTooLong(n));
                }
                Ok(Constructor::Immediate(&c[2..2 + usize::from(n)]))
            }
            2 => Ok(Constructor::Sample {
                track_ref_index: c[1] as i8,
                length: u16_at(2),
                sample_number: u32_at(4),
                offset: u32_at(8),
                bytes_per_block: u16_at(12),
                samples_per_block: u16_at(14),
            }),
            3 => Ok(Constructor::SampleDescription {
                track_ref_index: c[1] as i8,
                length: u16_at(2),
                description_index: u32_at(4),
                offset: u32_at(8),
            }),
            t => Err(FormatError::UnknownConstructor(t)),
        }
    }
}

/// One packet entry of a hint sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketEntry<'a> {
    /// Transmission time relative to the hint sample's decode time, in the
    /// hint track's media timescale (may be negative).
    pub relative_time: i32,
    /// RTP header info: V(2) P(1) X(1) CC(4) M(1) PT(7). Apple writes V = 0.
    pub header_info: u16,
    /// The hinter's RTP sequence number (servers renumber).
    pub sequence: u16,
    /// Flags: X = 4 (extra information present), B = 2 (B-frame),
    /// R = 1 (repeat of an earlier packet).
    pub flags: u16,
    /// Extra-information boxes (after the 4-byte table length), empty when
    /// the X flag is clear.
    pub extra_info: &'a [u8],
    /// The constructors, 16 bytes each.
    pub constructor_bytes: &'a [u8],
}

impl<'a> PacketEntry<'a> {
    /// RTP marker bit.
    pub fn marker(&self) -> bool {
        self.header_info & 0x0080 != 0
    }
    /// RTP payload type (7 bits).
    pub fn payload_type(&self) -> u8 {
        (self.header_info & 0x7f) as u8
    }
    /// RTP padding bit as hinted.
    pub fn padding(&self) -> bool {
        self.header_info & 0x2000 != 0
    }
    /// RTP extension bit as hinted.
    pub fn extension(&self) -> bool {
        self.header_info & 0x1000 != 0
    }
    /// Repeat packet (R flag): a redundant copy of an earlier packet.
    pub fn is_repeat(&self) -> bool {
        self.flags & 1 != 0
    }
    /// B-frame packet (B flag).
    pub fn is_b_frame(&self) -> bool {
        self.flags & 2 != 0
    }

    /// Number of constructors.
    pub fn constructor_count(&self) -> usize {
        self.constructor_bytes.len() / 16
    }

    /// Decodes the constructors in order.
    pub fn constructors(&self) -> impl Iterator<Item = Result<Constructor<'a>, FormatError>> + 'a {
        self.constructor_bytes
            .chunks_exact(16)
            .filter_map(|c| <&[u8; 16]>::try_from(c).ok())
            .map(Constructor::decode)
    }

    /// Iterates the extra-information entries as (type, data).
    pub fn extra_info_entries(&self) -> ExtraInfoIter<'a> {
        ExtraInfoIter {
            rest: self.extra_info,
        }
    }

    /// The 'rtpo' RTP timestamp offset (signed, RTP clock ticks) if present.
    pub fn rtp_offset(&self) -> Result<Option<i32>, FormatError> {
        for e in self.extra_info_entries() {
            let (kind, data) = e?;
            if &kind == b"rtpo" {
                let d = data.get(..4).ok_or_else(|| {
                    FormatError::BadExtraInfo(format!("'rtpo' holds {} bytes", data.len()))
                })?;
                return Ok(Some(i32::from_be_bytes([d[0], d[1], d[2], d[3]])));
            }
        }
        Ok(None)
    }
}

/// Iterator over extra-information entries: `(type, data)`.
#[derive(Debug, Clone)]
pub struct ExtraInfoIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ExtraInfoIter<'a> {
    type Item = Result<([u8; 4], &'a [u8]), FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let r = self.rest;
        if r.len() < 8 {
            self.rest = &[];
            return Some(Err(FormatError::BadExtraInfo(format!(
                "{} stray bytes",
                r.len()
            ))));
        }
        let len = u32::from_be_bytes([r[0], r[1], r[2], r[3]]) as usize;
        if len < 8 || len > r.len() {
            self.rest = &[];
            return Some(Err(FormatError::BadExtraInfo(format!(
                "entry length {len} with {} bytes left",
                r.len()
            ))));
        }
        let kind = [r[4], r[5], r[6], r[7]];
        self.rest = &r[len..];
        Some(Ok((kind, &r[8..len])))
    }
}

/// A parsed hint sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintSample<'a> {
    /// The packet entries in order.
    pub packets: Vec<PacketEntry<'a>>,
    /// Offset within the sample of the additional data after the packet
    /// table.
    pub extra_data_offset: usize,
}

fn take<'a>(
    bytes: &'a [u8],
    pos: &mut usize,
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], FormatError> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .ok_or(FormatError::Truncated {
            what,
            at: *pos,
            needed: n,
            len: bytes.len(),
        })?;
    let s = &bytes[*pos..end];
    *pos = end;
    Ok(s)
}

/// Parses a hint sample's packet table. Constructors are decoded lazily by
/// [`PacketEntry::constructors`].
pub fn parse(bytes: &[u8]) -> Result<HintSample<'_>, FormatError> {
    let mut pos = 0;
    let head = take(bytes, &mut pos, 4, "sample header")?;
    let count = usize::from(u16::from_be_bytes([head[0], head[1]]));
    let mut packets = Vec::with_capacity(count.min(bytes.len() / 12));
    for _ in 0..count {
        let h = take(bytes, &mut pos, 12, "packet entry")?;
        let relative_time = i32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let header_info = u16::from_be_bytes([h[4], h[5]]);
        let sequence = u16::from_be_bytes([h[6], h[7]]);
        let flags = u16::from_be_bytes([h[8], h[9]]);
        let n = usize::from(u16::from_be_bytes([h[10], h[11]]));
        let extra_info = if flags & 4 != 0 {
            let l = take(bytes, &mut pos, 4, "extra-information length")?;
            let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
            if len < 4 {
                return Err(FormatError::BadExtraInfo(format!("table length {len}")));
            }
            take(bytes, &mut pos, len - 4, "extra-information table")?
        } else {
            &[]
        };
        let constructor_bytes = take(bytes, &mut pos, n * 16, "constructors")?;
        packets.push(PacketEntry {
            relative_time,
            header_info,
            sequence,
            flags,
            extra_info,
            constructor_bytes,
        });
    }
    Ok(HintSample {
        packets,
        extra_data_offset: pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second hint sample of Apple's sample_h264_300kbit.mp4 video hint
    /// track, first packet header and TLV ('rtpo' +3000) and two constructors.
    #[test]
    fn parses_apple_bframe_packet() {
        let mut s = vec![0, 1, 0, 0];
        s.extend_from_slice(&[0, 0, 0, 0, 0x00, 0xe0, 0, 2, 0, 6, 0, 2]);
        s.extend_from_slice(&[
            0, 0, 0, 0x10, 0, 0, 0, 0x0c, b'r', b't', b'p', b'o', 0, 0, 0x0b, 0xb8,
        ]);
        s.extend_from_slice(&[
            1, 3, 0x38, 0x00, 0x3f, 0x1b, 0xcf, 0xbc, 0, 0, 0, 0, 0, 0, 0x0b, 0xb8,
        ]);
        s.extend_from_slice(&[2, 0, 0, 63, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 0]);
        s.extend_from_slice(&[9, 9]);
        let h = parse(&s).unwrap();
        assert_eq!(h.packets.len(), 1);
        let p = &h.packets[0];
        assert!(p.marker());
        assert_eq!(p.payload_type(), 96);
        assert!(p.is_b_frame() && !p.is_repeat());
        assert_eq!(p.rtp_offset(), Ok(Some(3000)));
        let c: Vec<_> = p.constructors().collect::<Result<_, _>>().unwrap();
        assert_eq!(c[0], Constructor::Immediate(&[0x38, 0x00, 0x3f]));
        assert_eq!(
            c[1],
            Constructor::Sample {
                track_ref_index: 0,
                length: 63,
                sample_number: 2,
                offset: 4,
                bytes_per_block: 0,
                samples_per_block: 0
            }
        );
        assert_eq!(&s[h.extra_data_offset..], &[9, 9]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(parse(&[0, 1]), Err(FormatError::Truncated { .. })));
        // One packet declaring 3 constructors but holding 1.
        let mut s = vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0x60, 0, 1, 0, 0, 0, 3];
        s.extend_from_slice(&[0; 16]);
        assert!(matches!(
            parse(&s),
            Err(FormatError::Truncated {
                what: "constructors",
                ..
            })
        ));
        let c = [1u8, 15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Constructor::decode(&c),
            Err(FormatError::ImmediateTooLong(15))
        );
        let c = [7u8; 16];
        assert_eq!(
            Constructor::decode(&c),
            Err(FormatError::UnknownConstructor(7))
        );
        // Extra-information table shorter than its own length field.
        let s = [
            0, 1, 0, 0, 0, 0, 0, 0, 0, 0x60, 0, 1, 0, 4, 0, 0, 0, 0, 0, 2,
        ];
        assert!(matches!(parse(&s), Err(FormatError::BadExtraInfo(_))));
    }
}
