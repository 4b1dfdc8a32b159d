//! Session life in a worker: connect, request/response over a non-blocking
//! RTSP connection, stream registration, keep-alives, RTCP receiver reports,
//! TEARDOWN, failures.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtsp_types::Response;

use super::{token, Worker, KIND_SESSION, NO_DATA_AFTER};
use crate::churn::{Churn, Ending};
use crate::failure::Cause;
use crate::net::epoll::{READ, WRITE};
use crate::net::{tcp, timestamp};
use crate::plan::{ClientPlan, Transport};
use crate::record::FailureRecord;
use crate::rtsp::{
    next_frame, Client, ClientError, Frame, Lower, Phase, RtpInfoEntry, TransportReply,
};

/// Reads per readiness event before other sockets get a turn.
const READS_PER_EVENT: usize = 16;

/// Life of a session in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Waiting for its ramp time.
    Waiting,
    /// Connecting or between OPTIONS and the PLAY reply.
    Setup,
    /// PLAY answered; counting packets.
    Playing,
    /// Counting ended; TEARDOWN sent.
    Stopping,
    /// Torn down.
    Done,
    /// Failed (see `failure`).
    Failed,
    /// The run ended before its ramp time.
    NotStarted,
}

/// A stream of a session, as the session sees it.
#[derive(Debug, Clone)]
pub(super) struct StreamRef {
    pub stream: u32,
    pub control: String,
    pub media: String,
    /// Where RTCP receiver reports go (UDP).
    pub rtcp_dest: Option<SocketAddr>,
    /// Interleaved channels (TCP).
    pub rtp_channel: u8,
    pub rtcp_channel: u8,
    /// Sequence number the PLAY reply's RTP-Info announced.
    pub rtp_info_seq: Option<u16>,
}

/// The RTSP control connection.
#[derive(Debug)]
pub(super) struct Conn {
    pub stream: TcpStream,
    pub connecting: bool,
    /// Bytes waiting to be written.
    pub out: Vec<u8>,
    /// Start of a frame whose end has not arrived yet.
    pub inbuf: Vec<u8>,
    /// Registered epoll events.
    pub interest: u32,
}

/// One client in a worker.
#[derive(Debug)]
pub(super) struct Session {
    pub plan: ClientPlan,
    pub client: Option<Client>,
    pub conn: Option<Conn>,
    pub state: State,
    pub pair: Option<u16>,
    pub streams: Vec<StreamRef>,
    pub t_connect: Option<Instant>,
    pub t_playing: Option<Instant>,
    pub t_stopped: Option<Instant>,
    /// Time by which the pending connect or request must be answered.
    pub deadline: Option<Instant>,
    pub next_rr: Instant,
    pub next_keepalive: Instant,
    pub failure: Option<FailureRecord>,
    pub own_ssrc: u32,
    pub reconnects: u32,
    /// True once counted in the `settled` gauge.
    pub settled: bool,
    /// Churn mode: play time drawn for this session, and how it ends.
    pub lifetime: Option<Duration>,
    pub ending: Ending,
    /// Churn mode: when the lifetime ends (set at the PLAY reply).
    pub ends_at: Option<Instant>,
    /// Churn mode: how it ended once its lifetime was reached.
    pub ended: Option<Ending>,
    /// Churn mode: a successor was queued for its slot.
    pub succeeded: bool,
    /// Churn mode: its record was taken and its slot freed.
    pub recorded: bool,
}

impl Session {
    /// A session of `plan`; with `churn`, its lifetime and ending are drawn
    /// from its slot and generation.
    pub fn new(plan: ClientPlan, churn: Option<&Churn>) -> Self {
        let now = Instant::now();
        let (lifetime, ending) = match churn {
            Some(c) => {
                let (l, e) = c.draw(plan.slot, plan.generation);
                (Some(l), e)
            }
            None => (None, Ending::Teardown),
        };
        Self {
            plan,
            client: None,
            conn: None,
            state: State::Waiting,
            pair: None,
            streams: Vec::new(),
            t_connect: None,
            t_playing: None,
            t_stopped: None,
            deadline: None,
            next_rr: now,
            next_keepalive: now,
            failure: None,
            own_ssrc: rand::random(),
            reconnects: 0,
            settled: false,
            lifetime,
            ending,
            ends_at: None,
            ended: None,
            succeeded: false,
            recorded: false,
        }
    }

