//! A simulated-time harness for the sans-IO endpoint, as quinn-proto's
//! `Pair`: one shard's [`Endpoint`] with an in-memory catalog, a simulated
//! clock, and a recording client side (RTP packets and RTCP as they would
//! leave the shard). No socket, no thread, no wall clock: tests, fuzz
//! targets and benchmarks drive a shard exactly and repeatably.
//!
//! ```
//! use cadence_engine::sim::Sim;
//! use cadence_engine::catalog::MemoryCatalog;
//! use std::sync::Arc;
//! let mut sim = Sim::new(Arc::new(MemoryCatalog::new()));
//! let r = sim.request("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
//! assert_eq!(r.status(), rtsp_types::StatusCode::Ok);
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use rtsp_types::{Message, Request, Response};

use crate::catalog::Catalog;
use crate::endpoint::{request_ctx, Dispatch, Endpoint, EndpointConfig};
use crate::pacer::{OutPacket, PacketSink};
use crate::pipeline::Pipeline;
use crate::session::{ConnId, TrackTransport};

/// One RTP packet as the shard handed it to its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRtp {
    /// Simulated shard clock when it was sent, µs.
    pub at_us: u64,
    /// Destination: the UDP address, or `None` for interleaved.
    pub udp: Option<SocketAddr>,
    /// Interleaved RTP channel, for TCP.
    pub channel: Option<u8>,
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Marker bit.
    pub marker: bool,
    /// Payload bytes.
    pub payload_len: u32,
    /// Index of the track in the file.
    pub track_index: usize,
    /// Index of the packet in the track schedule.
    pub packet_index: usize,
}

/// One outgoing RTCP compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRtcp {
    /// Simulated shard clock when it was queued, µs.
    pub at_us: u64,
    /// Where it goes.
    pub transport: TrackTransport,
    /// The compound packet.
    pub bytes: Vec<u8>,
}

/// A [`PacketSink`] that records every packet (and refuses none).
#[derive(Debug, Default)]
pub struct Recorder {
    /// Packets, in send order.
    pub packets: Vec<SentRtp>,
    now_us: u64,
}

impl PacketSink for Recorder {
    fn emit(&mut self, p: &OutPacket<'_>) -> bool {
        let h = p.header;
        let (channel, rtp) = match p.transport {
            TrackTransport::Interleaved { .. } => (Some(h[1]), &h[4..]),
            TrackTransport::Udp { .. } => (None, h),
        };
        let udp = match p.transport {
            TrackTransport::Udp { rtp, .. } => Some(*rtp),
            TrackTransport::Interleaved { .. } => None,
        };
        self.packets.push(SentRtp {
            at_us: self.now_us,
            udp,
            channel,
            seq: u16::from_be_bytes([rtp[2], rtp[3]]),
            timestamp: u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]),
            ssrc: u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]),
            marker: rtp[1] & 0x80 != 0,
            payload_len: p.packet.payload_len,
            track_index: p.track_index,
            packet_index: p.packet_index,
        });
        true
    }
}

/// One shard in simulated time.
pub struct Sim {
    /// The endpoint under test.
    pub endpoint: Endpoint,
    /// Simulated shard clock, µs.
    pub now_us: u64,
    /// Simulated wall clock at shard clock 0, µs since the Unix epoch.
    pub unix_base_us: u64,
    /// RTP sent so far.
    pub rtp: Recorder,
    /// RTCP sent so far.
    pub rtcp: Vec<SentRtcp>,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// The client's RTSP connection.
    pub conn: ConnId,
}

impl Sim {
    /// Shard 0 over `catalog` with no extension, at clock 0.
    pub fn new(catalog: Arc<dyn Catalog>) -> Self {
        Sim::with_pipeline(catalog, Pipeline::new(), EndpointConfig::default())
    }

    /// A shard over `catalog` with `pipeline` and `config`.
    pub fn with_pipeline(
        catalog: Arc<dyn Catalog>,
        pipeline: Pipeline,
        config: EndpointConfig,
    ) -> Self {
        Sim {
            endpoint: Endpoint::new(config, catalog, pipeline, 7, 0),
            now_us: 0,
            unix_base_us: 1_700_000_000_000_000,
            rtp: Recorder::default(),
            rtcp: Vec::new(),
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            local: SocketAddr::from(([127, 0, 0, 1], 8554)),
            conn: ConnId {
                index: 1,
                generation: 1,
            },
        }
    }

    /// The simulated wall clock, µs since the Unix epoch.
    pub fn unix_us(&self) -> u64 {
        self.unix_base_us + self.now_us
    }

    /// Handles `request` at the current time and returns what the endpoint
    /// decided.
    pub fn dispatch(&mut self, request: Request<Vec<u8>>) -> Dispatch {
        let ctx = request_ctx(
            self.conn,
            self.peer,
            self.local,
            self.now_us,
            self.unix_us(),
            false,
        );
        let d = self.endpoint.handle(&ctx, request);
        self.collect_rtcp();
        d
    }

    /// Parses `text` as one request, handles it, and returns the response.
    /// Panics (a test failure) when it does not parse, or when the endpoint
    /// forwards or parks it.
    pub fn request(&mut self, text: &str) -> Response<Vec<u8>> {
        let request = parse_request(text.as_bytes());
        match self.dispatch(request) {
            Dispatch::Respond { response, .. } => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Advances the simulated clock by `us` in pacer ticks, running the
    /// pacer and the timers as the shard would, and records what is sent.
    pub fn advance(&mut self, us: u64) {
        let end = self.now_us + us;
        let tick = self.endpoint.config().tick_us.max(1);
        while self.now_us < end {
            self.now_us = (self.now_us + tick).min(end);
            self.step();
        }
    }

    /// One loop iteration at the current time: pacer tick, timers, RTCP.
    pub fn step(&mut self) {
        self.rtp.now_us = self.now_us;
        let unix = self.unix_us();
        self.endpoint.tick(self.now_us, unix, &mut self.rtp);
        self.endpoint.poll_timers(self.now_us, unix);
        self.collect_rtcp();
    }

    fn collect_rtcp(&mut self) {
        let now = self.now_us;
        let out = &mut self.rtcp;
        self.endpoint.drain_rtcp(|p| {
            out.push(SentRtcp {
                at_us: now,
                transport: p.transport,
                bytes: p.bytes().to_vec(),
            })
        });
    }
}

/// Parses one RTSP request from `bytes`. Panics (a test failure) when it is
/// not a complete request.
pub fn parse_request(bytes: &[u8]) -> Request<Vec<u8>> {
    match Message::<Vec<u8>>::parse(bytes) {
        Ok((Message::Request(r), _)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

/// The value of header `name` in `r`, or "".
pub fn header(r: &Response<Vec<u8>>, name: &str) -> String {
    r.headers()
        .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str().to_string())
        .unwrap_or_default()
}

/// The session ID of a SETUP response's `Session` header.
pub fn session_of(r: &Response<Vec<u8>>) -> String {
    header(r, "Session")
        .split(';')
        .next()
        .unwrap_or("")
        .to_string()
}
