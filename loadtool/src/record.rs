//! What a worker hands back about each session and stream (the `sessions`
//! array of the JSON report), and its totals.

use serde::Serialize;

use crate::churn::Ending;
use crate::media_kind::MediaKind;
use crate::plan::Transport;

/// Why a session failed, and where.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRecord {
    /// Cause key (see [`crate::failure::Cause::key`]).
    pub cause: String,
    /// Phase: `connect`, `OPTIONS`, `DESCRIBE`, `SETUP`, `PLAY`, `playing`,
    /// `TEARDOWN`.
    pub phase: String,
    /// Human-readable detail.
    pub detail: String,
}

/// One received stream (one SSRC) of a session.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRecord {
    /// SDP `a=control:` value.
    pub control: String,
    /// SDP media type.
    pub media: String,
    /// `video`, `audio` or `other`, from `media`.
    pub kind: MediaKind,
    /// RTP clock rate, Hz.
    pub clock_rate: u32,
    /// SSRC (from the Transport reply or learnt from the first packet).
    pub ssrc: Option<u32>,
    /// Sequence number announced in the PLAY reply's RTP-Info, if any.
    pub rtp_info_seq: Option<u16>,
    /// Sequence number of the first packet received (loss counts from it).
    pub first_seq: Option<u16>,
    /// RTP packets received, duplicates included.
    pub packets: u64,
    /// RTP bytes received (header + payload).
    pub bytes: u64,
    /// Packets expected from the sequence numbers.
    pub expected: u64,
    /// Packets lost (expected − distinct received, ≥ 0).
    pub lost: u64,
    /// Duplicate packets.
    pub duplicates: u64,
    /// Packets that arrived after a higher sequence number.
    pub reordered: u64,
    /// Final RFC 3550 interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Lowest lateness, µs (negative: early); null without packets.
    pub lateness_min_us: Option<i64>,
    /// Highest lateness, µs; null without packets.
    pub lateness_max_us: Option<i64>,
    /// RTCP sender reports received.
    pub sender_reports: u64,
    /// True when the server sent an RTCP BYE.
    pub bye: bool,
    /// Local identifier of the RFC 5450 toffset extension the SDP announced
    /// for this media; null when not announced (lateness and jitter then
    /// come from the RTP timestamps alone).
    pub toffset_id: Option<u8>,
    /// Packets (not duplicates) that carried the toffset element and were
    /// measured from their transmission time.
    pub toffset_packets: u64,
}

/// One client.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    /// Session number: the client number (start order) of a client's first
    /// session; in churn mode generation × clients + slot.
    pub index: usize,
    /// Client slot this session ran in (= `index` without churn).
    pub slot: usize,
    /// 0 for a slot's first session, n for its n-th replacement.
    pub generation: u64,
    /// Churn mode: the play time drawn for it, ms.
    pub lifetime_ms: Option<f64>,
    /// Churn mode: how it ended when its lifetime was reached (`teardown`
    /// or `close`); null if it had not reached it (failed, or still playing
    /// at the end of the run).
    pub ended: Option<Ending>,
    /// URL played.
    pub url: String,
    /// Media transport.
    pub transport: Transport,
    /// True once its connect was started.
    pub started: bool,
    /// Connect to PLAY reply, ms; null if it never played.
    pub setup_ms: Option<f64>,
    /// PLAY reply to the end of counting, ms; null if it never played.
    pub play_ms: Option<f64>,
    /// Failure, if any.
    pub failure: Option<FailureRecord>,
    /// RTSP reconnections after the server closed an idle control
    /// connection (UDP sessions only).
    pub reconnects: u32,
    /// Streams set up.
    pub streams: Vec<StreamRecord>,
}

/// Worker-wide counters (summed over workers in the report).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// RTP packets counted (all streams).
    pub packets: u64,
    /// RTP bytes counted.
    pub bytes: u64,
    /// RTP packets with negative lateness (early).
    pub early_packets: u64,
    /// UDP datagrams whose SSRC and source belong to no stream of this tool.
    pub unknown_ssrc: u64,
    /// Datagrams that arrived for streams already stopped (between the end
    /// of counting and TEARDOWN); not counted.
    pub after_stop: u64,
    /// Datagrams or interleaved frames that are not RTP.
    pub malformed_rtp: u64,
    /// RTP packets of streams with the toffset extension announced whose
    /// header extension does not parse (RFC 8285); measured as sent at their
    /// RTP time.
    pub bad_extension: u64,
    /// Interleaved frames on channels no track uses.
    pub unknown_channel: u64,
    /// RTCP packets received.
    pub rtcp_received: u64,
    /// RTCP receiver reports sent.
    pub rtcp_sent: u64,
    /// RTCP packets that do not parse.
    pub rtcp_malformed: u64,
    /// Keep-alive requests sent.
    pub keepalives: u64,
}