    /// The phase a failure is attributed to.
    pub fn phase_name(&self) -> &'static str {
        if self.conn.as_ref().is_some_and(|c| c.connecting) {
            return "connect";
        }
        match self.client.as_ref().map(Client::phase) {
            None | Some(Phase::Idle) => "connect",
            Some(Phase::Options) => "OPTIONS",
            Some(Phase::Describe) => "DESCRIBE",
            Some(Phase::Setup(_)) => "SETUP",
            Some(Phase::Play) => "PLAY",
            Some(Phase::Playing) => "playing",
            Some(Phase::Teardown) | Some(Phase::Done) => "TEARDOWN",
        }
    }
}

impl Worker {
    pub(super) fn start_session(&mut self, sid: usize, now: Instant) {
        let (transport, v6) = {
            let s = &self.sessions[sid];
            (s.plan.transport, s.plan.server.is_ipv6())
        };
        let lower = match transport {
            Transport::Udp => match self.pick_pair(v6) {
                Some(pair) => {
                    self.sessions[sid].pair = Some(pair);
                    Lower::Udp {
                        rtp_port: self.pairs[pair as usize].sockets.rtp_port,
                    }
                }
                None => {
                    self.sessions[sid].state = State::Setup;
                    self.in_setup += 1;
                    self.fail(
                        sid,
                        Cause::Io,
                        "connect",
                        "no UDP port pair for this address family".into(),
                    );
                    return;
                }
            },
            Transport::Tcp => Lower::Tcp,
        };
        self.gauges().started.fetch_add(1, Ordering::Relaxed);
        self.in_setup += 1;
        let s = &mut self.sessions[sid];
        s.state = State::Setup;
        s.t_connect = Some(now);
        let mut client = Client::new(s.plan.url.clone(), lower);
        let first = if self.config.no_options {
            client.start_with_describe()
        } else {
            client.start()
        };
        s.client = Some(client);
        self.send(sid, &first, now);
    }

    /// Opens the control connection (again).
    fn connect(&mut self, sid: usize) -> io::Result<()> {
        let server = self.sessions[sid].plan.server;
        let (stream, connected) = tcp::start_connect(server)?;
        let interest = if connected { READ } else { READ | WRITE };
        self.epoll
            .add(tcp::fd(&stream), interest, token(KIND_SESSION, sid))?;
        self.sessions[sid].conn = Some(Conn {
            stream,
            connecting: !connected,
            out: Vec::new(),
            inbuf: Vec::new(),
            interest,
        });
        Ok(())
    }

    /// Queues `bytes` on the control connection (connecting if needed) and
    /// writes what the socket takes.
    pub(super) fn send(&mut self, sid: usize, bytes: &[u8], now: Instant) {
        if self.sessions[sid].conn.is_none() {
            let reconnect = self.sessions[sid].t_playing.is_some();
            if let Err(e) = self.connect(sid) {
                let phase = self.sessions[sid].phase_name();
                self.fail(sid, Cause::from_io(&e), phase, format!("connect: {e}"));
                return;
            }
            if reconnect {
                self.sessions[sid].reconnects += 1;
            }
        }
        let s = &mut self.sessions[sid];
        if s.deadline.is_none() {
            s.deadline = Some(now + self.config.timeout);
        }
        let Some(conn) = s.conn.as_mut() else { return };
        conn.out.extend_from_slice(bytes);
        if !conn.connecting {
            self.flush(sid);
        }
    }

