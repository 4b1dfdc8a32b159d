//! Session lifecycle against a real `cadence` process: RTCP sender reports
//! and BYE on SIGTERM, the session timeout, requests that reach the owning
//! shard over a new connection, and a TCP client that stops reading.

mod common;

use common::media;
use common::rtsp::{param, RtspConn};
use common::server::Server;
use common::tools::{ffmpeg_decode, source_frames, Lower};
use rtsp_types::Method;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// A UDP RTP/RTCP socket pair on consecutive ports.
struct UdpPair {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl UdpPair {
    fn bind() -> UdpPair {
        for _ in 0..100 {
            let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind rtp");
            let port = rtp.local_addr().expect("addr").port();
            if port % 2 != 0 {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                rtp.set_read_timeout(Some(Duration::from_millis(200))).ok();
                rtcp.set_read_timeout(Some(Duration::from_millis(200))).ok();
                return UdpPair { rtp, rtcp };
            }
        }
        panic!("no free UDP port pair");
    }

    fn transport(&self) -> String {
        let p = self.rtp.local_addr().expect("addr").port();
        format!("RTP/AVP;unicast;client_port={}-{}", p, p + 1)
    }
}

/// SETUPs `track` of `url` over UDP on `conn` (joining `session` when given);
/// returns the Session ID and the SSRC from the reply.
fn setup_udp(
    conn: &mut RtspConn,
    url: &str,
    track: u32,
    pair: &UdpPair,
    session: Option<&str>,
) -> (String, u32) {
    let transport = pair.transport();
    let mut headers = vec![("Transport", transport.as_str())];
    if let Some(s) = session {
        headers.push(("Session", s));
    }
    let r = conn.request(Method::Setup, &format!("{url}/trackID={track}"), &headers);
    assert_eq!(r.status, 200, "SETUP: {}", r.summary());
    let id = r
        .header("Session")
        .expect("Session")
        .split(';')
        .next()
        .expect("id")
        .to_string();
    let t = r.header("Transport").expect("Transport").to_string();
    let ssrc = u32::from_str_radix(&param(&t, "ssrc").expect("ssrc"), 16).expect("hex ssrc");
    (id, ssrc)
}

/// RTCP packet types (RFC 3550 §12.1) found in a compound packet, with the SSRC
/// of each.
fn rtcp_types(data: &[u8]) -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let pt = data[at + 1];
        let len = (u16::from_be_bytes([data[at + 2], data[at + 3]]) as usize + 1) * 4;
        let ssrc = u32::from_be_bytes([data[at + 4], data[at + 5], data[at + 6], data[at + 7]]);
        out.push((pt, ssrc));
        at += len;
    }
    out
}

fn fixture_server(extra: &[&str]) -> Server {
    Server::start_with(&[media::fixture_source()], extra)
}

#[test]
fn sender_reports_every_5_s_then_bye_on_sigterm() {
    let mut server = fixture_server(&["--cores", "1"]);
    let url = server.url(media::FIXTURE_H264);
    let pair = UdpPair::bind();
    let mut conn = RtspConn::connect(server.addr());
    let (id, video_ssrc) = setup_udp(&mut conn, &url, 3, &pair, None);
    let (_, audio_ssrc) = setup_udp(&mut conn, &url, 4, &pair, Some(&id));
    conn.session = Some(id);
    let r = conn.request(Method::Play, &url, &[("Range", "npt=0-")]);
    assert_eq!(r.status, 200, "PLAY: {}", r.summary());

    // Watch RTCP for 11 s: a report about every 5 s per track.
    let mut reports: Vec<(Instant, u32)> = Vec::new();
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(11) {
        if let Ok(n) = pair.rtcp.recv(&mut buf) {
            for (pt, ssrc) in rtcp_types(&buf[..n]) {
                if pt == 200 {
                    reports.push((Instant::now(), ssrc));
                }
            }
        }
        // Drain RTP (without blocking) so the socket never overflows.
        pair.rtp.set_nonblocking(true).ok();
        while pair.rtp.recv(&mut buf).is_ok() {}
    }
    for ssrc in [video_ssrc, audio_ssrc] {
        let times: Vec<Instant> = reports
            .iter()
            .filter(|r| r.1 == ssrc)
            .map(|r| r.0)
            .collect();
        assert!(
            (2..=4).contains(&times.len()),
            "SSRC {ssrc:08X}: {} sender reports in 11 s",
            times.len()
        );
        for w in times.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap > Duration::from_millis(4000) && gap < Duration::from_millis(6500),
                "SR gap {gap:?}"
            );
        }
    }

    // SIGTERM: every session gets an RTCP BYE, and the process exits 0.
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) }, 0);
    let mut byes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && byes.len() < 2 {
        if let Ok(n) = pair.rtcp.recv(&mut buf) {
            byes.extend(
                rtcp_types(&buf[..n])
                    .into_iter()
                    .filter(|(pt, _)| *pt == 203)
                    .map(|(_, s)| s),
            );
        }
    }
    byes.sort_unstable();
    let mut want = vec![video_ssrc, audio_ssrc];
    want.sort_unstable();
    assert_eq!(byes, want, "RTCP BYE for both tracks after SIGTERM");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("cadence exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.log_tail(20)
    );
}

