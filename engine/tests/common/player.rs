//! A minimal RTSP player: DESCRIBE, SETUP every track (UDP `client_port` pairs or TCP
//! interleaved channels 2k/2k+1), PLAY / PAUSE / TEARDOWN, and collection of every RTP packet
//! with its arrival time, for timing and sequence checks.

use super::rtsp::{self, param, Reply, RtpInfo, RtspConn};
use super::tools::Lower;
use rtsp_types::Method;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A media section of the SDP.
#[derive(Clone, Debug)]
pub struct Track {
    /// `video`, `audio`, ...
    pub kind: String,
    /// The `a=control:` value as given (e.g. `trackID=3`).
    pub control: String,
    /// Absolute control URL (Content-Base joined with `control`).
    pub url: String,
    /// RTP clock rate from `a=rtpmap`, Hz.
    pub clock_rate: u32,
    /// Encoding name from `a=rtpmap` (e.g. `H264`).
    pub encoding: String,
    /// SSRC announced in the SETUP reply's Transport (`ssrc=` hex), if any.
    pub ssrc: Option<u32>,
}

/// One received RTP packet.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Index into [`Player::tracks`].
    pub track: usize,
    /// Arrival time at the receiving thread.
    pub at: Instant,
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub ts: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub pt: u8,
    /// RTP payload.
    pub payload: Vec<u8>,
    /// The header extension (profile, data), when the X bit is set.
    pub extension: Option<(u16, Vec<u8>)>,
}

/// Reply of a PLAY, parsed.
#[derive(Clone, Debug)]
pub struct PlayReply {
    /// The whole reply.
    pub reply: Reply,
    /// `Range:` start, seconds.
    pub npt_start: Option<f64>,
    /// RTP-Info entries matched to tracks (index = track index).
    pub rtp_info: Vec<Option<RtpInfo>>,
}

/// What the receive threads send: an RTP packet, an RTCP packet count, or a bad packet.
enum Rx {
    Rtp(Packet),
    Rtcp,
    Bad(String),
}

/// An RTSP session with every track set up.
pub struct Player {
    /// The control connection.
    pub conn: RtspConn,
    /// Presentation URL.
    pub url: String,
    /// Tracks in SDP order.
    pub tracks: Vec<Track>,
    /// The DESCRIBE reply.
    pub describe: Reply,
    /// The SETUP replies, one per track.
    pub setups: Vec<Reply>,
    /// Transport used.
    pub lower: Lower,
    rx: Receiver<Rx>,
    /// RTCP packets seen so far.
    pub rtcp_count: usize,
    /// Malformed RTP packets seen so far (with a description).
    pub bad: Vec<String>,
    stop: Arc<AtomicBool>,
}

