//! The stateful targets: one shard in simulated time
//! ([`cadence_engine::sim::Sim`]) over the [`fixture`](crate::fixture)
//! catalog with access control, fed by a client's byte stream through the
//! connection's [`Framer`] as the shard's router does, while the clock
//! rises and the pacer, timers and RTCP run.

use cadence_engine::endpoint::{Dispatch, EndpointConfig};
use cadence_engine::pipeline::CloseReason;
use cadence_engine::rtcp::{for_each_report_block, looks_like_rtcp};
use cadence_engine::rtsp::framing::{Frame, Framer, Limits};
use cadence_engine::rtsp::response;
use cadence_engine::session::{ConnId, SessionId};
use cadence_engine::sim::{session_of, Sim};
use cadence_engine::tunnel::{classify, get_response, PostBody, TunnelRequest};
use rtcp_types::{ReceiverReport, ReportBlock, RtcpPacketWriter, RtcpPacketWriterExt};
use rtsp_types::Request;

use crate::fixture::{fixture, Fixture};
use crate::input::Input;
use crate::placeholders;
use crate::streams::framing_split_invariant;

/// Most clock steps (pacer tick, timers, RTCP) one input may cause; later
/// advances are single jumps, so an input costs milliseconds.
const MAX_STEPS: u32 = 20_000;
/// Most steps of one advance.
const STEPS_PER_ADVANCE: u64 = 2_000;
/// Chunk sizes selected by a control byte's low nibble; 15 means "to the
/// end of the next header block" (`\r\n\r\n`).
const CHUNKS: [usize; 15] = [1, 2, 3, 4, 5, 8, 13, 16, 32, 64, 128, 256, 512, 1460, 4096];
/// Clock advances (µs) selected by a control byte's high nibble, 1 to 12.
const ADVANCES: [u64; 12] = [
    1_000,
    5_000,
    20_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    30_000_000,
    61_000_000,
    3_600_000_000,
];
/// Advances from this index on are one jump (housekeeping sees the gap).
const FIRST_JUMP: usize = 9;
/// The control byte used when an input has none: one header block per
/// chunk, 20 ms after each.
pub const DEFAULT_CONTROL: u8 = 0x3f;
/// SSRC placeholders of receiver-report seeds: `SSRC_PLACEHOLDER + i` is
/// replaced by the SSRC of track `i` of the playing session.
pub const SSRC_PLACEHOLDER: u32 = 0xc0de_0000;

/// RTSP framing, the pipeline with access control, the controller, pacer,
/// timers and RTCP of one shard, driven by one client connection's bytes
/// with a rising clock.
///
/// Input: `[n][n control bytes][the client's bytes]`. Control byte `i`
/// (cycling; [`DEFAULT_CONTROL`] when `n` is 0) says how many bytes the
/// `i`-th read delivers (low nibble) and what happens after it (high
/// nibble): 0 nothing, 1-9 the clock advances 1 ms … 5 s in steps, 10-12
/// it jumps 30 s, 61 s (past the session timeout) or 1 h, 13 the
/// connection closes and a new one opens, 14 the client sends a receiver
/// report on every track of every session, 15 an operator ends the last
/// session. At the end the client plays on for a second, goes quiet for
/// 61 s, disconnects, and the server stops. Placeholders of recorded
/// requests are filled in ([`placeholders`]). A `$` frame carrying RTCP
/// goes to the endpoint's RTCP input, an HTTP tunnel head turns the rest
/// of the connection into a tunnel POST body, as on the RTSP port.
pub fn rtsp_session(data: &[u8]) {
    let _ = rtsp_session_statuses(data);
}

