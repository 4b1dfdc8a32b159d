//! One set-up track of a session: its RTP identity (SSRC, sequence and
//! timestamp bases, RFC 3550 §5.1), its cursor into the track schedule, its
//! transport, its send counters and the client's latest reception report.

use std::net::SocketAddr;

use cadence_hinting::ScheduledPacket;

use super::id::ConnId;

/// Where a track's RTP and RTCP packets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackTransport {
    /// RTP/AVP over UDP (RFC 2326 §12.39): RTP to `rtp`, RTCP to `rtcp`.
    Udp {
        /// Client's RTP address (connection peer IP, `client_port` low).
        rtp: SocketAddr,
        /// Client's RTCP address (`client_port` high).
        rtcp: SocketAddr,
    },
    /// RTP/AVP/TCP interleaved on the RTSP connection (RFC 2326 §10.12):
    /// RTP on `rtp_channel`, RTCP on `rtcp_channel`.
    Interleaved {
        /// The RTSP connection that carries the data.
        conn: ConnId,
        /// Interleaved channel for RTP.
        rtp_channel: u8,
        /// Interleaved channel for RTCP.
        rtcp_channel: u8,
    },
}

impl TrackTransport {
    /// `"UDP"` or `"TCP"`, as the access log's transport field spells it.
    pub fn lower(&self) -> &'static str {
        match self {
            TrackTransport::Udp { .. } => "UDP",
            TrackTransport::Interleaved { .. } => "TCP",
        }
    }
}

/// Receiver-report statistics for one track, from the client's RTCP RRs
/// (RFC 3550 §6.4.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceptionReport {
    /// Fraction lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed in the wire format, clamped ≥ 0).
    pub cumulative_lost: u32,
    /// Extended highest sequence number received (cycles × 2^16 + highest
    /// sequence number), RFC 3550 §6.4.1.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in RTP clock ticks.
    pub jitter: u32,
    /// Number of receiver reports seen for this track.
    pub reports: u32,
}

/// A track or packet index in 32 bits, saturating (no schedule has 2^32
/// packets: the index is then past its end, where nothing is sent).
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// One set-up track of a session. Its fields change only through the
/// session (SETUP, PLAY, seeks, trick play's key-frame steps) and the pacer
/// ([`TrackStream::sent`]).
#[derive(Debug, Clone)]
pub struct TrackStream {
    // Track and packet indexes in 32 bits (a schedule's packet count fits,
    // as in the connection's queued RTP items): 8 bytes less per track.
    track: u32,
    ssrc: u32,
    first_seq: u16,
    next_seq: u16,
    ts_base: u32,
    cursor: u32,
    end: u32,
    transport: TrackTransport,
    packets_sent: u32,
    octets_sent: u32,
    bytes_sent: u64,
    last_rtp_time: u32,
    reception: ReceptionReport,
    toffset: bool,
}

impl TrackStream {
    /// A track stream for track index `track` with the given random SSRC,
    /// first sequence number and timestamp base, positioned at packet 0 with
    /// `packets` packets to send.
    pub(crate) fn new(
        track: usize,
        ssrc: u32,
        first_seq: u16,
        ts_base: u32,
        packets: usize,
        transport: TrackTransport,
    ) -> Self {
        TrackStream {
            track: index_u32(track),
            ssrc,
            first_seq,
            next_seq: first_seq,
            ts_base,
            cursor: 0,
            end: index_u32(packets),
            transport,
            packets_sent: 0,
            octets_sent: 0,
            bytes_sent: 0,
            last_rtp_time: ts_base,
            reception: ReceptionReport::default(),
            toffset: false,
        }
    }

    /// Sends the RFC 5450 transmission time offset with every packet.
    pub(crate) fn with_toffset(mut self, on: bool) -> Self {
        self.toffset = on;
        self
    }

    /// True when packets carry the RFC 5450 transmission time offset.
    pub fn toffset(&self) -> bool {
        self.toffset
    }

