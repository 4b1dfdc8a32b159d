//! The shard's periodic work, sans-IO: housekeeping (session timeouts,
//! sender reports, admission control) and the statistics log line, each with
//! a deadline the shard sleeps until.
//!
//! Admission control: a shard that sent packets more than the overload
//! threshold late, or ran out of send slots, during the last housekeeping
//! window counts as behind, and new sessions are refused (453, by the
//! built-in admission extension) until a window passes without that.

use super::EndpointConfig;
use crate::pacer::TickStats;

/// Which periodic events fired in one [`super::Endpoint::poll_timers`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerEvents {
    /// Housekeeping ran (timeouts, reports, admission).
    pub housekeeping: bool,
    /// The statistics interval elapsed: time to log the shard's counters.
    pub stats: bool,
}

#[derive(Debug)]
pub(super) struct Timers {
    housekeeping_us: u64,
    stats_interval_us: u64,
    overload_late_us: u64,
    next_housekeeping_us: u64,
    next_stats_us: u64,
    window_max_late_us: u64,
    window_slots_full: bool,
    behind: bool,
    window_bytes: u64,
    window_start_us: u64,
    send_rate_bps: u64,
}

impl Timers {
    pub(super) fn new(config: &EndpointConfig, now_us: u64) -> Self {
        Timers {
            housekeeping_us: config.housekeeping_us.max(1),
            stats_interval_us: config.stats_interval_us.max(1),
            overload_late_us: config.overload_late_us,
            next_housekeeping_us: now_us,
            next_stats_us: now_us.saturating_add(config.stats_interval_us),
            window_max_late_us: 0,
            window_slots_full: false,
            behind: false,
            window_bytes: 0,
            window_start_us: now_us,
            send_rate_bps: 0,
        }
    }

    /// True while the shard counts as behind (see the module docs).
    pub(super) fn behind(&self) -> bool {
        self.behind
    }

    /// RTP send rate over the last housekeeping window, bit/s.
    pub(super) fn send_rate_bps(&self) -> u64 {
        self.send_rate_bps
    }

    /// Adds one pacer tick to the admission window.
    pub(super) fn count_tick(&mut self, t: &TickStats) {
        self.window_bytes = self.window_bytes.saturating_add(t.bytes);
        self.window_max_late_us = self.window_max_late_us.max(t.max_late_us);
        self.window_slots_full |= t.sink_full;
    }

    /// The next deadline: housekeeping while there are sessions (or while
    /// behind), and the statistics line.
    pub(super) fn next_deadline(&self, has_sessions: bool) -> Option<u64> {
        let housekeeping = (has_sessions || self.behind).then_some(self.next_housekeeping_us);
        Some(match housekeeping {
            Some(h) => h.min(self.next_stats_us),
            None => self.next_stats_us,
        })
    }

    /// Fires what is due at `now_us`; re-evaluates admission on housekeeping.
    pub(super) fn poll(&mut self, now_us: u64, shard: usize) -> TimerEvents {
        let mut events = TimerEvents::default();
        if now_us >= self.next_housekeeping_us {
            events.housekeeping = true;
            self.next_housekeeping_us = now_us.saturating_add(self.housekeeping_us);
            self.update_admission(shard);
            let window = now_us.saturating_sub(self.window_start_us);
            if window > 0 {
                self.send_rate_bps =
                    (u128::from(self.window_bytes) * 8 * 1_000_000 / u128::from(window)) as u64;
            }
            self.window_bytes = 0;
            self.window_start_us = now_us;
        }
        if now_us >= self.next_stats_us {
            events.stats = true;
            self.next_stats_us = now_us.saturating_add(self.stats_interval_us);
        }
        events
    }

    fn update_admission(&mut self, shard: usize) {
        let behind = self.window_max_late_us > self.overload_late_us || self.window_slots_full;
        if behind != self.behind {
            if behind {
                tracing::warn!(
                    shard,
                    late_ms = self.window_max_late_us / 1000,
                    "shard is behind: refusing new sessions (453) until it catches up"
                );
            } else {
                tracing::info!(shard, "shard caught up: accepting new sessions");
            }
            self.behind = behind;
        }
        self.window_max_late_us = 0;
        self.window_slots_full = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_and_admission_window() {
        let config = EndpointConfig {
            housekeeping_us: 100,
            stats_interval_us: 1000,
            overload_late_us: 50,
            ..EndpointConfig::default()
        };
        let mut t = Timers::new(&config, 0);
        assert_eq!(t.next_deadline(false), Some(1000));
        assert_eq!(t.next_deadline(true), Some(0));
        let e = t.poll(0, 0);
        assert!(e.housekeeping && !e.stats);
        assert_eq!(t.next_deadline(true), Some(100));
        t.count_tick(&TickStats {
            max_late_us: 80,
            ..TickStats::default()
        });
        assert!(!t.poll(50, 0).housekeeping);
        assert!(t.poll(100, 0).housekeeping);
        assert!(t.behind());
        // A quiet window clears it.
        assert!(t.poll(200, 0).housekeeping);
        assert!(!t.behind());
        assert!(t.poll(1000, 0).stats);
    }
}
