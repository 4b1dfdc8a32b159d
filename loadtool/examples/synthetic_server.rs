//! A minimal RTSP server that sends synthetic RTP to many sessions as cheaply
//! as this host allows, to measure the load tool's own capacity where a real
//! server on the same machine could not keep up.
//!
//! Every session gets two tracks, like a 300 kbit/s file: video at 27
//! packets/s (90 kHz clock) and audio at 6 packets/s (44.1 kHz clock), 1,136
//! bytes per packet (12-byte RTP header + 1,124 bytes), 33 packets/s and
//! 300 kbit/s per session. Packets are paced from PLAY at exact multiples of
//! their period, with matching RTP timestamps. UDP only (SETUP over TCP is
//! answered 461). Packets for the same destination (the load tool shares a
//! few port pairs among all its sessions) leave in one sendmsg with UDP GSO
//! (UDP_SEGMENT), up to 48 at a time.
//!
//! `--bframes` sends the video like an IBBP stream in decode order: packet
//! *n* still leaves at *n* / 27 s, but its RTP timestamp is the presentation
//! time of frame I0 P3 B1 B2 P6 B4 B5 … (P-frames two frames ahead, B-frames
//! one behind). `--toffset ID` also announces the RFC 5450 transmission time
//! offset extension as `a=extmap:ID` (1–14) and sends it in every video
//! packet (one-byte form, RFC 8285), whose total size stays 1,136 bytes.
//!
//! ```text
//! cargo run --release -p cadence-loadtool --example synthetic_server -- 127.0.0.1:20554
//! cadence-loadtool --clients 10000 rtsp://127.0.0.1:20554/synthetic
//! synthetic_server 127.0.0.1:20554 --bframes --toffset 1
//! ```
//!
//! It listens on 127.0.0.1 only and runs until killed; one thread.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use cadence_loadtool::net::epoll::{Epoll, READ};
use cadence_loadtool::net::tcp::sockaddr;
use rtsp_types::{Message, Method, ParseError, Request};

const PAYLOAD: usize = 1124;
const PACKET: usize = 12 + PAYLOAD;
/// Datagrams per GSO send: 48 × 1,136 bytes stays under the 64 KiB UDP limit.
const GSO_MAX: usize = 48;
/// (clock rate, packets per second, payload type) of the two tracks.
const TRACKS: [(u32, u32, u8); 2] = [(90_000, 27, 96), (44_100, 6, 97)];
/// Bytes of the header extension in a video packet with toffset: the
/// 0xBEDE/length word and one word holding the element.
const TOFFSET_EXT: usize = 8;

/// What the video track looks like.
#[derive(Debug, Clone, Copy, Default)]
struct VideoMode {
    /// Timestamps reordered like IBBP in decode order.
    bframes: bool,
    /// Send the toffset extension with this local identifier.
    toffset_id: Option<u8>,
}

fn sdp(mode: VideoMode) -> String {
    let extmap = mode
        .toffset_id
        .map(|id| format!("a=extmap:{id} urn:ietf:params:rtp-hdrext:toffset\r\n"))
        .unwrap_or_default();
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=synthetic\r\nt=0 0\r\na=control:*\r\n\
m=video 0 RTP/AVP 96\r\nb=AS:245\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n{extmap}\
m=audio 0 RTP/AVP 97\r\nb=AS:55\r\na=rtpmap:97 mpeg4-generic/44100/2\r\na=control:trackID=2\r\n"
    )
}

/// Presentation frame of the `n`-th frame in IBBP decode order.
fn ibbp_presentation(n: u64) -> u64 {
    match n {
        0 => 0,
        _ if (n - 1) % 3 == 0 => n + 2,
        _ => n - 1,
    }
}

struct Stream {
    dest: SocketAddr,
    ssrc: u32,
    track: usize,
    seq: u16,
    ts_base: u32,
    /// Packets sent since PLAY.
    sent: u64,
    start: Instant,
    alive: bool,
}

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    session: u64,
    streams: Vec<usize>,
}

