//! Request routing on a shard: a connection's input becomes requests (and
//! interleaved RTCP), each request goes through the endpoint, and its
//! [`Dispatch`] is carried out: the response is written (on this shard's
//! connection, or sent back to the shard that forwarded the request), the
//! request is forwarded to the shard owning its session, or it is parked
//! until its file is compiled, holding back the connection's later input so
//! replies keep their order.

use rtsp_types::{Request, StatusCode};

use super::conn::{ConnState, Role, WriteItem};
use super::{unix_now_us, CompileJob, Parked, Shard, ShardMsg};
use crate::endpoint::{request_ctx, Dispatch};
use crate::rtcp;
use crate::rtsp::framing::{self, Frame};
use crate::rtsp::response;
use crate::rtsp::RequestCtx;
use crate::session::ConnId;

impl Shard {
    /// Handles every complete unit of input buffered on connection `id`
    /// (an RTSP connection, or the POST half of a tunnel, whose requests are
    /// answered on its GET half, or the GET half, whose `$` frames are the
    /// client's RTCP).
    pub(super) fn process_input(&mut self, id: ConnId, now: u64) {
        loop {
            let Some(c) = self.conns.get_mut(id) else {
                return;
            };
            match c.state() {
                ConnState::Closing | ConnState::Draining => {
                    c.framer = Default::default();
                    return;
                }
                ConnState::Parked => {
                    // A request of this connection waits for its file.
                    let held = c.framer.buffered()
                        + match &c.role {
                            Role::TunnelPost { body, .. } => body.buffered(),
                            _ => 0,
                        };
                    if held > 4 * framing::MAX_MESSAGE {
                        tracing::info!(shard = self.index, peer = %c.peer(), "too much input while a request waits; closing");
                        self.close_conn(id, crate::pipeline::CloseReason::Disconnect, now);
                    }
                    return;
                }
                ConnState::Open => {}
            }
            // Where replies go: this connection, or the tunnel's GET half.
            let (frame, reply_conn) = match &mut c.role {
                Role::Rtsp => (c.framer.next_frame(), id),
                Role::TunnelPost { body, get } => (body.next_frame(), *get),
                Role::TunnelGet { .. } => {
                    match c.framer.next_frame() {
                        None => return,
                        Some(Frame::Data { payload, .. }) => {
                            if rtcp::looks_like_rtcp(&payload) {
                                let ok = self.endpoint.on_rtcp(&payload, now);
                                self.stats.count_rtcp(ok);
                            }
                        }
                        // Requests and responses belong in the POST.
                        Some(Frame::Request(_) | Frame::Response) => {}
                        // Anything else: dropped, and the framing starts
                        // over with the next input.
                        Some(_) => {
                            c.framer = Default::default();
                            return;
                        }
                    }
                    continue;
                }
                Role::HandingOff { .. } => return,
            };
            let Some(frame) = frame else {
                return;
            };
            let Some((peer, local)) = self.conns.get(reply_conn).map(|r| (r.peer(), r.local()))
            else {
                // The tunnel's GET half is gone: so is the tunnel.
                self.close_conn(id, crate::pipeline::CloseReason::Disconnect, now);
                return;
            };
            match frame {
                Frame::Request(req) => {
                    let ctx = request_ctx(reply_conn, peer, local, now, unix_now_us(), false);
                    self.handle_request(ctx, req, None, id);
                }
                Frame::Data { payload, .. } => {
                    if rtcp::looks_like_rtcp(&payload) {
                        let ok = self.endpoint.on_rtcp(&payload, now);
                        self.stats.count_rtcp(ok);
                    }
                }
                Frame::Response => {}
                Frame::Http(head) => {
                    self.tunnel_head(id, head, now);
                    return;
                }
                Frame::HttpUnsupported(head) => {
                    let bytes = match crate::tunnel::classify(&head) {
                        Err(e) => e.response_bytes(),
                        Ok(_) => crate::tunnel::TunnelError::MethodNotAllowed.response_bytes(),
                    };
                    self.stats.malformed += 1;
                    self.write_to_conn(id, bytes, true);
                    return;
                }
                Frame::Malformed(rejection) => {
                    tracing::debug!(shard = self.index, %peer, status = rejection.status(), "malformed RTSP input; closing");
                    self.stats.malformed += 1;
                    if reply_conn == id {
                        self.write_to_conn(id, rejection.response_bytes(), true);
                    } else {
                        self.close_conn(id, crate::pipeline::CloseReason::Disconnect, now);
                    }
                    return;
                }
            }
        }
    }

