//! Everything measured about one received RTP stream (one SSRC of one session).

use super::{Jitter, Lateness, SeqOutcome, SeqTracker};

/// Values of one RTCP receiver-report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportValues {
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, clamped to the 24-bit field.
    pub cumulative_lost: u32,
    /// Extended highest sequence number received.
    pub extended_highest: u32,
    /// Interarrival jitter, RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR (0 if none).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s (0 if none).
    pub dlsr: u32,
}

/// Counters and estimators of one RTP stream.
#[derive(Debug, Clone)]
pub struct StreamStats {
    /// RTP clock rate, Hz (from the SDP rtpmap; 90000 when unknown).
    pub clock_rate: u32,
    /// Sequence numbers: received, loss, duplicates, reordering.
    pub seq: SeqTracker,
    /// RFC 3550 interarrival jitter.
    pub jitter: Jitter,
    lateness: Lateness,
    /// RTP bytes received (RTP header + payload, without UDP/IP or
    /// interleaved framing), duplicates included.
    pub bytes: u64,
    /// Highest and lowest lateness seen, µs.
    pub lateness_max_us: i64,
    /// Lowest lateness seen (negative: early), µs.
    pub lateness_min_us: i64,
    /// Middle 32 bits of the NTP time of the last sender report and the
    /// arrival time (ns) of that report.
    pub last_sr: Option<(u32, u64)>,
    /// Sender reports received.
    pub sr_received: u64,
    /// True once the server sent an RTCP BYE for this SSRC.
    pub bye: bool,
    /// Packets (not duplicates) measured from a transmission time offset
    /// (RFC 5450) rather than from the RTP timestamp alone.
    pub toffset_packets: u64,
    prior_expected: u64,
    prior_unique: u64,
}

