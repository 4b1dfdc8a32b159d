//! The SETUP Transport header (RFC 2326 §12.39): what the load tool asks for and
//! what it learns from the reply (SSRC, server ports, interleaved channels).

use rtsp_types::headers::transport::{RtpLowerTransport, Transport, Transports};
use rtsp_types::headers::TRANSPORT;
use rtsp_types::Response;

/// How a track's RTP and RTCP travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// UDP to the local RTP/RTCP port pair `rtp_port`, `rtp_port + 1`.
    Udp {
        /// Local RTP port (even); RTCP is on the next port.
        rtp_port: u16,
    },
    /// Interleaved in the RTSP TCP connection (RFC 2326 §10.12).
    Tcp,
}

/// The Transport value of a SETUP request for track number `track` (0-based).
/// Interleaved channels are `2*track` (RTP) and `2*track + 1` (RTCP).
pub fn request_value(lower: Lower, track: usize) -> String {
    match lower {
        Lower::Udp { rtp_port } => {
            format!(
                "RTP/AVP;unicast;client_port={}-{}",
                rtp_port,
                rtp_port.wrapping_add(1)
            )
        }
        Lower::Tcp => {
            let rtp = (2 * track).min(254);
            format!("RTP/AVP/TCP;unicast;interleaved={}-{}", rtp, rtp + 1)
        }
    }
}

/// What a SETUP reply's Transport header says about one track.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportReply {
    /// SSRC the server will send with (`ssrc=`, hexadecimal).
    pub ssrc: Option<u32>,
    /// Server RTP and RTCP ports (`server_port=`), for UDP.
    pub server_port: Option<(u16, u16)>,
    /// Interleaved RTP and RTCP channels (`interleaved=`), for TCP.
    pub interleaved: Option<(u8, u8)>,
    /// Address the server sends from (`source=`), if it differs from the
    /// RTSP server's.
    pub source: Option<String>,
    /// True for `RTP/AVP/TCP`.
    pub tcp: bool,
}

/// Why a SETUP reply's Transport header is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransportError {
    /// The reply has no Transport header.
    #[error("SETUP reply has no Transport header")]
    Missing,
    /// The header does not parse (RFC 2326 §12.39 syntax).
    #[error("SETUP reply Transport header does not parse: {0:?}")]
    Unparsable(String),
    /// The server chose a transport other than RTP.
    #[error("SETUP reply Transport is not RTP: {0:?}")]
    NotRtp(String),
}

/// Reads the Transport header of a SETUP reply.
///
/// The header is handed to rtsp-types' typed parser after dropping the RTSP
/// 2.0-only `dest_addr` / `src_addr` parameters, which RTSP 1.0 servers never
/// send (and whose unescaping in rtsp-types 0.1 can panic on hostile input).
pub fn parse_reply<B>(response: &Response<B>) -> Result<TransportReply, TransportError> {
    let raw = response
        .header(&TRANSPORT)
        .ok_or(TransportError::Missing)?
        .as_str()
        .to_string();
    let sanitized: String = raw
        .split(';')
        .filter(|p| {
            let name = p.trim().split('=').next().unwrap_or("").trim();
            !name.eq_ignore_ascii_case("dest_addr") && !name.eq_ignore_ascii_case("src_addr")
        })
        .collect::<Vec<_>>()
        .join(";");
    let mut probe =
        rtsp_types::Response::builder(rtsp_types::Version::V1_0, rtsp_types::StatusCode::Ok)
            .header(TRANSPORT, sanitized)
            .empty();
    let transports = probe
        .typed_header::<Transports>()
        .map_err(|_| TransportError::Unparsable(raw.clone()))?
        .ok_or(TransportError::Missing)?;
    probe.remove_header(&TRANSPORT);
    let rtp = transports
        .iter()
        .find_map(|t| match t {
            Transport::Rtp(rtp) => Some(rtp),
            Transport::Other(_) => None,
        })
        .ok_or_else(|| TransportError::NotRtp(raw.clone()))?;
    let p = &rtp.params;
    Ok(TransportReply {
        ssrc: p.ssrc.first().copied(),
        server_port: p
            .server_port
            .map(|(a, b)| (a, b.unwrap_or(a.wrapping_add(1)))),
        interleaved: p
            .interleaved
            .map(|(a, b)| (a, b.unwrap_or(a.wrapping_add(1)))),
        source: p.source.clone(),
        tcp: rtp.lower_transport == Some(RtpLowerTransport::Tcp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(transport: &str) -> Response<rtsp_types::Empty> {
        Response::builder(rtsp_types::Version::V1_0, rtsp_types::StatusCode::Ok)
            .header(TRANSPORT, transport)
            .empty()
    }

    #[test]
    fn request_values() {
        assert_eq!(
            request_value(Lower::Udp { rtp_port: 40000 }, 1),
            "RTP/AVP;unicast;client_port=40000-40001"
        );
        assert_eq!(
            request_value(Lower::Tcp, 1),
            "RTP/AVP/TCP;unicast;interleaved=2-3"
        );
    }

    #[test]
    fn dss_udp_reply() {
        let r = parse_reply(&reply(
            "RTP/AVP;unicast;source=127.0.0.1;client_port=40000-40001;server_port=6970-6971;ssrc=6A3C41E2",
        ))
        .unwrap();
        assert_eq!(r.ssrc, Some(0x6A3C41E2));
        assert_eq!(r.server_port, Some((6970, 6971)));
        assert_eq!(r.source.as_deref(), Some("127.0.0.1"));
        assert!(!r.tcp);
    }

    #[test]
    fn gst_tcp_reply() {
        let r = parse_reply(&reply(
            "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=1B0F2E33;mode=\"PLAY\"",
        ))
        .unwrap();
        assert_eq!(r.interleaved, Some((0, 1)));
        assert_eq!(r.ssrc, Some(0x1B0F2E33));
        assert!(r.tcp);
    }

    #[test]
    fn missing_ssrc_and_hostile_params() {
        let r = parse_reply(&reply("RTP/AVP;unicast;server_port=5000;dest_addr=\"\\\"")).unwrap();
        assert_eq!(r.ssrc, None);
        assert_eq!(r.server_port, Some((5000, 5001)));
    }

    #[test]
    fn errors() {
        let none = Response::builder(rtsp_types::Version::V1_0, rtsp_types::StatusCode::Ok).empty();
        assert_eq!(parse_reply(&none), Err(TransportError::Missing));
        assert!(matches!(
            parse_reply(&reply("RTP/AVP;ssrc=zz")),
            Err(TransportError::Unparsable(_))
        ));
    }
}
