//! What the admin server asks the shards, through a backend the server's
//! owner implements with message passing, and the JSON shapes it answers
//! with (units in the field names and docs).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::metrics::{ServerMetrics, Transport};
use crate::session::SessionState;

/// The shards as the admin server sees them. Every call runs on a blocking
/// thread of the admin runtime (never on a shard) and may block until the
/// shards answer; the admin server gives up after its timeout and answers
/// 503, so an implementation need not time out itself.
pub trait AdminBackend: Send + Sync + 'static {
    /// Every live session on every shard.
    fn sessions(&self) -> Vec<SessionInfo>;
    /// Ends session `id` (its RTSP `Session` ID) with reason admin kill.
    fn kill(&self, id: &str) -> KillResult;
    /// Server status (see [`ServerInfo::from_metrics`] for the parts the
    /// metrics already know).
    fn server(&self) -> ServerInfo;
}

/// Outcome of [`AdminBackend::kill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillResult {
    /// The session existed and is being ended (HTTP 204).
    Killed,
    /// No such session (HTTP 404).
    NotFound,
}

/// One live session (`GET /api/v1/sessions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// RTSP session ID (RFC 2326 §12.37), 16 hex digits.
    pub id: String,
    /// Index of the owning shard.
    pub shard: usize,
    /// Client address and port of the RTSP connection (`"ip:port"`).
    pub client: SocketAddr,
    /// Catalog path of the file, e.g. `sample.mp4`.
    pub path: String,
    /// `udp` or `tcp`.
    pub transport: Transport,
    /// `ready` or `playing`.
    #[serde(with = "state_serde")]
    pub state: SessionState,
    /// When the session was created, ms since 1970-01-01 UTC.
    pub started_unix_ms: u64,
    /// Current normal play time (RFC 2326 §3.6), seconds.
    pub npt_s: f64,
    /// RTP bytes sent (headers and payload).
    pub bytes_sent: u64,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Authenticated user, if any.
    pub user: Option<String>,
    /// Set-up tracks, in SETUP order.
    pub tracks: Vec<TrackInfo>,
}

/// One set-up track of a session, with what the client's last RTCP
/// receiver report said (RFC 3550 §6.4.2); the report fields are `null`
/// until one arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The track's `trackID` in its control URL.
    pub track_id: u32,
    /// Our SSRC for the track.
    pub ssrc: u32,
    /// rtpmap encoding name, e.g. `H264`, `mpeg4-generic`.
    pub codec: Option<String>,
    /// RTP packets sent on this track.
    pub packets_sent: u64,
    /// RTP bytes sent on this track.
    pub bytes_sent: u64,
    /// Receiver reports received for this track.
    pub rr_count: u32,
    /// Fraction lost from the last report, 0..=1 (the 8-bit fixed-point
    /// field / 256).
    pub fraction_lost: Option<f64>,
    /// Cumulative packets lost from the last report.
    pub packets_lost: Option<u64>,
    /// Extended highest sequence number received, from the last report
    /// (cycles × 2^16 + sequence number, RFC 3550 §6.4.1).
    pub highest_seq: Option<u32>,
    /// Packets the client expected by the last report: `highest_seq`
    /// minus our first sequence number, plus one; `null` when the report is
    /// inconsistent with what was sent.
    pub packets_expected: Option<u64>,
    /// Share of the expected packets lost over the whole session, 0..=1
    /// (`packets_lost` ÷ `packets_expected`), unlike `fraction_lost`, which
    /// covers only the interval since the previous report.
    pub loss_ratio: Option<f64>,
    /// Interarrival jitter from the last report, µs.
    pub jitter_us: Option<u64>,
}

impl TrackInfo {
    /// `fraction_lost` (0..=1) from the report's 8-bit field.
    pub fn fraction(q8: u8) -> f64 {
        f64::from(q8) / 256.0
    }

    /// Jitter in µs from the report's value in RTP clock ticks and the
    /// track's clock rate (Hz); `None` for a zero clock rate.
    pub fn jitter_us(ticks: u32, clock_rate_hz: u32) -> Option<u64> {
        if clock_rate_hz == 0 {
            return None;
        }
        Some(u64::from(ticks) * 1_000_000 / u64::from(clock_rate_hz))
    }
}

/// One shard in [`ServerInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Shard index.
    pub index: usize,
    /// CPU the shard thread is pinned to, if pinned.
    pub cpu: Option<usize>,
    /// Sessions on the shard now.
    pub sessions: u64,
    /// Share of wall time the shard spent working, 0..=1.
    pub busy_ratio: f64,
}

