//! Sending the endpoint's outgoing RTCP: UDP packets from send slots on the
//! RTCP socket, interleaved ones `$`-framed on their connection's queue.

use std::os::fd::AsRawFd;

use super::conn::WriteItem;
use super::ops::Op;
use super::Shard;
use crate::session::TrackTransport;

impl Shard {
    /// Sends every RTCP packet the endpoint has queued.
    pub(super) fn send_rtcp(&mut self) {
        if self.endpoint.rtcp_pending() == 0 {
            return;
        }
        let fd = self.sockets.udp.rtcp.as_raw_fd();
        let (slots, driver, conns, stats) = (
            &mut self.slots,
            &mut self.driver,
            &mut self.conns,
            &mut self.stats,
        );
        self.endpoint.drain_rtcp(|p| match p.transport {
            TrackTransport::Udp { rtcp: dest, .. } => {
                match slots.fill(dest, p.bytes(), |_| Some(0)) {
                    Some((index, msg)) => driver.sendmsg(fd, msg, 0, Op::Slot(index)),
                    None => stats.rtcp_dropped += 1,
                }
            }
            TrackTransport::Interleaved {
                conn, rtcp_channel, ..
            } => {
                let bytes = p.bytes();
                let mut framed = Vec::with_capacity(4 + bytes.len());
                framed.push(b'$');
                framed.push(rtcp_channel);
                framed.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                framed.extend_from_slice(bytes);
                conns.enqueue(conn, WriteItem::Bytes(framed));
            }
        });
    }
}
