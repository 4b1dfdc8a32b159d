//! One RTSP connection: its receive buffer and its ordered write queue.
//!
//! Everything written to a connection goes through one queue — RTSP
//! responses, and for TCP-interleaved sessions the `$`-framed RTP and RTCP
//! packets — with at most one SENDMSG in flight, so bytes never interleave
//! and a short write resumes exactly where it stopped. Queued RTP packets are
//! references into the schedule (header bytes + packet index), not copies of
//! the media; their payload iovecs point into the mapped file.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use cadence_hinting::FileSchedule;

use super::ip_limit::IpSlot;
use super::slots::segment_iovecs;
use crate::pacer::header::MAX_HEADER_LEN;
use crate::rtsp::framing::Framer;
use crate::session::ConnId;
use crate::tunnel::{Cookie, PostBody};

/// Most iovecs in one connection SENDMSG (below IOV_MAX = 1024).
pub const MAX_WRITE_IOV: usize = 512;

/// A queued write.
pub enum WriteItem {
    /// Owned bytes: an RTSP response, or an interleaved RTCP packet.
    Bytes(Vec<u8>),
    /// An interleaved RTP packet: framing + RTP header, then the schedule
    /// packet's segments.
    Rtp {
        /// Framing and RTP header bytes (`header[..header_len]`).
        header: [u8; MAX_HEADER_LEN],
        /// Header length.
        header_len: u8,
        /// The file the packet belongs to. The connection pins it
        /// ([`Conn::pin`]) for as long as anything is queued or in flight,
        /// so this pointer stays valid even after the session ended and the
        /// catalog dropped the file (it changed, or was evicted).
        file: *const FileSchedule,
        /// Track index in the file.
        track: u32,
        /// Packet index in the track schedule.
        packet: u32,
    },
}

impl WriteItem {
    /// Total bytes this item puts on the wire.
    fn len(&self) -> usize {
        match self {
            WriteItem::Bytes(b) => b.len(),
            WriteItem::Rtp {
                header_len,
                file,
                track,
                packet,
                ..
            } => {
                // SAFETY: see the `file` field: the catalog keeps it alive.
                let file = unsafe { &**file };
                let payload = file
                    .tracks
                    .get(*track as usize)
                    .and_then(|t| t.packets.get(*packet as usize))
                    .map(|p| p.payload_len as usize)
                    .unwrap_or(0);
                *header_len as usize + payload
            }
        }
    }
}

struct WriteBuf {
    msg: libc::msghdr,
    iov: Vec<libc::iovec>,
    headers: Vec<[u8; MAX_HEADER_LEN]>,
}

/// What a connection carries.
pub enum Role {
    /// RTSP requests and interleaved data (the usual).
    Rtsp,
    /// The server→client half of an RTSP-over-HTTP tunnel: replies and
    /// interleaved data go down it. Of its own input after the GET, only
    /// `$` frames are read, as interleaved RTCP: live555's `RTSPClient`
    /// (openRTSP, VLC) sends its receiver reports there, not in the POST.
    TunnelGet {
        /// The `x-sessioncookie` pairing it with its POSTs.
        cookie: Cookie,
    },
    /// The client→server half of a tunnel: its body is base64 RTSP, whose
    /// requests are answered on the GET connection `get`.
    TunnelPost {
        /// The decoder of the body.
        body: Box<PostBody>,
        /// The GET connection of the tunnel (on this shard).
        get: ConnId,
    },
    /// A POST on its way to the shard of its GET: waiting for its receive
    /// to be cancelled before its descriptor moves.
    HandingOff {
        /// The cookie.
        cookie: Cookie,
        /// Body bytes received so far (still base64).
        body: Vec<u8>,
    },
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Reading and answering requests.
    Open,
    /// A request of this connection waits for its file to be compiled; later
    /// input waits in the receive buffer, so replies keep their order.
    Parked,
    /// Answered with an error that ends the connection: closes once the
    /// write queue has drained; input is ignored.
    Draining,
    /// Closing: no new operations; freed when nothing is in flight.
    Closing,
}

