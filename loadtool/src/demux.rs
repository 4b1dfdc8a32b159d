//! Which stream a datagram on a shared UDP socket belongs to.
//!
//! Many sessions SET UP the same local port pair, so the RTP packets of
//! thousands of streams arrive on one socket. The server names each stream's
//! SSRC in its SETUP reply (`Transport: …;ssrc=…`), and the demultiplexer keys
//! streams by (pair, SSRC). For a server that names no SSRC, a stream is
//! keyed by (pair, server source port) until its first packet, whose SSRC is
//! then learnt.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Index of a stream in the worker's stream table.
pub type StreamId = u32;

/// A 64-bit mixer (the splitmix64 finalizer) for integer keys: cheaper than
/// SipHash, and the keys do not come from an adversary that could choose
/// colliding hashes (a hostile server could only slow its own measurement).
#[derive(Debug, Default, Clone, Copy)]
pub struct MixHasher(u64);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.0 = z ^ (z >> 31);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Map = HashMap<u64, StreamId, BuildHasherDefault<MixHasher>>;

/// Two streams claim the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("another stream on port pair {pair} already has this {what}")]
pub struct Collision {
    /// Pair index.
    pub pair: u16,
    /// `"SSRC"` or `"source port"`.
    pub what: &'static str,
}

/// Stream lookup for the shared UDP sockets of one worker.
#[derive(Debug, Default)]
pub struct Demux {
    by_ssrc: Map,
    by_source: Map,
}

fn ssrc_key(pair: u16, ssrc: u32) -> u64 {
    (u64::from(pair) << 32) | u64::from(ssrc)
}

fn source_key(pair: u16, port: u16) -> u64 {
    (u64::from(pair) << 32) | u64::from(port)
}

impl Demux {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `stream` as SSRC `ssrc` on pair `pair`.
    pub fn add_ssrc(&mut self, pair: u16, ssrc: u32, stream: StreamId) -> Result<(), Collision> {
        let key = ssrc_key(pair, ssrc);
        if self.by_ssrc.contains_key(&key) {
            return Err(Collision { pair, what: "SSRC" });
        }
        self.by_ssrc.insert(key, stream);
        Ok(())
    }

    /// Registers `stream`, whose SSRC is unknown, as sent from server port
    /// `source_port` (0: from any port) to pair `pair`.
    pub fn add_source(
        &mut self,
        pair: u16,
        source_port: u16,
        stream: StreamId,
    ) -> Result<(), Collision> {
        let key = source_key(pair, source_port);
        if self.by_source.contains_key(&key) {
            return Err(Collision {
                pair,
                what: "source port",
            });
        }
        self.by_source.insert(key, stream);
        Ok(())
    }

    /// The stream of an RTP packet with `ssrc` from `source_port` on pair
    /// `pair`, and whether its SSRC was learnt just now (a stream found by
    /// source port is re-keyed by this SSRC).
    #[inline]
    pub fn lookup(&mut self, pair: u16, ssrc: u32, source_port: u16) -> Option<(StreamId, bool)> {
        if let Some(&s) = self.by_ssrc.get(&ssrc_key(pair, ssrc)) {
            return Some((s, false));
        }
        if self.by_source.is_empty() {
            return None;
        }
        let stream = self
            .by_source
            .remove(&source_key(pair, source_port))
            .or_else(|| self.by_source.remove(&source_key(pair, 0)))?;
        self.by_ssrc.insert(ssrc_key(pair, ssrc), stream);
        Some((stream, true))
    }

    /// Looks up by SSRC only (for RTCP, which never teaches an SSRC).
    #[inline]
    pub fn get(&self, pair: u16, ssrc: u32) -> Option<StreamId> {
        self.by_ssrc.get(&ssrc_key(pair, ssrc)).copied()
    }

    /// Removes the keys of `stream` on `pair`: its SSRC key (if `ssrc` is
    /// known) and its source-port key `source_port` (if still unlearnt).
    pub fn remove(
        &mut self,
        pair: u16,
        ssrc: Option<u32>,
        source_port: Option<u16>,
        stream: StreamId,
    ) {
        if let Some(ssrc) = ssrc {
            let key = ssrc_key(pair, ssrc);
            if self.by_ssrc.get(&key) == Some(&stream) {
                self.by_ssrc.remove(&key);
            }
        }
        if let Some(port) = source_port {
            let key = source_key(pair, port);
            if self.by_source.get(&key) == Some(&stream) {
                self.by_source.remove(&key);
            }
        }
    }

    /// Number of keys (streams keyed by SSRC or by source).
    pub fn len(&self) -> usize {
        self.by_ssrc.len() + self.by_source.len()
    }

    /// True when no stream is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssrc_keys_are_per_pair() {
        let mut d = Demux::new();
        d.add_ssrc(0, 0xdead_beef, 1).unwrap();
        d.add_ssrc(1, 0xdead_beef, 2).unwrap();
        assert_eq!(
            d.add_ssrc(0, 0xdead_beef, 3),
            Err(Collision {
                pair: 0,
                what: "SSRC"
            })
        );
        assert_eq!(d.lookup(0, 0xdead_beef, 5000), Some((1, false)));
        assert_eq!(d.lookup(1, 0xdead_beef, 5000), Some((2, false)));
        assert_eq!(d.lookup(2, 0xdead_beef, 5000), None);
        // Removing with the wrong stream id leaves the key.
        d.remove(0, Some(0xdead_beef), None, 2);
        assert_eq!(d.get(0, 0xdead_beef), Some(1));
        d.remove(0, Some(0xdead_beef), None, 1);
        assert_eq!(d.lookup(0, 0xdead_beef, 5000), None);
    }

    #[test]
    fn source_port_fallback_learns_ssrc() {
        let mut d = Demux::new();
        d.add_source(3, 6970, 7).unwrap();
        d.add_source(3, 6972, 8).unwrap();
        assert_eq!(d.lookup(3, 42, 6972), Some((8, true)));
        // Learnt: found by SSRC from now on, whatever the port.
        assert_eq!(d.lookup(3, 42, 1), Some((8, false)));
        assert_eq!(d.get(3, 42), Some(8));
        assert_eq!(d.lookup(3, 43, 6970), Some((7, true)));
        assert_eq!(d.lookup(3, 44, 6970), None);
        d.remove(3, Some(43), Some(6970), 7);
        assert_eq!(d.get(3, 43), None);
        assert_eq!(d.get(3, 42), Some(8));
        // An unlearnt source key is removed too.
        d.add_source(3, 7000, 9).unwrap();
        d.remove(3, None, Some(7000), 9);
        assert!(d.add_source(3, 7000, 10).is_ok());
    }

    #[test]
    fn any_port_fallback() {
        let mut d = Demux::new();
        d.add_source(0, 0, 9).unwrap();
        assert_eq!(d.lookup(0, 1234, 40000), Some((9, true)));
        assert!(d.add_source(0, 0, 10).is_ok());
        assert_eq!(
            d.add_source(0, 0, 11),
            Err(Collision {
                pair: 0,
                what: "source port"
            })
        );
    }
}
