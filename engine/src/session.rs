//! Streaming sessions: the per-client state shared by the RTSP controller
//! (which creates and steers sessions) and the pacer (which walks their
//! schedules).
//!
//! A session is a cursor into each set-up track's compiled schedule, plus the
//! track's SSRC, sequence and RTP timestamp bases (RFC 3550 §5.1, random per
//! session and track), its transport, and its RTCP statistics.

use std::net::SocketAddr;
use std::sync::Arc;

use cadence_hinting::{FileSchedule, ScheduledPacket};

/// A session identifier as sent in the RTSP `Session` header: 16 hex digits
/// whose top byte is the index of the owning shard (RFC 2326 §12.37).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl SessionId {
    /// Builds an ID for `shard` from 56 random bits.
    pub fn new(shard: usize, random: u64) -> Self {
        SessionId(((shard as u64 & 0xff) << 56) | (random & 0x00ff_ffff_ffff_ffff))
    }

    /// The index of the shard that owns this session.
    pub fn shard(self) -> usize {
        (self.0 >> 56) as usize
    }

    /// Parses the 16-hex-digit form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 16 {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(SessionId)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

/// A shard-local handle to a connection: slab index plus generation, so a
/// handle to a closed connection never aliases a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// Slab index.
    pub index: u32,
    /// Generation of the slab entry.
    pub generation: u32,
}

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

/// One set-up track of a session.
#[derive(Debug, Clone)]
pub struct TrackStream {
    /// Index into [`FileSchedule::tracks`].
    pub track: usize,
    /// Random SSRC (RFC 3550 §8).
    pub ssrc: u32,
    /// Sequence number of the next packet to send (random base, then +1 per
    /// packet sent, across pauses and seeks).
    pub next_seq: u16,
    /// Random RTP timestamp base added to every packet's schedule `rtp_time`.
    pub ts_base: u32,
    /// Index of the next packet to send in the track schedule.
    pub cursor: usize,
    /// Index one past the last packet to send (end of the PLAY range).
    pub end: usize,
    /// Transport of this track.
    pub transport: TrackTransport,
    /// RTP packets sent (RTCP SR packet count).
    pub packets_sent: u32,
    /// RTP payload octets sent (RTCP SR octet count).
    pub octets_sent: u32,
    /// RTP timestamp of the last packet sent, for the SR's RTP/NTP mapping.
    pub last_rtp_time: u32,
    /// Latest client reception report for this track.
    pub reception: ReceptionReport,
}

impl TrackStream {
    /// The RTP timestamp of `packet` in this session (base + schedule time).
    pub fn rtp_timestamp(&self, packet: &ScheduledPacket) -> u32 {
        self.ts_base.wrapping_add(packet.rtp_time)
    }
}

/// RTSP session state (RFC 2326 Appendix A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// At least one track set up; not playing.
    Ready,
    /// Playing: the pacer sends due packets.
    Playing,
}

/// Pacing state of a playing session: maps schedule send times to shard
/// clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayClock {
    /// Schedule send time (µs) at which the PLAY started (npt of the first packet).
    pub npt_start_us: u64,
    /// Shard clock (µs) at which the packet of `npt_start_us` is due.
    pub wall_start_us: u64,
}

impl PlayClock {
    /// Shard clock time (µs) at which a packet with schedule send time
    /// `send_time_us` is due.
    pub fn due_us(&self, send_time_us: u64) -> u64 {
        self.wall_start_us
            .saturating_add(send_time_us.saturating_sub(self.npt_start_us))
    }

    /// The npt (µs) reached at shard clock `now_us`.
    pub fn npt_at(&self, now_us: u64) -> u64 {
        self.npt_start_us
            .saturating_add(now_us.saturating_sub(self.wall_start_us))
    }
}

/// One client session.
#[derive(Debug)]
pub struct Session {
    /// The public ID.
    pub id: SessionId,
    /// Catalog path of the file (relative to the media folder).
    pub path: String,
    /// The compiled schedules of the file.
    pub file: Arc<FileSchedule>,
    /// Set-up tracks, in SETUP order.
    pub tracks: Vec<TrackStream>,
    /// State per RFC 2326 Appendix A.2.
    pub state: SessionState,
    /// Pacing clock, while playing.
    pub clock: Option<PlayClock>,
    /// npt (µs) at which a PAUSE stopped the session, for the next PLAY.
    pub paused_npt_us: Option<u64>,
    /// Shard clock (µs) of the last RTSP request or RTCP packet from the client.
    pub last_activity_us: u64,
    /// Shard clock (µs) at which the next RTCP sender report is due.
    pub next_sr_us: u64,
    /// Incremented on every PLAY/PAUSE/seek, so stale pacer wakeups are ignored.
    pub epoch: u32,
    /// The RTSP connection that created the session (for TCP interleaved and
    /// for tearing the session down when that connection closes).
    pub conn: Option<ConnId>,
    /// Whether BYE was already sent (end of stream or teardown).
    pub bye_sent: bool,
}

impl Session {
    /// True when any track uses TCP interleaved transport.
    pub fn is_interleaved(&self) -> bool {
        self.tracks
            .iter()
            .any(|t| matches!(t.transport, TrackTransport::Interleaved { .. }))
    }

    /// True when every track has sent its whole PLAY range.
    pub fn finished(&self) -> bool {
        self.tracks.iter().all(|t| t.cursor >= t.end)
    }

    /// Shard clock time (µs) at which the next packet of any track is due;
    /// `None` when not playing or finished.
    pub fn next_due_us(&self) -> Option<u64> {
        let clock = self.clock?;
        self.tracks
            .iter()
            .filter(|t| t.cursor < t.end)
            .filter_map(|t| self.file.tracks.get(t.track)?.packets.get(t.cursor))
            .map(|p| clock.due_us(p.send_time_us))
            .min()
    }
}
