//! Sans-IO rigs that drive the engine's hot paths without sockets, for the
//! microbenchmarks: an RTSP client that speaks to a shard's [`Endpoint`]
//! through request bytes, and a pacer loop over N playing sessions whose packets go to
//! a [`SlotSink`] that builds the same `msghdr` + iovecs the shard submits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use cadence_engine::catalog::{Catalog, FsCatalog};
use cadence_engine::endpoint::{request_ctx, Dispatch, Endpoint, EndpointConfig};
use cadence_engine::pacer::{OutPacket, PacketSink};
use cadence_engine::pipeline::Pipeline;
use cadence_engine::rtsp::framing::{self, Input};
use cadence_engine::session::{ConnId, SessionId, TrackTransport};
use cadence_engine::shard::slots::{segment_iovecs, SlotPool};
use rtsp_types::Response;

/// The repository's bundled media folder (`media/`, holds `sample.mp4`).
pub fn repo_media_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../media")
}

/// A [`PacketSink`] that does the shard's per-packet work for UDP without the
/// syscall: takes a [`SlotPool`] slot, writes the header and one iovec per
/// payload segment into it, then releases the slot at once (as if the send
/// had completed). Interleaved packets are only counted.
pub struct SlotSink {
    pool: SlotPool,
    /// Packets taken.
    pub packets: u64,
    /// Header + payload bytes taken.
    pub bytes: u64,
    /// Sum of iovec counts (keeps the fill from being optimised away).
    pub iovecs: u64,
}

impl SlotSink {
    /// A sink with `slots` send slots for an IPv4 socket.
    pub fn new(slots: usize) -> Self {
        SlotSink {
            pool: SlotPool::new(slots, false),
            packets: 0,
            bytes: 0,
            iovecs: 0,
        }
    }
}

impl PacketSink for SlotSink {
    fn emit(&mut self, p: &OutPacket<'_>) -> bool {
        match *p.transport {
            TrackTransport::Udp { rtp, .. } => {
                let segments = p.track.segments_of(p.packet);
                let Some((index, msg)) = self.pool.fill(rtp, p.header, |iov| {
                    segment_iovecs(p.file, p.track, segments, iov, 0)
                }) else {
                    return false;
                };
                // SAFETY: `msg` points into the pool's slot `index`, which
                // stays valid and untouched until released below.
                self.iovecs += unsafe { (*msg).msg_iovlen } as u64;
                self.pool.release(index);
            }
            TrackTransport::Interleaved { .. } => {}
        }
        self.packets += 1;
        self.bytes += (p.header.len() + p.packet.payload_len as usize) as u64;
        true
    }
}

/// Builds request bytes, feeds them through [`framing::next`] and
/// [`Endpoint::handle`] (the whole request pipeline), and serializes the
/// response, as a shard does.
pub struct RtspRig {
    /// The endpoint under test.
    pub endpoint: Endpoint,
    /// URL of the file (`rtsp://127.0.0.1:8554/<file>`).
    pub base: String,
    /// `a=control:` values of the file's tracks, in SDP order.
    pub controls: Vec<String>,
    cseq: u32,
    out: Vec<u8>,
}

/// What one exchange produced.
pub struct Exchange {
    /// Response status code.
    pub status: u16,
    /// Session ID from the `Session` header, when present.
    pub session: Option<String>,
    /// Response size, bytes.
    pub response_bytes: usize,
}

impl RtspRig {
    /// A controller of shard 0 over the catalog of `media`, for file `file`.
    /// Errors when the folder cannot be scanned or DESCRIBE of `file` fails.
    pub fn new(media: &Path, file: &str) -> Result<Self> {
        Self::with_tick(media, file, 500)
    }