    /// Handles a request, local or forwarded. `reply_to` is the originating
    /// shard of a forwarded request.
    /// `source` is the connection whose input the request came from (the
    /// POST half of a tunnel, or `ctx.conn`), held back while the request
    /// waits for its file.
    pub(super) fn handle_request(
        &mut self,
        ctx: RequestCtx,
        req: Request<Vec<u8>>,
        reply_to: Option<usize>,
        source: ConnId,
    ) {
        let dispatch = self.endpoint.handle(&ctx, req);
        self.carry_out(ctx, dispatch, reply_to, source);
    }

    fn carry_out(
        &mut self,
        ctx: RequestCtx,
        dispatch: Dispatch,
        reply_to: Option<usize>,
        source: ConnId,
    ) {
        match dispatch {
            Dispatch::Respond { response, close } => {
                let bytes = response::serialize(&response);
                self.send_response(ctx.conn, bytes, close, reply_to);
            }
            Dispatch::Forward { shard, request } => self.forward(ctx, shard, request, reply_to),
            Dispatch::Defer { path, parked } => self.park(ctx, parked, reply_to, path, source),
        }
    }

    fn forward(
        &mut self,
        ctx: RequestCtx,
        owner: usize,
        request: Request<Vec<u8>>,
        reply_to: Option<usize>,
    ) {
        let cseq = request
            .header(&rtsp_types::headers::CSEQ)
            .map(|v| v.as_str().trim().to_string());
        if let Some(tx) = self.peers.get(owner) {
            let msg = ShardMsg::Request {
                from: self.index,
                conn: ctx.conn,
                peer: ctx.peer,
                local: ctx.local,
                request: Box::new(request),
            };
            if tx.send(msg) {
                self.stats.forwarded += 1;
                return;
            }
        }
        // No such shard: the session cannot exist.
        let mut r = response::refusal(StatusCode::SessionNotFound);
        response::finish(&mut r, cseq.as_deref());
        self.send_response(ctx.conn, response::serialize(&r), false, reply_to);
    }

    /// Parks a request until `path` is compiled; a local connection stops
    /// reading requests meanwhile, so that replies keep their order.
    fn park(
        &mut self,
        ctx: RequestCtx,
        parked: crate::endpoint::Parked,
        reply_to: Option<usize>,
        path: String,
        source: ConnId,
    ) {
        if reply_to.is_none() {
            if let Some(c) = self.conns.get_mut(source) {
                c.set_state(ConnState::Parked);
            }
        }
        if !self.compiling.contains(&path) {
            let job = CompileJob {
                path: path.clone(),
                shard: self.index,
            };
            if self.compiler.send(job).is_err() {
                let now = self.now();
                if let Some(suppressed) = self.fault_log.allow(now) {
                    tracing::error!(shard = self.index, suppressed, "compile thread is gone");
                }
            }
            self.compiling.push(path.clone());
        }
        self.parked.push(Parked {
            ctx,
            parked,
            reply_to,
            path,
            source,
        });
    }

    /// Handles the requests parked for `path`, in arrival order, and resumes
    /// their connections.
    pub(super) fn compiled(&mut self, path: &str, now: u64) {
        self.compiling.retain(|p| p != path);
        let (ready, waiting): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|p| p.path == path);
        self.parked = waiting;
        for p in ready {
            let mut ctx = p.ctx;
            ctx.now_us = now;
            ctx.unix_us = unix_now_us();
            let local = p.reply_to.is_none();
            if local {
                if let Some(c) = self.conns.get_mut(p.source) {
                    c.set_state(ConnState::Open);
                }
            }
            let dispatch = self.endpoint.resume(&ctx, p.parked);
            self.carry_out(ctx, dispatch, p.reply_to, p.source);
            if local
                && self
                    .conns
                    .get(p.source)
                    .is_some_and(|c| c.state() == ConnState::Open)
            {
                self.process_input(p.source, now);
            }
        }
    }

    fn send_response(
        &mut self,
        conn: ConnId,
        bytes: Vec<u8>,
        close: bool,
        reply_to: Option<usize>,
    ) {
        match reply_to {
            Some(shard) if shard != self.index => {
                if let Some(tx) = self.peers.get(shard) {
                    tx.send(ShardMsg::Response { conn, bytes, close });
                }
            }
            _ => self.write_to_conn(conn, bytes, close),
        }
    }

    /// Queues `bytes` on connection `conn`; with `close`, the connection is
    /// closed once its queue has drained and its input is ignored.
    pub(super) fn write_to_conn(&mut self, conn: ConnId, bytes: Vec<u8>, close: bool) {
        if !self.conns.enqueue(conn, WriteItem::Bytes(bytes)) {
            return;
        }
        if close {
            if let Some(c) = self.conns.get_mut(conn) {
                c.set_state(ConnState::Draining);
                c.framer = Default::default();
            }
        }
    }
}
