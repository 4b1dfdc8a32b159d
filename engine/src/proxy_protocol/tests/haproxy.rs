//! HAProxy (Debian's `haproxy` package) in `mode tcp` forwarding to a test
//! listener with `send-proxy` and `send-proxy-v2`: the headers it writes are
//! parsed and must name the test client's real socket addresses. Fails when
//! haproxy is not installed.

use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn haproxy_binary() -> &'static str {
    ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("haproxy")
}

fn free_port(addr: &str) -> u16 {
    TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Connects through the frontend, sends a payload, and returns what the
/// backend listener received plus the client's own addresses.
fn through(front: SocketAddr, backend: &TcpListener) -> (Vec<u8>, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match TcpStream::connect(front) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("haproxy frontend {front} never came up: {e}"),
        }
    };
    let local = client.local_addr().expect("local addr");
    let payload = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    client.write_all(payload).expect("send");
    backend.set_nonblocking(false).expect("blocking listener");
    let (mut conn, _) = backend.accept().expect("haproxy connects to the backend");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(payload) {
        let n = conn.read(&mut buf).expect("read from haproxy");
        assert!(n > 0, "haproxy closed early after {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    (got, local)
}

#[test]
fn haproxy_sends_v1_and_v2() {
    let back_v1 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let back_v2 = TcpListener::bind("127.0.0.1:0").expect("bind");
    let f4 = free_port("127.0.0.1:0");
    let f6 = free_port("[::1]:0");
    let dir = std::env::temp_dir().join(format!("cadence-haproxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 64\n\
defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
frontend f4\n  bind 127.0.0.1:{f4}\n  default_backend b1\n\
frontend f6\n  bind [::1]:{f6}\n  default_backend b2\n\
backend b1\n  server s1 {} send-proxy\n\
backend b2\n  server s2 {} send-proxy-v2 proxy-v2-options crc32c\n",
            back_v1.local_addr().expect("addr"),
            back_v2.local_addr().expect("addr"),
        ),
    )
    .expect("write config");
    let child = Command::new(haproxy_binary())
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("haproxy must be installed (apt-get install haproxy)");
    let _guard = Haproxy(child);

    // v1 over IPv4.
    let front: SocketAddr = format!("127.0.0.1:{f4}").parse().expect("addr");
    let (got, client) = through(front, &back_v1);
    assert!(
        got.starts_with(b"PROXY TCP4 "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let (h, n) = parse(&got).expect("valid").expect("complete");
    assert_eq!(h.version, Version::V1);
    assert_eq!(
        h.addrs,
        Some(ProxiedAddrs {
            source: client,
            destination: front,
            transport: Transport::Stream
        })
    );
    assert!(got[n..].starts_with(b"OPTIONS * RTSP/1.0"));

    // v2 over IPv6, with a CRC32C TLV to skip.
    let front: SocketAddr = format!("[::1]:{f6}").parse().expect("addr");
    let (got, client) = through(front, &back_v2);
    let (h, n) = parse(&got).expect("valid").expect("complete");
    eprintln!(
        "haproxy v2 header from {client} to {front}: {}",
        got[..n]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    assert_eq!(h.version, Version::V2);
    assert_eq!(
        h.addrs,
        Some(ProxiedAddrs {
            source: client,
            destination: front,
            transport: Transport::Stream
        })
    );
    // 16 fixed + 36 address bytes + a 7-byte CRC32C TLV.
    assert_eq!(n, 16 + 36 + 7);
    assert_eq!(got[16 + 36], 0x03, "PP2_TYPE_CRC32C");
    assert!(got[n..].starts_with(b"OPTIONS * RTSP/1.0"));
    let _ = std::fs::remove_dir_all(&dir);
}