#[test]
fn idle_session_times_out() {
    let server = fixture_server(&["--session-timeout", "2"]);
    let url = server.url(media::FIXTURE_H264);
    let pair = UdpPair::bind();
    let mut conn = RtspConn::connect(server.addr());
    let (id, _) = setup_udp(&mut conn, &url, 3, &pair, None);
    conn.session = Some(id.clone());
    assert_eq!(conn.request(Method::Play, &url, &[]).status, 200);
    // The client sends no RTCP and no request: after 2 s the session ends.
    std::thread::sleep(Duration::from_millis(3500));
    let mut buf = [0u8; 2048];
    while pair.rtp.recv(&mut buf).is_ok() {}
    let silent_from = Instant::now();
    let mut late_packets = 0;
    while silent_from.elapsed() < Duration::from_secs(1) {
        if pair.rtp.recv(&mut buf).is_ok() {
            late_packets += 1;
        }
    }
    assert_eq!(
        late_packets, 0,
        "RTP kept flowing after the session timeout"
    );
    let r = conn.request(Method::GetParameter, &url, &[]);
    assert_eq!(r.status, 454, "{}", r.summary());
    assert!(
        server
            .log_text()
            .lines()
            .any(|l| l.contains("session closed") && l.contains("reason=\"timeout\"")),
        "{}",
        server.log_tail(20)
    );

    // A session that sends keep-alives lives on.
    conn.session = None;
    let (id2, _) = setup_udp(&mut conn, &url, 3, &pair, None);
    assert_ne!(id2, id);
    conn.session = Some(id2);
    assert_eq!(conn.request(Method::Play, &url, &[]).status, 200);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(900));
        assert_eq!(conn.request(Method::GetParameter, &url, &[]).status, 200);
    }
}

/// The shard that owns a session: the top byte of its ID.
fn shard_of(id: &str) -> u8 {
    u8::from_str_radix(&id[..2], 16).expect("hex session id")
}

#[test]
fn requests_on_another_shards_connection_are_forwarded() {
    let server = fixture_server(&["--cores", "2"]);
    let url = server.url(media::FIXTURE_H264);
    let pair = UdpPair::bind();
    let mut first = RtspConn::connect(server.addr());
    let (id, ssrc) = setup_udp(&mut first, &url, 3, &pair, None);
    // Find a connection that the kernel gave to the other shard: a SETUP on
    // it creates a session owned by that shard.
    let other_pair = UdpPair::bind();
    let mut other = None;
    for _ in 0..64 {
        let mut c = RtspConn::connect(server.addr());
        let (probe, _) = setup_udp(&mut c, &url, 3, &other_pair, None);
        if shard_of(&probe) != shard_of(&id) {
            other = Some(c);
            break;
        }
    }
    let mut other = other.expect("SO_REUSEPORT spread 64 connections over both shards");
    // PLAY the first session through the other shard's connection.
    let r = other.request(Method::Play, &url, &[("Session", &id), ("Range", "npt=0-")]);
    assert_eq!(r.status, 200, "forwarded PLAY: {}", r.summary());
    assert!(
        r.header("RTP-Info").is_some_and(|v| v.contains("seq=")),
        "{}",
        r.summary()
    );
    let mut buf = [0u8; 2048];
    let n = pair.rtp.recv(&mut buf).expect("RTP after a forwarded PLAY");
    assert!(n > 12);
    let got = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    assert_eq!(got, ssrc, "packets of the forwarded session");
    let r = other.request(Method::Teardown, &url, &[("Session", &id)]);
    assert_eq!(r.status, 200, "forwarded TEARDOWN: {}", r.summary());
    let r = first.request(Method::GetParameter, &url, &[("Session", &id)]);
    assert_eq!(
        r.status,
        454,
        "session gone after TEARDOWN: {}",
        r.summary()
    );
}

