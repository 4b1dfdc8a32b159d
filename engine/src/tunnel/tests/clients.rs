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

/// A client process and the file its stderr goes to, so that a failure can
/// say what the client did (its log and whether it exited).
struct Client {
    child: Child,
    log: std::path::PathBuf,
}

impl Client {
    /// Panics with `what` and [`Client::report`].
    fn fail(&mut self, what: &str) -> ! {
        panic!("{what}; {}", self.report());
    }

    /// The client's exit status (or "still running") and its stderr tail.
    fn report(&mut self) -> String {
        let status = match self.child.try_wait() {
            Ok(Some(s)) => format!("exited: {s}"),
            Ok(None) => "still running".to_string(),
            Err(e) => format!("wait: {e}"),
        };
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "the client is {status}; its stderr ends:\n{}",
            tail.join("\n")
        )
    }

    /// Whether the client has exited.
    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn spawn(program: &str, args: &[String]) -> Client {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = std::env::temp_dir().join(format!(
        "cadence-tunnel-client-{}-{n}.log",
        std::process::id()
    ));
    let file = std::fs::File::create(&log).expect("client log file");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed for this test: {e}"));
    Client { child, log }
}

/// A request seen inside the tunnel: (method, URI, CSeq).
type Seen = (String, String, u32);

/// Reads from `conn` into `framer` until a frame is complete.
fn read_frame(conn: &mut TcpStream, framer: &mut Framer, client: &mut Client) -> Frame {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = framer.next_frame() {
            return frame;
        }
        let n = match conn.read(&mut buf) {
            Ok(0) => client.fail("the client closed before a complete head"),
            Ok(n) => n,
            Err(e) => client.fail(&format!("read a head: {e}")),
        };
        framer.push(&buf[..n]);
    }
}

/// Why [`accept`] returned without a connection: the client exited, or
/// the deadline passed. Carries the client's status and stderr tail.
struct NoConnection(String);

fn accept(
    listener: &TcpListener,
    deadline: Instant,
    client: &mut Client,
) -> Result<TcpStream, NoConnection> {
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).expect("blocking");
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                return Ok(conn);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if client.exited() || Instant::now() >= deadline {
                    return Err(NoConnection(client.report()));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Serves one tunnelled client until its DESCRIBE; returns the requests
/// seen and the cookie the halves were paired by, or [`NoConnection`] when
/// the client never connected at all. Panics on anything else.
fn serve(listener: &TcpListener, client: &mut Client) -> Result<(Vec<Seen>, String), NoConnection> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(20);
    let now_us = || start.elapsed().as_micros() as u64;
    listener.set_nonblocking(true).expect("nonblocking");
    let mut registry: TunnelRegistry<usize, (TcpStream, Vec<u8>)> =
        TunnelRegistry::new(RegistryConfig::default());
    let mut gets: Vec<TcpStream> = Vec::new();
    let mut halves = 0;
    let (get_index, mut post, rest, cookie) = loop {
        let mut conn = match accept(listener, deadline, client) {
            Ok(conn) => conn,
            Err(none) if halves == 0 => return Err(none),
            Err(NoConnection(why)) => panic!("the second half never came; {why}"),
        };
        halves += 1;
        let mut framer = Framer::new(Limits::default());
        let head = match read_frame(&mut conn, &mut framer, client) {
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
                return Ok((seen, cookie.as_str().to_string()));
            }
        }
        if Instant::now() >= deadline {
            client.fail(&format!("no DESCRIBE; saw {seen:?}"));
        }
        let n = match post.read(&mut buf) {
            Ok(0) => client.fail(&format!("POST closed after {seen:?}")),
            Ok(n) => n,
            Err(e) => client.fail(&format!("read the POST body after {seen:?}: {e}")),
        };
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

/// Runs `program` with `args(port)` against [`serve`] on a fresh listener.
/// A client that never connects says nothing about the codec (it is stuck
/// or failed before its first byte), so that case alone is tried once more,
/// with the first try's report on stderr; every other failure panics.
fn session(program: &str, args: impl Fn(u16) -> Vec<String>) -> (Vec<Seen>, String, u16) {
    let mut first = None;
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut client = spawn(program, &args(port));
        match serve(&listener, &mut client) {
            Ok((seen, cookie)) => return (seen, cookie, port),
            Err(NoConnection(why)) if first.is_none() => {
                eprintln!("{program} never connected; trying once more. {why}");
                first = Some(why);
            }
            Err(NoConnection(why)) => panic!(
                "{program} never connected, twice. First: {}\nSecond: {why}",
                first.unwrap_or_default()
            ),
        }
    }
    panic!("the loop returns or panics on its second pass")
}

#[test]
fn ffmpeg_rtsp_transport_http() {
    let (seen, cookie, port) = session("ffmpeg", |port| {
        vec![
            "-nostdin".into(),
            "-loglevel".into(),
            "debug".into(),
            "-rtsp_transport".into(),
            "http".into(),
            "-i".into(),
            format!("rtsp://127.0.0.1:{port}/sample.mp4"),
            "-f".into(),
            "null".into(),
            "-".into(),
        ]
    });
    check(&seen, &cookie, port);
    assert_eq!(cookie.len(), 16, "ffmpeg's cookie is 16 hex digits");
}

#[test]
fn gstreamer_rtsph() {
    let (seen, cookie, port) = session("gst-launch-1.0", |port| {
        vec![
            "-q".into(),
            "rtspsrc".into(),
            format!("location=rtsph://127.0.0.1:{port}/sample.mp4"),
            "!".into(),
            "fakesink".into(),
        ]
    });
    check(&seen, &cookie, port);
}
