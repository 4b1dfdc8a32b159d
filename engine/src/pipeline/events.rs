//! Session lifecycle events, and the final counters a closed session reports.

use std::net::SocketAddr;

use crate::session::{Session, SessionId};

/// A change in a session's life, delivered to every extension of its shard.
#[derive(Debug, Clone, Copy)]
pub enum SessionEvent<'a> {
    /// A SETUP created the session.
    Opened(&'a Session),
    /// PLAY started or resumed pacing (also after a seek).
    Playing(&'a Session),
    /// PAUSE stopped pacing, or the end of the PLAY range was sent.
    Paused(&'a Session),
    /// The session ended; it is gone from the shard.
    Closed(&'a SessionSummary),
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client sent TEARDOWN.
    Teardown,
    /// No RTSP request and no RTCP report for the session timeout.
    Timeout,
    /// The RTSP connection carrying its interleaved data closed.
    Disconnect,
    /// An operator ended it through the admin API.
    AdminKill,
    /// The server stopped (SIGINT, SIGTERM).
    ServerStop,
    /// Its file changed or disappeared while it was served.
    FileChanged,
    /// Its TCP client stopped reading and its backlog overflowed.
    SlowClient,
}

impl CloseReason {
    /// A stable lower-case name (`teardown`, `timeout`, …), for metrics
    /// labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Teardown => "teardown",
            CloseReason::Timeout => "timeout",
            CloseReason::Disconnect => "disconnect",
            CloseReason::AdminKill => "admin_kill",
            CloseReason::ServerStop => "server_stop",
            CloseReason::FileChanged => "file_changed",
            CloseReason::SlowClient => "slow_client",
        }
    }

    /// Every reason, for exhaustive metrics.
    pub const ALL: [CloseReason; 7] = [
        CloseReason::Teardown,
        CloseReason::Timeout,
        CloseReason::Disconnect,
        CloseReason::AdminKill,
        CloseReason::ServerStop,
        CloseReason::FileChanged,
        CloseReason::SlowClient,
    ];
}

/// The final counters of one track of a closed session.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSummary {
    /// Hint track ID (the SDP's `trackID=N`).
    pub track_id: u32,
    /// Media type from the track's SDP `m=` line (`video`, `audio`, …).
    pub media: String,
    /// Encoding name from the track's `a=rtpmap` (`H264`, `mpeg4-generic`, …).
    pub codec: String,
    /// RTP clock rate, Hz.
    pub clock_rate: u32,
    /// Our SSRC for the track.
    pub ssrc: u32,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Bytes put on the wire (RTP headers, payloads, interleaved framing).
    pub bytes_sent: u64,
    /// Latest RTCP fraction lost, 0..=1 (RFC 3550 §6.4.1).
    pub fraction_lost: f64,
    /// Latest cumulative packets lost reported.
    pub cumulative_lost: u32,
    /// Packets the client expected by its latest report (extended highest
    /// sequence number received minus our first, plus one; RFC 3550
    /// §6.4.1); `None` without a consistent report.
    pub packets_expected: Option<u64>,
    /// Latest interarrival jitter, RTP clock ticks.
    pub jitter_ticks: u32,
    /// Receiver reports received for the track.
    pub reports: u32,
}

impl TrackSummary {
    /// Interarrival jitter in µs (ticks ÷ clock rate).
    pub fn jitter_us(&self) -> u64 {
        if self.clock_rate == 0 {
            return 0;
        }
        u64::from(self.jitter_ticks) * 1_000_000 / u64::from(self.clock_rate)
    }
}

/// Everything known about a session when it closes: what the access log
/// writes and what metrics count. Owned and `Send`, so an extension can hand
/// it to a thread off the shard as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSummary {
    /// The public ID.
    pub id: SessionId,
    /// The shard that owned it.
    pub shard: usize,
    /// Catalog path of its file.
    pub path: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address on its RTSP connection.
    pub local: SocketAddr,
    /// Request URL of its SETUP, without query and track (`rtsp://…/<path>`).
    pub uri_stem: String,
    /// The query of that URL, without `?`; empty when none.
    pub uri_query: String,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The authenticated user.
    pub user: Option<String>,
    /// The realm the user authenticated in.
    pub realm: Option<String>,
    /// `"UDP"` or `"TCP"` (interleaved).
    pub transport: &'static str,
    /// Wall clock at creation, µs since the Unix epoch.
    pub started_unix_us: u64,
    /// How long it lived, µs.
    pub duration_us: u64,
    /// Bytes put on the wire, all tracks.
    pub bytes_sent: u64,
    /// RTP packets sent, all tracks.
    pub packets_sent: u64,
    /// Per set-up track.
    pub tracks: Vec<TrackSummary>,
    /// Size of the file, bytes.
    pub file_size: u64,
    /// Presentation duration of the file, µs.
    pub file_duration_us: u64,
    /// Why it ended.
    pub reason: CloseReason,
    /// Its state when it ended.
    pub state: crate::session::SessionState,
}

