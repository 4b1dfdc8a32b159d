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
    /// Interarrival jitter in RTP clock ticks.
    pub jitter: u32,
    /// Number of receiver reports seen for this track.
    pub reports: u32,
}

/// One set-up track of a session. Its fields change only through the
/// session (SETUP, PLAY, seeks, trick play's key-frame steps) and the pacer
/// ([`TrackStream::sent`]).
#[derive(Debug, Clone)]
pub struct TrackStream {
    track: usize,
    ssrc: u32,
    next_seq: u16,
    ts_base: u32,
    cursor: usize,
    end: usize,
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
            track,
            ssrc,
            next_seq: first_seq,
            ts_base,
            cursor: 0,
            end: packets,
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
        self.track
    }

    /// The track's SSRC (RFC 3550 §8).
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sequence number of the next packet to send.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// Random RTP timestamp base added to every packet's schedule `rtp_time`.
    pub fn ts_base(&self) -> u32 {
        self.ts_base
    }

    /// Index of the next packet to send in the track schedule.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Index one past the last packet to send (end of the PLAY range).
    pub fn end(&self) -> usize {
        self.end
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

    /// The RTP timestamp of `packet` in this session (base + schedule time).
    pub fn rtp_timestamp(&self, packet: &ScheduledPacket) -> u32 {
        self.ts_base.wrapping_add(packet.rtp_time)
    }

    /// Accounts packet `p`, sent with a header of `header_len` bytes, and
    /// moves the cursor past it. Called by the pacer only.
    pub(crate) fn sent(&mut self, p: &ScheduledPacket, header_len: usize) {
        self.cursor += 1;
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
        self.cursor += 1;
    }

    pub(crate) fn set_transport(&mut self, transport: TrackTransport) {
        self.transport = transport;
    }

    pub(crate) fn set_range(&mut self, cursor: usize, end: usize) {
        self.cursor = cursor;
        self.end = end.max(cursor);
    }

    pub(crate) fn set_reception(&mut self, fraction_lost: u8, cumulative_lost: u32, jitter: u32) {
        self.reception.fraction_lost = fraction_lost;
        self.reception.cumulative_lost = cumulative_lost;
        self.reception.jitter = jitter;
        self.reception.reports = self.reception.reports.saturating_add(1);
    }
}
