//! A small scripted RTSP server for the load tool's tests: it answers with
//! canned replies, or streams given lists of RTP packets (sequence number,
//! timestamp, optional RFC 5450 transmission time offset) at given times, so
//! that loss, duplicates, reordering and lateness are known exactly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One RTP packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// Transmission time offset (RTP ticks) to carry in the toffset header
    /// extension, when the track has one.
    pub toffset: Option<i32>,
}

impl From<(u16, u32)> for Sent {
    fn from((seq, ts): (u16, u32)) -> Self {
        Self {
            seq,
            ts,
            toffset: None,
        }
    }
}

/// One track of a scripted presentation.
#[derive(Debug, Clone)]
pub struct TrackScript {
    /// SDP media type (`video`, `audio`).
    pub media: &'static str,
    /// RTP payload type.
    pub payload_type: u8,
    /// `a=rtpmap` encoding, e.g. `H264/90000`.
    pub rtpmap: &'static str,
    /// Announce `a=extmap:<id> urn:ietf:params:rtp-hdrext:toffset` and send
    /// the toffset element (after an unrelated one-byte element with id 1)
    /// in the packets whose `toffset` is set.
    pub toffset_id: Option<u8>,
    /// Packets in send order, each with its send time after the PLAY reply.
    pub packets: Vec<(Duration, Sent)>,
}

/// What the server does.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Accept connections and never answer.
    Silent,
    /// Answer DESCRIBE with this status.
    DescribeStatus(u16),
    /// Answer every request with bytes that are not RTSP.
    Garbage,
    /// Play one H.264-like track: send these (sequence number, RTP timestamp)
    /// packets, `interval` apart, over UDP or interleaved, as the client asked.
    Stream {
        /// Packets in send order.
        packets: Vec<(u16, u32)>,
        /// Time between packets.
        interval: Duration,
        /// Whether SETUP replies name the SSRC.
        ssrc_in_transport: bool,
    },
    /// Play these tracks (`trackID=1`, `trackID=2`, …), each packet at its
    /// time after PLAY, paced against the clock (not by sleeping a fixed
    /// interval after each send, which would drift).
    Tracks {
        /// Tracks in SDP order.
        tracks: Vec<TrackScript>,
        /// Whether SETUP replies name the SSRC.
        ssrc_in_transport: bool,
    },
}

impl Behaviour {
    /// The tracks to play, for the streaming behaviours.
    fn tracks(&self) -> Option<(Vec<TrackScript>, bool)> {
        match self {
            Behaviour::Stream {
                packets,
                interval,
                ssrc_in_transport,
            } => Some((
                vec![TrackScript {
                    media: "video",
                    payload_type: 96,
                    rtpmap: "H264/90000",
                    toffset_id: None,
                    packets: packets
                        .iter()
                        .enumerate()
                        .map(|(i, &p)| (*interval * i as u32, p.into()))
                        .collect(),
                }],
                *ssrc_in_transport,
            )),
            Behaviour::Tracks {
                tracks,
                ssrc_in_transport,
            } => Some((tracks.clone(), *ssrc_in_transport)),
            _ => None,
        }
    }
}

/// A video track in IBBP decode order: `frames` frames `frame` apart at
/// 90 kHz, one packet each, sent at their decode times while their RTP
/// timestamps are presentation times (I0 P3 B1 B2 P6 B4 B5 …). Each packet's
/// transmission time offset (RFC 5450: send time − RTP time) is set; it is
/// sent only when `toffset_id` is given.
pub fn bframe_video(frames: usize, frame: Duration, toffset_id: Option<u8>) -> TrackScript {
    let ticks = (frame.as_micros() * 90 / 1000) as i64;
    let ts0: u32 = 0x7fff_0000;
    let packets = (0..frames)
        .map(|d| {
            let pts = match d {
                0 => 0,
                _ if (d - 1) % 3 == 0 => d + 2,
                _ => d - 1,
            };
            let offset = (d as i64 - pts as i64) * ticks;
            let sent = Sent {
                seq: 1000u16.wrapping_add(d as u16),
                ts: ts0.wrapping_add((pts as i64 * ticks) as u32),
                toffset: Some(offset as i32),
            };
            (frame * d as u32, sent)
        })
        .collect();
    TrackScript {
        media: "video",
        payload_type: 96,
        rtpmap: "H264/90000",
        toffset_id,
        packets,
    }
}

