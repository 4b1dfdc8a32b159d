//! A small scripted RTSP server for the load tool's tests: it answers with
//! canned replies, or streams a given list of RTP packets (sequence number,
//! timestamp) so that loss, duplicates and reordering are known exactly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
}

/// A running fake server; stops when dropped.
pub struct FakeServer {
    /// Its RTSP address.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

const SSRC: u32 = 0x5EED_0001;
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\na=control:*\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n";

impl FakeServer {
    /// Starts a server on 127.0.0.1 with `behaviour`.
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake server");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let b = behaviour.clone();
                let stop3 = Arc::clone(&stop2);
                std::thread::spawn(move || serve(conn, b, stop3));
            }
        });
        Self { addr, stop }
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

fn rtp(seq: u16, ts: u32) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0x65; 200]);
    p
}

fn serve(mut conn: TcpStream, behaviour: Behaviour, stop: Arc<AtomicBool>) {
    let peer = match conn.peer_addr() {
        Ok(p) => p,
        Err(_) => return,
    };
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind fake server UDP");
    let mut buf = Vec::new();
    let mut client_port: Option<u16> = None;
    let mut interleaved: Option<u8> = None;
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let n = match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        buf.extend_from_slice(&chunk[..n]);
        // Skip interleaved RTCP from the client.
        while buf.first() == Some(&b'$') && buf.len() >= 4 {
            let len = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < len {
                break;
            }
            buf.drain(..len);
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let request = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
        buf.drain(..end + 4);
        let method = request.split_whitespace().next().unwrap_or("").to_string();
        let cseq = header(&request, "CSeq").unwrap_or("0").to_string();
        let reply = match (&behaviour, method.as_str()) {
            (Behaviour::Silent, _) => continue,
            (Behaviour::Garbage, _) => "\u{1}\u{2}this is not RTSP\r\n\r\n".to_string(),
            (Behaviour::DescribeStatus(code), "DESCRIBE") => format!("RTSP/1.0 {code} Nope\r\nCSeq: {cseq}\r\n\r\n"),
            (_, "OPTIONS") => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n"),
            (_, "DESCRIBE") => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: rtsp://{}/fake.mp4/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
                conn.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                SDP.len()
            ),
            (Behaviour::Stream { ssrc_in_transport, .. }, "SETUP") => {
                let t = header(&request, "Transport").unwrap_or("");
                let ssrc = if *ssrc_in_transport { format!(";ssrc={SSRC:08X}") } else { String::new() };
                let transport = if let Some(v) = t.split(';').find_map(|p| p.strip_prefix("interleaved=")) {
                    interleaved = v.split('-').next().and_then(|c| c.parse().ok());
                    format!("RTP/AVP/TCP;unicast;interleaved={v}{ssrc}")
                } else {
                    let ports = t.split(';').find_map(|p| p.strip_prefix("client_port=")).unwrap_or("0-1");
                    client_port = ports.split('-').next().and_then(|p| p.parse().ok());
                    let server = udp.local_addr().map(|a| a.port()).unwrap_or(0);
                    format!("RTP/AVP;unicast;client_port={ports};server_port={server}-{}{ssrc}", server + 1)
                };
                format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 4242;timeout=60\r\nTransport: {transport}\r\n\r\n")
            }
            (Behaviour::Stream { packets, interval, .. }, "PLAY") => {
                let reply = format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: 4242\r\n\r\n");
                if conn.write_all(reply.as_bytes()).is_err() {
                    return;
                }
                for &(seq, ts) in packets {
                    let p = rtp(seq, ts);
                    let sent = match (interleaved, client_port) {
                        (Some(ch), _) => {
                            let mut frame = vec![b'$', ch];
                            frame.extend_from_slice(&(p.len() as u16).to_be_bytes());
                            frame.extend_from_slice(&p);
                            conn.write_all(&frame).is_ok()
                        }
                        (None, Some(port)) => udp.send_to(&p, (peer.ip(), port)).is_ok(),
                        _ => false,
                    };
                    if !sent || stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(*interval);
                }
                continue;
            }
            (_, "TEARDOWN") => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n"),
            _ => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n"),
        };
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
