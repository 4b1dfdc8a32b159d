//! Sample entry parsing for the packetizers: the fixed fields of visual and
//! audio sample entries (ISO/IEC 14496-12 §12.1.3, §12.2.3; QuickTime sound
//! sample description versions 1 and 2) and their codec configuration child
//! boxes ('avcC', 'hvcC', 'esds' with its MPEG-4 descriptors, ISO/IEC 14496-1
//! §7.2.6).

use super::FourCC;

/// Bytes of a visual sample entry before its child boxes: box header (8),
/// reserved (6), data_reference_index (2), pre_defined/reserved (16),
/// width, height (4), resolutions (8), reserved (4), frame_count (2),
/// compressorname (32), depth (2), pre_defined (2).
const VISUAL_FIXED: usize = 86;

/// Bytes of a version 0 audio sample entry before its child boxes: box header
/// (8), reserved (6), data_reference_index (2), version (2), revision (2),
/// vendor (4), channelcount (2), samplesize (2), compression id (2), packet
/// size (2), samplerate 16.16 (4).
const AUDIO_FIXED_V0: usize = 36;

/// A parsed sample entry: its fourcc, a few fixed fields and its child boxes.
#[derive(Debug, Clone)]
pub struct SampleEntry<'a> {
    /// Sample entry type ('avc1', 'mp4a', ...).
    pub fourcc: FourCC,
    /// Audio channel count from the fixed fields (0 for video).
    pub channels: u16,
    /// Audio sampling rate from the fixed fields, Hz (0 for video).
    pub sample_rate: u32,
    /// Visual width in pixels from the fixed fields (0 for audio).
    pub width: u16,
    /// Visual height in pixels from the fixed fields (0 for audio).
    pub height: u16,
    /// Child boxes of the entry, as complete boxes.
    children: &'a [u8],
}

impl<'a> SampleEntry<'a> {
    /// Parses a complete sample entry box. The layout (visual or audio) is
    /// chosen by fourcc: known audio types are read as audio entries,
    /// everything else as visual. Returns `None` when the box is truncated.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let size = be32(bytes, 0)? as usize;
        let bytes = bytes.get(..size.max(8))?;
        let fourcc: FourCC = bytes.get(4..8)?.try_into().ok()?;
        if is_audio(&fourcc) {
            let version = be16(bytes, 16)?;
            let fixed = match version {
                1 => AUDIO_FIXED_V0 + 16,
                2 => AUDIO_FIXED_V0 + 36,
                _ => AUDIO_FIXED_V0,
            };
            let (channels, sample_rate) = if version == 2 {
                // QuickTime v2: samplerate as float64 at 40, channels u32 at 48.
                let rate =
                    f64::from_bits(u64::from(be32(bytes, 40)?) << 32 | u64::from(be32(bytes, 44)?));
                let channels = u16::try_from(be32(bytes, 48)?).ok()?;
                (
                    channels,
                    if rate.is_finite() && rate > 0.0 && rate < 1e7 {
                        rate as u32
                    } else {
                        0
                    },
                )
            } else {
                (be16(bytes, 24)?, be32(bytes, 32)? >> 16)
            };
            Some(Self {
                fourcc,
                channels,
                sample_rate,
                width: 0,
                height: 0,
                children: bytes.get(fixed..).unwrap_or(&[]),
            })
        } else {
            Some(Self {
                fourcc,
                channels: 0,
                sample_rate: 0,
                width: be16(bytes, 32).unwrap_or(0),
                height: be16(bytes, 34).unwrap_or(0),
                children: bytes.get(VISUAL_FIXED..).unwrap_or(&[]),
            })
        }
    }

    /// Payload of the first child box of type `kind`, searching also inside a
    /// QuickTime 'wave' box (where MOV files keep 'esds').
    pub fn child(&self, kind: &FourCC) -> Option<&'a [u8]> {
        find_box(self.children, kind).or_else(|| find_box(find_box(self.children, b"wave")?, kind))
    }
}