/// An AAC-like audio track at 44.1 kHz: `count` packets of 1024 samples,
/// sent on time (23.22 ms apart), without header extensions.
pub fn audio_track(count: usize) -> TrackScript {
    let packets = (0..count)
        .map(|i| {
            let at = Duration::from_nanos(i as u64 * 1024 * 1_000_000_000 / 44_100);
            (at, (7u16.wrapping_add(i as u16), (i as u32) * 1024).into())
        })
        .collect();
    TrackScript {
        media: "audio",
        payload_type: 97,
        rtpmap: "mpeg4-generic/44100/2",
        toffset_id: None,
        packets,
    }
}

/// What the server saw, per RTSP connection that SET UP a session.
#[derive(Debug, Default)]
pub struct Counts {
    /// Connections that SET UP a session.
    pub sessions: AtomicU64,
    /// TEARDOWN requests answered.
    pub teardowns: AtomicU64,
    /// Connections with a session that the client closed without TEARDOWN.
    pub closed_without_teardown: AtomicU64,
}

/// A running fake server; stops when dropped.
pub struct FakeServer {
    /// Its RTSP address.
    pub addr: SocketAddr,
    /// What it saw.
    pub counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn sdp(tracks: &[TrackScript]) -> String {
    let mut sdp =
        String::from("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\na=control:*\r\n");
    for (i, t) in tracks.iter().enumerate() {
        sdp.push_str(&format!(
            "m={} 0 RTP/AVP {pt}\r\na=rtpmap:{pt} {}\r\na=control:trackID={}\r\n",
            t.media,
            t.rtpmap,
            i + 1,
            pt = t.payload_type
        ));
        if let Some(id) = t.toffset_id {
            sdp.push_str(&format!(
                "a=extmap:{id} urn:ietf:params:rtp-hdrext:toffset\r\n"
            ));
        }
    }
    sdp
}

impl FakeServer {
    /// Starts a server on 127.0.0.1 with `behaviour`.
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let stop2 = Arc::clone(&stop);
        let counts2 = Arc::clone(&counts);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let b = behaviour.clone();
                let stop3 = Arc::clone(&stop2);
                let counts3 = Arc::clone(&counts2);
                std::thread::spawn(move || serve(conn, b, stop3, counts3));
            }
        });
        Self { addr, counts, stop }
    }

    /// URL of the fake presentation.
    pub fn url(&self) -> String {
        format!("rtsp://{}/fake.mp4", self.addr)
    }
}

fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// An RTP packet, built by hand (not with the code under test): 12-byte
/// header, then, with `toffset_id`, a one-byte-form extension block
/// (0xBEDE, 2 words) holding an element with id 1 (1 byte), the toffset
/// element (id, len=2, 24-bit big-endian two's complement) and 2 padding
/// bytes; then 200 payload bytes.
fn rtp(ssrc: u32, pt: u8, p: Sent, toffset_id: Option<u8>) -> Vec<u8> {
    let extension = toffset_id.zip(p.toffset);
    let mut out = vec![0x80 | if extension.is_some() { 0x10 } else { 0 }, pt];
    out.extend_from_slice(&p.seq.to_be_bytes());
    out.extend_from_slice(&p.ts.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some((id, offset)) = extension {
        let o = offset.to_be_bytes();
        out.extend_from_slice(&[0xBE, 0xDE, 0x00, 0x02, 0x10, 0x7f, id << 4 | 2]);
        out.extend_from_slice(&[o[1], o[2], o[3], 0x00, 0x00]);
    }
    out.extend_from_slice(&[0x65; 200]);
    out
}

/// Where one track's packets go.
#[derive(Debug, Clone, Copy, Default)]
struct Dest {
    client_port: Option<u16>,
    channel: Option<u8>,
}

/// One connection: its tracks, where they go, and the stream once playing.
struct Conn {
    conn: TcpStream,
    peer: SocketAddr,
    tracks: Vec<TrackScript>,
    ssrc_in_transport: bool,
    sockets: Vec<UdpSocket>,
    dests: Vec<Dest>,
    sdp: String,
    /// Packets of every track in send order, and the next to send.
    schedule: Vec<(Duration, usize, Sent)>,
    next: usize,
    playing_since: Option<Instant>,
    set_up: bool,
    torn_down: bool,
    /// SSRC of the first track (the next tracks count up from it): random
    /// per connection, as servers choose them (RFC 3550 §8.1).
    ssrc: u32,
}

impl Conn {
    /// Sends the packets that are due; false when the connection is gone.
    fn send_due(&mut self) -> bool {
        let Some(start) = self.playing_since else {
            return true;
        };
        let now = Instant::now();
        while let Some(&(at, track, p)) = self.schedule.get(self.next) {
            if start + at > now {
                break;
            }
            self.next += 1;
            let t = &self.tracks[track];
            let packet = rtp(
                self.ssrc.wrapping_add(track as u32),
                t.payload_type,
                p,
                t.toffset_id,
            );
            let sent = match (self.dests[track].channel, self.dests[track].client_port) {
                (Some(ch), _) => {
                    let mut frame = vec![b'$', ch];
                    frame.extend_from_slice(&(packet.len() as u16).to_be_bytes());
                    frame.extend_from_slice(&packet);
                    write_all(&mut self.conn, &frame)
                }
                (None, Some(port)) => self.sockets[track]
                    .send_to(&packet, (self.peer.ip(), port))
                    .is_ok(),
                _ => false,
            };
            if !sent {
                return false;
            }
        }
        true
    }

    /// How long to sleep before looking for requests again: until the next
    /// packet is due, at most 5 ms. (Socket receive timeouts are rounded to
    /// kernel ticks of up to 10 ms, too coarse for pacing; nanosleep is not.)
    fn wait(&self) -> Duration {
        let poll = Duration::from_millis(5);
        match (self.playing_since, self.schedule.get(self.next)) {
            (Some(start), Some(&(at, _, _))) => (start + at)
                .saturating_duration_since(Instant::now())
                .min(poll),
            _ => poll,
        }
    }

    /// The reply to one request (None: no reply).
    fn answer(&mut self, behaviour: &Behaviour, request: &str) -> Option<String> {
        let method = request.split_whitespace().next().unwrap_or("");
        let uri = request.split_whitespace().nth(1).unwrap_or("");
        let cseq = header(request, "CSeq").unwrap_or("0");
        let streaming = !self.tracks.is_empty();
        Some(match (behaviour, method) {
            (Behaviour::Silent, _) => return None,
            (Behaviour::Garbage, _) => "\u{1}\u{2}this is not RTSP\r\n\r\n".to_string(),
            (Behaviour::DescribeStatus(code), "DESCRIBE") => format!("RTSP/1.0 {code} Nope\r\nCSeq: {cseq}\r\n\r\n"),
            (_, "OPTIONS") => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"),
            (_, "DESCRIBE") => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: rtsp://{}/fake.mp4/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
                self.conn.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                self.sdp.len(),
                self.sdp
            ),
            (_, "SETUP") if streaming => {
                self.set_up = true;
                let track = uri
                    .rsplit_once("trackID=")
                    .and_then(|(_, n)| n.parse::<usize>().ok())
                    .and_then(|n| n.checked_sub(1))
                    .filter(|n| *n < self.tracks.len())
                    .unwrap_or(0);
                let t = header(request, "Transport").unwrap_or("");
                let ssrc = if self.ssrc_in_transport {
                    format!(";ssrc={:08X}", self.ssrc.wrapping_add(track as u32))
                } else {
                    String::new()
                };
                let transport = if let Some(v) = t.split(';').find_map(|p| p.strip_prefix("interleaved=")) {
                    self.dests[track].channel = v.split('-').next().and_then(|c| c.parse().ok());
                    format!("RTP/AVP/TCP;unicast;interleaved={v}{ssrc}")
                } else {
                    let ports = t.split(';').find_map(|p| p.strip_prefix("client_port=")).unwrap_or("0-1");
                    self.dests[track].client_port = ports.split('-').next().and_then(|p| p.parse().ok());
                    let server = self.sockets[track].local_addr().map(|a| a.port()).unwrap_or(0);
                    format!("RTP/AVP;unicast;client_port={ports};server_port={server}-{}{ssrc}", server + 1)
                };
                format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 4242;timeout=60\r\nTransport: {transport}\r\n\r\n")
            }
            (_, "PLAY") if streaming => {
                let mut schedule: Vec<(Duration, usize, Sent)> = self
                    .tracks
                    .iter()
                    .enumerate()
                    .flat_map(|(i, t)| t.packets.iter().map(move |&(at, p)| (at, i, p)))
                    .collect();
                schedule.sort_by_key(|(at, _, _)| *at);
                self.schedule = schedule;
                self.next = 0;
                self.playing_since = Some(Instant::now());
                format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 4242\r\n\r\n")
            }
            (_, "TEARDOWN") => {
                // The stream stops, as a server's does.
                self.playing_since = None;
                self.torn_down = true;
                format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n")
            }
            _ => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n"),
        })
    }
}