/// A TCP connection whose receive buffer is 4 KiB, so that a client that
/// stops reading stalls the server quickly.
fn small_window_connect(addr: SocketAddr) -> TcpStream {
    // SAFETY: plain socket calls on a descriptor we own; wrapped right after.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let stream = TcpStream::from_raw_fd(fd);
        let SocketAddr::V4(v4) = addr else {
            panic!("IPv4 only")
        };
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            &sin as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

#[test]
fn tcp_client_that_stops_reading_is_dropped_without_slowing_others() {
    use std::io::{Read, Write};
    let server = fixture_server(&["--tcp-backlog", "65536"]);
    let url = server.url(media::FIXTURE_H264);
    // The stalled client: SETUP interleaved, PLAY, then never read again.
    let mut stalled = small_window_connect(server.addr());
    let session_reply = |s: &mut TcpStream| -> String {
        let mut acc = Vec::new();
        let mut b = [0u8; 4096];
        while !acc.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut b).expect("read reply");
            assert!(n > 0, "closed early");
            acc.extend_from_slice(&b[..n]);
        }
        String::from_utf8_lossy(&acc).into_owned()
    };
    write!(stalled, "SETUP {url}/trackID=3 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n").expect("send");
    let reply = session_reply(&mut stalled);
    let id = reply
        .lines()
        .find_map(|l| l.strip_prefix("Session: "))
        .and_then(|v| v.split(';').next())
        .expect("Session header")
        .to_string();
    write!(
        stalled,
        "PLAY {url} RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"
    )
    .expect("send");

    // Meanwhile a well-behaved player pulls 8 s over TCP and gets every frame.
    let source = media::fixture_source();
    let decode = ffmpeg_decode(&url, Lower::Tcp, None, 8.0);
    let expected = source_frames(&source.path, 0.0, 8.0);
    assert!(
        decode.errors.is_empty(),
        "decoder errors: {:?}",
        decode.errors
    );
    assert!(
        decode.frames.abs_diff(expected) <= 2,
        "{} frames decoded, {} expected",
        decode.frames,
        expected
    );

    // The stalled client was dropped: its connection ends (after the data
    // already in flight) and the server says why.
    stalled.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut b = vec![0u8; 1 << 16];
    let mut ended = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match stalled.read(&mut b) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    assert!(
        ended,
        "the stalled connection was not closed; log:\n{}",
        server.log_tail(30)
    );
    assert!(
        server.log_text().contains("client is not reading"),
        "{}",
        server.log_tail(30)
    );
}

#[test]
fn a_second_server_cannot_share_the_rtsp_port() {
    let server = fixture_server(&["--cores", "2"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cadence"))
        .args([
            "--cores",
            "1",
            "--listen",
            &server.addr().to_string(),
            "--udp-port-base",
            "0",
        ])
        .arg("--media")
        .arg(media::repo_root().join("media"))
        .output()
        .expect("run a second cadence");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "second server started on a taken port: {stderr}"
    );
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    // The first server still answers every connection.
    for _ in 0..20 {
        let mut c = RtspConn::connect(server.addr());
        assert_eq!(c.request(Method::Options, "*", &[]).status, 200);
    }
}