impl StreamStats {
    /// Empty statistics for a stream with RTP clock `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        let clock_rate = if clock_rate == 0 { 90_000 } else { clock_rate };
        Self {
            clock_rate,
            seq: SeqTracker::new(),
            jitter: Jitter::new(clock_rate),
            lateness: Lateness::new(clock_rate),
            bytes: 0,
            lateness_max_us: i64::MIN,
            lateness_min_us: i64::MAX,
            last_sr: None,
            sr_received: 0,
            bye: false,
            toffset_packets: 0,
            prior_expected: 0,
            prior_unique: 0,
        }
    }

    /// Accounts one RTP packet of `len` bytes with sequence number `seq`,
    /// timestamp `rtp_ts` and transmission time offset `toffset` (RTP ticks,
    /// from the RFC 5450 header extension; `None` when the packet carries
    /// none), arrived at `arrival_ns` (CLOCK_REALTIME ns). Returns its
    /// lateness in µs, or `None` for a duplicate or a packet set aside as a
    /// sequence discontinuity.
    ///
    /// Lateness and jitter are computed from the transmission time
    /// `rtp_ts + toffset` (wrapping in 32 bits). RFC 5450 §3 defines the
    /// offset as that of the packet's actual transmission time from the time
    /// its RTP timestamp gives, in RTP ticks, positive when sent later; §4
    /// then computes jitter with `T = S + O` in place of the timestamp `S`:
    /// `D(i,j) = (Rj - Ri) - ((Sj + Oj) - (Si + Oi))`. So a B-frame stream,
    /// whose timestamps are presentation times while packets leave in decode
    /// order, measures as sent on time. A packet without the extension is
    /// taken as sent at its RTP time (offset 0).
    #[inline]
    pub fn on_rtp(
        &mut self,
        seq: u16,
        rtp_ts: u32,
        toffset: Option<i32>,
        len: usize,
        arrival_ns: u64,
    ) -> Option<i64> {
        self.bytes += len as u64;
        match self.seq.on_packet(seq) {
            SeqOutcome::Duplicate | SeqOutcome::Discontinuity => None,
            SeqOutcome::InOrder | SeqOutcome::Reordered => {
                let sent = match toffset {
                    Some(offset) => {
                        self.toffset_packets += 1;
                        rtp_ts.wrapping_add(offset as u32)
                    }
                    None => rtp_ts,
                };
                self.jitter.on_packet(sent, arrival_ns);
                let late = self.lateness.on_packet(sent, arrival_ns);
                self.lateness_max_us = self.lateness_max_us.max(late);
                self.lateness_min_us = self.lateness_min_us.min(late);
                Some(late)
            }
        }
    }

    /// Records a sender report whose NTP timestamp is `ntp` (64-bit NTP
    /// format), arrived at `arrival_ns`.
    pub fn on_sender_report(&mut self, ntp: u64, arrival_ns: u64) {
        self.sr_received += 1;
        self.last_sr = Some(((ntp >> 16) as u32, arrival_ns));
    }

    /// Computes the next receiver-report block at `now_ns` and starts a new
    /// reporting interval (RFC 3550 A.3).
    pub fn report(&mut self, now_ns: u64) -> ReportValues {
        let expected = self.seq.expected();
        let unique = self.seq.unique();
        let expected_interval = expected.saturating_sub(self.prior_expected);
        let received_interval = unique.saturating_sub(self.prior_unique);
        self.prior_expected = expected;
        self.prior_unique = unique;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay_ns = now_ns.saturating_sub(at);
                (lsr, ((u128::from(delay_ns) << 16) / 1_000_000_000) as u32)
            }
            None => (0, 0),
        };
        ReportValues {
            fraction_lost,
            cumulative_lost: self.seq.lost().min(0x7f_ffff) as u32,
            extended_highest: self.seq.extended_highest(),
            jitter: self.jitter.ticks(),
            lsr,
            dlsr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn counts_and_report_block() {
        let mut s = StreamStats::new(90_000);
        let mut lates = Vec::new();
        for i in 0..100u64 {
            if i == 10 || i == 11 {
                continue; // lost
            }
            lates.push(s.on_rtp(i as u16, (i * 3600) as u32, None, 1200, i * 40 * MS));
        }
        // A duplicate of the last packet.
        assert_eq!(s.on_rtp(99, 99 * 3600, None, 1200, 99 * 40 * MS + 1), None);
        assert!(lates.iter().all(|l| *l == Some(0)));
        assert_eq!(s.bytes, 99 * 1200);
        assert_eq!(s.seq.lost(), 2);
        s.on_sender_report(0x0001_2345_6789_0000, 1000 * MS);
        let r = s.report(1500 * MS);
        assert_eq!(r.cumulative_lost, 2);
        assert_eq!(r.fraction_lost, (2 * 256 / 100) as u8);
        assert_eq!(r.extended_highest, 99);
        assert_eq!(r.lsr, 0x2345_6789);
        assert_eq!(r.dlsr, 32768); // 0.5 s
                                   // Nothing new: the next interval has no loss.
        assert_eq!(s.report(2000 * MS).fraction_lost, 0);
    }

    /// IBBP in decode order, one packet per frame every 40 ms (3600 ticks),
    /// sent exactly at decode time: (presentation frame, offset in frames).
    fn ibbp(frames: u64) -> Vec<(u64, i64)> {
        (0..frames)
            .map(|d| {
                let pts = match d {
                    0 => 0,
                    _ => match (d - 1) % 3 {
                        0 => d + 2, // P: three frames ahead
                        _ => d - 1, // B: one frame behind
                    },
                };
                (pts, d as i64 - pts as i64)
            })
            .collect()
    }

    #[test]
    fn toffset_turns_b_frame_reordering_into_transmission_time() {
        let base = u32::MAX - 50_000; // across the timestamp wrap
        let (mut with, mut without) = (StreamStats::new(90_000), StreamStats::new(90_000));
        let (mut late_with, mut late_without) = (Vec::new(), Vec::new());
        for (d, (pts, offset)) in ibbp(300).into_iter().enumerate() {
            let ts = base.wrapping_add((pts * 3600) as u32);
            let arrival = 1_000 * MS + d as u64 * 40 * MS;
            let toffset = Some((offset * 3600) as i32);
            late_with.push(with.on_rtp(d as u16, ts, toffset, 1200, arrival).unwrap());
            late_without.push(without.on_rtp(d as u16, ts, None, 1200, arrival).unwrap());
        }
        assert!(late_with.iter().all(|l| *l == 0), "{late_with:?}");
        assert_eq!(with.jitter.ticks(), 0);
        assert_eq!(with.toffset_packets, 300);
        // Without the offset, B-frames look one frame late and P-frames two
        // frames early; RFC 3550 jitter measures the reorder depth.
        assert_eq!(without.lateness_max_us, 40_000);
        assert_eq!(without.lateness_min_us, -80_000);
        assert!(without.jitter.ms() > 40.0, "{}", without.jitter.ms());
        assert_eq!(without.toffset_packets, 0);
    }
}