struct Server {
    epoll: Epoll,
    listener: TcpListener,
    udp: UdpSocket,
    conns: HashMap<u64, Conn>,
    next_token: u64,
    streams: Vec<Stream>,
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    groups: HashMap<SocketAddr, (Vec<u8>, usize)>,
    sent_total: u64,
    send_errors: u64,
    mode: VideoMode,
    sdp: String,
}

fn main() {
    let mut listen = "127.0.0.1:20554".to_string();
    let mut mode = VideoMode::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bframes" => mode.bframes = true,
            "--toffset" => {
                let id = args.next().and_then(|v| v.parse::<u8>().ok());
                match id.filter(|id| (1..=14).contains(id)) {
                    Some(id) => mode.toffset_id = Some(id),
                    None => {
                        eprintln!("synthetic_server: --toffset needs an id from 1 to 14");
                        std::process::exit(2);
                    }
                }
            }
            _ if arg.starts_with("--") => {
                eprintln!("synthetic_server: unknown option {arg}");
                std::process::exit(2);
            }
            _ => listen = arg,
        }
    }
    let addr: SocketAddr = match listen.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("synthetic_server: bad address {listen:?}: {e}");
            std::process::exit(2);
        }
    };
    if !addr.ip().is_loopback() {
        eprintln!("synthetic_server: listens on loopback addresses only");
        std::process::exit(2);
    }
    if let Err(e) = run(addr, mode) {
        eprintln!("synthetic_server: {e}");
        std::process::exit(1);
    }
}

fn run(addr: SocketAddr, mode: VideoMode) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    // A blocking socket: when the send buffer is full the server waits
    // rather than dropping, so every loss the load tool reports happened on
    // the receiving side.
    let udp = UdpSocket::bind((addr.ip(), 0))?;
    let epoll = Epoll::new()?;
    epoll.add(listener.as_raw_fd(), READ, 0)?;
    let mut server = Server {
        epoll,
        listener,
        udp,
        conns: HashMap::new(),
        next_token: 1,
        streams: Vec::new(),
        due: BinaryHeap::new(),
        groups: HashMap::new(),
        sent_total: 0,
        send_errors: 0,
        mode,
        sdp: sdp(mode),
    };
    println!("synthetic_server: rtsp://{addr}/synthetic");
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut last_report = Instant::now();
    loop {
        let busy = server
            .due
            .peek()
            .is_some_and(|Reverse((at, _))| *at <= Instant::now());
        let n = server.epoll.wait(&mut events, if busy { 0 } else { 1 })?;
        for ev in &events[..n] {
            let token = ev.u64;
            if token == 0 {
                server.accept();
            } else {
                server.read(token);
            }
        }
        server.send_due();
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            let live = server.streams.iter().filter(|s| s.alive).count();
            eprintln!(
                "synthetic_server: {} connections, {live} streams, {} packets sent",
                server.conns.len(),
                server.sent_total
            );
        }
    }
}