impl Player {
    /// DESCRIBE `url` on `addr` and SETUP each track over `lower`. Panics with the
    /// request/reply on any non-200 status.
    pub fn open(addr: SocketAddr, url: &str, lower: Lower) -> Player {
        let mut conn = RtspConn::connect(addr);
        let describe = conn.request(Method::Describe, url, &[("Accept", "application/sdp")]);
        assert_eq!(
            describe.status,
            200,
            "DESCRIBE {url}: {}",
            describe.summary()
        );
        let base = describe
            .header("Content-Base")
            .map(str::to_string)
            .unwrap_or_else(|| format!("{url}/"));
        let tracks = parse_sdp(&describe.body, &base)
            .unwrap_or_else(|e| panic!("DESCRIBE {url}: {e}\n{}", describe.body_text()));
        assert!(!tracks.is_empty(), "SDP has no media sections");

        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut player = Player {
            conn,
            url: url.to_string(),
            tracks,
            describe,
            setups: Vec::new(),
            lower,
            rx,
            rtcp_count: 0,
            bad: Vec::new(),
            stop: stop.clone(),
        };
        if lower == Lower::Tcp {
            let frames = player.conn.take_frames();
            let tx = tx.clone();
            std::thread::spawn(move || {
                while let Ok(f) = frames.recv() {
                    let track = (f.channel / 2) as usize;
                    let msg = if f.channel % 2 == 1 {
                        Rx::Rtcp
                    } else {
                        parse_rtp(track, f.at, &f.data)
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            });
        }
        for i in 0..player.tracks.len() {
            let transport = match lower {
                Lower::Tcp | Lower::Http => {
                    format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * i, 2 * i + 1)
                }
                Lower::Udp => {
                    let (rtp, rtcp, port) = bind_udp_pair();
                    spawn_udp_reader(rtp, i, false, tx.clone(), stop.clone());
                    spawn_udp_reader(rtcp, i, true, tx.clone(), stop.clone());
                    format!("RTP/AVP;unicast;client_port={}-{}", port, port + 1)
                }
            };
            let turl = player.tracks[i].url.clone();
            let reply = player
                .conn
                .request(Method::Setup, &turl, &[("Transport", &transport)]);
            assert_eq!(
                reply.status,
                200,
                "SETUP {turl} Transport: {transport}: {}",
                reply.summary()
            );
            let session = reply
                .header("Session")
                .unwrap_or_else(|| panic!("SETUP reply without Session: {}", reply.summary()));
            let id = session.split(';').next().unwrap_or("").trim().to_string();
            assert!(!id.is_empty(), "empty session id in {session:?}");
            if let Some(prev) = &player.conn.session {
                assert_eq!(prev, &id, "second SETUP changed the session id");
            }
            player.conn.session = Some(id);
            let t = reply.header("Transport").unwrap_or_default();
            player.tracks[i].ssrc = param(t, "ssrc").and_then(|h| u32::from_str_radix(&h, 16).ok());
            player.setups.push(reply);
        }
        player
    }

    /// The session id.
    pub fn session(&self) -> &str {
        self.conn.session.as_deref().unwrap_or("")
    }

    /// PLAY the aggregate URL, with `Range: npt=<range>` when given; panics unless 200.
    pub fn play(&mut self, range: Option<&str>) -> PlayReply {
        let extra: Vec<(&str, &str)> = range.map(|r| ("Range", r)).into_iter().collect();
        self.play_with(&extra)
    }

    /// PLAY the aggregate URL with `extra` headers (`Range`, `Scale`, `Speed`...); panics
    /// unless 200.
    pub fn play_with(&mut self, extra: &[(&str, &str)]) -> PlayReply {
        let url = self.url.clone();
        let reply = self.conn.request(Method::Play, &url, extra);
        assert_eq!(
            reply.status,
            200,
            "PLAY {url} {extra:?}: {}",
            reply.summary()
        );
        let npt_start = reply.header("Range").and_then(rtsp::npt_start);
        let infos = reply
            .header("RTP-Info")
            .map(rtsp::rtp_info)
            .unwrap_or_default();
        let rtp_info = self
            .tracks
            .iter()
            .map(|t| infos.iter().find(|i| url_matches(&i.url, t)).cloned())
            .collect();
        PlayReply {
            reply,
            npt_start,
            rtp_info,
        }
    }

    /// PAUSE the aggregate URL; panics unless 200.
    pub fn pause(&mut self) -> Reply {
        let url = self.url.clone();
        let reply = self.conn.request(Method::Pause, &url, &[]);
        assert_eq!(reply.status, 200, "PAUSE {url}: {}", reply.summary());
        reply
    }

    /// TEARDOWN the aggregate URL and return the reply.
    pub fn teardown(&mut self) -> Reply {
        let url = self.url.clone();
        self.conn.request(Method::Teardown, &url, &[])
    }

    /// Receives RTP packets until `until`; RTCP is counted, malformed packets recorded.
    pub fn collect_until(&mut self, until: Instant) -> Vec<Packet> {
        let mut out = Vec::new();
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            match self.rx.recv_timeout(until - now) {
                Ok(Rx::Rtp(p)) => out.push(p),
                Ok(Rx::Rtcp) => self.rtcp_count += 1,
                Ok(Rx::Bad(b)) => self.bad.push(b),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        out
    }

    /// Receives RTP packets for `d`.
    pub fn collect_for(&mut self, d: Duration) -> Vec<Packet> {
        self.collect_until(Instant::now() + d)
    }

    /// Receives until every track has delivered at least one packet (or `limit` passes).
    pub fn collect_first_of_each(&mut self, limit: Duration) -> Vec<Packet> {
        let until = Instant::now() + limit;
        let mut out = Vec::new();
        while Instant::now() < until {
            out.extend(self.collect_for(Duration::from_millis(50)));
            if (0..self.tracks.len()).all(|t| out.iter().any(|p| p.track == t)) {
                break;
            }
        }
        out
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// True if an RTP-Info `url=` designates `track` (absolute URL, or a suffix such as the
/// bare control value).
fn url_matches(info_url: &str, track: &Track) -> bool {
    let u = info_url.trim();
    !u.is_empty()
        && (u == track.url
            || track.url.ends_with(&format!("/{u}"))
            || u.ends_with(&format!("/{}", track.control)))
}

/// Parses the SDP of a DESCRIBE reply into tracks (with sdp-types), resolving each
/// `a=control` against `base`.
pub fn parse_sdp(body: &[u8], base: &str) -> Result<Vec<Track>, String> {
    let sdp = sdp_types::Session::parse(body).map_err(|e| format!("SDP does not parse: {e:?}"))?;
    let mut tracks = Vec::new();
    for m in &sdp.medias {
        let control = m
            .get_first_attribute_value("control")
            .flatten()
            .ok_or_else(|| format!("m={} has no a=control", m.media))?
            .to_string();
        let rtpmap = m
            .get_first_attribute_value("rtpmap")
            .flatten()
            .ok_or_else(|| format!("m={} has no a=rtpmap", m.media))?;
        // "96 H264/90000[/channels]"
        let enc = rtpmap.split_whitespace().nth(1).unwrap_or("");
        let mut parts = enc.split('/');
        let encoding = parts.next().unwrap_or("").to_string();
        let clock_rate = parts
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad rtpmap {rtpmap:?}"))?;
        let url = if control.starts_with("rtsp://") {
            control.clone()
        } else if base.ends_with('/') {
            format!("{base}{control}")
        } else {
            format!("{base}/{control}")
        };
        tracks.push(Track {
            kind: m.media.clone(),
            control,
            url,
            clock_rate,
            encoding,
            ssrc: None,
        });
    }
    Ok(tracks)
}

fn parse_rtp(track: usize, at: Instant, data: &[u8]) -> Rx {
    match rtp_types::RtpPacket::parse(data) {
        Ok(p) => Rx::Rtp(Packet {
            track,
            at,
            seq: p.sequence_number(),
            ts: p.timestamp(),
            ssrc: p.ssrc(),
            marker: p.marker_bit(),
            pt: p.payload_type(),
            payload: p.payload().to_vec(),
            extension: p
                .extension()
                .map(|(profile, data)| (profile, data.to_vec())),
        }),
        Err(e) => Rx::Bad(format!(
            "track {track}: {e:?} on {} bytes {:02x?}",
            data.len(),
            &data[..data.len().min(16)]
        )),
    }
}

/// Binds an even RTP port and the next odd RTCP port on 127.0.0.1.
fn bind_udp_pair() -> (UdpSocket, UdpSocket, u16) {
    for _ in 0..200 {
        let Ok(a) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let port = a.local_addr().expect("udp addr").port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(b) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (a, b, port);
        }
    }
    panic!("could not bind an even/odd UDP port pair");
}

fn spawn_udp_reader(
    sock: UdpSocket,
    track: usize,
    rtcp: bool,
    tx: Sender<Rx>,
    stop: Arc<AtomicBool>,
) {
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("udp timeout");
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::SeqCst) {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let at = Instant::now();
                    let msg = if rtcp {
                        Rx::Rtcp
                    } else {
                        parse_rtp(track, at, &buf[..n])
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
                Err(_) => continue,
            }
        }
    });
}

/// Packets of one track, in arrival order.
pub fn of_track(pkts: &[Packet], track: usize) -> Vec<&Packet> {
    pkts.iter().filter(|p| p.track == track).collect()
}

/// Media time of RTP timestamp `ts` relative to `origin`, seconds (wrapping 32-bit
/// difference, so timestamps before `origin` come out negative).
pub fn media_secs(ts: u32, origin: u32, clock_rate: u32) -> f64 {
    (ts.wrapping_sub(origin) as i32) as f64 / clock_rate as f64
}
