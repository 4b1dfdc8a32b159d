//! Identifiers: the public RTSP session ID and the shard-local connection handle.

/// A session identifier as sent in the RTSP `Session` header: 16 hex digits
/// whose top byte is the index of the owning shard (RFC 2326 §12.37).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// Builds an ID for `shard` from 56 random bits.
    pub fn new(shard: usize, random: u64) -> Self {
        SessionId(((shard as u64 & 0xff) << 56) | (random & 0x00ff_ffff_ffff_ffff))
    }

    /// The index of the shard that owns this session.
    pub fn shard(self) -> usize {
        (self.0 >> 56) as usize
    }

    /// Parses the 16-hex-digit form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(SessionId)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

/// A shard-local handle to an RTSP connection: slab index plus generation, so
/// a handle to a closed connection never aliases a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// Slab index.
    pub index: u32,
    /// Generation of the slab entry.
    pub generation: u32,
}
