//! io_uring `user_data` encoding: which operation completed, on what.
//! Layout: tag (8 bits) | index (24 bits) | generation (32 bits).

use crate::session::ConnId;

/// What a completion belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Multishot accept on listener `index` (0: the RTSP listener; then the
    /// HTTP-tunnel listeners).
    Accept(u32),
    /// Receive on an RTSP connection.
    Recv(ConnId),
    /// Write (sendmsg) on an RTSP connection.
    Write(ConnId),
    /// UDP sendmsg from send slot `index`.
    Slot(u32),
    /// Receive on the RTCP socket into receive slot `index`.
    RtcpRecv(u32),
    /// A cancel request; its own completion is ignored.
    Cancel,
    /// The READ on the shard's wake-up eventfd.
    Wake,
}

const ACCEPT: u64 = 1;
const RECV: u64 = 2;
const WRITE: u64 = 3;
const SLOT: u64 = 4;
const RTCP_RECV: u64 = 5;
const CANCEL: u64 = 6;
const WAKE: u64 = 7;

impl Op {
    /// Encodes into a `user_data` value.
    pub fn encode(self) -> u64 {
        let (tag, index, generation) = match self {
            Op::Accept(i) => (ACCEPT, i, 0),
            Op::Recv(c) => (RECV, c.index, c.generation),
            Op::Write(c) => (WRITE, c.index, c.generation),
            Op::Slot(i) => (SLOT, i, 0),
            Op::RtcpRecv(i) => (RTCP_RECV, i, 0),
            Op::Cancel => (CANCEL, 0, 0),
            Op::Wake => (WAKE, 0, 0),
        };
        (tag << 56) | ((u64::from(index) & 0xff_ffff) << 32) | u64::from(generation)
    }

    /// Decodes a `user_data` value; `None` for an unknown tag.
    pub fn decode(v: u64) -> Option<Op> {
        let index = ((v >> 32) & 0xff_ffff) as u32;
        let generation = v as u32;
        Some(match v >> 56 {
            ACCEPT => Op::Accept(index),
            RECV => Op::Recv(ConnId { index, generation }),
            WRITE => Op::Write(ConnId { index, generation }),
            SLOT => Op::Slot(index),
            RTCP_RECV => Op::RtcpRecv(index),
            CANCEL => Op::Cancel,
            WAKE => Op::Wake,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for op in [
            Op::Accept(2),
            Op::Recv(ConnId {
                index: 0xff_fffe,
                generation: u32::MAX,
            }),
            Op::Write(ConnId {
                index: 7,
                generation: 9,
            }),
            Op::Slot(123),
            Op::RtcpRecv(63),
            Op::Cancel,
            Op::Wake,
        ] {
            assert_eq!(Op::decode(op.encode()), Some(op));
        }
        assert_eq!(Op::decode(0), None);
    }
}
