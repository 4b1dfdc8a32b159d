//! Real clients through the codec: ffmpeg (`-rtsp_transport http`) and
//! GStreamer (`rtsph://`) against a loopback listener that does what the
//! shard will do, with these pieces only: [`Framer`] on each connection,
//! [`classify`], [`get_response`] on the GET, [`TunnelRegistry`] pairing,
//! [`PostBody`] on the POST, RTSP replies written on the GET. OPTIONS is
//! answered 200 and DESCRIBE 404, so each client sends two tunnelled
//! requests and gives up. Fails when a client is not installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::rtsp::framing::{Frame, Framer, Limits};
use crate::tunnel::{
    classify, get_response, GetOutcome, PostBody, PostOutcome, RegistryConfig, TunnelRegistry,
    TunnelRequest,
};

struct Client(Child);

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &str, args: &[String]) -> Client {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed for this test: {e}"));
    Client(child)
}

/// A request seen inside the tunnel: (method, URI, CSeq).
type Seen = (String, String, u32);

/// Reads from `conn` into `framer` until a frame is complete.
fn read_frame(conn: &mut TcpStream, framer: &mut Framer) -> Frame {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = framer.next_frame() {
            return frame;
        }
        let n = conn.read(&mut buf).expect("read a head");
        assert!(n > 0, "client closed before a complete head");
        framer.push(&buf[..n]);
    }
}

fn accept(listener: &TcpListener, deadline: Instant) -> TcpStream {
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).expect("blocking");
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                return conn;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "no connection from the client");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Serves one tunnelled client until its DESCRIBE; returns the requests
/// seen and the cookie the halves were paired by.
fn serve(listener: &TcpListener) -> (Vec<Seen>, String) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
    let now_us = || start.elapsed().as_micros() as u64;
    listener.set_nonblocking(true).expect("nonblocking");
    let mut registry: TunnelRegistry<usize, (TcpStream, Vec<u8>)> =
        TunnelRegistry::new(RegistryConfig::default());
    let mut gets: Vec<TcpStream> = Vec::new();
    let (get_index, mut post, rest, cookie) = loop {
        let mut conn = accept(listener, deadline);
        let mut framer = Framer::new(Limits::default());
        let head = match read_frame(&mut conn, &mut framer) {
            Frame::Http(head) => head,
            other => panic!("expected a tunnel head, got {other:?}"),
        };
        match classify(&head).expect("a tunnel half") {
            TunnelRequest::Get { cookie, .. } => {
                conn.write_all(&get_response()).expect("GET reply");
                gets.push(conn);
                let outcome = registry.register_get(cookie.clone(), gets.len() - 1, now_us());
                if let Ok(GetOutcome::Paired { post: (p, rest) }) = outcome {
                    break (gets.len() - 1, p, rest, cookie);
                }
                assert!(matches!(outcome, Ok(GetOutcome::Registered)));
            }
            TunnelRequest::Post { cookie, .. } => {
                let rest = framer.take_buffered();
                match registry.offer_post(cookie.clone(), (conn, rest), now_us()) {
                    Ok(PostOutcome::Forward {
                        get,
                        post: (p, rest),
                    }) => break (get, p, rest, cookie),
                    Ok(PostOutcome::Waiting) => {}
                    Err((e, _)) => panic!("POST refused: {e}"),
                }
            }
        }
    };
    let get = &mut gets[get_index];
    let mut body = PostBody::new(Limits::default());
    body.push(&rest).expect("base64");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        while let Some(frame) = body.next_frame() {
            let Frame::Request(r) = frame else {
                panic!("expected a request, got {frame:?}");
            };
            let method = <&str>::from(r.method()).to_string();
            let cseq: u32 = r
                .header(&rtsp_types::headers::CSEQ)
                .and_then(|v| v.as_str().trim().parse().ok())
                .expect("CSeq");
            let uri = r.request_uri().map(|u| u.to_string()).unwrap_or_default();
            let reply = match method.as_str() {
                "OPTIONS" => format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\
Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN\r\n\r\n"
                ),
                _ => format!("RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n"),
            };
            get.write_all(reply.as_bytes()).expect("reply on the GET");
            let done = method == "DESCRIBE";
            seen.push((method, uri, cseq));
            if done {
                return (seen, cookie.as_str().to_string());
            }
        }
        assert!(Instant::now() < deadline, "no DESCRIBE; saw {seen:?}");
        let n = post.read(&mut buf).expect("read the POST body");
        assert!(n > 0, "POST closed after {seen:?}");
        body.push(&buf[..n]).expect("base64");
    }
}

fn check(seen: &[Seen], cookie: &str, port: u16) {
    let url = format!("rtsp://127.0.0.1:{port}/sample.mp4");
    let methods: Vec<&str> = seen.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(methods, ["OPTIONS", "DESCRIBE"], "{seen:?}");
    for (_, uri, _) in seen {
        assert_eq!(uri, &url);
    }
    assert!(seen[1].2 > seen[0].2, "CSeq increases: {seen:?}");
    assert!(!cookie.is_empty());
}

#[test]
fn ffmpeg_rtsp_transport_http() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _client = spawn(
        "ffmpeg",
        &[
            "-nostdin".into(),
            "-rtsp_transport".into(),
            "http".into(),
            "-i".into(),
            format!("rtsp://127.0.0.1:{port}/sample.mp4"),
            "-f".into(),
            "null".into(),
            "-".into(),
        ],
    );
    let (seen, cookie) = serve(&listener);
    check(&seen, &cookie, port);
    assert_eq!(cookie.len(), 16, "ffmpeg's cookie is 16 hex digits");
}

#[test]
fn gstreamer_rtsph() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let _client = spawn(
        "gst-launch-1.0",
        &[
            "-q".into(),
            "rtspsrc".into(),
            format!("location=rtsph://127.0.0.1:{port}/sample.mp4"),
            "!".into(),
            "fakesink".into(),
        ],
    );
    let (seen, cookie) = serve(&listener);
    check(&seen, &cookie, port);
}