/// An RTSP connection: its socket, addresses, receive buffer and ordered
/// write queue.
pub struct Conn {
    fd: OwnedFd,
    generation: u32,
    peer: SocketAddr,
    local: SocketAddr,
    state: ConnState,
    /// Splits the received bytes into RTSP messages, interleaved frames and
    /// (first) an HTTP tunnel head; holds no memory between messages.
    pub framer: Framer,
    /// What the connection is for.
    pub role: Role,
    /// While a PROXY protocol header is expected from this (trusted) peer:
    /// the bytes received so far.
    pub proxy_header: Option<Vec<u8>>,
    recv_pending: bool,
    write_pending: bool,
    dirty: bool,
    queue: VecDeque<WriteItem>,
    /// Bytes of the front item already written.
    front_sent: usize,
    queued_bytes: usize,
    wbuf: Option<Box<WriteBuf>>,
    /// Files referenced by queued RTP items (see [`Conn::pin`]).
    pins: Vec<Arc<FileSchedule>>,
    /// An interleaved RTP packet was queued on this connection once: its
    /// write queue and SENDMSG buffers stay allocated between writes (no
    /// allocation per packet). Without one (RTSP replies only, the usual
    /// UDP session), they are freed whenever the queue drains.
    carries_rtp: bool,
    /// The per-address slot this connection holds.
    ip_slot: Option<IpSlot>,
    /// Shard clock of accept, µs.
    accepted_us: u64,
    /// Shard clock of the last input, µs.
    last_input_us: u64,
    /// Shard clock by which the connection must complete a request, µs:
    /// set at accept and when a request starts arriving, cleared when the
    /// input buffer holds no partial request.
    request_deadline_us: Option<u64>,
}

impl Conn {
    /// A new open connection, accepted at shard clock `now_us`, that must
    /// send a complete request by `request_deadline_us`.
    pub fn new(
        fd: OwnedFd,
        generation: u32,
        peer: SocketAddr,
        local: SocketAddr,
        ip_slot: Option<IpSlot>,
        now_us: u64,
        request_deadline_us: u64,
    ) -> Self {
        Conn {
            ip_slot,
            accepted_us: now_us,
            last_input_us: now_us,
            request_deadline_us: Some(request_deadline_us),
            fd,
            generation,
            peer,
            local,
            state: ConnState::Open,
            framer: Framer::default(),
            role: Role::Rtsp,
            proxy_header: None,
            recv_pending: false,
            write_pending: false,
            dirty: false,
            queue: VecDeque::new(),
            front_sent: 0,
            queued_bytes: 0,
            wbuf: None,
            pins: Vec::new(),
            carries_rtp: false,
        }
    }

    /// The socket and what moves with it to another shard: the per-address
    /// slot and the addresses (a tunnel POST joining its GET).
    pub fn into_parts(self) -> (OwnedFd, Option<IpSlot>, SocketAddr, SocketAddr) {
        (self.fd, self.ip_slot, self.peer, self.local)
    }

    /// Takes the per-address slot (to give it back on close).
    pub fn take_ip_slot(&mut self) -> Option<IpSlot> {
        self.ip_slot.take()
    }

    /// Shard clock of accept, µs.
    pub fn accepted_us(&self) -> u64 {
        self.accepted_us
    }

    /// Shard clock of the last input, µs.
    pub fn last_input_us(&self) -> u64 {
        self.last_input_us
    }

    /// Shard clock by which a pending request must be complete, µs.
    pub fn request_deadline_us(&self) -> Option<u64> {
        self.request_deadline_us
    }

    /// The connection whose RTSP sessions this one (`id`) serves: the GET
    /// half for a tunnel's POST, whose requests are answered there, else `id`
    /// itself. A POST can be silent for minutes while its session plays
    /// (live555 sends its receiver reports on the GET), so the idle sweep and
    /// descriptor shedding must ask about the GET's sessions.
    pub fn session_conn(&self, id: ConnId) -> ConnId {
        match &self.role {
            Role::TunnelPost { get, .. } => *get,
            _ => id,
        }
    }

    /// Records input at `now_us`.
    pub fn input_at(&mut self, now_us: u64) {
        self.last_input_us = now_us;
    }

    /// After the input was processed at `now_us`: a partial request must be
    /// complete within `request_timeout_us` of when it started arriving.
    pub fn update_request_deadline(&mut self, now_us: u64, request_timeout_us: u64) {
        if self.framer.buffered() == 0 {
            self.request_deadline_us = None;
        } else if self.request_deadline_us.is_none() {
            self.request_deadline_us = Some(now_us.saturating_add(request_timeout_us));
        }
    }

    /// Raw descriptor.
    pub fn raw_fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// Slab generation.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Sets the slab generation (a connection adopted from another shard).
    pub fn set_generation(&mut self, generation: u32) {
        self.generation = generation;
    }

