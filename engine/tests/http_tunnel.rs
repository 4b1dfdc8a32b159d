//! RTSP and RTP over HTTP tunnels (QuickTime's scheme), with `--cores 2` so
//! that a client's GET and POST often land on different shards: ffmpeg
//! (`-rtsp_transport http`) and GStreamer (`rtsph://`) play frame-exact, on
//! the RTSP port and on an `--http-tunnel` port; a POST body dripped one
//! byte at a time and a second POST in mid-session both work; malformed,
//! unpaired and oversized tunnel requests get an HTTP error or a close,
//! while a playing client is not disturbed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::media;
use common::server::{free_port, Server};
use common::tools::{ffmpeg_decode, gst_pull, source_frames, Lower};

const SECS: f64 = 6.0;

fn server(extra: &[&str]) -> Server {
    let mut args = vec!["--cores", "2", "--request-timeout", "2"];
    args.extend_from_slice(extra);
    Server::start_with(&[media::fixture_source()], &args)
}

fn get(addr: SocketAddr, cookie: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(
        format!(
            "GET /{} HTTP/1.0\r\nx-sessioncookie: {cookie}\r\nAccept: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n",
            media::FIXTURE_H264
        )
        .as_bytes(),
    )
    .expect("GET");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

fn post(addr: SocketAddr, cookie: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(
        format!(
            "POST /{} HTTP/1.0\r\nx-sessioncookie: {cookie}\r\nContent-Type: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nContent-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n",
            media::FIXTURE_H264
        )
        .as_bytes(),
    )
    .expect("POST");
    s
}

/// Reads from `s` until `needle` has been seen (or 5 s pass); all read.
fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains(needle) {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn ffmpeg_and_gstreamer_play_through_tunnels() {
    let tunnel_port = free_port();
    let extra = format!("127.0.0.1:{tunnel_port}");
    let s = server(&["--http-tunnel", &extra]);
    let src = media::fixture_source();
    let expected = source_frames(&src.path, 0.0, SECS);
    // Several runs: with two shards, some pairs are split across them.
    for (i, url) in [
        s.url(media::FIXTURE_H264),
        s.url(media::FIXTURE_H264),
        format!("rtsp://{extra}/{}", media::FIXTURE_H264),
    ]
    .iter()
    .enumerate()
    {
        let d = ffmpeg_decode(url, Lower::Http, None, SECS);
        assert!(d.errors.is_empty(), "run {i}: {:?}", d.errors);
        assert!(
            d.frames.abs_diff(expected) <= 2,
            "run {i} ({url}): {} frames of {expected}\n{}",
            d.frames,
            s.log_tail(20)
        );
    }
    let teardowns = || s.log_text().matches("reason=\"teardown\"").count();
    for url in [
        format!("rtsph://{}/{}", s.addr(), media::FIXTURE_H264),
        format!("rtsph://{extra}/{}", media::FIXTURE_H264),
    ] {
        let before = teardowns();
        let g = gst_pull(&url, &[], 5.0);
        assert!(g.errors.is_empty(), "{url}: {:?}", g.errors);
        // Whether or not GStreamer cancelled its own stop-time PAUSE, its
        // TEARDOWN must have reached the server through the tunnel.
        let deadline = Instant::now() + Duration::from_secs(3);
        while teardowns() == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            teardowns(),
            before + 1,
            "{url}: no TEARDOWN (own PAUSE cancelled: {})\n{}",
            g.own_pause_cancelled,
            s.log_tail(20)
        );
        assert!(
            g.buffers >= 100,
            "{url}: {} buffers\n{}",
            g.buffers,
            s.log_tail(20)
        );
    }
}

#[test]
fn post_bodies_split_anywhere_and_new_posts_mid_session() {
    let s = server(&[]);
    for round in 0..4 {
        let cookie = format!("DrippedCookie{round}x");
        let mut g = get(s.addr(), &cookie);
        let head = read_until(&mut g, "\r\n\r\n");
        assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: application/x-rtsp-tunnelled"),
            "{head}"
        );
        assert!(head.contains("Cache-Control: no-cache"), "{head}");
        // The body of the POST, one byte per write.
        let mut p = post(s.addr(), &cookie);
        let body = b64("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
        for b in body.as_bytes() {
            p.write_all(&[*b]).expect("drip");
            std::thread::sleep(Duration::from_millis(2));
        }
        let reply = read_until(&mut g, "CSeq: 1");
        assert!(reply.contains("RTSP/1.0 200 "), "round {round}: {reply:?}");
        // A new POST during the session, as QuickTime opens them; each RTSP
        // message base64'd on its own (GStreamer's way, padding mid-stream).
        drop(p);
        let mut p2 = post(s.addr(), &cookie);
        let two = format!(
            "{}{}",
            b64("OPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
            b64("GET_PARAMETER * RTSP/1.0\r\nCSeq: 3\r\n\r\n")
        );
        p2.write_all(two.as_bytes()).expect("post 2");
        let reply = read_until(&mut g, "CSeq: 3");
        assert!(
            reply.contains("CSeq: 2") && reply.contains("CSeq: 3"),
            "{reply:?}"
        );
    }
}

#[test]
fn bad_and_unpaired_tunnel_requests_are_refused_without_disturbing_others() {
    let s = server(&[]);
    let url = s.url(media::FIXTURE_H264);
    let player = std::thread::spawn(move || ffmpeg_decode(&url, Lower::Tcp, None, SECS));
    std::thread::sleep(Duration::from_millis(500));
    // No cookie: 400.
    let mut c = TcpStream::connect(s.addr()).expect("connect");
    c.write_all(b"GET /x HTTP/1.0\r\nAccept: application/x-rtsp-tunnelled\r\n\r\n")
        .expect("write");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
    let r = read_until(&mut c, "\r\n\r\n");
    assert!(r.starts_with("HTTP/1.0 400"), "{r}");
    // Another HTTP method: 405.
    let mut c = TcpStream::connect(s.addr()).expect("connect");
    c.write_all(b"PUT /x HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
    let r = read_until(&mut c, "\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.0 405") || r.starts_with("HTTP/1.0 501"),
        "{r}"
    );
    // An oversized head: an error status, then the connection closes.
    let mut c = TcpStream::connect(s.addr()).expect("connect");
    let big = format!("GET /x HTTP/1.0\r\nX-Pad: {}\r\n\r\n", "a".repeat(40_000));
    let _ = c.write_all(big.as_bytes());
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
    let r = read_until(&mut c, "\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.0 4") || r.starts_with("RTSP/1.0 4"),
        "{r:?}"
    );
    // Unpaired halves are closed after the pairing timeout (request_timeout, 2 s).
    let mut lone_get = get(s.addr(), "LonelyGetCookie1");
    let head = read_until(&mut lone_get, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    let mut lone_post = post(s.addr(), "LonelyPostCookie");
    lone_post
        .write_all(b64("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes())
        .expect("w");
    lone_post
        .set_read_timeout(Some(Duration::from_secs(6)))
        .expect("t");
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let get_closed = matches!(lone_get.read(&mut buf), Ok(0) | Err(_));
    let post_closed = matches!(lone_post.read(&mut buf), Ok(0) | Err(_));
    assert!(get_closed && post_closed, "unpaired halves stay open");
    assert!(started.elapsed() < Duration::from_secs(6));
    // Malformed base64 closes that POST only.
    let mut g = get(s.addr(), "BadBodyCookie");
    read_until(&mut g, "\r\n\r\n");
    let mut p = post(s.addr(), "BadBodyCookie");
    p.write_all(b"!!!! not base64 ****").expect("w");
    p.set_read_timeout(Some(Duration::from_secs(5))).expect("t");
    assert!(
        matches!(p.read(&mut buf), Ok(0) | Err(_)),
        "the bad POST is closed"
    );
    let d = player.join().expect("player");
    let expected = source_frames(&media::fixture(FIXTURE), 0.0, SECS);
    assert!(
        d.frames.abs_diff(expected) <= 2,
        "the playing client was disturbed: {} of {expected}",
        d.frames
    );
}

const FIXTURE: &str = media::FIXTURE_H264;

/// A receiver report for our `ssrc` as live555 frames it: `$`, channel,
/// length, then RR (RFC 3550 §6.4.2) with one report block.
fn interleaved_rr(channel: u8, ssrc: u32) -> Vec<u8> {
    let mut rr = vec![0x81, 201, 0, 7];
    rr.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    rr.extend_from_slice(&ssrc.to_be_bytes());
    rr.extend_from_slice(&[0; 20]);
    let mut framed = vec![b'$', channel];
    framed.extend_from_slice(&(rr.len() as u16).to_be_bytes());
    framed.extend_from_slice(&rr);
    framed
}

/// live555's RTSPClient (openRTSP `-T`, VLC) sends its RTCP receiver
/// reports as `$` frames on the GET connection, not in the POST body: they
/// count as session activity there, so a session kept alive only by them
/// outlives `--session-timeout` (openRTSP's `-T` session was dropped at the
/// timeout before).
#[test]
fn receiver_reports_on_the_get_connection_keep_the_session_and_its_silent_post_alive() {
    // The POST carries nothing after PLAY for three idle timeouts: it must
    // not be closed as idle while its GET holds a playing session.
    let s = server(&["--session-timeout", "2", "--idle-timeout", "2"]);
    let cookie = "Live555StyleRtcpOnGet";
    let mut g = get(s.addr(), cookie);
    let head = read_until(&mut g, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    let mut p = post(s.addr(), cookie);
    let url = s.url(media::FIXTURE_H264);
    p.write_all(
        b64(&format!(
            "DESCRIBE {url} RTSP/1.0\r\nCSeq: 3\r\nAccept: application/sdp\r\n\r\n"
        ))
        .as_bytes(),
    )
    .expect("DESCRIBE");
    let mut sdp = read_until(&mut g, "a=control:trackID=");
    if !sdp
        .split("a=control:trackID=")
        .nth(1)
        .is_some_and(|t| t.contains("\r\n"))
    {
        sdp += &read_until(&mut g, "\r\n");
    }
    let track: String = sdp
        .split("a=control:trackID=")
        .nth(1)
        .expect("a track control")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    p.write_all(
        b64(&format!(
            "SETUP {url}/trackID={track} RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ))
        .as_bytes(),
    )
    .expect("SETUP");
    let reply = read_until(&mut g, "\r\n\r\n");
    let field = |name: &str| -> String {
        reply
            .split(name)
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in {reply:?}"))
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect()
    };
    let session = field("Session: ");
    let ssrc = u32::from_str_radix(&field("ssrc="), 16).expect("hex ssrc");
    p.write_all(
        b64(&format!(
            "PLAY {url} RTSP/1.0\r\nCSeq: 5\r\nSession: {session}\r\nRange: npt=0.000-\r\n\r\n"
        ))
        .as_bytes(),
    )
    .expect("PLAY");
    // Read everything the GET connection brings; count RTP per second.
    let mut reader = g.try_clone().expect("clone");
    let started = Instant::now();
    let counter = std::thread::spawn(move || {
        let mut per_second = vec![0usize; 8];
        let mut buf = vec![0u8; 65536];
        let mut pending: Vec<u8> = Vec::new();
        while started.elapsed() < Duration::from_secs(7) {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            // Count `$`-framed RTP on channel 0; skip replies.
            let mut i = 0;
            while i + 4 <= pending.len() {
                if pending[i] == b'$' {
                    let len = usize::from(u16::from_be_bytes([pending[i + 2], pending[i + 3]]));
                    if i + 4 + len > pending.len() {
                        break;
                    }
                    if pending[i + 1] == 0 {
                        let sec = (started.elapsed().as_secs() as usize).min(7);
                        per_second[sec] += 1;
                    }
                    i += 4 + len;
                } else {
                    match pending[i..].windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(end) => i += end + 4,
                        None => break,
                    }
                }
            }
            pending.drain(..i);
        }
        per_second
    });
    // Receiver reports only, every 500 ms, on the GET connection, for three
    // times the session timeout; no RTSP request meanwhile.
    while started.elapsed() < Duration::from_secs(6) {
        g.write_all(&interleaved_rr(1, ssrc))
            .expect("RR on the GET");
        std::thread::sleep(Duration::from_millis(500));
    }
    let per_second = counter.join().expect("reader");
    assert!(
        per_second[..6].iter().all(|&n| n > 0),
        "RTP in every second of the 6 (a 2 s session timeout would stop it): {per_second:?}\n{}",
        s.log_tail(20)
    );
    assert!(
        !s.log_text().contains("reason=\"timeout\""),
        "the session timed out\n{}",
        s.log_tail(20)
    );
    // The same POST, silent for 6 s, still carries the TEARDOWN.
    p.write_all(
        b64(&format!(
            "TEARDOWN {url} RTSP/1.0\r\nCSeq: 6\r\nSession: {session}\r\n\r\n"
        ))
        .as_bytes(),
    )
    .expect("TEARDOWN on the silent POST");
    let reply = read_until(&mut g, "CSeq: 6");
    assert!(
        reply.contains("RTSP/1.0 200 Ok\r\nCSeq: 6\r\n"),
        "no 200 to the TEARDOWN on the POST ({} bytes read)\n{}",
        reply.len(),
        s.log_tail(20)
    );
}
