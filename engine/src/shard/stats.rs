//! Per-shard counters, logged every 10 s.

use crate::pacer::TickStats;

/// Running counters of one shard since the last log line.
#[derive(Debug, Default, Clone)]
pub struct ShardStats {
    /// RTP packets sent.
    pub packets: u64,
    /// Bytes sent (headers + payload).
    pub bytes: u64,
    /// Packets sent later than the tolerance.
    pub late: u64,
    /// Largest lateness, µs.
    pub max_late_us: u64,
    /// UDP sends that failed.
    pub send_errors: u64,
    /// RTCP packets received.
    pub rtcp_in: u64,
    /// Malformed RTCP packets received.
    pub rtcp_bad: u64,
    /// Requests forwarded to another shard.
    pub forwarded: u64,
    /// TCP clients dropped for not reading.
    pub dropped_slow: u64,
}

impl ShardStats {
    /// Adds one pacer tick.
    pub fn add_tick(&mut self, t: &TickStats) {
        self.packets += t.packets;
        self.bytes += t.bytes;
        self.late += t.late;
        self.max_late_us = self.max_late_us.max(t.max_late_us);
    }

    /// Logs the counters over the last `secs` seconds and resets them.
    pub fn log(&mut self, shard: usize, sessions: usize, secs: u64) {
        if self.packets > 0 || sessions > 0 {
            tracing::info!(
                shard,
                sessions,
                pps = self.packets / secs.max(1),
                mbit_s = (self.bytes * 8 / secs.max(1)) as f64 / 1e6,
                late = self.late,
                max_late_us = self.max_late_us,
                send_errors = self.send_errors,
                rtcp_in = self.rtcp_in,
                forwarded = self.forwarded,
                dropped_slow = self.dropped_slow,
                "shard stats"
            );
        }
        *self = ShardStats::default();
    }
}
