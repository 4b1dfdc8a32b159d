//! Generic box (atom) reading: headers, child iteration and a bounds-checked
//! big-endian field cursor (ISO/IEC 14496-12 §4.2, QuickTime "Atoms").
//!
//! Handles 32-bit sizes, 64-bit sizes (`size == 1`), size 0 ("extends to the
//! end of the enclosing box or file") and the 16-byte `uuid` extended type.
//! Up to 7 trailing bytes at the end of a container (QuickTime writes a 4-byte
//! zero terminator in some `udta` boxes) are ignored.

use std::fmt;
use std::ops::Range;

use crate::error::HintError;

/// A four-character code (box type, handler type, sample entry format).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FourCC(pub [u8; 4]);

impl FourCC {
    /// Builds a code from its four bytes, e.g. `FourCC::new(b"moov")`.
    pub const fn new(code: &[u8; 4]) -> Self {
        FourCC(*code)
    }
}

impl fmt::Display for FourCC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{self}'")
    }
}

/// Where a box lies in the file: absolute byte offsets, for tools that rewrite
/// files (move `mdat`, patch `stco`, insert `trak`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxRange {
    /// Box type.
    pub fourcc: FourCC,
    /// Path from the file root, e.g. `moov/trak[2]/mdia/minf/stbl/stco`.
    pub path: String,
    /// Offset of the box's first byte (its size field).
    pub start: u64,
    /// Header length in bytes: 8, 16 (64-bit size or `uuid`) or 24 (both).
    pub header_len: u8,
    /// Offset one past the box's last byte.
    pub end: u64,
}

impl BoxRange {
    /// Offset of the box's payload (after the header).
    pub fn body_start(&self) -> u64 {
        self.start + u64::from(self.header_len)
    }

    /// The whole box as a byte range.
    pub fn range(&self) -> Range<u64> {
        self.start..self.end
    }

    /// The payload as a byte range.
    pub fn body_range(&self) -> Range<u64> {
        self.body_start()..self.end
    }
}

/// One box found by [`BoxIter`]: its header values and payload.
#[derive(Debug, Clone, Copy)]
pub struct BoxRef<'a> {
    /// Box type.
    pub fourcc: FourCC,
    /// Absolute offset of the box's first byte.
    pub start: u64,
    /// Header length in bytes.
    pub header_len: u8,
    /// The payload (after the header), borrowed from the file.
    pub body: &'a [u8],
}

impl<'a> BoxRef<'a> {
    /// Absolute offset one past the box's last byte.
    pub fn end(&self) -> u64 {
        self.start + u64::from(self.header_len) + self.body.len() as u64
    }

    /// Absolute offset of the payload.
    pub fn body_start(&self) -> u64 {
        self.start + u64::from(self.header_len)
    }

    /// The box's [`BoxRange`] given the path of its parent (`""` at the root).
    pub fn range(&self, path: impl Into<String>) -> BoxRange {
        BoxRange {
            fourcc: self.fourcc,
            path: path.into(),
            start: self.start,
            header_len: self.header_len,
            end: self.end(),
        }
    }

    /// Iterates this box's children (for containers whose payload is boxes),
    /// skipping `skip` payload bytes first (e.g. 4 for `meta`, 8 for `stsd`).
    /// `path` is this box's path, used in errors.
    pub fn children<'p>(&self, path: &'p str, skip: usize) -> BoxIter<'a, 'p> {
        let body = self.body.get(skip..).unwrap_or(&[]);
        BoxIter::new(body, self.body_start() + skip as u64, path)
    }
}

/// Joins a parent path and a child name: `child_path("moov", "mvhd")`.
pub fn child_path(parent: &str, name: impl fmt::Display) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// Iterator over the boxes of a byte range (the whole file or a container's
/// payload). Yields `Err` once and then stops when a header is malformed or a
/// box extends past the range.
#[derive(Debug, Clone)]
pub struct BoxIter<'a, 'p> {
    data: &'a [u8],
    /// Absolute file offset of `data[0]`.
    base: u64,
    pos: usize,
    parent: &'p str,
    done: bool,
}

impl<'a, 'p> BoxIter<'a, 'p> {
    /// Iterates the boxes in `data`, which starts at absolute file offset
    /// `base`; `parent` is the path of the enclosing box (`""` for the file).
    pub fn new(data: &'a [u8], base: u64, parent: &'p str) -> Self {
        BoxIter {
            data,
            base,
            pos: 0,
            parent,
            done: false,
        }
    }