impl Server {
    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let token = self.next_token;
            self.next_token += 1;
            if self.epoll.add(stream.as_raw_fd(), READ, token).is_err() {
                continue;
            }
            self.conns.insert(
                token,
                Conn {
                    stream,
                    inbuf: Vec::new(),
                    session: token,
                    streams: Vec::new(),
                },
            );
        }
    }

    fn read(&mut self, token: u64) {
        let mut buf = [0u8; 8192];
        let mut closed = false;
        if let Some(conn) = self.conns.get_mut(&token) {
            loop {
                match conn.stream.read(&mut buf) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => conn.inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
        }
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            // Skip interleaved frames (RTCP from the client would come over UDP).
            if conn.inbuf.first() == Some(&b'$') {
                if conn.inbuf.len() < 4 {
                    break;
                }
                let len = 4 + usize::from(u16::from_be_bytes([conn.inbuf[2], conn.inbuf[3]]));
                if conn.inbuf.len() < len {
                    break;
                }
                conn.inbuf.drain(..len);
                continue;
            }
            let parsed = match Message::<Vec<u8>>::parse(&conn.inbuf) {
                Ok((Message::Request(req), used)) => Some((req, used)),
                Ok((_, used)) => {
                    conn.inbuf.drain(..used);
                    continue;
                }
                Err(ParseError::Incomplete(_)) => None,
                Err(ParseError::Error) => {
                    closed = true;
                    None
                }
            };
            let Some((req, used)) = parsed else { break };
            conn.inbuf.drain(..used);
            let reply = self.answer(token, &req);
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            // Replies are small: a blocking-free write of the whole reply
            // normally succeeds; a client that does not read is dropped.
            if conn.stream.write_all(reply.as_bytes()).is_err() {
                closed = true;
                break;
            }
        }
        if closed {
            if let Some(conn) = self.conns.remove(&token) {
                for s in conn.streams {
                    self.streams[s].alive = false;
                }
            }
        }
    }

    fn answer(&mut self, token: u64, req: &Request<Vec<u8>>) -> String {
        let cseq = req
            .header(&rtsp_types::headers::CSEQ)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let Some(conn) = self.conns.get_mut(&token) else {
            return String::new();
        };
        let session = conn.session;
        let peer_ip = conn.stream.peer_addr().map(|a| a.ip()).ok();
        match req.method() {
            Method::Options | Method::GetParameter => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n\r\n"
            ),
            Method::Describe => {
                let base = req.request_uri().map(|u| u.to_string()).unwrap_or_default();
                format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: {base}/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
                    self.sdp.len(),
                    self.sdp
                )
            }
            Method::Setup => {
                let transport = req.header(&rtsp_types::headers::TRANSPORT).map(|v| v.as_str().to_string()).unwrap_or_default();
                let port = transport
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("client_port="))
                    .and_then(|p| p.split('-').next())
                    .and_then(|p| p.parse::<u16>().ok());
                let (Some(port), Some(ip)) = (port, peer_ip) else {
                    return format!("RTSP/1.0 461 Unsupported Transport\r\nCSeq: {cseq}\r\n\r\n");
                };
                let track = usize::from(req.request_uri().is_some_and(|u| u.as_str().ends_with("trackID=2")));
                let ssrc: u32 = rand::random();
                let id = self.streams.len();
                self.streams.push(Stream {
                    dest: SocketAddr::new(ip, port),
                    ssrc,
                    track,
                    seq: rand::random(),
                    ts_base: rand::random(),
                    sent: 0,
                    start: Instant::now(),
                    alive: false,
                });
                conn.streams.push(id);
                let server_port = self.udp.local_addr().map(|a| a.port()).unwrap_or(0);
                format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: {session};timeout=60\r\n\
