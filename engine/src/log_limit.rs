//! Rate limiting for log lines that input can trigger (refused requests,
//! failed accepts, malformed packets): a flood must never fill the disk.

/// Allows at most `burst` lines per `interval_us`, and counts the rest so the
/// next allowed line can say how many were suppressed. Sans-IO: the caller
/// passes the clock.
#[derive(Debug, Clone)]
pub struct LogLimiter {
    interval_us: u64,
    burst: u32,
    window_start_us: u64,
    used: u32,
    suppressed: u64,
}

impl LogLimiter {
    /// At most `burst` lines per `interval_us` µs.
    pub fn new(burst: u32, interval_us: u64) -> Self {
        LogLimiter {
            interval_us: interval_us.max(1),
            burst,
            window_start_us: 0,
            used: 0,
            suppressed: 0,
        }
    }

    /// Whether a line may be written at `now_us`: `Some(n)` with the number
    /// of lines suppressed since the last allowed one, or `None` (the line is
    /// counted as suppressed).
    pub fn allow(&mut self, now_us: u64) -> Option<u64> {
        if now_us.saturating_sub(self.window_start_us) >= self.interval_us {
            self.window_start_us = now_us;
            self.used = 0;
        }
        if self.used < self.burst {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// Lines suppressed and not yet reported.
    pub fn pending(&self) -> u64 {
        self.suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_suppresses_then_reports_the_count() {
        let mut l = LogLimiter::new(2, 1_000_000);
        assert_eq!(l.allow(0), Some(0));
        assert_eq!(l.allow(10), Some(0));
        assert_eq!(l.allow(20), None);
        assert_eq!(l.allow(30), None);
        assert_eq!(l.pending(), 2);
        assert_eq!(l.allow(1_000_000), Some(2));
        assert_eq!(l.pending(), 0);
    }
}