impl SessionSummary {
    /// Builds the summary of `s`, closing at shard clock `now_us` for `reason`.
    pub fn of(s: &Session, shard: usize, now_us: u64, reason: CloseReason) -> Self {
        let meta = s.meta();
        let file = s.file();
        let tracks = s
            .tracks()
            .iter()
            .filter_map(|t| {
                let sched = file.tracks.get(t.track())?;
                let (media, codec) = media_and_codec(&sched.sdp);
                let r = t.reception();
                Some(TrackSummary {
                    track_id: sched.track_id,
                    media,
                    codec,
                    clock_rate: sched.clock_rate,
                    ssrc: t.ssrc(),
                    packets_sent: u64::from(t.packets_sent()),
                    bytes_sent: t.bytes_sent(),
                    fraction_lost: f64::from(r.fraction_lost) / 256.0,
                    cumulative_lost: r.cumulative_lost,
                    packets_expected: t.packets_expected(),
                    jitter_ticks: r.jitter,
                    reports: r.reports,
                })
            })
            .collect();
        SessionSummary {
            id: s.id(),
            shard,
            path: s.path().to_string(),
            peer: meta.peer,
            local: meta.local,
            uri_stem: meta.uri_stem.to_string(),
            uri_query: meta.uri_query.as_deref().unwrap_or_default().to_string(),
            user_agent: meta.user_agent.as_deref().map(str::to_string),
            user: meta.user.as_deref().map(str::to_string),
            realm: meta.realm.as_deref().map(str::to_string),
            transport: s
                .tracks()
                .first()
                .map(|t| t.transport().lower())
                .unwrap_or("UDP"),
            started_unix_us: meta.started_unix_us,
            duration_us: now_us.saturating_sub(meta.started_us),
            bytes_sent: s.bytes_sent(),
            packets_sent: s.packets_sent(),
            tracks,
            file_size: file.map.len() as u64,
            file_duration_us: file.duration_us,
            reason,
            state: s.state(),
        }
    }

    /// Packets the client reported lost, all tracks (RTCP cumulative lost).
    pub fn packets_lost(&self) -> u64 {
        self.tracks
            .iter()
            .map(|t| u64::from(t.cumulative_lost))
            .sum()
    }

    /// Packets the client reported received, all tracks (expected minus
    /// lost, RFC 3550 §6.4.1); `None` unless every track that was reported
    /// on has a consistent expected count, or when no track was.
    pub fn packets_received(&self) -> Option<u64> {
        let reported = self.tracks.iter().filter(|t| t.reports > 0);
        let mut any = false;
        let mut total = 0u64;
        for t in reported {
            any = true;
            let expected = t.packets_expected?;
            total += expected.saturating_sub(u64::from(t.cumulative_lost));
        }
        any.then_some(total)
    }

    /// Mean bit rate sent over the session's life, bit/s.
    pub fn avg_bandwidth_bps(&self) -> u64 {
        if self.duration_us == 0 {
            return 0;
        }
        (u128::from(self.bytes_sent) * 8 * 1_000_000 / u128::from(self.duration_us)) as u64
    }
}

/// The media type of an SDP media section's `m=` line and the encoding name
/// of its first `a=rtpmap` (`("video", "H264")`); empty strings when absent.
pub fn media_and_codec(sdp: &str) -> (String, String) {
    let mut media = String::new();
    let mut codec = String::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if media.is_empty() {
                media = m.split(' ').next().unwrap_or("").to_string();
            }
        } else if let Some(r) = line.strip_prefix("a=rtpmap:") {
            if codec.is_empty() {
                codec = r
                    .split_once(' ')
                    .map(|(_, enc)| enc.split('/').next().unwrap_or(""))
                    .unwrap_or("")
                    .to_string();
            }
        }
    }
    (media, codec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_and_codec_from_track_sdp() {
        let sdp = "m=video 0 RTP/AVP 96\r\nb=AS:236\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 x\r\n";
        assert_eq!(media_and_codec(sdp), ("video".into(), "H264".into()));
        assert_eq!(media_and_codec(""), (String::new(), String::new()));
    }
}
