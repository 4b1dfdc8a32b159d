//! RTSP over HTTP tunnels (QuickTime's scheme) and PROXY protocol headers
//! on a shard.
//!
//! A tunnel is two connections paired by their `x-sessioncookie`: a GET,
//! down which replies and interleaved data go, and a POST whose base64 body
//! carries the requests. With SO_REUSEPORT they can land on different
//! shards, so every cookie has a home shard (a keyed hash of the cookie)
//! whose registry pairs them, by message passing and without locks:
//! - the GET's shard answers `200 OK` and registers the GET with the home;
//! - the POST's shard cancels the POST's receive, then hands the POST's
//!   socket itself (descriptors are process-wide) and its body so far to the
//!   home, which forwards it to the GET's shard (at once, or once the GET
//!   registers);
//! - the GET's shard adopts the POST, decodes its body and answers on the
//!   GET. A client may open new POSTs during the session (QuickTime does).
//!
//! Unpaired halves expire (the registry's timeout); a GET that closes is
//! removed from its home's registry.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use super::conn::{Conn, Role};
use super::ip_limit::IpSlot;
use super::{Shard, ShardMsg};
use crate::pipeline::CloseReason;
use crate::proxy_protocol;
use crate::rtsp::framing::Limits;
use crate::session::ConnId;
use crate::tunnel::http::HttpRequestHead;
use crate::tunnel::{
    self, Cookie, CookieHasher, Expired, GetOutcome, PostBody, PostOutcome, TunnelRequest,
};

/// A tunnel POST travelling to the shard of its GET: its socket, its
/// per-address slot, its addresses and the body bytes received so far.
pub struct PostHandoff {
    fd: OwnedFd,
    slot: Option<IpSlot>,
    peer: SocketAddr,
    local: SocketAddr,
    body: Vec<u8>,
}

impl std::fmt::Debug for PostHandoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostHandoff")
            .field("fd", &self.fd.as_raw_fd())
            .field("peer", &self.peer)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Where a tunnel's GET half lives: shard and connection.
pub type GetAt = (usize, ConnId);

/// The pairing registry of the cookies a shard is home to.
pub type Registry = tunnel::TunnelRegistry<GetAt, PostHandoff>;

impl Shard {
    fn home_of(&self, cookie: &Cookie) -> usize {
        CookieHasher::process().home_shard(cookie, self.peers.len())
    }