    fn read_next(&mut self) -> Result<Option<BoxRef<'a>>, HintError> {
        let rest = &self.data[self.pos..];
        if rest.len() < 8 {
            // Too short for a header: trailing padding or a QuickTime
            // terminator. Nothing more to read.
            return Ok(None);
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let fourcc = FourCC([rest[4], rest[5], rest[6], rest[7]]);
        let mut header_len: usize = 8;
        let size: u64 = match size32 {
            0 => rest.len() as u64,
            1 => {
                let Some(large) = rest.get(8..16) else {
                    return Err(HintError::Truncated {
                        box_path: child_path(self.parent, fourcc),
                        needed: 16,
                        available: rest.len() as u64,
                    });
                };
                header_len = 16;
                let mut b = [0u8; 8];
                b.copy_from_slice(large);
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        if fourcc == FourCC(*b"uuid") {
            header_len += 16;
        }
        if size < header_len as u64 {
            return Err(HintError::invalid(
                child_path(self.parent, fourcc),
                format!("box size {size} is smaller than its {header_len}-byte header"),
            ));
        }
        if size > rest.len() as u64 {
            return Err(HintError::Truncated {
                box_path: child_path(self.parent, fourcc),
                needed: size,
                available: rest.len() as u64,
            });
        }
        let size = size as usize;
        let start = self.base + self.pos as u64;
        let body = &rest[header_len..size];
        self.pos += size;
        Ok(Some(BoxRef {
            fourcc,
            start,
            header_len: header_len as u8,
            body,
        }))
    }
}

impl<'a> Iterator for BoxIter<'a, '_> {
    type Item = Result<BoxRef<'a>, HintError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_next() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Bounds-checked big-endian reader over one box's payload. Every read past
/// the end is a [`HintError::Truncated`] naming the box.
#[derive(Debug, Clone)]
pub struct Cursor<'a, 'p> {
    data: &'a [u8],
    pos: usize,
    path: &'p str,
}

impl<'a, 'p> Cursor<'a, 'p> {
    /// A cursor at the start of `data`, the payload of the box at `path`.
    pub fn new(data: &'a [u8], path: &'p str) -> Self {
        Cursor { data, pos: 0, path }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Current position within the payload.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The box path this cursor reports in errors.
    pub fn path(&self) -> &'p str {
        self.path
    }

    /// The truncation error for a read of `needed` more bytes.
    pub fn truncated(&self, needed: u64) -> HintError {
        HintError::Truncated {
            box_path: self.path.to_string(),
            needed: (self.pos as u64).saturating_add(needed),
            available: self.data.len() as u64,
        }
    }

    /// Fails unless `count` entries of `entry_size` bytes remain. Call it
    /// before allocating for a declared count.
    pub fn require(&self, count: u64, entry_size: u64) -> Result<(), HintError> {
        let needed = count.saturating_mul(entry_size);
        if needed > self.remaining() as u64 {
            Err(self.truncated(needed))
        } else {
            Ok(())
        }
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], HintError> {
        if n > self.remaining() {
            return Err(self.truncated(n as u64));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), HintError> {
        self.bytes(n).map(|_| ())
    }

    /// The unread rest of the payload.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], HintError> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads a u8.
    pub fn u8(&mut self) -> Result<u8, HintError> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads a big-endian u16.
    pub fn u16(&mut self) -> Result<u16, HintError> {
        self.array().map(u16::from_be_bytes)
    }
    /// Reads a big-endian u24 (full-box flags).
    pub fn u24(&mut self) -> Result<u32, HintError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }
    /// Reads a big-endian u32.
    pub fn u32(&mut self) -> Result<u32, HintError> {
        self.array().map(u32::from_be_bytes)
    }
    /// Reads a big-endian i32.
    pub fn i32(&mut self) -> Result<i32, HintError> {
        self.array().map(i32::from_be_bytes)
    }
    /// Reads a big-endian u64.
    pub fn u64(&mut self) -> Result<u64, HintError> {
        self.array().map(u64::from_be_bytes)
    }
    /// Reads a big-endian i64.
    pub fn i64(&mut self) -> Result<i64, HintError> {
        self.array().map(i64::from_be_bytes)
    }
    /// Reads a four-character code.
    pub fn fourcc(&mut self) -> Result<FourCC, HintError> {
        self.array().map(FourCC)
    }
    /// Reads a full-box header: (version, flags).
    pub fn full_box(&mut self) -> Result<(u8, u32), HintError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_sizes_32_64_and_zero() {
        let mut d = Vec::new();
        d.extend_from_slice(&[0, 0, 0, 12]);
        d.extend_from_slice(b"free");
        d.extend_from_slice(&[1, 2, 3, 4]);
        d.extend_from_slice(&[0, 0, 0, 1]);
        d.extend_from_slice(b"wide");
        d.extend_from_slice(&20u64.to_be_bytes());
        d.extend_from_slice(&[9, 9, 9, 9]);
        d.extend_from_slice(&[0, 0, 0, 0]);
        d.extend_from_slice(b"mdat");
        d.extend_from_slice(&[7; 5]);
        let boxes: Vec<_> = BoxIter::new(&d, 100, "").collect::<Result<_, _>>().unwrap();
        assert_eq!(boxes.len(), 3);
        assert_eq!(boxes[0].fourcc, FourCC(*b"free"));
        assert_eq!(boxes[0].body, &[1, 2, 3, 4]);
        assert_eq!(boxes[1].header_len, 16);
        assert_eq!(boxes[1].body, &[9, 9, 9, 9]);
        assert_eq!(boxes[1].start, 112);
        assert_eq!(boxes[2].body.len(), 5);
        assert_eq!(boxes[2].end(), 100 + d.len() as u64);
    }

    #[test]
    fn rejects_overlong_and_undersized_boxes() {
        let mut d = Vec::new();
        d.extend_from_slice(&[0, 0, 0, 40]);
        d.extend_from_slice(b"moov");
        d.extend_from_slice(&[0; 8]);
        let r: Vec<_> = BoxIter::new(&d, 0, "").collect();
        assert!(
            matches!(&r[0], Err(HintError::Truncated { box_path, needed: 40, available: 16 }) if box_path == "moov")
        );
        let mut d = Vec::new();
        d.extend_from_slice(&[0, 0, 0, 4]);
        d.extend_from_slice(b"trak");
        let r: Vec<_> = BoxIter::new(&d, 0, "moov").collect();
        assert!(
            matches!(&r[0], Err(HintError::InvalidBox { box_path, .. }) if box_path == "moov/trak")
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn cursor_reports_truncation_with_path() {
        let d = [0u8, 1, 2];
        let mut c = Cursor::new(&d, "moov/mvhd");
        assert_eq!(c.u16().unwrap(), 1);
        let e = c.u32().unwrap_err();
        assert!(
            matches!(e, HintError::Truncated { ref box_path, needed: 6, available: 3 } if box_path == "moov/mvhd")
        );
        assert!(c.require(u64::from(u32::MAX), 8).is_err());
    }
}
