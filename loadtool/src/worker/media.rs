//! The receive path: RTP and RTCP from the shared UDP sockets (recvmmsg
//! batches, demultiplexed by SSRC) and from interleaved TCP frames.

use std::os::fd::AsRawFd;

use rtp_types::RtpPacket;

use super::Worker;
use crate::hdrext::{self, ExtensionBlock};
use crate::net::timestamp;
use crate::net::udp::BATCH;
use crate::rtcp::{read_compound, RtcpEvent};
use crate::rtp::RtpHeader;

/// recvmmsg calls per readiness event before other sockets get a turn.
const BATCHES_PER_EVENT: usize = 16;

/// True when `data` looks like RTCP rather than RTP (RFC 5761 §4: packet
/// types 192–223 fall where RTP's marker bit and payload type would be).
#[inline]
fn is_rtcp(data: &[u8]) -> bool {
    data.len() >= 2 && (192..=223).contains(&data[1])
}

impl Worker {
    /// Reads every waiting datagram of pair `pair`'s RTP socket.
    pub(super) fn on_rtp_socket(&mut self, pair: usize) {
        let Some(p) = self.pairs.get(pair) else {
            return;
        };
        let fd = p.sockets.rtp.as_raw_fd();
        let pair16 = pair as u16;
        let mut muxed_rtcp: Vec<(Vec<u8>, u64)> = Vec::new();
        for _ in 0..BATCHES_PER_EVENT {
            let n = match self.rtp_batch.recv(fd) {
                Ok(n) => n,
                Err(_) => break,
            };
            let fallback_ns = if n > 0 { timestamp::realtime_ns() } else { 0 };
            for i in 0..n {
                let Some(d) = self.rtp_batch.get(i) else {
                    break;
                };
                let arrival = d.timestamp_ns.unwrap_or(fallback_ns);
                if is_rtcp(d.data) {
                    muxed_rtcp.push((d.data.to_vec(), arrival));
                    continue;
                }
                // Only the head of each datagram was copied: read the fixed
                // header; the length is the datagram's full length.
                let Some(h) = RtpHeader::read(d.data) else {
                    self.totals.malformed_rtp += 1;
                    continue;
                };
                let (ssrc, seq, ts, len) = (h.ssrc, h.sequence_number, h.timestamp, d.len);
                match self.demux.lookup(pair16, ssrc, d.source_port) {
                    Some((stream, learned)) => {
                        let m = &mut self.meta[stream as usize];
                        if learned {
                            m.ssrc = Some(ssrc);
                            m.source_port = None;
                        }
                        if m.stopped {
                            self.totals.after_stop += 1;
                            continue;
                        }
                        // The head holds the CSRCs and the start of the
                        // header extension (see hdrext on truncation).
                        let toffset = match m.toffset_id {
                            Some(id) => match hdrext::packet_toffset(d.data, d.len, id) {
                                Ok(o) => o,
                                Err(_) => {
                                    self.totals.bad_extension += 1;
                                    None
                                }
                            },
                            None => None,
                        };
                        self.record_rtp(stream as usize, seq, ts, toffset, len, arrival);
                    }
                    None if self.stopping => self.totals.after_stop += 1,
                    None => self.totals.unknown_ssrc += 1,
                }
            }
            if n < BATCH {
                break;
            }
        }
        for (data, arrival) in muxed_rtcp {
            self.on_udp_rtcp(pair16, &data, arrival);
        }
    }

    /// Counts one RTP packet of `stream` (timestamp `ts`, transmission time
    /// offset `toffset` in RTP ticks when it carried one): its statistics,
    /// the totals, and its lateness (or earliness) in the histograms of its
    /// media kind.
    #[inline]
    fn record_rtp(
        &mut self,
        stream: usize,
        seq: u16,
        ts: u32,
        toffset: Option<i32>,
        len: usize,
        arrival_ns: u64,
    ) {
        let late = self.streams[stream].on_rtp(seq, ts, toffset, len, arrival_ns);
        self.totals.packets += 1;
        self.totals.bytes += len as u64;
        if let Some(late) = late {
            let h = &mut self.by_kind[self.meta[stream].kind.index()];
            if late < 0 {
                self.totals.early_packets += 1;
                h.earliness.saturating_record(late.unsigned_abs());
            }
            let v = late.max(0) as u64;
            h.lateness.saturating_record(v);
            self.interval.saturating_record(v);
        }
    }

