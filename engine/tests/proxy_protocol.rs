//! PROXY protocol v1 and v2 on the RTSP listener: from a trusted proxy the
//! address it carries is the session's client everywhere (the RTP
//! destination, the admin API, the access log); a v2 LOCAL header (HAProxy's
//! health check) keeps the real peer; a header from an untrusted peer, or a
//! malformed one, closes the connection. (HAProxy itself in front of two
//! nodes: `multinode.rs`.)

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::http::http;
use common::media;
use common::server::{free_port, Server, TempDir};

/// Sends `bytes` then reads until `needle` or EOF (5 s); what was read, and
/// whether the server closed the connection.
fn exchange(s: &mut TcpStream, bytes: &[u8], needle: &str) -> (String, bool) {
    s.write_all(bytes).expect("write");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("t");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if !needle.is_empty() && String::from_utf8_lossy(&got).contains(needle) {
            return (String::from_utf8_lossy(&got).into_owned(), false);
        }
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// A PROXY v2 PROXY (or LOCAL) header for TCP over IPv4.
fn v2(local: bool, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(if local { 0x20 } else { 0x21 });
    if local {
        h.push(0x00);
        h.extend_from_slice(&0u16.to_be_bytes());
        return h;
    }
    h.push(0x11);
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h
}

fn setup(url: &str) -> String {
    format!(
        "SETUP {url}/trackID=3 RTSP/1.0\r\nCSeq: 2\r\nUser-Agent: proxied\r\nTransport: RTP/AVP;unicast;client_port=7300-7301\r\n\r\n"
    )
}

#[test]
fn trusted_proxies_give_the_real_client_everywhere() {
    let etc = TempDir::new("proxy-etc");
    let log = etc.path().join("access.log");
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let log_arg = log.to_str().expect("utf8").to_string();
    let admin_arg = admin.to_string();
    let server = Server::start_with(
        &[media::fixture_source()],
        &[
            "--trusted-proxies",
            "127.0.0.1/32",
            "--admin",
            &admin_arg,
            "--access-log",
            &log_arg,
        ],
    );
    let url = server.url(media::FIXTURE_H264);
    // v1, then v2.
    let mut sessions = Vec::new();
    for (header, client) in [
        (
            format!(
                "PROXY TCP4 10.9.8.7 127.0.0.1 5555 {}\r\n",
                server.addr().port()
            )
            .into_bytes(),
            "10.9.8.7:5555",
        ),
        (
            v2(
                false,
                [10, 9, 8, 6],
                6666,
                [127, 0, 0, 1],
                server.addr().port(),
            ),
            "10.9.8.6:6666",
        ),
    ] {
        let mut s = TcpStream::connect(server.addr()).expect("connect");
        let mut bytes = header;
        bytes.extend_from_slice(setup(&url).as_bytes());
        let (reply, closed) = exchange(&mut s, &bytes, "\r\n\r\n");
        assert!(!closed && reply.starts_with("RTSP/1.0 200"), "{reply}");
        sessions.push((s, client, reply));
    }
    let list = http(admin, "GET", "/api/v1/sessions", &[]).json();
    let clients: Vec<String> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|s| s["client"].as_str().unwrap_or("").to_string())
        .collect();
    for (_, client, _) in &sessions {
        assert!(
            clients.iter().any(|c| c == client),
            "{clients:?} lacks {client}"
        );
    }
    // The access log names them too, once the sessions end.
    for (s, _, reply) in sessions.iter_mut() {
        let id = reply
            .lines()
            .find_map(|l| l.strip_prefix("Session: "))
            .and_then(|v| v.split(';').next())
            .expect("session")
            .to_string();
        let (r, _) = exchange(
            s,
            format!("TEARDOWN {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n").as_bytes(),
            "\r\n\r\n",
        );
        assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().filter(|l| !l.starts_with('#')).count() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ips: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(ips, ["10.9.8.7", "10.9.8.6"], "{text}");

    // A v2 LOCAL header (a health check): the real peer, and RTSP works.
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    let mut bytes = v2(true, [0; 4], 0, [0; 4], 0);
    bytes.extend_from_slice(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    let (r, _) = exchange(&mut s, &bytes, "\r\n\r\n");
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    // A malformed header from the trusted proxy: closed, no reply.
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    let (r, closed) = exchange(
        &mut s,
        b"PROXY TCP4 nonsense\r\nOPTIONS * RTSP/1.0\r\n\r\n",
        "",
    );
    assert!(closed && r.is_empty(), "{r:?}");
}

#[test]
fn a_proxy_header_from_an_untrusted_peer_is_refused_and_logged() {
    let server = Server::start_with(
        &[media::fixture_source()],
        &["--trusted-proxies", "127.0.0.2/32"],
    );
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    let (r, closed) = exchange(
        &mut s,
        format!(
            "PROXY TCP4 198.51.100.7 127.0.0.1 5555 {}\r\nOPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            server.addr().port()
        )
        .as_bytes(),
        "",
    );
    assert!(closed && !r.contains("200"), "{r:?}");
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    let (r, closed) = exchange(
        &mut s,
        &v2(false, [198, 51, 100, 7], 1, [127, 0, 0, 1], 2),
        "",
    );
    assert!(closed && !r.contains("200"), "{r:?}");
    assert!(
        server
            .log_text()
            .contains("PROXY protocol header from a peer not in trusted_proxies"),
        "{}",
        server.log_tail(10)
    );
    // Plain RTSP from the same peer still works.
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    let (r, _) = exchange(&mut s, b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", "\r\n\r\n");
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
}