/// Writes all of `bytes` to the non-blocking `conn`, waiting while its send
/// buffer is full; false when the connection failed.
fn write_all(conn: &mut TcpStream, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match conn.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                std::thread::sleep(Duration::from_micros(200))
            }
            Err(_) => return false,
        }
    }
    true
}

fn serve(conn: TcpStream, behaviour: Behaviour, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let peer = match conn.peer_addr() {
        Ok(p) => p,
        Err(_) => return,
    };
    // Interleaved packets leave at once, as from a real server (no Nagle
    // delay of small writes while an ACK is outstanding).
    let _ = conn.set_nodelay(true);
    if conn.set_nonblocking(true).is_err() {
        return;
    }
    let (tracks, ssrc_in_transport) = behaviour.tracks().unwrap_or_default();
    let sockets: Vec<UdpSocket> = (0..tracks.len().max(1))
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind fake server UDP"))
        .collect();
    let mut c = Conn {
        conn,
        peer,
        dests: vec![Dest::default(); tracks.len()],
        sdp: sdp(&tracks),
        tracks,
        ssrc_in_transport,
        sockets,
        schedule: Vec::new(),
        next: 0,
        playing_since: None,
        set_up: false,
        torn_down: false,
        ssrc: rand::random(),
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut counted = false;
    while !stop.load(Ordering::SeqCst) {
        if c.set_up && !counted {
            counted = true;
            counts.sessions.fetch_add(1, Ordering::SeqCst);
        }
        if !c.send_due() {
            // Over TCP a client that closed its connection may show up as a
            // failed interleaved write before the read sees the EOF.
            if c.set_up && !c.torn_down {
                counts
                    .closed_without_teardown
                    .fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
        let n = match c.conn.read(&mut chunk) {
            Ok(0) => {
                if c.set_up && !c.torn_down {
                    counts
                        .closed_without_teardown
                        .fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                std::thread::sleep(c.wait());
                continue;
            }
            Err(_) => {
                // A client that closes with interleaved data unread resets
                // the connection (ECONNRESET) instead of sending FIN.
                if c.set_up && !c.torn_down {
                    counts
                        .closed_without_teardown
                        .fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            // Skip interleaved RTCP from the client.
            while buf.first() == Some(&b'$') && buf.len() >= 4 {
                let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                if buf.len() < len {
                    break;
                }
                buf.drain(..len);
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let request = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            buf.drain(..end + 4);
            let Some(reply) = c.answer(&behaviour, &request) else {
                continue;
            };
            if !write_all(&mut c.conn, reply.as_bytes()) {
                return;
            }
            if request.starts_with("TEARDOWN") {
                counts.teardowns.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
