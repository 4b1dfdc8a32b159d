//! Which shard is a cookie's home: SipHash-1-3 of the cookie under a
//! per-process random key, reduced to the shard count. With SO_REUSEPORT a
//! tunnel's GET and POST can land on different shards; both ask the home
//! shard, whose [`crate::tunnel::TunnelRegistry`] pairs them. The key is
//! secret and random, so a client cannot choose cookies that all land on
//! one shard or collide in its table.

use std::hash::Hasher;
use std::sync::OnceLock;

use siphasher::sip::SipHasher13;

use crate::tunnel::classify::Cookie;

/// A keyed cookie hash. Every shard must use the same key: use
/// [`CookieHasher::process`], or make one with [`CookieHasher::random`] at
/// startup and clone it to every shard.
#[derive(Clone)]
pub struct CookieHasher {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for CookieHasher {
    /// The key is secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieHasher(<key>)")
    }
}

impl CookieHasher {
    /// A hasher with a fixed 128-bit key (tests, or a key from config).
    pub fn new(key: [u8; 16]) -> Self {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&key[..8]);
        k1.copy_from_slice(&key[8..]);
        Self {
            k0: u64::from_le_bytes(k0),
            k1: u64::from_le_bytes(k1),
        }
    }

    /// A hasher with a fresh random key.
    pub fn random() -> Self {
        Self::new(rand::random())
    }

    /// The process-wide hasher (random key drawn on first use), the same on
    /// every shard thread.
    pub fn process() -> &'static CookieHasher {
        static HASHER: OnceLock<CookieHasher> = OnceLock::new();
        HASHER.get_or_init(Self::random)
    }

    /// SipHash-1-3 of the cookie's bytes.
    pub fn hash(&self, cookie: &Cookie) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write(cookie.as_str().as_bytes());
        h.finish()
    }

    /// The home shard of `cookie` among `shards` (0 when `shards` is 0):
    /// the hash scaled to `0..shards` by a 128-bit multiply, so every shard
    /// gets an equal share.
    pub fn home_shard(&self, cookie: &Cookie, shards: usize) -> usize {
        ((u128::from(self.hash(cookie)) * shards as u128) >> 64) as usize
    }
}