    /// Reads every waiting datagram of pair `pair`'s RTCP socket.
    pub(super) fn on_rtcp_socket(&mut self, pair: usize) {
        let Some(p) = self.pairs.get(pair) else {
            return;
        };
        let fd = p.sockets.rtcp.as_raw_fd();
        for _ in 0..BATCHES_PER_EVENT {
            let n = match self.rtcp_batch.recv(fd) {
                Ok(n) => n,
                Err(_) => break,
            };
            let mut packets = Vec::with_capacity(n);
            for i in 0..n {
                if let Some(d) = self.rtcp_batch.get(i) {
                    packets.push((
                        d.data.to_vec(),
                        d.timestamp_ns.unwrap_or_else(timestamp::realtime_ns),
                    ));
                }
            }
            for (data, arrival) in &packets {
                self.on_udp_rtcp(pair as u16, data, *arrival);
            }
            if n < BATCH {
                break;
            }
        }
    }

    fn on_udp_rtcp(&mut self, pair: u16, data: &[u8], arrival_ns: u64) {
        self.totals.rtcp_received += 1;
        let demux = &self.demux;
        let streams = &mut self.streams;
        let ok = read_compound(data, |event| match event {
            RtcpEvent::SenderReport { ssrc, ntp } => {
                if let Some(s) = demux.get(pair, ssrc) {
                    streams[s as usize].on_sender_report(ntp, arrival_ns);
                }
            }
            RtcpEvent::Bye { ssrc } => {
                if let Some(s) = demux.get(pair, ssrc) {
                    streams[s as usize].bye = true;
                }
            }
        });
        if !ok {
            self.totals.rtcp_malformed += 1;
        }
    }

    /// An interleaved frame of session `sid`.
    pub(super) fn on_interleaved(&mut self, sid: usize, channel: u8, data: &[u8], arrival_ns: u64) {
        let s = &self.sessions[sid];
        if s.t_stopped.is_some() {
            self.totals.after_stop += 1;
            return;
        }
        if let Some(r) = s.streams.iter().find(|r| r.rtp_channel == channel) {
            let stream = r.stream as usize;
            if is_rtcp(data) {
                self.on_stream_rtcp(stream, data, arrival_ns);
                return;
            }
            let Ok(packet) = RtpPacket::parse(data) else {
                self.totals.malformed_rtp += 1;
                return;
            };
            if self.meta[stream].ssrc.is_none() {
                self.meta[stream].ssrc = Some(packet.ssrc());
            }
            let toffset = match (self.meta[stream].toffset_id, packet.extension()) {
                (Some(id), Some((profile, data))) => {
                    let block = ExtensionBlock {
                        profile,
                        data,
                        truncated: false,
                    };
                    match hdrext::toffset(&block, id) {
                        Ok(o) => o,
                        Err(_) => {
                            self.totals.bad_extension += 1;
                            None
                        }
                    }
                }
                _ => None,
            };
            let (seq, ts) = (packet.sequence_number(), packet.timestamp());
            self.record_rtp(stream, seq, ts, toffset, data.len(), arrival_ns);
        } else if let Some(r) = s.streams.iter().find(|r| r.rtcp_channel == channel) {
            let stream = r.stream as usize;
            self.on_stream_rtcp(stream, data, arrival_ns);
        } else {
            self.totals.unknown_channel += 1;
        }
    }

    /// RTCP on a TCP stream's channel: SRs and BYEs about that stream.
    fn on_stream_rtcp(&mut self, stream: usize, data: &[u8], arrival_ns: u64) {
        self.totals.rtcp_received += 1;
        let ssrc = self.meta[stream].ssrc;
        let stats = &mut self.streams[stream];
        let ok = read_compound(data, |event| match event {
            RtcpEvent::SenderReport { ssrc: from, ntp } if ssrc.is_none_or(|s| s == from) => {
                stats.on_sender_report(ntp, arrival_ns);
            }
            RtcpEvent::Bye { ssrc: from } if ssrc.is_none_or(|s| s == from) => stats.bye = true,
            _ => {}
        });
        if !ok {
            self.totals.rtcp_malformed += 1;
        }
    }
}