    /// As [`RtspRig::new`], with a pacer tick of `tick_us`.
    pub fn with_tick(media: &Path, file: &str, tick_us: u64) -> Result<Self> {
        let catalog =
            FsCatalog::scan(media).with_context(|| format!("scan {}", media.display()))?;
        catalog
            .compile(file)
            .map_err(|e| anyhow!("compile {file}: {e}"))?;
        let endpoint = Endpoint::new(
            EndpointConfig {
                session_timeout_s: 3600,
                tick_us,
                ..EndpointConfig::default()
            },
            Arc::new(catalog),
            Pipeline::new(),
            42,
            0,
        );
        let mut rig = RtspRig {
            endpoint,
            base: format!("rtsp://127.0.0.1:8554/{file}"),
            controls: Vec::new(),
            cseq: 0,
            out: Vec::with_capacity(4096),
        };
        let req = rig.describe_bytes();
        let (ex, body) = rig.exchange_with_body(&req, 0, 40000)?;
        if ex.status != 200 {
            bail!("DESCRIBE {} answered {}", rig.base, ex.status);
        }
        rig.controls = body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a=control:"))
            .filter(|c| *c != "*")
            .map(str::to_string)
            .collect();
        if rig.controls.is_empty() {
            bail!("no track controls in the SDP of {}", rig.base);
        }
        Ok(rig)
    }

    fn next_cseq(&mut self) -> u32 {
        self.cseq = self.cseq.wrapping_add(1);
        self.cseq
    }

    /// `DESCRIBE` request bytes.
    pub fn describe_bytes(&mut self) -> Vec<u8> {
        let c = self.next_cseq();
        format!(
            "DESCRIBE {} RTSP/1.0\r\nCSeq: {c}\r\nAccept: application/sdp\r\nUser-Agent: cadence-bench\r\n\r\n",
            self.base
        )
        .into_bytes()
    }

    /// `SETUP` request bytes for track `track` (index into `controls`) over
    /// UDP to client ports `port`/`port+1`, joining `session` if given.
    pub fn setup_bytes(&mut self, track: usize, port: u16, session: Option<&str>) -> Vec<u8> {
        let c = self.next_cseq();
        let control = self.controls.get(track).cloned().unwrap_or_default();
        let session = session
            .map(|s| format!("Session: {s}\r\n"))
            .unwrap_or_default();
        format!(
            "SETUP {}/{control} RTSP/1.0\r\nCSeq: {c}\r\nTransport: RTP/AVP;unicast;client_port={}-{}\r\n{session}User-Agent: cadence-bench\r\n\r\n",
            self.base,
            port,
            port + 1
        )
        .into_bytes()
    }

    /// `PLAY` (from npt 0) or `TEARDOWN` request bytes for `session`.
    pub fn session_request_bytes(&mut self, method: &str, session: &str) -> Vec<u8> {
        let c = self.next_cseq();
        let range = if method == "PLAY" {
            "Range: npt=0.000-\r\n"
        } else {
            ""
        };
        format!(
            "{method} {}/ RTSP/1.0\r\nCSeq: {c}\r\nSession: {session}\r\n{range}User-Agent: cadence-bench\r\n\r\n",
            self.base
        )
        .into_bytes()
    }

    /// Parses `bytes` as one request, handles it at shard clock `now_us` for
    /// a client on port `client_port`, and serializes the response.
    pub fn exchange(&mut self, bytes: &[u8], now_us: u64, client_port: u16) -> Result<Exchange> {
        self.exchange_with_body(bytes, now_us, client_port)
            .map(|(e, _)| e)
    }

    fn exchange_with_body(
        &mut self,
        bytes: &[u8],
        now_us: u64,
        client_port: u16,
    ) -> Result<(Exchange, String)> {
        let Some((Input::Request(req), _)) = framing::next(bytes) else {
            bail!("request bytes did not parse");
        };
        let ctx = request_ctx(
            ConnId {
                index: 1,
                generation: 1,
            },
            SocketAddr::from(([127, 0, 0, 1], client_port)),
            SocketAddr::from(([127, 0, 0, 1], 8554)),
            now_us,
            now_us,
            false,
        );
        let response = match self.endpoint.handle(&ctx, req) {
            Dispatch::Respond { response, .. } => response,
            other => bail!("request not answered: {other:?}"),
        };
        self.out.clear();
        response
            .write(&mut self.out)
            .map_err(|e| anyhow!("serialize response: {e}"))?;
        let session = session_of(&response);
        let body = String::from_utf8_lossy(response.body()).into_owned();
        Ok((
            Exchange {
                status: response.status().into(),
                session,
                response_bytes: self.out.len(),
            },
            body,
        ))
    }

