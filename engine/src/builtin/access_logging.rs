//! The access log, a built-in extension: one W3C (or JSON) line per client
//! session when it ends, and one per request refused with 401, 403, 404 or
//! 453. Records go to the logger thread through a channel that never blocks
//! the shard (see [`crate::access_log`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::access_log::{close_status, AccessLogSender, AccessRecord};
use crate::metrics::{EndReason, Transport};
use crate::pipeline::{Exchange, Extension, RequestInfo, SessionEvent, SessionSummary};
use crate::server::ServerLoad;

/// One shard's access-log hooks.
pub struct AccessLogging {
    sender: AccessLogSender,
    load: Arc<ServerLoad>,
}

impl AccessLogging {
    /// Hooks writing through `sender`; `load` gives `s-totalclients`.
    pub fn new(sender: AccessLogSender, load: Arc<ServerLoad>) -> Self {
        AccessLogging { sender, load }
    }
}

/// The path part of a request URL or URL stem (`rtsp://h:1/a/b.mp4` →
/// `/a/b.mp4`), as DSS logs `cs-uri-stem`.
fn uri_path(url: &str) -> String {
    let no_query = url.split('?').next().unwrap_or("");
    match no_query.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => rest[i..].to_string(),
            None => "/".to_string(),
        },
        None => no_query.to_string(),
    }
}

/// The `cs-uri-query` of a query string: `None` when empty, and the value
/// of a signed URL's `sig` parameter replaced by `*` (the token is a bearer
/// credential until `exp`, so it never reaches the log).
fn logged_query(query: &str) -> Option<String> {
    if query.is_empty() {
        return None;
    }
    let parts: Vec<&str> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some(("sig", _)) => "sig=*",
            _ => p,
        })
        .collect();
    Some(parts.join("&"))
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The access-log record of a closed session.
pub fn session_record(s: &SessionSummary, now: SystemTime, total_clients: u64) -> AccessRecord {
    let codec_of = |kind: &str| {
        s.tracks
            .iter()
            .find(|t| t.media == kind)
            .map(|t| t.codec.clone())
            .filter(|c| !c.is_empty())
    };
    let lost = s.packets_lost();
    let any_report = s.tracks.iter().any(|t| t.reports > 0);
    AccessRecord {
        started: UNIX_EPOCH + Duration::from_micros(s.started_unix_us),
        uri_query: logged_query(&s.uri_query),
        user_agent: s.user_agent.clone(),
        file_length_s: Some(s.file_duration_us as f64 / 1e6),
        file_size_bytes: Some(s.file_size),
        avg_bandwidth_bps: Some(s.avg_bandwidth_bps()),
        transport: Some(if s.transport == "TCP" {
            Transport::Tcp
        } else {
            Transport::Udp
        }),
        audio_codec: codec_of("audio"),
        video_codec: codec_of("video"),
        sc_bytes: s.bytes_sent,
        packets_sent: s.packets_sent,
        client_packets_received: s.packets_received(),
        client_packets_lost: any_report.then_some(lost),
        server_ip: Some(unmapped(s.local.ip())),
        server_total_clients: total_clients,
        username: s.user.clone(),
        realm: s.realm.clone(),
        ..AccessRecord::new(
            unmapped(s.peer.ip()),
            uri_path(&s.uri_stem),
            close_status(200, EndReason::from(s.reason)),
            now,
        )
    }
}

impl Extension for AccessLogging {
    fn name(&self) -> &str {
        "access-log"
    }

    fn post_process(&mut self, req: &RequestInfo<'_>, exchange: &Exchange<'_>) {
        let status = u16::from(exchange.response.status());
        if !matches!(status, 401 | 403 | 404 | 453) {
            return;
        }
        let url = req.url();
        let query = url.split_once('?').and_then(|(_, q)| logged_query(q));
        let record = AccessRecord {
            uri_query: query,
            user_agent: req.user_agent().map(str::to_string),
            username: exchange.identity.user().map(str::to_string),
            realm: exchange.identity.realm().map(str::to_string),
            server_ip: Some(unmapped(req.local.ip())),
            server_total_clients: self.load.sessions() as u64,
            ..AccessRecord::new(
                unmapped(req.peer.ip()),
                uri_path(url),
                status,
                UNIX_EPOCH + Duration::from_micros(req.unix_us),
            )
        };
        self.sender.log(record);
    }

    fn session_event(&mut self, event: &SessionEvent<'_>) {
        if let SessionEvent::Closed(s) = event {
            let ended = UNIX_EPOCH + Duration::from_micros(s.started_unix_us + s.duration_us);
            let record = session_record(s, ended, self.load.sessions() as u64);
            self.sender.log(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_are_the_url_path() {
        assert_eq!(uri_path("rtsp://h:1/a/b.mp4"), "/a/b.mp4");
        assert_eq!(uri_path("rtsp://h:1/a/b.mp4?x=1"), "/a/b.mp4");
        assert_eq!(uri_path("rtsp://h"), "/");
        assert_eq!(uri_path("*"), "*");
    }

    #[test]
    fn signatures_never_reach_the_log() {
        assert_eq!(logged_query(""), None);
        assert_eq!(logged_query("a=1").as_deref(), Some("a=1"));
        assert_eq!(
            logged_query("exp=1700000000&ip=10.0.0.0/8&sig=AbC_123").as_deref(),
            Some("exp=1700000000&ip=10.0.0.0/8&sig=*")
        );
        assert_eq!(
            logged_query("sig=x&sig=y&design=1").as_deref(),
            Some("sig=*&sig=*&design=1")
        );
    }
}