fn is_audio(fourcc: &FourCC) -> bool {
    matches!(
        fourcc,
        b"mp4a"
            | b"enca"
            | b"samr"
            | b"sawb"
            | b"alac"
            | b"Opus"
            | b"fLaC"
            | b"ac-3"
            | b"ec-3"
            | b".mp3"
            | b"ms\0\x55"
            | b"twos"
            | b"sowt"
            | b"lpcm"
            | b"ulaw"
            | b"alaw"
            | b"ima4"
            | b"QDM2"
            | b"QDMC"
    )
}

/// Big-endian u16 at `at`.
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Big-endian u32 at `at`.
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Payload of the first box of type `kind` in a sequence of boxes. Stops at
/// the first malformed box header.
pub fn find_box<'a>(mut boxes: &'a [u8], kind: &FourCC) -> Option<&'a [u8]> {
    while boxes.len() >= 8 {
        let size = be32(boxes, 0)? as usize;
        let (header, size) = match size {
            0 => (8, boxes.len()),
            1 => (
                16,
                usize::try_from(u64::from(be32(boxes, 8)?) << 32 | u64::from(be32(boxes, 12)?))
                    .ok()?,
            ),
            n => (8, n),
        };
        if size < header || size > boxes.len() {
            return None;
        }
        if boxes.get(4..8)? == kind {
            return boxes.get(header..size);
        }
        boxes = &boxes[size..];
    }
    None
}

/// The parts of an 'esds' box the packetizers use (ISO/IEC 14496-1 §7.2.6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esds<'a> {
    /// objectTypeIndication: 0x40 MPEG-4 Audio, 0x20 MPEG-4 Visual, 0x66-0x68
    /// MPEG-2 AAC, 0x69/0x6B MPEG audio layers, ...
    pub object_type: u8,
    /// Average bitrate from the DecoderConfigDescriptor, bit/s (0 = unknown).
    pub avg_bitrate: u32,
    /// DecoderSpecificInfo bytes (AudioSpecificConfig, or the MPEG-4 Visual
    /// VOS/VO/VOL headers), empty when absent.
    pub specific: &'a [u8],
}

/// Parses an 'esds' full-box payload. Returns `None` when the descriptors are
/// truncated or the DecoderConfigDescriptor is missing.
pub fn parse_esds(payload: &[u8]) -> Option<Esds<'_>> {
    let body = payload.get(4..)?; // version + flags
    let es = descriptor(body)?;
    if es.tag != 0x03 {
        return None;
    }
    let es = es.body;
    let flags = *es.get(2)?;
    let mut at = 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let mut rest = es.get(at..)?;
    while !rest.is_empty() {
        let Descriptor {
            tag,
            body: dcd,
            rest: next,
        } = descriptor(rest)?;
        if tag == 0x04 {
            let object_type = *dcd.first()?;
            let avg_bitrate = be32(dcd, 9)?;
            let mut sub = dcd.get(13..)?;
            let mut specific: &[u8] = &[];
            while !sub.is_empty() {
                let Some(d) = descriptor(sub) else {
                    break;
                };
                if d.tag == 0x05 {
                    specific = d.body;
                    break;
                }
                sub = d.rest;
            }
            return Some(Esds {
                object_type,
                avg_bitrate,
                specific,
            });
        }
        rest = next;
    }
    None
}

/// One MPEG-4 descriptor and the bytes after it.
struct Descriptor<'a> {
    tag: u8,
    body: &'a [u8],
    rest: &'a [u8],
}