    /// Writes pending output; watches for writability while some remains.
    fn flush(&mut self, sid: usize) {
        let Some(conn) = self.sessions[sid].conn.as_mut() else {
            return;
        };
        let mut written = 0;
        let mut error = None;
        while written < conn.out.len() {
            match conn.stream.write(&conn.out[written..]) {
                Ok(0) => {
                    error = Some(io::Error::from(io::ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        conn.out.drain(..written);
        if let Some(e) = error {
            let phase = self.sessions[sid].phase_name();
            self.fail(sid, Cause::from_io(&e), phase, format!("write: {e}"));
            return;
        }
        let want = if conn.out.is_empty() {
            READ
        } else {
            READ | WRITE
        };
        if want != conn.interest {
            conn.interest = want;
            let fd = tcp::fd(&conn.stream);
            let _ = self.epoll.modify(fd, want, token(KIND_SESSION, sid));
        }
    }

    pub(super) fn on_session_event(&mut self, sid: usize, events: u32) {
        let Some(conn) = self.sessions[sid].conn.as_mut() else {
            return;
        };
        if conn.connecting {
            if events & (WRITE | crate::net::epoll::HUP_OR_ERR) == 0 {
                return;
            }
            if let Err(e) = tcp::connect_result(&conn.stream) {
                self.fail(sid, Cause::from_io(&e), "connect", format!("connect: {e}"));
                return;
            }
            conn.connecting = false;
            self.flush(sid);
            if self.sessions[sid].conn.is_none() {
                return;
            }
        }
        if events & (READ | crate::net::epoll::HUP_OR_ERR) != 0 {
            self.read(sid);
        }
        if events & WRITE != 0 && self.sessions[sid].conn.is_some() {
            self.flush(sid);
        }
    }

    fn read(&mut self, sid: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.sessions[sid].conn.as_ref() else {
                break;
            };
            match tcp::recv_timestamped(tcp::fd(&conn.stream), &mut scratch) {
                Ok((0, _)) => {
                    self.on_eof(sid);
                    break;
                }
                Ok((n, ts)) => {
                    let arrival = ts.unwrap_or_else(timestamp::realtime_ns);
                    self.on_bytes(sid, &scratch[..n], arrival);
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let phase = self.sessions[sid].phase_name();
                    self.fail(sid, Cause::from_io(&e), phase, format!("read: {e}"));
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    fn on_eof(&mut self, sid: usize) {
        let s = &mut self.sessions[sid];
        let inflight = s.client.as_ref().map_or(0, Client::inflight);
        let udp_idle =
            s.plan.transport == Transport::Udp && s.state == State::Playing && inflight == 0;
        if udp_idle {
            // The server closed an idle control connection; RTP keeps coming
            // over UDP. Reconnect when the next request is due.
            s.conn = None;
            return;
        }
        if s.state == State::Done {
            s.conn = None;
            return;
        }
        let phase = s.phase_name();
        self.fail(
            sid,
            Cause::Closed,
            phase,
            "server closed the RTSP connection".into(),
        );
    }

    /// Splits received bytes into frames and handles them.
    fn on_bytes(&mut self, sid: usize, data: &[u8], arrival_ns: u64) {
        let Some(conn) = self.sessions[sid].conn.as_mut() else {
            return;
        };
        let mut inbuf = std::mem::take(&mut conn.inbuf);
        let from_inbuf = !inbuf.is_empty();
        if from_inbuf {
            inbuf.extend_from_slice(data);
        }
        let buf: &[u8] = if from_inbuf { &inbuf } else { data };
        let mut offset = 0;
        let mut broken = None;
        loop {
            match next_frame(&buf[offset..]) {
                Ok(Some((frame, used))) => {
                    offset += used;
                    self.on_frame(sid, frame, arrival_ns);
                    if self.sessions[sid].conn.is_none() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = broken {
            let phase = self.sessions[sid].phase_name();
            self.fail(sid, Cause::Malformed, phase, e.to_string());
            return;
        }
        let rest = buf[offset..].to_vec();
        let Some(conn) = self.sessions[sid].conn.as_mut() else {
            return;
        };
        inbuf.clear();
        inbuf.extend_from_slice(&rest);
        if inbuf.capacity() > 256 * 1024 && inbuf.len() < 64 * 1024 {
            inbuf.shrink_to(64 * 1024);
        }
        conn.inbuf = inbuf;
    }

    fn on_frame(&mut self, sid: usize, frame: Frame<'_>, arrival_ns: u64) {
        match frame {
            Frame::Interleaved { channel, data } => {
                self.on_interleaved(sid, channel, data, arrival_ns)
            }
            Frame::Response(response) => self.on_response(sid, &response),
            Frame::Request(request) => {
                if let Some(client) = self.sessions[sid].client.as_ref() {
                    let answer = client.answer_server_request(&request);
                    self.send(sid, &answer, Instant::now());
                }
            }
        }
    }

    fn on_response(&mut self, sid: usize, response: &Response<Vec<u8>>) {
        let now = Instant::now();
        let Some(client) = self.sessions[sid].client.as_mut() else {
            return;
        };
        let result = client.on_response(response);
        let inflight = client.inflight();
        let phase = self.sessions[sid].phase_name();
        let out = match result {
            Ok(out) => out,
            Err(ClientError::Status { method, code }) => {
                self.fail(
                    sid,
                    Cause::RtspStatus(code),
                    phase,
                    format!("{method} answered {code}"),
                );
                return;
            }
            Err(e @ ClientError::Malformed { .. }) => {
                self.fail(sid, Cause::Malformed, phase, e.to_string());
                return;
            }
        };
        self.sessions[sid].deadline = (inflight > 0).then(|| now + self.config.timeout);
        if let Some((track, reply)) = out.setup {
            if !self.register_stream(sid, track, reply) {
                return;
            }
        }
        if let Some(bytes) = out.send {
            self.send(sid, &bytes, now);
        }
        if let Some(info) = out.playing {
            self.on_playing(sid, &info, now);
        }
        if out.torn_down {
            self.close(sid, State::Done);
        }
    }

    /// Adds the stream of a SETUP reply. Returns false if the session failed.
    fn register_stream(&mut self, sid: usize, track: usize, reply: TransportReply) -> bool {
        let s = &self.sessions[sid];
        let Some(info) = s
            .client
            .as_ref()
            .and_then(|c| c.presentation())
            .and_then(|p| p.tracks.get(track))
        else {
            return true;
        };
        let (control, media, clock_rate, kind, toffset_id) = (
            info.control.clone(),
            info.media.clone(),
            info.clock_rate,
            info.kind,
            info.toffset_id,
        );
        let transport = s.plan.transport;
        let server_ip = reply
            .source
            .as_deref()
            .and_then(|src| src.trim().parse::<IpAddr>().ok())
            .unwrap_or_else(|| s.plan.server.ip());
        if (transport == Transport::Tcp) != reply.tcp {
            let detail = format!("server answered a {transport:?} SETUP with another transport");
            self.fail(sid, Cause::Malformed, "SETUP", detail);
            return false;
        }
        let pair = s.pair;
        let stream = self.new_stream(clock_rate, pair, kind, toffset_id);
        let mut r = StreamRef {
            stream,
            control,
            media,
            rtcp_dest: None,
            rtp_channel: 0,
            rtcp_channel: 0,
            rtp_info_seq: None,
        };
        match (transport, pair) {
            (Transport::Udp, Some(pair)) => {
                r.rtcp_dest = reply
                    .server_port
                    .map(|(_, rtcp)| SocketAddr::new(server_ip, rtcp));
                let registered = match reply.ssrc {
                    Some(ssrc) => {
                        self.meta[stream as usize].ssrc = Some(ssrc);
                        self.demux.add_ssrc(pair, ssrc, stream)
                    }
                    None => {
                        let port = reply.server_port.map_or(0, |(rtp, _)| rtp);
                        self.meta[stream as usize].source_port = Some(port);
                        self.demux.add_source(pair, port, stream)
                    }
                };
                if let Err(collision) = registered {
                    // The key belongs to the other stream: do not remove it.
                    self.meta[stream as usize].ssrc = None;
                    self.meta[stream as usize].source_port = None;
                    self.sessions[sid].streams.push(r);
                    self.fail(sid, Cause::SsrcCollision, "SETUP", collision.to_string());
                    return false;
                }
            }
            _ => {
                let (rtp, rtcp) = reply.interleaved.unwrap_or({
                    let c = (2 * track).min(254) as u8;
                    (c, c + 1)
                });
                r.rtp_channel = rtp;
                r.rtcp_channel = rtcp;
                self.meta[stream as usize].ssrc = reply.ssrc;
            }
        }
        self.sessions[sid].streams.push(r);
        true
    }

    fn on_playing(&mut self, sid: usize, rtp_info: &[RtpInfoEntry], now: Instant) {
        // RTP-Info is kept for the report only: loss counts from the first
        // packet received (RFC 3550 A.1), because servers differ in what
        // they announce (gst-rtsp-server announces one sequence number
        // before the first audio packet it sends).
        for entry in rtp_info {
            if let Some(r) = self.sessions[sid].streams.get_mut(entry.track) {
                r.rtp_info_seq = entry.seq;
            }
        }
        let keepalive = self.keepalive_interval(sid);
        let rr = self.config.rr_interval;
        let s = &mut self.sessions[sid];
        s.state = State::Playing;
        s.t_playing = Some(now);
        s.next_keepalive = now + keepalive;
        // First report after 0.5–1 interval, to spread reports over time.
        s.next_rr = now + rr.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        s.ends_at = s.lifetime.map(|l| now + l);
        self.in_setup = self.in_setup.saturating_sub(1);
        self.mark_settled(sid);
        self.gauges().playing.fetch_add(1, Ordering::Relaxed);
    }

    fn keepalive_interval(&self, sid: usize) -> Duration {
        let timeout = self.sessions[sid]
            .client
            .as_ref()
            .map_or(60, Client::timeout_s);
        // Half the session timeout (RFC 2326 §12.37), at least 1 s.
        Duration::from_millis((timeout * 1000 / 2).max(1000))
    }

    pub(super) fn send_keepalive(&mut self, sid: usize, now: Instant) {
        let interval = self.keepalive_interval(sid);
        self.sessions[sid].next_keepalive = now + interval;
        let Some(bytes) = self.sessions[sid]
            .client
            .as_mut()
            .and_then(Client::keepalive)
        else {
            return;
        };
        self.totals.keepalives += 1;
        self.send(sid, &bytes, now);
    }

    pub(super) fn send_receiver_reports(&mut self, sid: usize, now: Instant) {
        let interval = self.config.rr_interval.mul_f64(0.5 + rand::random::<f64>());
        self.sessions[sid].next_rr = now + interval;
        let now_ns = timestamp::realtime_ns();
        let own_ssrc = self.sessions[sid].own_ssrc;
        for i in 0..self.sessions[sid].streams.len() {
            let r = self.sessions[sid].streams[i].clone();
            let Some(ssrc) = self.meta[r.stream as usize].ssrc else {
                continue;
            };
            let values = self.streams[r.stream as usize].report(now_ns);
            let Some(n) = crate::rtcp::write_receiver_report(
                own_ssrc,
                &self.cname,
                ssrc,
                &values,
                &mut self.rr_buf[4..],
            ) else {
                continue;
            };
            match (self.sessions[sid].pair, r.rtcp_dest) {
                (Some(pair), Some(dest))
                    if self.pairs[pair as usize]
                        .sockets
                        .rtcp
                        .send_to(&self.rr_buf[4..4 + n], dest)
                        .is_ok() =>
                {
                    self.totals.rtcp_sent += 1;
                }
                (None, _) => {
                    self.rr_buf[0] = b'$';
                    self.rr_buf[1] = r.rtcp_channel;
                    self.rr_buf[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                    let frame = self.rr_buf[..4 + n].to_vec();
                    // An RR needs no reply: do not arm the request timeout.
                    let had_deadline = self.sessions[sid].deadline;
                    self.send(sid, &frame, now);
                    self.sessions[sid].deadline = had_deadline;
                    self.totals.rtcp_sent += 1;
                }
                _ => {}
            }
        }
    }

    /// Sends TEARDOWN (or closes when there is nothing to tear down).
    pub(super) fn teardown(&mut self, sid: usize, now: Instant) {
        let bytes = self.sessions[sid]
            .client
            .as_mut()
            .and_then(Client::teardown);
        match bytes {
            Some(bytes) => {
                self.sessions[sid].state = State::Stopping;
                self.sessions[sid].deadline = None;
                self.send(sid, &bytes, now);
            }
            None => self.close(sid, State::Done),
        }
    }

    /// Ends counting for a playing session. In churn mode during the run,
    /// the streams keep their demultiplexer keys until they are retired (so
    /// that packets the server still sends count as `after_stop`, not as
    /// unknown); otherwise the keys go now.
    pub(super) fn stop_counting(&mut self, sid: usize, now: Instant) {
        let s = &mut self.sessions[sid];
        if s.t_playing.is_some() && s.t_stopped.is_none() {
            s.t_stopped = Some(now);
            self.gauges().playing.fetch_sub(1, Ordering::Relaxed);
        }
        if self.config.churn.is_some() && !self.stopping {
            for r in &self.sessions[sid].streams {
                self.meta[r.stream as usize].stopped = true;
            }
        } else {
            self.unregister_streams(sid);
        }
    }

    /// Removes the session's UDP streams from the demultiplexer.
    pub(super) fn unregister_streams(&mut self, sid: usize) {
        for r in &self.sessions[sid].streams {
            let m = self.meta[r.stream as usize];
            if let Some(pair) = m.pair {
                self.demux.remove(pair, m.ssrc, m.source_port, r.stream);
            }
        }
    }

    /// Marks a playing session `no_data` if a stream got nothing in 3 s of play.
    pub(super) fn check_no_data(&mut self, sid: usize, now: Instant) {
        let s = &self.sessions[sid];
        let Some(playing) = s.t_playing else { return };
        if now.saturating_duration_since(playing) < NO_DATA_AFTER {
            return;
        }
        let silent: Vec<String> = s
            .streams
            .iter()
            .filter(|r| self.streams[r.stream as usize].seq.received == 0)
            .map(|r| r.control.clone())
            .collect();
        if !silent.is_empty() || s.streams.is_empty() {
            let detail = format!("no RTP received on {silent:?}");
            self.record_failure(sid, Cause::NoData, "playing", detail);
        }
    }

    /// Counts a first session (generation 0) in the `settled` gauge once it
    /// plays or fails: the measurement window starts when every client has.
    fn mark_settled(&mut self, sid: usize) {
        let s = &self.sessions[sid];
        if !s.settled && s.plan.generation == 0 {
            self.sessions[sid].settled = true;
            self.gauges().settled.fetch_add(1, Ordering::Relaxed);
            self.shared.note_settled(self.config.id);
        }
    }

    /// Records a failure without closing the session (the first cause wins).
    fn record_failure(&mut self, sid: usize, cause: Cause, phase: &str, detail: String) {
        let s = &mut self.sessions[sid];
        if s.failure.is_none() {
            s.failure = Some(FailureRecord {
                cause: cause.key(),
                phase: phase.to_string(),
                detail,
            });
            self.gauges().failed.fetch_add(1, Ordering::Relaxed);
        }
        self.mark_settled(sid);
    }

    /// Fails a session: records the cause, ends counting, closes it.
    pub(super) fn fail(&mut self, sid: usize, cause: Cause, phase: &str, detail: String) {
        if matches!(
            self.sessions[sid].state,
            State::Failed | State::Done | State::NotStarted
        ) {
            return;
        }
        if self.sessions[sid].state == State::Setup {
            self.in_setup = self.in_setup.saturating_sub(1);
        }
        self.record_failure(sid, cause, phase, detail);
        let now = Instant::now();
        self.stop_counting(sid, now);
        // Churn: a failed session is replaced too, after a pause, so that a
        // server that refuses sessions is not hammered.
        self.queue_successor(sid, now + super::churn::RETRY_AFTER);
        self.close(sid, State::Failed);
    }

    /// Closes the control connection and sets the final state.
    pub(super) fn close(&mut self, sid: usize, state: State) {
        let s = &mut self.sessions[sid];
        s.deadline = None;
        if let Some(conn) = s.conn.take() {
            let _ = self.epoll.delete(tcp::fd(&conn.stream));
        }
        if s.state == State::Playing {
            // Torn down or failed while counting.
            self.stop_counting(sid, Instant::now());
        }
        self.sessions[sid].state = state;
        self.finalize(sid);
    }
}
