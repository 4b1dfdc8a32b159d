//! Per-shard counters, logged every 10 s.

use super::driver::WaitStats;
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
    /// Event-loop iterations.
    pub loops: u64,
    /// Time spent inside io_uring_enter (submitting and waiting), µs.
    pub enter_us: u64,
    /// Longest single io_uring_enter, µs.
    pub max_enter_us: u64,
    /// Submitting (non-waiting) io_uring_enter calls and their durations.
    pub submit: WaitStats,
    /// Ticks on which the send slots ran out.
    pub slots_full: u64,
    /// Accepts that failed (EMFILE and friends).
    pub accept_errors: u64,
    /// Connections closed for input that is not RTSP.
    pub malformed: u64,
    /// RTCP packets not sent for lack of a send slot.
    pub rtcp_dropped: u64,
    /// io_uring submits that failed.
    pub submit_errors: u64,
    /// Connections refused at `max_connections_per_ip`.
    pub refused_per_ip: u64,
    /// Connections shed when out of descriptors.
    pub shed: u64,
    /// Connections answered 408 for not completing a request in time.
    pub request_timeouts: u64,
    /// Sessionless connections closed for idleness.
    pub idle_closed: u64,
    /// Tunnel POSTs joined to their GET.
    pub tunnels: u64,
    /// Times a loop turn's control work (accepts, requests, writes, RTCP)
    /// ran past `control_slice_us` and the pacer ran in between.
    pub control_slices: u64,
}

impl ShardStats {
    /// Adds one pacer tick.
    pub fn add_tick(&mut self, t: &TickStats) {
        self.packets += t.packets;
        self.bytes += t.bytes;
        self.late += t.late;
        self.max_late_us = self.max_late_us.max(t.max_late_us);
        self.slots_full += u64::from(t.sink_full);
    }

    /// Adds the driver's wait statistics.
    pub fn add_wait(&mut self, w: &WaitStats, submit_errors: u64) {
        self.loops += w.enters;
        self.enter_us += w.enter_us;
        self.max_enter_us = self.max_enter_us.max(w.max_enter_us);
        self.submit.merge(w);
        self.submit_errors += submit_errors;
    }

    /// Counts one received RTCP packet, malformed or not.
    pub fn count_rtcp(&mut self, well_formed: bool) {
        if well_formed {
            self.rtcp_in += 1;
        } else {
            self.rtcp_bad += 1;
        }
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
                loops = self.loops,
                enter_ms = self.enter_us / 1000,
                max_enter_us = self.max_enter_us,
                submits = self.submit.submits,
                submit_ms = self.submit.submit_us / 1000,
                max_submit_us = self.submit.max_submit_us,
                submit_p99_us = self.submit.submit_quantile_us(0.99),
                submit_p999_us = self.submit.submit_quantile_us(0.999),
                submits_over_500us = self.submit.submit_hist[4..].iter().sum::<u64>(),
                slots_full = self.slots_full,
                accept_errors = self.accept_errors,
                malformed = self.malformed,
                rtcp_dropped = self.rtcp_dropped,
                submit_errors = self.submit_errors,
                refused_per_ip = self.refused_per_ip,
                shed = self.shed,
                request_timeouts = self.request_timeouts,
                idle_closed = self.idle_closed,
                tunnels = self.tunnels,
                control_slices = self.control_slices,
                "shard stats"
            );
        }
        *self = ShardStats::default();
    }
}