Transport: RTP/AVP;unicast;client_port={port}-{};server_port={server_port}-{};ssrc={ssrc:08X}\r\n\r\n",
                    port + 1,
                    server_port + 1
                )
            }
            Method::Play => {
                let now = Instant::now();
                let ids = conn.streams.clone();
                for id in ids {
                    let s = &mut self.streams[id];
                    if !s.alive {
                        s.alive = true;
                        s.start = now;
                        self.due.push(Reverse((now, id)));
                    }
                }
                format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: {session}\r\nRange: npt=0.000-\r\n\r\n")
            }
            Method::Teardown => {
                for &id in &conn.streams {
                    self.streams[id].alive = false;
                }
                format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n")
            }
            _ => format!("RTSP/1.0 501 Not Implemented\r\nCSeq: {cseq}\r\n\r\n"),
        }
    }

    /// Sends every packet whose time has come, grouped per destination.
    fn send_due(&mut self) {
        let now = Instant::now();
        // At most this many packets per pass, so that RTSP requests are
        // answered even when sending falls behind.
        let mut budget = 20_000;
        while let Some(&Reverse((at, id))) = self.due.peek() {
            if at > now || budget == 0 {
                break;
            }
            budget -= 1;
            self.due.pop();
            let s = &mut self.streams[id];
            if !s.alive {
                continue;
            }
            let (clock, rate, pt) = TRACKS[s.track];
            let ticks = |frame: u64| (frame * u64::from(clock) / u64::from(rate)) as i64;
            let video = s.track == 0;
            let frame = if video && self.mode.bframes {
                ibbp_presentation(s.sent)
            } else {
                s.sent
            };
            let ts = s.ts_base.wrapping_add(ticks(frame) as u32);
            // RFC 5450: transmission time − RTP time, in RTP ticks.
            let toffset = (ticks(s.sent) - ticks(frame)) as i32;
            let extension = self.mode.toffset_id.filter(|_| video);
            let mut header = [0u8; 12 + TOFFSET_EXT];
            header[0] = 0x80 | if extension.is_some() { 0x10 } else { 0 };
            header[1] = pt;
            header[2..4].copy_from_slice(&s.seq.to_be_bytes());
            header[4..8].copy_from_slice(&ts.to_be_bytes());
            header[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
            let header_len = match extension {
                Some(id) => {
                    let o = toffset.to_be_bytes();
                    header[12..20].copy_from_slice(&[
                        0xBE,
                        0xDE,
                        0,
                        1,
                        id << 4 | 2,
                        o[1],
                        o[2],
                        o[3],
                    ]);
                    12 + TOFFSET_EXT
                }
                None => 12,
            };
            s.seq = s.seq.wrapping_add(1);
            s.sent += 1;
            let next = s.start + Duration::from_nanos(s.sent * 1_000_000_000 / u64::from(rate));
            let dest = s.dest;
            self.due.push(Reverse((next, id)));
            let group = self
                .groups
                .entry(dest)
                .or_insert_with(|| (Vec::with_capacity(PACKET * GSO_MAX), 0));
            group.0.extend_from_slice(&header[..header_len]);
            group.0.resize(group.0.len() + PACKET - header_len, 0x42);
            group.1 += 1;
            if group.1 == GSO_MAX {
                let (buf, count) = std::mem::take(group);
                self.flush(dest, &buf, count);
            }
        }
        let groups: Vec<(SocketAddr, Vec<u8>, usize)> = self
            .groups
            .iter_mut()
            .filter(|(_, g)| g.1 > 0)
            .map(|(d, g)| (*d, std::mem::take(&mut g.0), std::mem::take(&mut g.1)))
            .collect();
        for (dest, buf, count) in groups {
            self.flush(dest, &buf, count);
        }
    }

    /// One sendmsg of `count` equal-size datagrams to `dest` (UDP GSO).
    fn flush(&mut self, dest: SocketAddr, buf: &[u8], count: usize) {
        if count == 0 {
            return;
        }
        let (name, name_len) = sockaddr(dest);
        let mut iov = libc::iovec {
            iov_base: buf.as_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut control = [0u64; 4];
        // SAFETY: zeroed msghdr is valid; fields set below point at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&name as *const libc::sockaddr_storage) as *mut libc::c_void;
        msg.msg_namelen = name_len;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if count > 1 {
            msg.msg_control = control.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE of a u16 fits in 32 bytes.
            msg.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
            // SAFETY: the control buffer is large enough for one cmsg.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), PACKET as u16);
            }
        }
        // SAFETY: msg points at valid buffers for the duration of the call.
        let r = unsafe { libc::sendmsg(self.udp.as_raw_fd(), &msg, 0) };
        if r >= 0 {
            self.sent_total += count as u64;
        } else {
            self.send_errors += count as u64;
        }
    }
}