/// [`rtsp_session`], returning the status of every response in order (for
/// tests that check the seeds get where they should).
pub fn rtsp_session_statuses(data: &[u8]) -> Vec<u16> {
    let mut input = Input::new(data);
    let n = usize::from(input.u8());
    let control = input.take(n);
    let stream = input.rest();
    // The reads: (bytes, what follows).
    let mut reads = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let c = if control.is_empty() {
            DEFAULT_CONTROL
        } else {
            control[reads.len() % control.len()]
        };
        let len = match CHUNKS.get(usize::from(c & 0x0f)) {
            Some(&len) => len,
            None => header_block_len(rest),
        };
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        reads.push((chunk, c >> 4));
        rest = tail;
    }
    let lens: Vec<usize> = reads.iter().map(|(c, _)| c.len()).collect();
    framing_split_invariant(stream, &lens);
    let mut driver = Driver::new(fixture());
    for (chunk, action) in reads {
        driver.receive(chunk);
        driver.control(action, chunk);
    }
    driver.finish();
    driver.statuses
}

/// RTCP from a client: the compound parser and report-block walk, then the
/// same packet as a receiver report reaching a session that is playing the
/// sample over UDP (SSRC placeholders [`SSRC_PLACEHOLDER`]` + i` replaced by
/// the session's SSRCs), followed by six seconds of pacing and sender
/// reports.
pub fn rtcp(data: &[u8]) {
    let mut blocks = 0usize;
    let parsed = for_each_report_block(data, |_| blocks += 1);
    if let Ok(n) = parsed {
        assert_eq!(n, blocks, "report blocks counted and walked differ");
    }
    let _ = looks_like_rtcp(data);
    let mut driver = Driver::new(fixture());
    driver.play_sample();
    driver.advance(100_000);
    let ssrcs = driver.ssrcs();
    let mut packet = data.to_vec();
    for word in packet.chunks_exact_mut(4) {
        let v = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        if let Some(&s) = v
            .checked_sub(SSRC_PLACEHOLDER)
            .and_then(|i| ssrcs.get(i as usize))
        {
            word.copy_from_slice(&s.to_be_bytes());
        }
    }
    let now = driver.sim.now_us;
    let accepted = driver.sim.endpoint.on_rtcp(&packet, now);
    assert_eq!(
        accepted,
        for_each_report_block(&packet, |_| {}).is_ok(),
        "the endpoint and the parser disagree on validity"
    );
    driver.advance(6_000_000);
    driver.finish();
}

/// Length of the next header block of `stream` (up to and including
/// `\r\n\r\n`), or all of it.
fn header_block_len(stream: &[u8]) -> usize {
    stream
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(stream.len(), |i| i + 4)
}

/// Where the connection's bytes go.
enum Conn {
    /// An RTSP connection (HTTP tunnel heads recognised first).
    Rtsp(Framer),
    /// The POST half of a tunnel: base64 RTSP.
    TunnelPost(Box<PostBody>),
}

/// One shard and one client connection at a time.
pub struct Driver {
    /// The simulated shard.
    pub sim: Sim,
    fx: &'static Fixture,
    conn: Conn,
    session: Option<String>,
    steps: u32,
    reports: u32,
    /// Status of every response, in order.
    pub statuses: Vec<u16>,
}

impl Driver {
    /// A shard with the fixture's catalog and access control, at clock 0.
    pub fn new(fx: &'static Fixture) -> Self {
        Driver {
            sim: Sim::with_pipeline(fx.catalog.clone(), fx.pipeline(), EndpointConfig::default()),
            fx,
            conn: Conn::Rtsp(Framer::new(Limits::default())),
            session: None,
            steps: 0,
            reports: 0,
            statuses: Vec::new(),
        }
    }

    /// Bytes read from the connection: framed and handled.
    pub fn receive(&mut self, bytes: &[u8]) {
        match &mut self.conn {
            Conn::Rtsp(f) => f.push(bytes),
            Conn::TunnelPost(body) => {
                if body.push(bytes).is_err() {
                    self.reconnect(CloseReason::Disconnect);
                    return;
                }
            }
        }
        loop {
            let frame = match &mut self.conn {
                Conn::Rtsp(f) => f.next_frame(),
                Conn::TunnelPost(body) => body.next_frame(),
            };
            let Some(frame) = frame else {
                return;
            };
            if !self.frame(frame) {
                return;
            }
        }
    }

