//! HMAC-SHA256 keys (the Digest nonce key and the signed-URL key) whose
//! `Debug` never shows the key.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// HMAC-SHA256 (RFC 2104 over FIPS 180-4 SHA-256).
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A secret HMAC-SHA256 key of at least [`Secret::MIN_LEN`] bytes.
///
/// Cloning is cheap enough for a snapshot; the keyed HMAC state is computed
/// once, so each use on a shard is a copy, never a key schedule.
#[derive(Clone)]
pub struct Secret {
    len: usize,
    mac: HmacSha256,
}

/// Why a secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file cannot be read.
    #[error("cannot read secret file {path}: {source}")]
    Read {
        /// File.
        path: std::path::PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The key is shorter than [`Secret::MIN_LEN`] bytes (after trimming the
    /// trailing line break of a file).
    #[error("secret {origin} is {len} bytes; at least {min} are needed")]
    TooShort {
        /// Where the key came from (a file name, or "given").
        origin: String,
        /// Its length, bytes.
        len: usize,
        /// [`Secret::MIN_LEN`].
        min: usize,
    },
    /// The key file is larger than [`Secret::MAX_FILE_LEN`] bytes.
    #[error("secret file {path} is larger than {max} bytes")]
    TooLong {
        /// File.
        path: std::path::PathBuf,
        /// [`Secret::MAX_FILE_LEN`].
        max: usize,
    },
    /// The operating system's random source failed.
    #[error("cannot draw a random secret: {0}")]
    Random(String),
}

impl Secret {
    /// Shortest accepted key, bytes (128 bits).
    pub const MIN_LEN: usize = 16;
    /// Largest accepted key file, bytes.
    pub const MAX_FILE_LEN: usize = 4096;

    /// A key of `bytes`. Errors when shorter than [`Secret::MIN_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Secret, SecretError> {
        Self::build(bytes, "given")
    }

    /// 32 bytes from the operating system's random source (`getrandom`).
    pub fn random() -> Result<Secret, SecretError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| SecretError::Random(e.to_string()))?;
        Self::build(&key, "random")
    }

    /// Reads a key file: its bytes, less one trailing `\n` or `\r\n` (so a
    /// file written by `echo` or an editor keys the same HMAC as the text
    /// without its line break). Generate one with
    /// `head -c 32 /dev/urandom | base64 > FILE`.
    pub fn read_file(path: &Path) -> Result<Secret, SecretError> {
        let read_err = |source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        };
        let bytes = super::read_limited(path, Self::MAX_FILE_LEN)
            .map_err(read_err)?
            .ok_or_else(|| SecretError::TooLong {
                path: path.to_path_buf(),
                max: Self::MAX_FILE_LEN,
            })?;
        let key = bytes
            .strip_suffix(b"\r\n")
            .or_else(|| bytes.strip_suffix(b"\n"))
            .unwrap_or(&bytes);
        Self::build(key, &path.display().to_string())
    }

    fn build(key: &[u8], origin: &str) -> Result<Secret, SecretError> {
        if key.len() < Self::MIN_LEN {
            return Err(SecretError::TooShort {
                origin: origin.to_string(),
                len: key.len(),
                min: Self::MIN_LEN,
            });
        }
        // HMAC accepts keys of every length; the error arm cannot happen.
        let mac = HmacSha256::new_from_slice(key).map_err(|_| SecretError::TooShort {
            origin: origin.to_string(),
            len: key.len(),
            min: Self::MIN_LEN,
        })?;
        Ok(Secret {
            len: key.len(),
            mac,
        })
    }

    /// HMAC-SHA256 of the concatenation of `parts` under this key, 32 bytes.
    pub(crate) fn hmac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted, {} bytes>)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_6_is_hmac_sha256() {
        // RFC 4231 §4.7 (test case 6): a 131-byte key of 0xaa. (The shorter
        // keys of cases 1-5 are below MIN_LEN.)
        let key = [0xaau8; 131];
        let s = Secret::from_bytes(&key).expect("long key");
        let mac = s.hmac(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn short_keys_are_refused_and_debug_redacts() {
        assert!(matches!(
            Secret::from_bytes(b"short"),
            Err(SecretError::TooShort { len: 5, .. })
        ));
        let s = Secret::from_bytes(b"0123456789abcdef-very-secret").expect("key");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
        assert!(dbg.contains("redacted"));
        let r = Secret::random().expect("random");
        assert_ne!(r.hmac(&[b"x"]), s.hmac(&[b"x"]));
    }

    #[test]
    fn file_key_drops_one_trailing_line_break() {
        let dir = crate::access::test_dir("secret");
        let a = dir.join("a");
        let b = dir.join("b");
        std::fs::write(&a, "0123456789abcdefXYZ\n").expect("write");
        std::fs::write(&b, "0123456789abcdefXYZ").expect("write");
        let ka = Secret::read_file(&a).expect("a");
        let kb = Secret::read_file(&b).expect("b");
        assert_eq!(ka.hmac(&[b"m"]), kb.hmac(&[b"m"]));
        assert!(matches!(
            Secret::read_file(&dir.join("missing")),
            Err(SecretError::Read { .. })
        ));
        std::fs::write(&a, vec![b'x'; Secret::MAX_FILE_LEN + 1]).expect("write");
        assert!(matches!(
            Secret::read_file(&a),
            Err(SecretError::TooLong { .. })
        ));
    }
}