    /// Client address (after PROXY protocol, when used).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sets the client address (from a PROXY protocol header).
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = peer;
    }

    /// Counts the connection against a per-address slot (after PROXY).
    pub fn set_ip_slot(&mut self, slot: IpSlot) {
        self.ip_slot = Some(slot);
    }

    /// Our address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnState {
        self.state
    }

    /// Moves to `state`; a closing connection stays closing.
    pub fn set_state(&mut self, state: ConnState) {
        if self.state != ConnState::Closing {
            self.state = state;
        }
    }

    /// True once closing started.
    pub fn is_closing(&self) -> bool {
        self.state == ConnState::Closing
    }

    /// True when new data may be queued (not closing).
    pub fn writable(&self) -> bool {
        self.state != ConnState::Closing
    }

    /// True when an operation is in flight.
    pub fn busy(&self) -> bool {
        self.recv_pending || self.write_pending
    }

    /// True when the multishot RECV is armed.
    pub fn recv_pending(&self) -> bool {
        self.recv_pending
    }

    /// Records whether the multishot RECV is armed.
    pub fn set_recv_pending(&mut self, pending: bool) {
        self.recv_pending = pending;
    }

    /// Records that the in-flight SENDMSG failed (nothing more was written).
    pub fn write_failed(&mut self) {
        self.write_pending = false;
    }

    /// Marks the connection as listed for flushing; false when it already was.
    pub fn mark_dirty(&mut self) -> bool {
        !std::mem::replace(&mut self.dirty, true)
    }

    /// Clears the to-flush mark.
    pub fn clear_dirty(&mut self) {
        self.dirty = false;
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// True when nothing is queued or in flight for writing.
    pub fn write_idle(&self) -> bool {
        !self.write_pending && self.queue.is_empty()
    }

    /// Keeps `file` alive while this connection's queue references it:
    /// an atomic increment only when the file differs from the last one
    /// pinned (once per connection in practice), never per packet.
    pub fn pin(&mut self, file: &Arc<FileSchedule>) {
        if !self.pins.iter().any(|p| Arc::ptr_eq(p, file)) {
            self.pins.push(file.clone());
        }
    }

    /// Queues `item`.
    pub fn enqueue(&mut self, item: WriteItem) {
        self.carries_rtp |= matches!(item, WriteItem::Rtp { .. });
        self.queued_bytes += item.len();
        self.queue.push_back(item);
    }

    /// Builds the next SENDMSG from the queue; `None` when a write is in flight
    /// or nothing is queued. The returned msghdr stays valid until
    /// [`Conn::wrote`] is called.
    pub fn prepare_write(&mut self) -> Option<*const libc::msghdr> {
        if self.write_pending || self.queue.is_empty() {
            return None;
        }
        let wbuf = self.wbuf.get_or_insert_with(|| {
            Box::new(WriteBuf {
                // SAFETY: all-zero msghdr is valid.
                msg: unsafe { std::mem::zeroed() },
                iov: Vec::new(),
                headers: Vec::new(),
            })
        });
        wbuf.iov.clear();
        wbuf.headers.clear();
        let rtp_items = self
            .queue
            .iter()
            .take(MAX_WRITE_IOV)
            .filter(|i| matches!(i, WriteItem::Rtp { .. }))
            .count();
        // Reserve first: pointers into `headers` must not move while building.
        wbuf.headers.reserve(rtp_items);
        let mut skip = self.front_sent;
        let mut scratch = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 1 + cadence_hinting::MAX_SEGMENTS_PER_PACKET];
        for item in self.queue.iter() {
            let n = match item {
                WriteItem::Bytes(b) => {
                    scratch[0] = libc::iovec {
                        iov_base: b.as_ptr() as *mut libc::c_void,
                        iov_len: b.len(),
                    };
                    1
                }
                WriteItem::Rtp {
                    header,
                    header_len,
                    file,
                    track,
                    packet,
                } => {
                    if wbuf.headers.len() == wbuf.headers.capacity() {
                        break;
                    }
                    wbuf.headers.push(*header);
                    let h = wbuf
                        .headers
                        .last()
                        .map(|h| h.as_ptr())
                        .unwrap_or(std::ptr::null());
                    scratch[0] = libc::iovec {
                        iov_base: h as *mut libc::c_void,
                        iov_len: *header_len as usize,
                    };
                    // SAFETY: see `WriteItem::Rtp::file`.
                    let file = unsafe { &**file };
                    file.tracks
                        .get(*track as usize)
                        .and_then(|t| {
                            let p = t.packets.get(*packet as usize)?;
                            segment_iovecs(file, t, t.segments_of(p), &mut scratch, 1)
                        })
                        .unwrap_or(1)
                }
            };
            if wbuf.iov.len() + n > MAX_WRITE_IOV {
                break;
            }
            for v in &scratch[..n] {
                if skip >= v.iov_len {
                    skip -= v.iov_len;
                    continue;
                }
                // SAFETY: skip < iov_len, so the advanced pointer stays in range.
                let base = unsafe { (v.iov_base as *mut u8).add(skip) };
                wbuf.iov.push(libc::iovec {
                    iov_base: base as *mut libc::c_void,
                    iov_len: v.iov_len - skip,
                });
                skip = 0;
            }
        }
        if wbuf.iov.is_empty() {
            return None;
        }
        wbuf.msg.msg_iov = wbuf.iov.as_mut_ptr();
        wbuf.msg.msg_iovlen = wbuf.iov.len();
        self.write_pending = true;
        Some(&wbuf.msg as *const libc::msghdr)
    }

    /// Accounts a completed write of `n` bytes: drops fully written items and
    /// remembers how far into the next one the kernel got.
    pub fn wrote(&mut self, n: usize) {
        self.write_pending = false;
        self.queued_bytes = self.queued_bytes.saturating_sub(n);
        let mut left = n + self.front_sent;
        while let Some(front) = self.queue.front() {
            let len = front.len();
            if left >= len {
                left -= len;
                self.queue.pop_front();
            } else {
                break;
            }
        }
        self.front_sent = if self.queue.is_empty() { 0 } else { left };
        if self.queue.is_empty() && !self.pins.is_empty() {
            // Nothing references the pinned files any more.
            self.pins.clear();
        }
        if self.queue.is_empty() && !self.carries_rtp {
            // Between the requests of a connection that carries no media
            // (one per UDP session, open for the session's life), hold no
            // write buffers: about 400 bytes per connection.
            self.queue = VecDeque::new();
            self.wbuf = None;
        }
    }

    /// Heap bytes the write side holds while idle (queue storage, SENDMSG
    /// buffers, pins), for tests and statistics.
    pub fn write_buffer_capacity(&self) -> usize {
        self.queue.capacity() * std::mem::size_of::<WriteItem>()
            + self.pins.capacity() * std::mem::size_of::<Arc<FileSchedule>>()
            + self.wbuf.as_ref().map_or(0, |w| {
                std::mem::size_of::<WriteBuf>()
                    + w.iov.capacity() * std::mem::size_of::<libc::iovec>()
                    + w.headers.capacity() * MAX_HEADER_LEN
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        let fd = OwnedFd::from(std::fs::File::open("/dev/null").expect("/dev/null"));
        let addr = SocketAddr::from(([127, 0, 0, 1], 8554));
        Conn::new(fd, 1, addr, addr, None, 0, 1_000_000)
    }

    /// One reply written in two parts; returns the write side's idle heap.
    fn write_reply(c: &mut Conn, reply: &[u8]) -> usize {
        c.enqueue(WriteItem::Bytes(reply.to_vec()));
        assert!(c.prepare_write().is_some());
        assert!(c.write_buffer_capacity() > 0, "buffers while writing");
        c.wrote(3);
        assert!(!c.write_idle());
        assert!(c.prepare_write().is_some());
        c.wrote(reply.len() - 3);
        assert!(c.write_idle());
        c.write_buffer_capacity()
    }

    #[test]
    fn rtsp_only_connection_holds_no_write_buffers_between_replies() {
        let mut c = conn();
        for _ in 0..3 {
            assert_eq!(
                write_reply(&mut c, b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n"),
                0
            );
        }
        assert_eq!(c.queued_bytes(), 0);
    }

    #[test]
    fn connection_that_carried_rtp_keeps_its_buffers() {
        let mut c = conn();
        // An interleaved packet whose file is not known (payload length 0)
        // marks the connection; only its 4 header bytes are written.
        let map = memmap2::MmapMut::map_anon(1)
            .and_then(|m| m.make_read_only())
            .expect("anonymous map");
        let file = Arc::new(FileSchedule {
            map: Arc::new(map),
            session_sdp: None,
            tracks: Vec::new(),
            duration_us: 0,
        });
        c.pin(&file);
        c.enqueue(WriteItem::Rtp {
            header: [0x24; MAX_HEADER_LEN],
            header_len: 4,
            file: Arc::as_ptr(&file),
            track: 9,
            packet: 0,
        });
        assert!(c.prepare_write().is_some());
        c.wrote(4);
        assert!(c.write_idle());
        assert!(
            write_reply(&mut c, b"RTSP/1.0 200 OK\r\nCSeq: 2\r\n\r\n") > 0,
            "kept for the next packets"
        );
    }
}