    /// A connection's first message was an HTTP request head: start a
    /// tunnel half, or answer the HTTP error and close.
    pub(super) fn tunnel_head(&mut self, id: ConnId, head: HttpRequestHead, now: u64) {
        let request = match tunnel::classify(&head) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                self.write_to_conn(id, e.response_bytes(), true);
                return;
            }
        };
        match request {
            TunnelRequest::Get { cookie, .. } => {
                let Some(c) = self.conns.get_mut(id) else {
                    return;
                };
                c.role = Role::TunnelGet {
                    cookie: cookie.clone(),
                };
                // A fresh framer for what the client sends on the GET
                // connection after its head: interleaved RTCP (live555).
                let rest = c.framer.take_buffered();
                c.framer = Default::default();
                c.framer.push(&rest);
                self.write_to_conn(id, tunnel::get_response(), false);
                let home = self.home_of(&cookie);
                let at = (self.index, id);
                if home == self.index {
                    self.register_get(cookie, at, now);
                } else if let Some(h) = self.peers.get(home) {
                    h.send(ShardMsg::TunnelRegisterGet { cookie, at });
                }
            }
            TunnelRequest::Post { cookie, .. } => {
                let Some(c) = self.conns.get_mut(id) else {
                    return;
                };
                let body = c.framer.take_buffered();
                c.role = Role::HandingOff { cookie, body };
                if c.recv_pending() {
                    // Its descriptor moves once the receive has ended.
                    self.driver.cancel(super::ops::Op::Recv(id));
                } else {
                    self.finish_handoff(id, now);
                }
            }
        }
    }

    /// The POST's receive has ended: take it out of this shard and send it
    /// to its cookie's home.
    pub(super) fn finish_handoff(&mut self, id: ConnId, now: u64) {
        if self.conns.get(id).is_some_and(|c| c.busy()) {
            // A write still in flight: try again when it completes.
            return;
        }
        let Some(conn) = self.conns.take(id) else {
            return;
        };
        let (cookie, body) = match &conn.role {
            Role::HandingOff { cookie, body } => (cookie.clone(), body.clone()),
            _ => return,
        };
        let (fd, slot, peer, local) = conn.into_parts();
        let post = PostHandoff {
            fd,
            slot,
            peer,
            local,
            body,
        };
        let home = self.home_of(&cookie);
        if home == self.index {
            self.offer_post(cookie, post, now);
        } else if let Some(h) = self.peers.get(home) {
            h.send(ShardMsg::TunnelOfferPost { cookie, post });
        }
    }

    /// As the cookie's home: a GET registers.
    pub(super) fn register_get(&mut self, cookie: Cookie, at: GetAt, now: u64) {
        match self.tunnels.register_get(cookie, at, now) {
            Ok(GetOutcome::Registered) => {}
            Ok(GetOutcome::Paired { post }) => self.forward_post(at, post, now),
            Err(e) => {
                tracing::debug!(shard = self.index, error = %e, "tunnel GET refused");
                self.close_get(at, now);
            }
        }
    }

    /// As the cookie's home: a POST arrives.
    pub(super) fn offer_post(&mut self, cookie: Cookie, post: PostHandoff, now: u64) {
        match self.tunnels.offer_post(cookie, post, now) {
            Ok(PostOutcome::Forward { get, post }) => self.forward_post(get, post, now),
            Ok(PostOutcome::Waiting) => {}
            Err((e, post)) => {
                tracing::debug!(shard = self.index, error = %e, "tunnel POST refused");
                self.release_post(post);
            }
        }
    }

    /// As the cookie's home: a GET closed.
    pub(super) fn unregister_get(&mut self, cookie: &Cookie, at: GetAt) {
        self.tunnels.remove_get(cookie, &at);
    }

    /// This shard's GET `id` closed: tell its home.
    pub(super) fn tunnel_get_closed(&mut self, cookie: Cookie, id: ConnId) {
        let home = self.home_of(&cookie);
        let at = (self.index, id);
        if home == self.index {
            self.unregister_get(&cookie, at);
        } else if let Some(h) = self.peers.get(home) {
            h.send(ShardMsg::TunnelGetClosed { cookie, at });
        }
    }

    fn forward_post(&mut self, (shard, get): GetAt, post: PostHandoff, now: u64) {
        if shard == self.index {
            self.adopt_post(get, post, now);
        } else if let Some(h) = self.peers.get(shard) {
            h.send(ShardMsg::TunnelAdoptPost { get, post });
        }
    }

    fn close_get(&mut self, (shard, get): GetAt, now: u64) {
        if shard == self.index {
            self.close_conn(get, CloseReason::Disconnect, now);
        } else if let Some(h) = self.peers.get(shard) {
            h.send(ShardMsg::TunnelCloseGet { get });
        }
    }

    fn release_post(&mut self, post: PostHandoff) {
        if let Some(slot) = post.slot {
            self.conns.limiter().release(slot);
        }
        // Dropping the descriptor closes the POST connection.
    }

    /// As the GET's shard: the POST joins its GET, whose requests it carries.
    pub(super) fn adopt_post(&mut self, get: ConnId, post: PostHandoff, now: u64) {
        let alive = self
            .conns
            .get(get)
            .is_some_and(|c| !c.is_closing() && matches!(c.role, Role::TunnelGet { .. }));
        if !alive {
            self.release_post(post);
            return;
        }
        let mut conn = Conn::new(post.fd, 0, post.peer, post.local, post.slot, now, u64::MAX);
        let mut body = Box::new(PostBody::new(Limits::default()));
        if body.push(&post.body).is_err() {
            // Malformed from the start: dropping it closes the socket.
            if let Some(slot) = conn.take_ip_slot() {
                self.conns.limiter().release(slot);
            }
            return;
        }
        conn.role = Role::TunnelPost { body, get };
        conn.update_request_deadline(now, self.config.request_timeout_us);
        let Some(id) = self.conns.adopt(conn) else {
            return;
        };
        self.stats.tunnels += 1;
        self.process_input(id, now);
        self.arm_recv(id);
    }

    /// Ends unpaired tunnel halves past their timeout (as a home shard).
    pub(super) fn expire_tunnels(&mut self, now: u64) {
        if self.tunnels.next_deadline().is_none_or(|d| d > now) {
            return;
        }
        let mut expired = Vec::new();
        self.tunnels.expire(now, &mut expired);
        for e in expired {
            match e {
                Expired::Get { at, .. } => self.close_get(at, now),
                Expired::Post { post, .. } => self.release_post(post),
            }
        }
    }

    /// For a connection from a trusted proxy: parses its PROXY protocol
    /// header (v1 or v2) once complete, makes the address it carries the
    /// client's, and passes the rest of the input on. False while the header
    /// is incomplete, or when it was malformed (the connection is closed).
    pub(super) fn take_proxy_header(&mut self, id: ConnId, now: u64) -> bool {
        let Some(c) = self.conns.get_mut(id) else {
            return false;
        };
        let Some(header) = c.proxy_header.as_ref() else {
            return true;
        };
        match proxy_protocol::parse(header) {
            Ok(None) => false,
            Ok(Some((h, used))) => {
                let client = h.client_addr(c.peer());
                let rest = header[used..].to_vec();
                c.proxy_header = None;
                c.set_peer(client);
                c.framer.push(&rest);
                // The cap counts the real client, not the proxy.
                match self.conns.limiter().acquire(client.ip()) {
                    Some(slot) => {
                        if let Some(c) = self.conns.get_mut(id) {
                            c.set_ip_slot(slot);
                        }
                        true
                    }
                    None => {
                        self.stats.refused_per_ip += 1;
                        self.close_conn(id, CloseReason::Disconnect, now);
                        false
                    }
                }
            }
            Err(e) => {
                self.stats.malformed += 1;
                if let Some(suppressed) = self.refused_log.allow(now) {
                    tracing::warn!(shard = self.index, peer = %c.peer(), error = %e, suppressed, "bad PROXY protocol header from a trusted proxy; closing");
                }
                self.close_conn(id, CloseReason::Disconnect, now);
                false
            }
        }
    }
}