/// Reads one descriptor. Sizes use the expandable 7-bit encoding
/// (ISO/IEC 14496-1 §8.3.3), at most 4 bytes.
fn descriptor(b: &[u8]) -> Option<Descriptor<'_>> {
    let tag = *b.first()?;
    let mut len = 0usize;
    let mut at = 1;
    loop {
        let byte = *b.get(at)?;
        at += 1;
        len = len << 7 | usize::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return None;
        }
    }
    let body = b.get(at..at.checked_add(len)?)?;
    Some(Descriptor {
        tag,
        body,
        rest: &b[at + len..],
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A complete box from a type and a payload.
    pub fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    /// A visual sample entry of type `kind` with `children` after the fixed part.
    pub fn visual_entry(kind: &[u8; 4], children: &[u8]) -> Vec<u8> {
        let mut payload = vec![0u8; VISUAL_FIXED - 8];
        payload[7] = 1; // data_reference_index
        payload.extend_from_slice(children);
        boxed(kind, &payload)
    }

    /// A version 0 audio sample entry.
    pub fn audio_entry(kind: &[u8; 4], channels: u16, rate: u32, children: &[u8]) -> Vec<u8> {
        let mut payload = vec![0u8; AUDIO_FIXED_V0 - 8];
        payload[7] = 1;
        payload[16..18].copy_from_slice(&channels.to_be_bytes());
        payload[18..20].copy_from_slice(&16u16.to_be_bytes());
        payload[24..28].copy_from_slice(&(rate << 16).to_be_bytes());
        payload.extend_from_slice(children);
        boxed(kind, &payload)
    }

    /// An 'esds' box with one ES descriptor around a decoder config.
    pub fn esds(object_type: u8, stream_type: u8, specific: &[u8]) -> Vec<u8> {
        let mut dsi = vec![0x05, specific.len() as u8];
        dsi.extend_from_slice(specific);
        let mut dcd = vec![
            0x04,
            (13 + dsi.len()) as u8,
            object_type,
            stream_type << 2 | 1,
            0,
            0,
            0,
        ];
        dcd.extend_from_slice(&128_000u32.to_be_bytes());
        dcd.extend_from_slice(&64_000u32.to_be_bytes());
        dcd.extend_from_slice(&dsi);
        let mut es = vec![0x03, 0x80, 0x80, 0x80, (3 + dcd.len() + 3) as u8, 0, 1, 0];
        es.extend_from_slice(&dcd);
        es.extend_from_slice(&[0x06, 1, 2]);
        let mut payload = vec![0, 0, 0, 0];
        payload.extend_from_slice(&es);
        boxed(b"esds", &payload)
    }

    #[test]
    fn audio_entry_fields_and_esds() {
        let e = audio_entry(b"mp4a", 2, 44100, &esds(0x40, 5, &[0x12, 0x10]));
        let entry = SampleEntry::parse(&e).expect("entry");
        assert_eq!(
            (entry.fourcc, entry.channels, entry.sample_rate),
            (*b"mp4a", 2, 44100)
        );
        let esds = parse_esds(entry.child(b"esds").expect("esds")).expect("parsed");
        assert_eq!(
            esds,
            Esds {
                object_type: 0x40,
                avg_bitrate: 64_000,
                specific: &[0x12, 0x10]
            }
        );
    }

    #[test]
    fn esds_inside_wave() {
        let wave = boxed(b"wave", &esds(0x40, 5, &[0x11, 0x90]));
        let e = audio_entry(b"mp4a", 2, 48000, &wave);
        let entry = SampleEntry::parse(&e).expect("entry");
        assert!(entry.child(b"esds").is_some());
    }

    #[test]
    fn truncated_inputs_give_none() {
        let e = audio_entry(b"mp4a", 2, 44100, &esds(0x40, 5, &[0x12, 0x10]));
        for cut in 0..e.len() {
            let _ = SampleEntry::parse(&e[..cut]).map(|s| s.child(b"esds").map(parse_esds));
        }
        let esds_box = esds(0x40, 5, &[0x12, 0x10]);
        let payload = &esds_box[8..];
        // Every strict prefix cuts the ES descriptor short and is rejected.
        for cut in 0..payload.len() {
            assert_eq!(parse_esds(&payload[..cut]), None, "cut {cut}");
        }
    }

    #[test]
    fn find_box_skips_and_bounds() {
        let mut boxes = boxed(b"free", &[1, 2, 3]);
        boxes.extend(boxed(b"avcC", &[9, 9]));
        assert_eq!(find_box(&boxes, b"avcC"), Some(&[9u8, 9][..]));
        assert_eq!(find_box(&boxes, b"hvcC"), None);
        let mut bad = boxes.clone();
        bad[3] = 200; // size past the end
        assert_eq!(find_box(&bad, b"avcC"), None);
    }
}
