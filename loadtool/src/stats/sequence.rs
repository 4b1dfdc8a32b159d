//! RTP sequence-number accounting: extended sequence numbers, loss, duplicates
//! and reordering, after RFC 3550 Appendix A.1.

/// Largest forward gap (in packets) still taken as loss rather than a
/// discontinuity (RFC 3550 A.1 `MAX_DROPOUT`).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward step (in packets) still taken as a late packet rather than
/// a discontinuity (RFC 3550 A.1 `MAX_MISORDER`).
pub const MAX_MISORDER: u16 = 100;
/// Extended sequence numbers start one cycle (2^16) above zero, so that packets
/// older than the first one received (arriving late) still
/// have a non-negative extended number.
const ORIGIN: u64 = 1 << 16;

/// What one packet was, from the point of view of its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The first packet, or a packet ahead of every earlier one (possibly after
    /// a gap).
    InOrder,
    /// A packet behind the highest one received, not received before.
    Reordered,
    /// A packet whose sequence number was already received (within the last
    /// 128 sequence numbers).
    Duplicate,
    /// A jump beyond [`MAX_DROPOUT`] / [`MAX_MISORDER`]. The first such packet
    /// is set aside; a second one that continues it restarts the count
    /// (RFC 3550 A.1 "bad_seq"). Neither counts towards loss.
    Discontinuity,
}

/// Sequence-number state of one RTP stream (one SSRC).
///
/// `received` counts every packet, duplicates included (as RFC 3550 does);
/// [`SeqTracker::lost`] compares the expected count with the packets received
/// once, so duplicates never hide loss.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    started: bool,
    /// Highest sequence number received (16 bits).
    max_seq: u16,
    /// Extended value of `max_seq` (cycles + seq, offset by [`ORIGIN`]).
    max_ext: u64,
    /// Extended sequence number of the first packet expected.
    base_ext: u64,
    /// Bit i set: extended sequence number `max_ext - i` was received.
    window: u128,
    /// Sequence number that would confirm a discontinuity (RFC 3550 `bad_seq`).
    bad_seq: Option<u16>,
    /// Sequence number of the first packet received.
    first_seq: Option<u16>,
    /// Expected and unique counts of the segments closed by discontinuities.
    closed_expected: u64,
    closed_unique: u64,
    /// Packets received, duplicates included.
    pub received: u64,
    /// Packets received in the current segment, duplicates excluded.
    unique: u64,
    /// Packets whose sequence number was already received.
    pub duplicates: u64,
    /// Packets that arrived after a packet with a higher sequence number.
    pub reordered: u64,
    /// Discontinuities (sequence jumps) seen, confirmed or not.
    pub discontinuities: u64,
}

impl SeqTracker {
    /// A tracker that has seen no packet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts one packet with sequence number `seq`.
    pub fn on_packet(&mut self, seq: u16) -> SeqOutcome {
        self.received += 1;
        if !self.started {
            self.start(seq);
            self.first_seq = Some(seq);
            return SeqOutcome::InOrder;
        }
        let delta = seq.wrapping_sub(self.max_seq);
        if delta == 0 {
            self.duplicates += 1;
            return SeqOutcome::Duplicate;
        }
        if delta < MAX_DROPOUT {
            self.bad_seq = None;
            self.max_ext += u64::from(delta);
            self.max_seq = seq;
            self.window = if delta >= 128 {
                0
            } else {
                self.window << delta
            };
            self.window |= 1;
            self.unique += 1;
            return SeqOutcome::InOrder;
        }
        let back = 0u16.wrapping_sub(delta); // 65536 - delta
        if back <= MAX_MISORDER {
            let ext = self.max_ext - u64::from(back);
            let bit = 1u128 << back;
            if self.window & bit != 0 {
                self.duplicates += 1;
                return SeqOutcome::Duplicate;
            }
            self.window |= bit;
            self.unique += 1;
            self.reordered += 1;
            if ext < self.base_ext {
                // Older than the first packet received: it was expected too.
                self.base_ext = ext;
            }
            return SeqOutcome::Reordered;
        }
        // A large jump: RFC 3550 A.1 waits for a second packet in sequence
        // with it before restarting the count.
        self.discontinuities += 1;
        if self.bad_seq == Some(seq) {
            self.closed_expected += self.segment_expected();
            self.closed_unique += self.unique;
            self.start(seq);
            SeqOutcome::Discontinuity
        } else {
            self.bad_seq = Some(seq.wrapping_add(1));
            SeqOutcome::Discontinuity
        }
    }

    fn start(&mut self, seq: u16) {
        self.started = true;
        self.max_seq = seq;
        self.max_ext = ORIGIN + u64::from(seq);
        self.base_ext = self.max_ext;
        self.window = 1;
        self.bad_seq = None;
        self.unique = 1;
    }