    /// Index into [`cadence_hinting::FileSchedule::tracks`].
    pub fn track(&self) -> usize {
        self.track as usize
    }

    /// The track's SSRC (RFC 3550 §8).
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sequence number of the next packet to send.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Sequence number of the first packet sent on this track.
    pub fn first_seq(&self) -> u16 {
        self.first_seq
    }

    /// Random RTP timestamp base added to every packet's schedule `rtp_time`.
    pub fn ts_base(&self) -> u32 {
        self.ts_base
    }

    /// Index of the next packet to send in the track schedule.
    pub fn cursor(&self) -> usize {
        self.cursor as usize
    }

    /// Index one past the last packet to send (end of the PLAY range).
    pub fn end(&self) -> usize {
        self.end as usize
    }

    /// True when the whole PLAY range of this track was sent.
    pub fn done(&self) -> bool {
        self.cursor >= self.end
    }

    /// The transport.
    pub fn transport(&self) -> &TrackTransport {
        &self.transport
    }

    /// RTP packets sent (the RTCP SR packet count; wraps at 2^32).
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// RTP payload octets sent (the RTCP SR octet count; wraps at 2^32).
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }

    /// Bytes put on the wire for this track: RTP headers, payloads and
    /// interleaved framing.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// RTP timestamp of the last packet sent (the base before any).
    pub fn last_rtp_time(&self) -> u32 {
        self.last_rtp_time
    }

    /// The client's latest reception report about this track.
    pub fn reception(&self) -> &ReceptionReport {
        &self.reception
    }

    /// Packets the client expected by its latest receiver report: its
    /// extended highest sequence number received minus our first sequence
    /// number, plus one (RFC 3550 §6.4.1 and A.3; the sequence numbers run
    /// on from the first packet across PAUSE, PLAY and seeks). `None` before
    /// any report, and when the report names a sequence number beyond what
    /// was sent (an inconsistent report).
    pub fn packets_expected(&self) -> Option<u64> {
        if self.reception.reports == 0 {
            return None;
        }
        let span = self
            .reception
            .extended_highest_seq
            .wrapping_sub(u32::from(self.first_seq));
        let expected = u64::from(span) + 1;
        (expected <= u64::from(self.packets_sent)).then_some(expected)
    }

    /// Packets the client received by its latest receiver report:
    /// [`packets_expected`](Self::packets_expected) minus the cumulative
    /// number lost (RFC 3550 §6.4.1). `None` when the expected count is.
    pub fn packets_received(&self) -> Option<u64> {
        self.packets_expected()
            .map(|e| e.saturating_sub(u64::from(self.reception.cumulative_lost)))
    }

    /// Share of the expected packets the client reported lost over the
    /// whole session, 0..=1 (cumulative lost ÷ expected). `None` when the
    /// expected count is unknown or zero.
    pub fn loss_ratio(&self) -> Option<f64> {
        let expected = self.packets_expected().filter(|e| *e > 0)?;
        let lost = u64::from(self.reception.cumulative_lost).min(expected);
        Some(lost as f64 / expected as f64)
    }

    /// The RTP timestamp of `packet` in this session (base + schedule time).
    pub fn rtp_timestamp(&self, packet: &ScheduledPacket) -> u32 {
        self.ts_base.wrapping_add(packet.rtp_time)
    }

    /// Accounts packet `p`, sent with a header of `header_len` bytes, and
    /// moves the cursor past it. Called by the pacer only.
    pub(crate) fn sent(&mut self, p: &ScheduledPacket, header_len: usize) {
        self.cursor = self.cursor.saturating_add(1);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(p.payload_len);
        self.bytes_sent = self
            .bytes_sent
            .saturating_add(header_len as u64 + u64::from(p.payload_len));
        self.last_rtp_time = self.rtp_timestamp(p);
    }

    /// Accounts packet `p`, sent with a header of `header_len` bytes and RTP
    /// timestamp `timestamp` (trick play's play timeline), and moves the
    /// cursor past it. Called by the pacer only.
    pub(crate) fn sent_at(&mut self, p: &ScheduledPacket, header_len: usize, timestamp: u32) {
        self.sent(p, header_len);
        self.last_rtp_time = timestamp;
    }

    /// Moves the cursor past a packet that cannot be sent (too large for
    /// interleaved framing). Called by the pacer only.
    pub(crate) fn skip(&mut self) {
        self.cursor = self.cursor.saturating_add(1);
    }

    pub(crate) fn set_transport(&mut self, transport: TrackTransport) {
        self.transport = transport;
    }

    pub(crate) fn set_range(&mut self, cursor: usize, end: usize) {
        self.cursor = index_u32(cursor);
        self.end = index_u32(end).max(self.cursor);
    }

    pub(crate) fn set_reception(&mut self, block: &crate::rtcp::ReportBlockInfo) {
        self.reception.fraction_lost = block.fraction_lost;
        self.reception.cumulative_lost = block.cumulative_lost;
        self.reception.extended_highest_seq = block.extended_highest_seq;
        self.reception.jitter = block.jitter;
        self.reception.reports = self.reception.reports.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::ReportBlockInfo;
    use cadence_hinting::PacketFlags;

    fn packet() -> ScheduledPacket {
        ScheduledPacket {
            send_time_us: 0,
            rtp_time: 0,
            first_segment: 0,
            payload_len: 1000,
            segment_count: 1,
            payload_type: 96,
            flags: PacketFlags::default(),
        }
    }

    fn track(first_seq: u16, sent: usize) -> TrackStream {
        let rtp: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let rtcp: SocketAddr = "127.0.0.1:5001".parse().expect("addr");
        let mut t = TrackStream::new(
            7,
            0xabcd,
            first_seq,
            0,
            100_000,
            TrackTransport::Udp { rtp, rtcp },
        );
        for _ in 0..sent {
            t.sent(&packet(), 12);
        }
        t
    }

    fn block(lost: u32, ext: u32) -> ReportBlockInfo {
        ReportBlockInfo {
            reporter: 1,
            source: 0xabcd,
            fraction_lost: 13,
            cumulative_lost: lost,
            extended_highest_seq: ext,
            jitter: 90,
        }
    }

    #[test]
    fn expected_and_received_follow_the_extended_sequence() {
        let mut t = track(1000, 2000);
        assert_eq!(t.packets_expected(), None, "no report yet");
        assert_eq!(t.loss_ratio(), None);
        // The client saw up to seq 2999 (the 2000th packet) and lost 100.
        t.set_reception(&block(100, 2999));
        assert_eq!(t.reception().extended_highest_seq, 2999);
        assert_eq!(t.packets_expected(), Some(2000));
        assert_eq!(t.packets_received(), Some(1900));
        assert_eq!(t.loss_ratio(), Some(0.05));
    }

    #[test]
    fn sequence_wrap_counts_a_cycle() {
        // First packet 65000; 2000 packets sent wrap past 65535 to 1463.
        let mut t = track(65_000, 2000);
        assert_eq!(t.next_seq(), 1464);
        t.set_reception(&block(40, (1 << 16) + 1463));
        assert_eq!(t.packets_expected(), Some(2000));
        assert_eq!(t.packets_received(), Some(1960));
        assert_eq!(t.loss_ratio(), Some(0.02));
    }

    #[test]
    fn inconsistent_reports_give_no_expected_count() {
        let mut t = track(1000, 10);
        // A sequence number never sent, and one before the first.
        t.set_reception(&block(0, 1010));
        assert_eq!(t.packets_expected(), None);
        t.set_reception(&block(0, 999));
        assert_eq!(t.packets_expected(), None);
        // More lost than expected is capped at all lost.
        t.set_reception(&block(50, 1009));
        assert_eq!(t.packets_expected(), Some(10));
        assert_eq!(t.packets_received(), Some(0));
        assert_eq!(t.loss_ratio(), Some(1.0));
    }
}