/// Server status (`GET /api/v1/server`), what DSS's `server_status` gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Cadence version.
    pub version: String,
    /// Seconds since the server started.
    pub uptime_s: u64,
    /// When the server started, ms since 1970-01-01 UTC.
    pub started_unix_ms: u64,
    /// `running` or `stopping`.
    pub state: String,
    /// Shards.
    pub shards: Vec<ShardInfo>,
    /// RTSP sessions now.
    pub sessions: u64,
    /// Sessions playing now.
    pub playing: u64,
    /// Open RTSP connections now.
    pub rtsp_connections: u64,
    /// RTP bit rate sent over the last measurement window, bit/s.
    pub bandwidth_bps: u64,
    /// RTP packets sent per second over the last measurement window.
    pub packets_per_s: u64,
    /// Sessions started since the server started.
    pub total_sessions: u64,
    /// RTP bytes sent since the server started.
    pub total_bytes_sent: u64,
    /// RTP packets sent since the server started.
    pub total_packets_sent: u64,
}

/// Rates from cumulative counters: the change over the window between two
/// samples at least `window` apart. Keep one in the backend.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    last: Option<(Instant, u64, u64)>,
    rates: (u64, u64),
}

impl RateMeter {
    /// A meter whose rates cover at least `window`.
    pub fn new(window: Duration) -> RateMeter {
        RateMeter {
            window,
            last: None,
            rates: (0, 0),
        }
    }

    /// Takes a sample of the byte and packet totals at `now`; returns
    /// (bit/s, packets/s) over the last complete window (0, 0 before one).
    pub fn update(&mut self, now: Instant, bytes: u64, packets: u64) -> (u64, u64) {
        match self.last {
            None => self.last = Some((now, bytes, packets)),
            Some((t, b, p)) => {
                let dt = now.saturating_duration_since(t);
                if dt >= self.window && !dt.is_zero() {
                    let s = dt.as_secs_f64();
                    self.rates = (
                        (bytes.saturating_sub(b) as f64 * 8.0 / s) as u64,
                        (packets.saturating_sub(p) as f64 / s) as u64,
                    );
                    self.last = Some((now, bytes, packets));
                }
            }
        }
        self.rates
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ServerInfo {
    /// Everything the metrics know: version, uptime, per-shard sessions and
    /// busy share, current sessions, rates (through `rates`) and totals.
    /// The backend adds `rtsp_connections`, the shard CPUs (`shard_cpus[i]`
    /// for shard `i`) and `state` (`running` here).
    pub fn from_metrics(
        m: &ServerMetrics,
        started: SystemTime,
        shard_cpus: &[Option<usize>],
        rates: &mut RateMeter,
    ) -> ServerInfo {
        let totals = m.totals();
        let (bandwidth_bps, packets_per_s) =
            rates.update(Instant::now(), totals.rtp_bytes, totals.rtp_packets);
        let shards = m
            .shards()
            .iter()
            .map(|s| ShardInfo {
                index: s.index(),
                cpu: shard_cpus.get(s.index()).copied().flatten(),
                sessions: s.totals().sessions,
                busy_ratio: s.busy_share(),
            })
            .collect();
        ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_s: SystemTime::now()
                .duration_since(started)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            started_unix_ms: unix_ms(started),
            state: "running".into(),
            shards,
            sessions: totals.sessions,
            playing: totals.playing,
            rtsp_connections: 0,
            bandwidth_bps,
            packets_per_s,
            total_sessions: totals.sessions_started,
            total_bytes_sent: totals.rtp_bytes,
            total_packets_sent: totals.rtp_packets,
        }
    }
}

/// `SessionState` as the strings `ready` / `playing`.
mod state_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::metrics::labels::state_label;
    use crate::session::SessionState;

    pub fn serialize<S: Serializer>(s: &SessionState, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(state_label(*s))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SessionState, D::Error> {
        let s = String::deserialize(de)?;
        match s.as_str() {
            "ready" => Ok(SessionState::Ready),
            "playing" => Ok(SessionState::Playing),
            other => Err(serde::de::Error::unknown_variant(
                other,
                &["ready", "playing"],
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_a_window() {
        let t0 = Instant::now();
        let mut r = RateMeter::new(Duration::from_secs(1));
        assert_eq!(r.update(t0, 0, 0), (0, 0));
        assert_eq!(r.update(t0 + Duration::from_millis(500), 500, 5), (0, 0));
        assert_eq!(
            r.update(t0 + Duration::from_secs(2), 250_000, 200),
            (1_000_000, 100)
        );
        // Too soon: the last complete window's rates.
        assert_eq!(
            r.update(t0 + Duration::from_millis(2100), 999_999, 999),
            (1_000_000, 100)
        );
    }

    #[test]
    fn report_conversions() {
        assert_eq!(TrackInfo::fraction(64), 0.25);
        assert_eq!(TrackInfo::jitter_us(450, 90_000), Some(5_000));
        assert_eq!(TrackInfo::jitter_us(1, 0), None);
    }
}
