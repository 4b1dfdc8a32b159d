//! One access log entry: what the shard knows when a client session closes
//! or a request is refused. The shard fills it (moving strings it already
//! holds) and sends it to the logger thread, which formats it.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::metrics::{EndReason, Transport};

/// An access log entry. Optional fields are written as `-` (W3C) or `null`
/// (JSON) when `None`. Build one with [`AccessRecord::new`] and struct
/// update syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRecord {
    /// `c-ip`: the client's real address (after a PROXY header, if any).
    /// IPv4-mapped IPv6 addresses are written in dotted IPv4 form.
    pub client_ip: IpAddr,
    /// `date` and `time`: when the session closed or the request was
    /// refused (DSS writes the line at that moment), written in UTC.
    pub ended: SystemTime,
    /// Start of the client session (first request naming it); `x-duration`
    /// is `ended - started` in whole seconds (0 when `started` is later).
    pub started: SystemTime,
    /// `cs-uri-stem`: the requested path, without the query, as received
    /// (already percent-encoded), e.g. `/sample.mp4`.
    pub uri_stem: String,
    /// `cs-uri-query`: the query string without `?`, if any.
    pub uri_query: Option<String>,
    /// `c-starttime`: the normal play time (RFC 2326 §3.6) where playback
    /// began, whole seconds (the start of the first PLAY range).
    pub start_npt_s: Option<u64>,
    /// `c-status`: the RTSP status; for a closed session use
    /// [`close_status`].
    pub status: u16,
    /// `cs(User-Agent)`: the first `User-Agent` of the session, raw (the
    /// writer escapes it). Also the source of `c-playerversion`,
    /// `c-playerlanguage`, `c-os`, `c-osversion` and `c-cpu` for
    /// QuickTime-style agents.
    pub user_agent: Option<String>,
    /// `filelength`: the presentation's duration, seconds (written rounded
    /// to whole seconds).
    pub file_length_s: Option<f64>,
    /// `filesize`: the file's size, bytes.
    pub file_size_bytes: Option<u64>,
    /// `avgbandwidth`: the file's average bit rate, bit/s.
    pub avg_bandwidth_bps: Option<u64>,
    /// `transport`: UDP or TCP (interleaved); `None` before any SETUP.
    pub transport: Option<Transport>,
    /// `audiocodec`: the audio track's rtpmap encoding name, e.g.
    /// `mpeg4-generic`.
    pub audio_codec: Option<String>,
    /// `videocodec`: the video track's rtpmap encoding name, e.g. `H264`.
    pub video_codec: Option<String>,
    /// `sc-bytes`: RTP bytes sent to the client (header and payload).
    pub sc_bytes: u64,
    /// `cs-bytes`: RTCP bytes received from the client.
    pub cs_bytes: Option<u64>,
    /// `s-pkts-sent`: RTP packets sent.
    pub packets_sent: u64,
    /// `c-pkts-received`: packets the client reports received, summed over
    /// tracks (extended highest sequence received minus the first, plus
    /// one, minus lost; RFC 3550 §6.4.1), from its last receiver reports.
    pub client_packets_received: Option<u64>,
    /// `c-pkts-lost-client`: cumulative packets lost, summed over tracks,
    /// from the client's last RTCP receiver reports (RFC 3550 §6.4.1).
    pub client_packets_lost: Option<u64>,
    /// `s-ip`: the server address the client connected to.
    pub server_ip: Option<IpAddr>,
    /// `s-totalclients`: client sessions on the server when the line is
    /// made.
    pub server_total_clients: u64,
    /// `s-cpu-util`: server CPU use, percent.
    pub server_cpu_percent: Option<u32>,
    /// `c-username`: the authenticated user, if any.
    pub username: Option<String>,
    /// `sc(Realm)`: the authentication realm of the resource, if any.
    pub realm: Option<String>,
}

impl AccessRecord {
    /// An entry for `client_ip` / `uri_stem` with `status`, ended and
    /// started at `now`, no traffic and every optional field `None`.
    pub fn new(client_ip: IpAddr, uri_stem: String, status: u16, now: SystemTime) -> AccessRecord {
        AccessRecord {
            client_ip,
            ended: now,
            started: now,
            uri_stem,
            uri_query: None,
            start_npt_s: None,
            status,
            user_agent: None,
            file_length_s: None,
            file_size_bytes: None,
            avg_bandwidth_bps: None,
            transport: None,
            audio_codec: None,
            video_codec: None,
            sc_bytes: 0,
            cs_bytes: None,
            packets_sent: 0,
            client_packets_received: None,
            client_packets_lost: None,
            server_ip: None,
            server_total_clients: 0,
            server_cpu_percent: None,
            username: None,
            realm: None,
        }
    }
}

/// The `c-status` DSS logs for a closed session
/// (`QTSSAccessLogModule.cpp`, `LogRequest`). When the last RTSP response
/// was a success (< 300): a timeout is logged as 504; a client TEARDOWN, a
/// disconnect or the end of the stream as that status; a stream the server
/// could not send (corrupt sample, I/O error; DSS's "unsupported media"
/// teardown) as 415; any other session the server ended (admin, server
/// stop, slow client, file changed) as 500. A last status ≥ 300 is logged
/// as is.
pub fn close_status(last_status: u16, reason: EndReason) -> u16 {
    if last_status >= 300 {
        return last_status;
    }
    match reason {
        EndReason::Timeout => 504,
        EndReason::Teardown | EndReason::Disconnect | EndReason::EndOfStream => last_status,
        EndReason::StreamError => 415,
        EndReason::AdminKill
        | EndReason::ServerStop
        | EndReason::SlowClient
        | EndReason::FileChanged => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_status_follows_dss() {
        assert_eq!(close_status(200, EndReason::Timeout), 504);
        assert_eq!(close_status(200, EndReason::Teardown), 200);
        assert_eq!(close_status(200, EndReason::Disconnect), 200);
        assert_eq!(close_status(200, EndReason::AdminKill), 500);
        assert_eq!(close_status(200, EndReason::FileChanged), 500);
        assert_eq!(close_status(200, EndReason::StreamError), 415);
        assert_eq!(close_status(200, EndReason::EndOfStream), 200);
        assert_eq!(close_status(454, EndReason::Timeout), 454);
    }
}
