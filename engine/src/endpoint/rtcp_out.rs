//! Outgoing RTCP of a shard (RFC 3550 §6.4.1, §6.6), sans-IO: sender reports
//! while playing and BYE when a stream or session ends, written into a queue
//! of fixed-size packets that the shard drains and sends. The queue is
//! reused, so the steady state allocates nothing.

use crate::rtcp::{self, SenderInfo};
use crate::session::{Session, TrackTransport};

/// Largest RTCP compound packet we build, bytes (SR + SDES + BYE fit in 96).
pub const RTCP_MAX: usize = 128;

/// One outgoing RTCP compound packet and where it goes.
#[derive(Debug, Clone, Copy)]
pub struct RtcpPacket {
    /// The track's transport: the UDP RTCP address, or the interleaved RTCP
    /// channel of a connection (the shard adds the `$` framing).
    pub transport: TrackTransport,
    len: u8,
    buf: [u8; RTCP_MAX],
}

impl RtcpPacket {
    /// The compound packet's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// The outbox of RTCP packets waiting to be sent.
#[derive(Debug, Default)]
pub struct RtcpOutbox {
    queue: Vec<RtcpPacket>,
}

impl RtcpOutbox {
    /// Queues a sender report for every track of `s` (while playing), with
    /// RTP times mapped from the session's npt at shard clock `now_us`, and
    /// wall clock `unix_us` as the NTP time.
    pub fn sender_reports(&mut self, s: &Session, now_us: u64, unix_us: u64) {
        self.push_session(s, Some(now_us), unix_us, false);
    }

    /// Queues BYE (in an SR + SDES + BYE compound) for every track of `s`.
    pub fn bye(&mut self, s: &Session, unix_us: u64) {
        self.push_session(s, None, unix_us, true);
    }

    /// Hands every queued packet to `send`, in order, and empties the queue.
    pub fn drain(&mut self, mut send: impl FnMut(&RtcpPacket)) {
        for p in &self.queue {
            send(p);
        }
        self.queue.clear();
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// With `now` (a report), each RTP time is the one of the session's npt
    /// at shard clock `now`: every track maps the same npt to wall time (the
    /// pacing clock) and npt to RTP time by its presentation origin, so
    /// receivers line tracks up exactly, B-frames included. In trick play it
    /// is the play timeline of the timestamps sent, and the paused tracks
    /// send no report ([`Session::rtp_time_at`]). Without `now` (BYE), the
    /// last RTP time sent.
    fn push_session(&mut self, s: &Session, now: Option<u64>, unix_us: u64, bye: bool) {
        let ntp = rtcp::ntp_from_unix_us(unix_us);
        for (i, t) in s.tracks().iter().enumerate() {
            let rtp_time = match now {
                Some(now) if s.clock().is_some() => match s.rtp_time_at(i, now) {
                    Some(rtp_time) => rtp_time,
                    None => continue,
                },
                _ => t.last_rtp_time(),
            };
            let info = SenderInfo {
                ssrc: t.ssrc(),
                ntp,
                rtp_time,
                packets: t.packets_sent(),
                octets: t.octets_sent(),
            };
            let mut buf = [0u8; RTCP_MAX];
            let written = if bye {
                rtcp::write_bye(&info, &mut buf)
            } else {
                rtcp::write_sender_report(&info, &mut buf)
            };
            if let Some(n) = written {
                self.queue.push(RtcpPacket {
                    transport: *t.transport(),
                    len: n as u8,
                    buf,
                });
            }
        }
    }
}
