//! The per-address connection cap (`max_connections_per_ip`), shared by
//! every shard without locks: a fixed table of atomic counters indexed by a
//! keyed hash of the client address. SO_REUSEPORT spreads one client's
//! connections over every shard, so the count must be process-wide.
//!
//! Two addresses whose hashes collide share a counter (and so a cap). With
//! 65,536 buckets and a per-process random SipHash key, a client can neither
//! predict nor aim collisions; with the default cap of 1,000 connections per
//! address, a collision costs two clients nothing in practice.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

const BUCKETS: usize = 1 << 16;

/// Counts open RTSP connections per client address, process-wide.
pub struct IpLimiter {
    max: u32,
    hasher: std::collections::hash_map::RandomState,
    counts: Box<[AtomicU32]>,
}

impl std::fmt::Debug for IpLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpLimiter").field("max", &self.max).finish()
    }
}

/// A connection counted against its address; hand it back with
/// [`IpLimiter::release`] when the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSlot(u32);

impl IpLimiter {
    /// A limiter allowing `max` connections per address; 0 means no limit.
    pub fn new(max: u32) -> Self {
        IpLimiter {
            max,
            hasher: std::collections::hash_map::RandomState::new(),
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The cap (0: none).
    pub fn max(&self) -> u32 {
        self.max
    }

    fn bucket(&self, ip: IpAddr) -> u32 {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let mut h = self.hasher.build_hasher();
        match ip {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        (h.finish() as usize & (BUCKETS - 1)) as u32
    }

    /// Counts a new connection from `ip`: its slot, or `None` when the
    /// address is at its cap (the connection must be refused).
    pub fn acquire(&self, ip: IpAddr) -> Option<IpSlot> {
        let b = self.bucket(ip);
        let counter = &self.counts[b as usize];
        let max = if self.max == 0 { u32::MAX } else { self.max };
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| IpSlot(b))
    }

    /// Gives a slot back.
    pub fn release(&self, slot: IpSlot) {
        let counter = &self.counts[slot.0 as usize];
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Connections counted against `ip`'s bucket.
    pub fn count(&self, ip: IpAddr) -> u32 {
        self.counts[self.bucket(ip) as usize].load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_releases() {
        let l = IpLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        let s1 = l.acquire(a).expect("first");
        let _s2 = l
            .acquire(mapped)
            .expect("second, v4-mapped counts as the same");
        assert!(l.acquire(a).is_none());
        l.release(s1);
        assert!(l.acquire(a).is_some());
        let unlimited = IpLimiter::new(0);
        for _ in 0..10_000 {
            assert!(unlimited.acquire(a).is_some());
        }
    }
}
