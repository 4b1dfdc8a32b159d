//! What every shard publishes about its load, without locks: its session
//! count and its send rate, as atomics that server-wide limits and the admin
//! API read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Server-wide load: per-shard sessions and send rates.
#[derive(Debug)]
pub struct ServerLoad {
    sessions: AtomicUsize,
    shard_bps: Box<[AtomicU64]>,
    shard_committed_bps: Box<[AtomicU64]>,
    shard_connections: Box<[AtomicUsize]>,
}

impl ServerLoad {
    /// Load counters for `shards` shards, all zero.
    pub fn new(shards: usize) -> Self {
        ServerLoad {
            sessions: AtomicUsize::new(0),
            shard_bps: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            shard_committed_bps: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            shard_connections: (0..shards).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Sessions on every shard.
    pub fn sessions(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Counts a session opened (`true`) or closed (`false`).
    pub fn session(&self, opened: bool) {
        if opened {
            self.sessions.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self
                .sessions
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Publishes shard `shard`'s RTP send rate, bit/s.
    pub fn set_shard_rate(&self, shard: usize, bps: u64) {
        if let Some(a) = self.shard_bps.get(shard) {
            a.store(bps, Ordering::Relaxed);
        }
    }

    /// Publishes shard `shard`'s committed rate: the nominal bit rates of
    /// its sessions' files, bit/s (see `Endpoint::committed_bps`).
    pub fn set_shard_committed(&self, shard: usize, bps: u64) {
        if let Some(a) = self.shard_committed_bps.get(shard) {
            a.store(bps, Ordering::Relaxed);
        }
    }

    /// Committed rate of every shard together, bit/s: what the sessions
    /// admitted so far will send on average, known before the send rate
    /// shows it and steady across a file's bursts.
    pub fn committed_bps(&self) -> u64 {
        self.shard_committed_bps
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// Publishes shard `shard`'s open RTSP connections.
    pub fn set_shard_connections(&self, shard: usize, n: usize) {
        if let Some(a) = self.shard_connections.get(shard) {
            a.store(n, Ordering::Relaxed);
        }
    }

    /// Open RTSP connections, every shard together.
    pub fn connections(&self) -> usize {
        self.shard_connections
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// RTP send rate of every shard together, bit/s.
    pub fn send_rate_bps(&self) -> u64 {
        self.shard_bps
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .sum()
    }

    /// RTP send rate of shard `shard`, bit/s.
    pub fn shard_rate_bps(&self, shard: usize) -> u64 {
        self.shard_bps
            .get(shard)
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
}
