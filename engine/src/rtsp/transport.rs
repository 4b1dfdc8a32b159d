//! The SETUP `Transport` header (RFC 2326 §12.39): choosing an offered
//! transport we support, and writing the reply.

use std::net::{IpAddr, SocketAddr};

use rtsp_types::headers::transport::{RtpLowerTransport, RtpProfile, Transport, Transports};

/// A transport the client offered and we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// `RTP/AVP[/UDP];unicast;client_port=rtp-rtcp`.
    Udp {
        /// Client RTP port.
        rtp_port: u16,
        /// Client RTCP port (`rtp_port + 1` when the client gave one port).
        rtcp_port: u16,
        /// The `destination=` parameter, when the client asked for RTP to
        /// go elsewhere than its own address.
        destination: Option<String>,
    },
    /// `RTP/AVP/TCP;interleaved=rtp-rtcp`; `None` when the client left the
    /// channels to us.
    Interleaved(Option<(u8, u8)>),
}

/// Picks the first offered transport we support: unicast RTP/AVP over UDP with
/// a client_port, or over TCP interleaved. `None` means 461 Unsupported
/// Transport.
pub fn choose(offers: &Transports) -> Option<Offer> {
    offers.iter().find_map(|t| {
        let Transport::Rtp(rtp) = t else { return None };
        if rtp.profile != RtpProfile::Avp || rtp.params.multicast {
            return None;
        }
        match rtp.lower_transport {
            None | Some(RtpLowerTransport::Udp) => {
                let (rtp_port, rtcp) = rtp.params.client_port?;
                if rtp_port == 0 {
                    return None;
                }
                Some(Offer::Udp {
                    rtp_port,
                    rtcp_port: rtcp.unwrap_or(rtp_port.wrapping_add(1)),
                    destination: rtp.params.destination.clone(),
                })
            }
            Some(RtpLowerTransport::Tcp) => Some(Offer::Interleaved(
                rtp.params
                    .interleaved
                    .map(|(a, b)| (a, b.unwrap_or(a.wrapping_add(1)))),
            )),
            Some(RtpLowerTransport::Other(_)) => None,
        }
    })
}

/// Writes the reply `Transport` value for UDP: client and server ports, our
/// source address and the track's SSRC (8 hex digits).
pub fn udp_reply(
    client: SocketAddr,
    rtcp_port: u16,
    server_rtp: u16,
    source: IpAddr,
    ssrc: u32,
) -> String {
    format!(
        "RTP/AVP;unicast;client_port={}-{};server_port={}-{};source={};ssrc={:08X}",
        client.port(),
        rtcp_port,
        server_rtp,
        server_rtp.wrapping_add(1),
        source,
        ssrc
    )
}

/// Writes the reply `Transport` value for TCP interleaved channels.
pub fn interleaved_reply(rtp_channel: u8, rtcp_channel: u8, ssrc: u32) -> String {
    format!("RTP/AVP/TCP;unicast;interleaved={rtp_channel}-{rtcp_channel};ssrc={ssrc:08X}")
}