    fn segment_expected(&self) -> u64 {
        if self.started {
            self.max_ext - self.base_ext + 1
        } else {
            0
        }
    }

    /// Packets expected: highest extended sequence number minus the first, plus
    /// one (RFC 3550 A.3), summed over segments between discontinuities.
    pub fn expected(&self) -> u64 {
        self.closed_expected + self.segment_expected()
    }

    /// Distinct packets received (duplicates excluded).
    pub fn unique(&self) -> u64 {
        self.closed_unique + self.unique
    }

    /// Packets lost: expected minus distinct packets received, never negative.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.unique())
    }

    /// Extended highest sequence number received, as an RTCP report block
    /// carries it (RFC 3550 §6.4.1: cycles in the high 16 bits).
    pub fn extended_highest(&self) -> u32 {
        // Remove the internal origin; wrap into 32 bits as the field does.
        (self.max_ext.wrapping_sub(ORIGIN)) as u32
    }

    /// Sequence number of the first packet received (the base of the
    /// expected count, as in RFC 3550 A.1).
    pub fn first_seq(&self) -> Option<u16> {
        self.first_seq
    }

    /// True once a packet was received.
    pub fn started(&self) -> bool {
        self.started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(seqs: impl IntoIterator<Item = u16>) -> SeqTracker {
        let mut t = SeqTracker::new();
        for s in seqs {
            t.on_packet(s);
        }
        t
    }

    #[test]
    fn in_order_has_no_loss() {
        let t = feed(100..1100);
        assert_eq!(t.received, 1000);
        assert_eq!(t.expected(), 1000);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.reordered, 0);
        assert_eq!(t.duplicates, 0);
    }

    #[test]
    fn gaps_count_as_loss() {
        // 0..100 with 10, 11, 50 missing.
        let t = feed((0..100).filter(|s| ![10, 11, 50].contains(s)));
        assert_eq!(t.expected(), 100);
        assert_eq!(t.lost(), 3);
    }

    #[test]
    fn sequence_wrap_is_continuous() {
        let seqs: Vec<u16> = (0..2000u32).map(|i| (65000 + i) as u16).collect();
        let t = feed(seqs.iter().copied().filter(|&s| s != 3));
        assert_eq!(t.expected(), 2000);
        assert_eq!(t.lost(), 1);
        assert_eq!(t.reordered, 0);
        // 65000 + 1999 = 66999 = one cycle + 1463.
        assert_eq!(t.extended_highest(), (1 << 16) + 1463);
    }

    #[test]
    fn many_wraps_keep_counting() {
        let mut t = SeqTracker::new();
        for i in 0..300_000u32 {
            t.on_packet((i % 65536) as u16);
        }
        assert_eq!(t.expected(), 300_000);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn reordering_is_not_loss() {
        let t = feed([1, 2, 4, 3, 5, 7, 6, 8]);
        assert_eq!(t.expected(), 8);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.reordered, 2);
        assert_eq!(t.duplicates, 0);
    }

    #[test]
    fn reordering_across_wrap() {
        let t = feed([65534, 0, 65535, 1, 2]);
        assert_eq!(t.expected(), 5);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.reordered, 1);
    }

    #[test]
    fn late_packet_before_first_extends_base() {
        let t = feed([12, 10, 11, 13]);
        assert_eq!(t.expected(), 4);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.reordered, 2);
    }

    #[test]
    fn duplicates_do_not_hide_loss() {
        // 5 is lost, 4 arrives twice, 7 arrives twice (once late).
        let t = feed([1, 2, 3, 4, 4, 6, 7, 8, 7, 9]);
        assert_eq!(t.received, 10);
        assert_eq!(t.duplicates, 2);
        assert_eq!(t.expected(), 9);
        assert_eq!(t.lost(), 1);
    }

    #[test]
    fn isolated_jump_is_ignored_and_confirmed_jump_restarts() {
        // One stray packet far ahead: set aside, not loss.
        let t = feed([1, 2, 3, 30_000, 4, 5]);
        assert_eq!(t.expected(), 5);
        assert_eq!(t.lost(), 0);
        assert_eq!(t.discontinuities, 1);

        // The sender restarted its numbering: two in a row confirm it.
        let t = feed([1, 2, 3, 40_000, 40_001, 40_002, 40_004]);
        assert_eq!(t.expected(), 3 + 4);
        assert_eq!(t.lost(), 1);
    }

    #[test]
    fn gap_at_max_dropout_boundary() {
        // A gap just below MAX_DROPOUT is loss.
        let t = feed([0, MAX_DROPOUT - 1]);
        assert_eq!(t.lost(), u64::from(MAX_DROPOUT - 2));
    }
}
