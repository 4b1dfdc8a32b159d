//! Lateness of each packet against the stream's own RTP clock.
//!
//! lateness = arrival − (first arrival + (RTP timestamp − first RTP timestamp)
//! / clock rate). A server that sends every packet exactly on its RTP time
//! shows 0; a server that falls behind shows growing positive values.

/// Lateness tracker of one RTP stream (one SSRC).
///
/// RTP timestamps are extended to 64 bits (each new timestamp is taken as the
/// nearest one, within ±2^31 ticks, to the highest seen so far), so the
/// 32-bit wrap and reordered packets are handled.
#[derive(Debug, Clone)]
pub struct Lateness {
    clock_rate: u64,
    first_arrival_ns: u64,
    /// Highest RTP timestamp seen (32 bits) and its extended value, relative
    /// to the first packet's timestamp.
    max_ts: u32,
    max_ext: i64,
    started: bool,
}

impl Lateness {
    /// A tracker for a stream with RTP clock `clock_rate` Hz; 0 is treated as
    /// 90000.
    pub fn new(clock_rate: u32) -> Self {
        let clock_rate = if clock_rate == 0 { 90_000 } else { clock_rate };
        Self {
            clock_rate: u64::from(clock_rate),
            first_arrival_ns: 0,
            max_ts: 0,
            max_ext: 0,
            started: false,
        }
    }

    /// Accounts one packet with RTP timestamp `rtp_ts` arriving at
    /// `arrival_ns`, and returns its lateness in µs (negative when early).
    /// The first packet defines the reference and returns 0.
    pub fn on_packet(&mut self, rtp_ts: u32, arrival_ns: u64) -> i64 {
        if !self.started {
            self.started = true;
            self.first_arrival_ns = arrival_ns;
            self.max_ts = rtp_ts;
            self.max_ext = 0;
            return 0;
        }
        let delta = i64::from(rtp_ts.wrapping_sub(self.max_ts) as i32);
        let ext = self.max_ext + delta;
        if delta > 0 {
            self.max_ts = rtp_ts;
            self.max_ext = ext;
        }
        let since_first_us = (arrival_ns as i64 - self.first_arrival_ns as i64) / 1000;
        let media_us = ext * 1_000_000 / self.clock_rate as i64;
        since_first_us - media_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn on_time_packets_are_zero() {
        let mut l = Lateness::new(90_000);
        for i in 0..500u64 {
            assert_eq!(
                l.on_packet((1000 + i * 3600) as u32, 7 * MS + i * 40 * MS),
                0
            );
        }
    }

    #[test]
    fn late_and_early_packets() {
        let mut l = Lateness::new(44_100);
        assert_eq!(l.on_packet(0, 0), 0);
        // 1024 ticks at 44.1 kHz = 23219.95 µs; arriving 30 ms after first.
        assert_eq!(l.on_packet(1024, 30 * MS), 30_000 - 23_219);
        // Arriving 3 ms before its time.
        assert_eq!(
            l.on_packet(2048, 46_440_000 - 3 * MS),
            46_440 - 3_000 - 46_439
        );
    }

    #[test]
    fn timestamp_wrap_is_continuous() {
        let mut l = Lateness::new(90_000);
        let start = u32::MAX - 3600 * 5 + 1;
        for i in 0..50u64 {
            let ts = start.wrapping_add((i * 3600) as u32);
            // Each packet 1 ms late except the first.
            let late = if i == 0 { 0 } else { MS };
            assert_eq!(
                l.on_packet(ts, i * 40 * MS + late),
                if i == 0 { 0 } else { 1000 }
            );
        }
    }

    #[test]
    fn reordered_packet_uses_its_own_time() {
        let mut l = Lateness::new(90_000);
        l.on_packet(0, 0);
        l.on_packet(7200, 80 * MS);
        // The packet for 40 ms arrives after the 80 ms one, at 85 ms: 45 ms late.
        assert_eq!(l.on_packet(3600, 85 * MS), 45_000);
        // And the stream continues from the highest timestamp.
        assert_eq!(l.on_packet(10_800, 120 * MS), 0);
    }

    #[test]
    fn reordering_across_timestamp_wrap() {
        let mut l = Lateness::new(90_000);
        l.on_packet(u32::MAX - 99, 0);
        l.on_packet(3500, 40 * MS); // 3600 ticks later, past the wrap
        assert_eq!(
            l.on_packet((u32::MAX - 99).wrapping_add(1800), 30 * MS),
            10_000
        );
    }
}
