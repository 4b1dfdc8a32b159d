//! The 'rtp ' hint sample entry (ISO/IEC 14496-12 §9.1.2.1, QuickTime
//! "Hint sample data format"): hint track version, highest compatible
//! version, maximum packet size, and the additional-data boxes 'tims' (RTP
//! clock rate), 'tsro' (RTP timestamp offset) and 'snro' (sequence number
//! offset).

use crate::error::HintError;
use crate::mp4::boxes::{child_path, BoxIter, Cursor, FourCC};

/// Highest hint track version this crate reads.
pub const SUPPORTED_HINT_VERSION: u16 = 1;

/// A parsed 'rtp ' sample entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpEntry {
    /// 1-based 'dref' index of the hint samples.
    pub data_reference_index: u16,
    /// Hint track version (1 in every known file).
    pub hint_track_version: u16,
    /// Oldest reader version that can read this track.
    pub highest_compatible_version: u16,
    /// Largest packet the hinter meant to produce, bytes (Apple: RTP header
    /// included; real packets may exceed it slightly).
    pub max_packet_size: u32,
    /// RTP clock rate in Hz ('tims'; never 0).
    pub timescale: u32,
    /// Fixed RTP timestamp offset ('tsro'); `None` means "use a random one".
    pub timestamp_offset: Option<i32>,
    /// Fixed sequence number offset ('snro'); `None` means "use a random one".
    pub sequence_offset: Option<u32>,
}

impl RtpEntry {
    /// Parses a whole 'rtp ' sample entry box (`entry` starts with its 8-byte
    /// size/format header). `path` names the entry in errors, e.g.
    /// `moov/trak[3]/mdia/minf/stbl/stsd/rtp `.
    ///
    /// Errors: truncated fields, missing or zero 'tims', or a highest
    /// compatible version above [`SUPPORTED_HINT_VERSION`]
    /// ([`HintError::InvalidBox`]).
    pub fn parse(entry: &[u8], path: &str) -> Result<RtpEntry, HintError> {
        let mut c = Cursor::new(entry, path);
        c.skip(8)?;
        c.skip(6)?;
        let data_reference_index = c.u16()?;
        let hint_track_version = c.u16()?;
        let highest_compatible_version = c.u16()?;
        let max_packet_size = c.u32()?;
        if highest_compatible_version > SUPPORTED_HINT_VERSION {
            return Err(HintError::invalid(
                path,
                format!("hint track version {hint_track_version} needs a reader of version {highest_compatible_version}"),
            ));
        }
        let mut timescale = None;
        let mut timestamp_offset = None;
        let mut sequence_offset = None;
        let base = c.position() as u64;
        for b in BoxIter::new(c.rest(), base, path) {
            let b = b?;
            let p = child_path(path, b.fourcc);
            let mut bc = Cursor::new(b.body, &p);
            match &b.fourcc.0 {
                b"tims" => timescale = Some(bc.u32()?),
                b"tsro" => timestamp_offset = Some(bc.i32()?),
                b"snro" => sequence_offset = Some(bc.u32()?),
                _ => {}
            }
        }
        let timescale = match timescale {
            Some(0) => {
                return Err(HintError::invalid(
                    child_path(path, FourCC(*b"tims")),
                    "RTP clock rate is 0",
                ))
            }
            Some(t) => t,
            None => return Err(HintError::missing(child_path(path, "tims"))),
        };
        Ok(RtpEntry {
            data_reference_index,
            hint_track_version,
            highest_compatible_version,
            max_packet_size,
            timescale,
            timestamp_offset,
            sequence_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(extra: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&0u32.to_be_bytes());
        v.extend_from_slice(b"rtp ");
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1]);
        v.extend_from_slice(&1450u32.to_be_bytes());
        v.extend_from_slice(extra);
        let n = v.len() as u32;
        v[..4].copy_from_slice(&n.to_be_bytes());
        v
    }

    #[test]
    fn reads_tims_tsro_snro() {
        let mut extra = Vec::new();
        for (t, val) in [(b"tims", 90000u32), (b"tsro", 0xffff_fffe), (b"snro", 7)] {
            extra.extend_from_slice(&12u32.to_be_bytes());
            extra.extend_from_slice(t);
            extra.extend_from_slice(&val.to_be_bytes());
        }
        let e = RtpEntry::parse(&entry(&extra), "rtp ").unwrap();
        assert_eq!(e.max_packet_size, 1450);
        assert_eq!(e.timescale, 90000);
        assert_eq!(e.timestamp_offset, Some(-2));
        assert_eq!(e.sequence_offset, Some(7));
    }

    #[test]
    fn requires_tims() {
        assert!(matches!(
            RtpEntry::parse(&entry(&[]), "x"),
            Err(HintError::MissingBox { .. })
        ));
    }
}
