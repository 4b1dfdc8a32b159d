//! RFC 3550 interarrival jitter (§6.4.1, Appendix A.8).

/// Interarrival jitter estimator of one RTP stream.
///
/// Keeps the RFC 3550 A.8 fixed-point estimate (`J * 16`, in RTP timestamp
/// units). Arrival times are given in ns on any monotonic-enough clock; they
/// are converted to the stream's RTP clock internally.
#[derive(Debug, Clone)]
pub struct Jitter {
    clock_rate: u32,
    ticks_per_ns: f64,
    first_arrival_ns: Option<u64>,
    /// Relative transit time of the previous packet, RTP ticks (wrapping).
    last_transit: u32,
    /// Jitter estimate times 16, RTP ticks.
    jitter_q4: u32,
}

impl Jitter {
    /// An estimator for a stream with RTP clock `clock_rate` Hz (for example
    /// 90000 for video). A clock rate of 0 is treated as 90000.
    pub fn new(clock_rate: u32) -> Self {
        let clock_rate = if clock_rate == 0 { 90_000 } else { clock_rate };
        Self {
            clock_rate,
            ticks_per_ns: f64::from(clock_rate) / 1e9,
            first_arrival_ns: None,
            last_transit: 0,
            jitter_q4: 0,
        }
    }

    /// Accounts one packet with RTP timestamp `rtp_ts` that arrived at
    /// `arrival_ns`. Duplicates should not be fed.
    pub fn on_packet(&mut self, rtp_ts: u32, arrival_ns: u64) {
        let Some(first) = self.first_arrival_ns else {
            // First packet: nothing to compare with yet.
            self.first_arrival_ns = Some(arrival_ns);
            self.last_transit = 0u32.wrapping_sub(rtp_ts);
            return;
        };
        let rel_ns = arrival_ns.saturating_sub(first);
        // Arrival in RTP ticks, truncated to 32 bits like the timestamps.
        let arrival_ticks = (rel_ns as f64 * self.ticks_per_ns) as u64 as u32;
        let transit = arrival_ticks.wrapping_sub(rtp_ts);
        let d = (transit.wrapping_sub(self.last_transit) as i32).unsigned_abs();
        self.last_transit = transit;
        // J += (|D| - J) / 16, in fixed point (RFC 3550 A.8).
        self.jitter_q4 = self
            .jitter_q4
            .wrapping_add(d)
            .wrapping_sub((self.jitter_q4 + 8) >> 4);
    }

    /// Current estimate in RTP timestamp units (the RTCP report block field).
    pub fn ticks(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Current estimate in ms.
    pub fn ms(&self) -> f64 {
        f64::from(self.jitter_q4) / 16.0 / f64::from(self.clock_rate) * 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn perfect_pacing_has_zero_jitter() {
        let mut j = Jitter::new(90_000);
        for i in 0..1000u64 {
            // 40 ms apart, 3600 ticks apart.
            j.on_packet((i * 3600) as u32, 5_000 * MS + i * 40 * MS);
        }
        assert_eq!(j.ticks(), 0);
    }

    #[test]
    fn constant_deviation_converges_to_it() {
        // Every other packet arrives 2 ms late: |D| = 2 ms = 180 ticks each time.
        let mut j = Jitter::new(90_000);
        for i in 0..2000u64 {
            let late = if i % 2 == 1 { 2 * MS } else { 0 };
            j.on_packet((i * 3600) as u32, i * 40 * MS + late);
        }
        assert!((j.ticks() as i64 - 180).abs() <= 2, "jitter {}", j.ticks());
        assert!((j.ms() - 2.0).abs() < 0.05, "jitter {} ms", j.ms());
    }

    #[test]
    fn timestamp_wrap_does_not_spike() {
        let mut j = Jitter::new(90_000);
        let start = u32::MAX - 3600 * 10;
        for i in 0..100u64 {
            j.on_packet(start.wrapping_add((i * 3600) as u32), i * 40 * MS);
        }
        assert_eq!(j.ticks(), 0);
    }

    #[test]
    fn single_late_packet_decays() {
        let mut j = Jitter::new(8_000);
        for i in 0..100u64 {
            let late = if i == 50 { 10 * MS } else { 0 };
            j.on_packet((i * 160) as u32, i * 20 * MS + late);
        }
        // The spike (two |D| of 80 ticks) decays by 15/16 per packet.
        assert!(j.ticks() < 2, "jitter {}", j.ticks());
    }
}