    /// Handles one frame; false when the connection was replaced.
    fn frame(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::Request(r) => self.request(r),
            Frame::Data { payload, .. } => {
                if looks_like_rtcp(&payload) {
                    let now = self.sim.now_us;
                    self.sim.endpoint.on_rtcp(&payload, now);
                }
                true
            }
            Frame::Response => true,
            Frame::Http(head) => {
                let rest = match &mut self.conn {
                    Conn::Rtsp(f) => f.take_buffered(),
                    Conn::TunnelPost(_) => Vec::new(),
                };
                match classify(&head) {
                    Ok(TunnelRequest::Post { .. }) => {
                        let mut body = Box::new(PostBody::new(Limits::default()));
                        let ok = body.push(&rest).is_ok();
                        self.conn = Conn::TunnelPost(body);
                        if !ok {
                            self.reconnect(CloseReason::Disconnect);
                            return false;
                        }
                        // Frames of the body start with the next loop turn.
                        true
                    }
                    Ok(TunnelRequest::Get { .. }) => {
                        let _ = get_response();
                        self.reconnect(CloseReason::Disconnect);
                        false
                    }
                    Err(e) => {
                        let _ = e.response_bytes();
                        self.reconnect(CloseReason::Disconnect);
                        false
                    }
                }
            }
            Frame::HttpUnsupported(head) => {
                let _ = classify(&head).map_err(|e| e.response_bytes());
                self.reconnect(CloseReason::Disconnect);
                false
            }
            Frame::Malformed(rejection) => {
                let _ = rejection.response_bytes();
                self.reconnect(CloseReason::Disconnect);
                false
            }
        }
    }

    /// Runs one request; false when the connection was closed after it.
    fn request(&mut self, mut request: Request<Vec<u8>>) -> bool {
        let unix_s = self.sim.unix_us() / 1_000_000;
        placeholders::fill(self.fx, &mut request, self.session.as_deref(), unix_s);
        match self.sim.dispatch(request) {
            Dispatch::Respond { response, close } => {
                self.statuses.push(response.status().into());
                let bytes = response::serialize(&response);
                assert!(
                    bytes.starts_with(b"RTSP/1.0 "),
                    "a response that is not RTSP/1.0"
                );
                let id = session_of(&response);
                if !id.is_empty() {
                    self.session = Some(id);
                }
                if close {
                    self.reconnect(CloseReason::Disconnect);
                    return false;
                }
                true
            }
            // One shard: a request for another shard's session has nowhere
            // to go (the shard answers 454); a catalog in memory never defers.
            Dispatch::Forward { .. } | Dispatch::Defer { .. } => true,
        }
    }

    /// What the high nibble of a control byte says to do after a read of
    /// `chunk`.
    fn control(&mut self, action: u8, chunk: &[u8]) {
        match action {
            0 => {}
            1..=12 => {
                let i = usize::from(action - 1);
                if i >= FIRST_JUMP {
                    self.jump(ADVANCES[i]);
                } else {
                    self.advance(ADVANCES[i]);
                }
            }
            13 => self.reconnect(CloseReason::Disconnect),
            14 => self.receiver_reports(chunk),
            _ => self.end_last_session(),
        }
    }

    /// The connection closes (its interleaved sessions end); the next bytes
    /// come on a new one.
    pub fn reconnect(&mut self, reason: CloseReason) {
        let (now, unix) = (self.sim.now_us, self.sim.unix_us());
        self.sim
            .endpoint
            .connection_closed(self.sim.conn, reason, now, unix);
        self.sim.conn = ConnId {
            index: self.sim.conn.index.wrapping_add(1),
            generation: self.sim.conn.generation.wrapping_add(1),
        };
        self.conn = Conn::Rtsp(Framer::new(Limits::default()));
        self.collect();
    }

    /// Advances the clock by `us` in at most [`STEPS_PER_ADVANCE`] steps (a
    /// jump once the input's [`MAX_STEPS`] are used up).
    pub fn advance(&mut self, us: u64) {
        let tick = self.sim.endpoint.config().tick_us.max(1);
        let step = tick.max(us / STEPS_PER_ADVANCE).max(1);
        let end = self.sim.now_us.saturating_add(us);
        while self.sim.now_us < end {
            if self.steps >= MAX_STEPS {
                self.sim.now_us = end;
            } else {
                self.steps += 1;
                self.sim.now_us = self.sim.now_us.saturating_add(step).min(end);
            }
            self.step();
        }
    }

    /// Moves the clock `us` ahead at once, then runs one step.
    pub fn jump(&mut self, us: u64) {
        self.sim.now_us = self.sim.now_us.saturating_add(us);
        self.step();
    }

    fn step(&mut self) {
        self.sim.step();
        let _ = self.sim.endpoint.next_deadline(self.sim.now_us);
        self.collect();
    }

    /// Drops what the shard sent (bounded memory over long inputs).
    fn collect(&mut self) {
        self.sim.rtp.packets.clear();
        self.sim.rtcp.clear();
    }

    /// The SSRCs of the tracks of every session, in session order.
    pub fn ssrcs(&self) -> Vec<u32> {
        self.sim
            .endpoint
            .controller()
            .sessions()
            .flat_map(|(_, s)| s.tracks().iter().map(|t| t.ssrc()))
            .collect()
    }

    /// A receiver report on every track of every session, with loss and
    /// jitter figures from `chunk`.
    fn receiver_reports(&mut self, chunk: &[u8]) {
        self.reports = self.reports.wrapping_add(1);
        let figure = |i: usize| chunk.get(i).copied().unwrap_or(0);
        let mut rr = ReceiverReport::builder(0x5eed_0000 | self.reports);
        for ssrc in self.ssrcs().into_iter().take(31) {
            rr = rr.add_report_block(
                ReportBlock::builder(ssrc)
                    .fraction_lost(figure(0))
                    .cumulative_lost(u32::from(figure(1)) << 8 | u32::from(figure(2)))
                    .extended_sequence_number(u32::from(figure(3)) << 8)
                    .interarrival_jitter(u32::from(figure(4)) << 4),
            );
        }
        let Ok(size) = rr.calculate_size() else {
            return;
        };
        let mut buf = vec![0u8; size];
        if rr.write_into(&mut buf).is_ok() {
            let now = self.sim.now_us;
            let accepted = self.sim.endpoint.on_rtcp(&buf, now);
            assert!(accepted, "a well-formed receiver report was refused");
        }
    }

    /// An operator ends the last session given (admin DELETE).
    fn end_last_session(&mut self) {
        let (now, unix) = (self.sim.now_us, self.sim.unix_us());
        if let Some(id) = self.session.as_deref().and_then(SessionId::parse) {
            self.sim
                .endpoint
                .end_session(id, CloseReason::AdminKill, now, unix);
        }
        self.collect();
    }

    /// SETUP of both tracks of `sample.mp4` over UDP, then PLAY.
    pub fn play_sample(&mut self) {
        const BASE: &str = "rtsp://127.0.0.1:8554/sample.mp4";
        let requests = [
            format!("SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"),
            format!("SETUP {BASE}/trackID=4 RTSP/1.0\r\nCSeq: 2\r\nSession: @S@\r\nTransport: RTP/AVP;unicast;client_port=5002-5003\r\n\r\n"),
            format!("PLAY {BASE} RTSP/1.0\r\nCSeq: 3\r\nSession: @S@\r\nRange: npt=0-\r\n\r\n"),
        ];
        for r in &requests {
            self.receive(r.as_bytes());
        }
    }

    /// The end of every client: a second more of playing, 61 s of silence
    /// (session timeouts), the connection closing, the server stopping.
    pub fn finish(&mut self) {
        self.advance(1_000_000);
        self.jump(61_000_000);
        self.jump(1_000_000);
        self.reconnect(CloseReason::Disconnect);
        let (now, unix) = (self.sim.now_us, self.sim.unix_us());
        self.sim.endpoint.shutdown(now, unix);
        self.collect();
        assert!(
            self.sim.endpoint.controller().is_empty(),
            "sessions left after the server stopped"
        );
    }
}
