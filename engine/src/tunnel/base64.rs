//! Incremental base64 decoding of a tunnel POST body (RFC 2045 §6.8
//! alphabet, as Apple's tunnelling note requires).
//!
//! The body arrives split anywhere: a 4-character quantum may straddle two
//! reads, CR/LF and spaces may appear between characters, and some clients
//! encode each RTSP message separately, so `=` padding may end a quantum in
//! the middle of the stream with a new quantum after it. This module only
//! carries partial quanta between reads and cuts the stream at padded
//! quanta; the `base64` crate's engine decodes.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{DecodeError, Engine as _};

/// Standard alphabet; padding required where a quantum is short (it always
/// is, since quanta are cut at `=`); nonzero trailing bits tolerated.
const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Why a POST body is not base64. The tunnel's input is unusable after it:
/// close the POST connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A byte outside the alphabet, `=`, and whitespace.
    #[error("invalid byte {byte:#04x} at offset {offset} of the POST body")]
    InvalidByte {
        /// Offset in the body (whitespace counted), bytes; approximate for
        /// a quantum split across reads.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// A quantum whose padding is wrong (`Q===`, `QQ=A`, …).
    #[error("invalid padding in the quantum at offset {offset} of the POST body")]
    InvalidPadding {
        /// Offset in the body where the quantum was completed, bytes.
        offset: u64,
    },
    /// An earlier error already stopped this decoder.
    #[error("POST body decoding already failed")]
    Failed,
}

/// Decoder state for one POST connection's body.
#[derive(Clone, Debug, Default)]
pub struct Base64Decoder {
    /// Significant characters of an incomplete quantum.
    carry: [u8; 4],
    carry_len: u8,
    /// Body bytes consumed before the current push.
    position: u64,
    failed: bool,
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

impl Base64Decoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `input` (the next bytes of the body), appending the decoded
    /// bytes to `out`; returns how many were appended. A quantum left
    /// incomplete is kept for the next call. On error nothing of this call's
    /// undecodable part is appended (complete quanta before the fault may
    /// have been) and every later call fails with [`Base64Error::Failed`].
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Base64Error> {
        if self.failed {
            return Err(Base64Error::Failed);
        }
        let start_len = out.len();
        let result = self.push_inner(input, out);
        self.position += input.len() as u64;
        match result {
            Ok(()) => Ok(out.len() - start_len),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn push_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
        let mut i = 0;
        while i < input.len() {
            if self.carry_len > 0 {
                let b = input[i];
                i += 1;
                if is_space(b) {
                    continue;
                }
                self.carry[usize::from(self.carry_len)] = b;
                self.carry_len += 1;
                if self.carry_len == 4 {
                    self.carry_len = 0;
                    let quantum = self.carry;
                    // Offsets inside a straddling quantum are approximate.
                    let end = self.position + i as u64;
                    self.decode(&quantum, out, end.saturating_sub(4))?;
                }
                continue;
            }
            // A run of significant characters.
            while i < input.len() && is_space(input[i]) {
                i += 1;
            }
            let run_start = i;
            while i < input.len() && !is_space(input[i]) {
                i += 1;
            }
            let mut run = &input[run_start..i];
            let mut run_offset = self.position + run_start as u64;
            while run.len() >= 4 {
                // Cut after the first padded quantum, if one is complete in
                // this run; else at the last whole quantum.
                let cut = match memchr::memchr(b'=', run) {
                    Some(p) if (p / 4 + 1) * 4 <= run.len() => (p / 4 + 1) * 4,
                    Some(p) => p / 4 * 4,
                    None => run.len() / 4 * 4,
                };
                if cut == 0 {
                    break;
                }
                self.decode(&run[..cut], out, run_offset)?;
                run = &run[cut..];
                run_offset += cut as u64;
            }
            // Fewer than 4 left: carried to the next characters. (A cut of
            // 0 cannot happen with 4 or more left: an '=' in the first
            // quantum makes the cut 4.)
            let run = &run[..run.len().min(3)];
            self.carry[..run.len()].copy_from_slice(run);
            self.carry_len = run.len() as u8;
        }
        Ok(())
    }

    /// Decodes whole quanta (`chunk.len() % 4 == 0`, padding only at its
    /// end) starting at body offset `offset`.
    fn decode(&self, chunk: &[u8], out: &mut Vec<u8>, offset: u64) -> Result<(), Base64Error> {
        let before = out.len();
        ENGINE.decode_vec(chunk, out).map_err(|e| {
            out.truncate(before);
            match e {
                DecodeError::InvalidByte(at, byte) if byte != b'=' => Base64Error::InvalidByte {
                    offset: offset + at as u64,
                    byte,
                },
                DecodeError::InvalidByte(at, _) | DecodeError::InvalidLastSymbol(at, _) => {
                    Base64Error::InvalidPadding {
                        offset: offset + at as u64,
                    }
                }
                DecodeError::InvalidLength(_) | DecodeError::InvalidPadding => {
                    Base64Error::InvalidPadding { offset }
                }
            }
        })
    }

    /// Characters of an incomplete quantum held for the next push (0-3).
    /// Non-zero when the POST connection closes means a torn quantum.
    pub fn pending(&self) -> usize {
        usize::from(self.carry_len)
    }
}
