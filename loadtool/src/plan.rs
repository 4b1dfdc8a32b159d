//! What each client does and when it starts: URLs round-robin, transports,
//! ramp offsets, and the split over worker threads.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use rtsp_types::Url;

/// How a client asks to receive media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RTP/AVP over UDP to a shared local port pair.
    Udp,
    /// RTP/AVP/TCP interleaved in the RTSP connection.
    Tcp,
}

/// `--transport` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportMode {
    /// Every client over UDP.
    Udp,
    /// Every client over TCP.
    Tcp,
    /// Even-numbered clients over UDP, odd-numbered over TCP.
    Mixed,
}

/// One client's plan.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// Session number, 0-based: the client number (start order) for the
    /// first session of each client; in churn mode, generation × clients +
    /// slot for the sessions that replace it.
    pub index: usize,
    /// Client slot (the first session's index); sessions that replace it in
    /// churn mode keep it.
    pub slot: usize,
    /// 0 for a client's first session, n for its n-th replacement.
    pub generation: u64,
    /// URL to play.
    pub url: Url,
    /// RTSP server address (resolved once, before the run).
    pub server: SocketAddr,
    /// Media transport.
    pub transport: Transport,
    /// Start time, relative to the start of the run.
    pub start: Duration,
}

/// A URL that cannot be played.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not a URL, or not rtsp://.
    #[error("{0:?} is not an rtsp:// URL")]
    NotRtsp(String),
    /// The host does not resolve.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, String),
}

/// Parses and resolves `urls` (port 554 when absent).
pub fn resolve_urls(urls: &[String]) -> Result<Vec<(Url, SocketAddr)>, PlanError> {
    urls.iter()
        .map(|u| {
            let url = Url::parse(u).map_err(|_| PlanError::NotRtsp(u.clone()))?;
            if !url.scheme().eq_ignore_ascii_case("rtsp") {
                return Err(PlanError::NotRtsp(u.clone()));
            }
            let host = url
                .host_str()
                .ok_or_else(|| PlanError::NotRtsp(u.clone()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = url.port().unwrap_or(554);
            let addr = (host, port)
                .to_socket_addrs()
                .map_err(|e| PlanError::Resolve(u.clone(), e.to_string()))?
                .next()
                .ok_or_else(|| PlanError::Resolve(u.clone(), "no address".into()))?;
            Ok((url, addr))
        })
        .collect()
}

/// Plans `clients` clients over `targets` (round-robin), starting `ramp`
/// clients per second, and splits them over `workers` threads (client i goes
/// to worker i mod workers). Each worker's list is in start order.
pub fn plan(
    clients: usize,
    targets: &[(Url, SocketAddr)],
    mode: TransportMode,
    ramp_per_s: f64,
    workers: usize,
) -> Vec<Vec<ClientPlan>> {
    let workers = workers.max(1);
    let mut out = vec![Vec::with_capacity(clients / workers + 1); workers];
    if targets.is_empty() {
        return out;
    }
    for index in 0..clients {
        let (url, server) = &targets[index % targets.len()];
        let transport = match mode {
            TransportMode::Udp => Transport::Udp,
            TransportMode::Tcp => Transport::Tcp,
            TransportMode::Mixed if index % 2 == 0 => Transport::Udp,
            TransportMode::Mixed => Transport::Tcp,
        };
        let start = if ramp_per_s > 0.0 && ramp_per_s.is_finite() {
            Duration::from_secs_f64(index as f64 / ramp_per_s)
        } else {
            Duration::ZERO
        };
        out[index % workers].push(ClientPlan {
            index,
            slot: index,
            generation: 0,
            url: url.clone(),
            server: *server,
            transport,
            start,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_and_ramp() {
        let targets = resolve_urls(&[
            "rtsp://127.0.0.1:8554/a".into(),
            "rtsp://127.0.0.1/b".into(),
        ])
        .unwrap();
        assert_eq!(targets[1].1.port(), 554);
        let p = plan(5, &targets, TransportMode::Mixed, 10.0, 2);
        assert_eq!(p[0].len(), 3);
        assert_eq!(p[1].len(), 2);
        assert_eq!(p[0][1].index, 2);
        assert_eq!(p[0][1].url.path(), "/a");
        assert_eq!(p[1][0].url.path(), "/b");
        assert_eq!(p[1][0].transport, Transport::Tcp);
        assert_eq!(p[0][2].start, Duration::from_millis(400));
    }

    #[test]
    fn rejects_non_rtsp() {
        assert!(matches!(
            resolve_urls(&["http://x/".into()]),
            Err(PlanError::NotRtsp(_))
        ));
        assert!(matches!(
            resolve_urls(&["nonsense".into()]),
            Err(PlanError::NotRtsp(_))
        ));
    }
}