    /// DESCRIBE, SETUP of every track, PLAY: one playing session at shard
    /// clock `now_us`. Returns its session ID and slab key.
    pub fn play_session(&mut self, now_us: u64, client_port: u16) -> Result<(String, usize)> {
        let d = self.describe_bytes();
        self.exchange(&d, now_us, client_port)?;
        let mut session: Option<String> = None;
        for t in 0..self.controls.len() {
            let port = client_port.wrapping_add(2 * t as u16);
            let s = self.setup_bytes(t, port, session.as_deref());
            let ex = self.exchange(&s, now_us, client_port)?;
            if ex.status != 200 {
                bail!("SETUP answered {}", ex.status);
            }
            session = session.or(ex.session);
        }
        let session = session.ok_or_else(|| anyhow!("SETUP gave no Session header"))?;
        let p = self.session_request_bytes("PLAY", &session);
        let ex = self.exchange(&p, now_us, client_port)?;
        if ex.status != 200 {
            bail!("PLAY answered {}", ex.status);
        }
        let key = SessionId::parse(&session)
            .and_then(|id| self.endpoint.controller().key_of(id))
            .ok_or_else(|| anyhow!("PLAY left no session"))?;
        Ok((session, key))
    }
}

fn session_of(r: &Response<Vec<u8>>) -> Option<String> {
    r.header(&rtsp_types::headers::SESSION).map(|v| {
        v.as_str()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    })
}

/// N playing UDP sessions of one file on an endpoint's pacer, advanced one pacer tick
/// at a time in simulated time. Session starts are spread evenly over one
/// second so every tick carries the same load, as in a server at steady state.
pub struct PacerRig {
    /// The RTSP side that created the sessions (its endpoint paces them).
    pub rtsp: RtspRig,
    /// Where packets go.
    pub sink: SlotSink,
    /// Shard clock, µs.
    pub now_us: u64,
    /// Pacer tick, µs.
    pub tick_us: u64,
    sessions: Vec<(String, usize)>,
}

impl PacerRig {
    /// `n` sessions of `file` in `media`, on a pacer with `tick_us` ticks.
    pub fn new(media: &Path, file: &str, n: usize, tick_us: u64) -> Result<Self> {
        let mut rtsp = RtspRig::with_tick(media, file, tick_us)?;
        let mut sessions = Vec::with_capacity(n);
        for i in 0..n {
            let start = (i as u64 * 1_000_000) / n.max(1) as u64;
            let port = 10_000 + 4 * (i % 10_000) as u16;
            let (id, key) = rtsp.play_session(start, port)?;
            sessions.push((id, key));
        }
        Ok(PacerRig {
            rtsp,
            sink: SlotSink::new(8192),
            now_us: 1_000_000,
            tick_us,
            sessions,
        })
    }

    /// Number of sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Advances the clock one tick and runs the pacer; returns the packets
    /// emitted. Does not restart finished sessions (see [`PacerRig::replay_finished`]).
    pub fn tick(&mut self) -> u64 {
        self.now_us += self.tick_us;
        let stats = self
            .rtsp
            .endpoint
            .tick(self.now_us, self.now_us, &mut self.sink);
        // The BYEs of finished sessions would go out here; drop them.
        self.rtsp.endpoint.drain_rtcp(|_| {});
        stats.packets
    }

    /// Restarts, from npt 0, the sessions that reached their end on the last
    /// tick (as a client that PLAYs again would; this allocates, since it goes
    /// through the RTSP controller).
    pub fn replay_finished(&mut self) -> Result<()> {
        let finished: Vec<usize> = self.rtsp.endpoint.pacer().finished.clone();
        for key in finished {
            let Some(s) = self.rtsp.endpoint.controller().session(key) else {
                continue;
            };
            let id = s.id().to_string();
            let p = self.rtsp.session_request_bytes("PLAY", &id);
            let ex = self.rtsp.exchange(&p, self.now_us, 10_000)?;
            if ex.status != 200 {
                bail!("re-PLAY answered {}", ex.status);
            }
        }
        Ok(())
    }

    /// Sessions that sent the end of their range on the last tick.
    pub fn finished(&self) -> usize {
        self.rtsp.endpoint.pacer().finished.len()
    }
}
