//! Building ISO/IEC 14496-12 boxes in memory: big-endian fields and boxes
//! whose 32-bit size is patched when they are closed.

/// A growable byte buffer with big-endian writers and nested boxes.
#[derive(Debug, Default, Clone)]
pub struct BoxBuf {
    /// The bytes written so far.
    pub bytes: Vec<u8>,
    open: Vec<usize>,
}

impl BoxBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }

    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian i32.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends raw bytes.
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }

    /// Appends `n` zero bytes.
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.bytes.resize(self.bytes.len() + n, 0);
        self
    }

    /// Opens a box of type `kind` (size patched by [`BoxBuf::close`]).
    pub fn open(&mut self, kind: &[u8; 4]) -> &mut Self {
        self.open.push(self.bytes.len());
        self.u32(0).raw(kind)
    }

    /// Opens a full box: type, version and 24-bit flags.
    pub fn open_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> &mut Self {
        self.open(kind);
        self.u32(u32::from(version) << 24 | (flags & 0x00ff_ffff))
    }

    /// Closes the innermost open box, writing its size. Boxes built here stay
    /// far below 4 GiB (sample tables of at most a few million entries); a
    /// larger one saturates the size, which a reader rejects.
    pub fn close(&mut self) -> &mut Self {
        if let Some(start) = self.open.pop() {
            let size = u32::try_from(self.bytes.len() - start).unwrap_or(u32::MAX);
            self.bytes[start..start + 4].copy_from_slice(&size.to_be_bytes());
        }
        self
    }

    /// The finished bytes. Every opened box must have been closed.
    pub fn finish(self) -> Vec<u8> {
        debug_assert!(self.open.is_empty(), "unclosed box");
        self.bytes
    }
}

/// A complete box from a type and a payload.
pub fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = BoxBuf::new();
    b.open(kind).raw(payload).close();
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_sizes() {
        let mut b = BoxBuf::new();
        b.open(b"moov")
            .open_full(b"mvhd", 1, 0x10203)
            .u8(7)
            .close()
            .close();
        let bytes = b.finish();
        assert_eq!(
            bytes,
            vec![
                0, 0, 0, 21, b'm', b'o', b'o', b'v', 0, 0, 0, 13, b'm', b'v', b'h', b'd', 1, 1, 2,
                3, 7
            ]
        );
        assert_eq!(
            boxed(b"free", &[1]),
            vec![0, 0, 0, 9, b'f', b'r', b'e', b'e', 1]
        );
    }
}
