//! RTSP error paths with a raw TCP client (status codes of RFC 2326 §7.1.1), CSeq echoed on
//! every reply, and hostile connections that must not disturb a concurrent ffmpeg pull.

mod common;

use common::media;
use common::player::parse_sdp;
use common::rtsp::RtspConn;
use common::server::Server;
use common::tools::{ffmpeg_decode, source_frames, Lower};
use rtsp_types::Method;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

fn fixture_server() -> (Server, String) {
    let src = media::fixture_source();
    let server = Server::start(std::slice::from_ref(&src));
    let url = server.url(&src.name);
    (server, url)
}

/// The first track's control URL of `url`.
fn first_track(c: &mut RtspConn, url: &str) -> String {
    let d = c.request(Method::Describe, url, &[]);
    assert_eq!(d.status, 200, "DESCRIBE {url}: {}", d.summary());
    parse_sdp(&d.body, &format!("{url}/")).expect("SDP")[0]
        .url
        .clone()
}

#[test]
fn unknown_file_is_404() {
    let (server, _) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    let missing = server.url("no/such/file.mp4");
    let r = c.request(Method::Describe, &missing, &[]);
    assert_eq!(r.status, 404, "DESCRIBE {missing}: {}", r.summary());
    let r = c.request(
        Method::Setup,
        &format!("{missing}/trackID=1"),
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
    );
    assert_eq!(r.status, 404, "SETUP on a missing file: {}", r.summary());
    // A path escaping the media folder is not served either.
    let escape = server.url("../../../../etc/passwd");
    let r = c.request(Method::Describe, &escape, &[]);
    assert!(
        r.status == 404 || r.status == 400 || r.status == 403,
        "DESCRIBE {escape}: {}",
        r.summary()
    );
    // The connection stays usable.
    let r = c.request(Method::Options, "*", &[]);
    assert_eq!(r.status, 200, "OPTIONS after 404: {}", r.summary());
}

#[test]
fn bogus_session_is_454() {
    let (mut server, url) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    // Ids of the server's own shape (16 hex digits, any shard byte) as well as junk.
    let bogus = [
        "0BADC0FFEE0BADC0",
        "0000000000000001",
        "0100000000000001",
        "FF00000000000000",
        "nosuchsession",
        "",
    ];
    for id in bogus {
        for m in [
            Method::Play,
            Method::Pause,
            Method::GetParameter,
            Method::Teardown,
        ] {
            let r = c.request(m.clone(), &url, &[("Session", id)]);
            assert_eq!(r.status, 454, "{m:?} with Session: {id:?}: {}", r.summary());
        }
    }
    assert!(server.is_alive(), "cadence exited on a bogus Session");
}

#[test]
fn play_before_setup_is_455() {
    let (server, url) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    let d = c.request(Method::Describe, &url, &[]);
    assert_eq!(d.status, 200, "DESCRIBE: {}", d.summary());
    let r = c.request(Method::Play, &url, &[("Range", "npt=0-")]);
    assert_eq!(r.status, 455, "PLAY before SETUP: {}", r.summary());
}

#[test]
fn unsupported_transport_is_461() {
    let (server, url) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    let track = first_track(&mut c, &url);
    for transport in [
        "RTP/AVP;multicast;client_port=40000-40001",
        "RTP/AVP;unicast",
        "RAW/RAW/UDP;unicast;client_port=40000-40001",
    ] {
        let r = c.request(Method::Setup, &track, &[("Transport", transport)]);
        assert_eq!(
            r.status,
            461,
            "SETUP Transport: {transport}: {}",
            r.summary()
        );
    }
}

#[test]
fn range_past_the_end_is_457() {
    let (server, url) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    let track = first_track(&mut c, &url);
    let s = c.request(
        Method::Setup,
        &track,
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
    );
    assert_eq!(s.status, 200, "SETUP: {}", s.summary());
    let id = s
        .header("Session")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("");
    c.session = Some(id.trim().to_string());
    let r = c.request(Method::Play, &url, &[("Range", "npt=1000-")]);
    assert_eq!(
        r.status,
        457,
        "PLAY Range: npt=1000- on a 60 s file: {}",
        r.summary()
    );
    let r = c.request(Method::Play, &url, &[("Range", "npt=20-10")]);
    assert_eq!(r.status, 457, "PLAY Range: npt=20-10: {}", r.summary());
}

#[test]
fn record_is_405() {
    let (server, url) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    let r = c.request(Method::Record, &url, &[]);
    assert_eq!(r.status, 405, "RECORD on a VOD file: {}", r.summary());
}

#[test]
fn garbage_is_400_and_server_survives() {
    let (mut server, url) = fixture_server();
    // A line that is not an RTSP request.
    let mut c = RtspConn::connect(server.addr());
    c.send_raw(b"this is not rtsp at all\r\n\r\n")
        .expect("write");
    let r = c.read_reply().expect("a reply to garbage");
    assert_eq!(r.status, 400, "garbage line: {}", r.summary());
    // Binary junk (a TLS ClientHello-like prefix) ending in CRLFCRLF.
    let mut c = RtspConn::connect(server.addr());
    let mut junk = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    junk.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
    junk.extend_from_slice(b"\r\n\r\n");
    c.send_raw(&junk).expect("write");
    let r = c.read_reply().expect("a reply to binary junk");
    assert_eq!(r.status, 400, "binary junk: {}", r.summary());
    // A request line with a bad version but a CSeq.
    let mut c = RtspConn::connect(server.addr());
    c.send_raw(format!("DESCRIBE {url} RTSP/9\r\nCSeq: 7\r\n\r\n").as_bytes())
        .expect("write");
    let r = c.read_reply().expect("a reply to a bad version");
    assert!(
        r.status == 400 || r.status == 505,
        "bad RTSP version: {}",
        r.summary()
    );
    assert!(server.is_alive(), "cadence exited after garbage");
    let mut c = RtspConn::connect(server.addr());
    let r = c.request(Method::Options, "*", &[]);
    assert_eq!(r.status, 200, "OPTIONS after garbage: {}", r.summary());
}

#[test]
fn cseq_is_echoed_on_error_replies_and_pipelined_requests() {
    let (server, url) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    // Three pipelined requests in one write; replies must come back in order with their CSeq.
    let missing = server.url("missing.mp4");
    let batch = format!(
        "OPTIONS * RTSP/1.0\r\nCSeq: 101\r\n\r\n\
         DESCRIBE {missing} RTSP/1.0\r\nCSeq: 102\r\n\r\n\
         PLAY {url} RTSP/1.0\r\nCSeq: 103\r\nSession: nosuchsession\r\n\r\n"
    );
    c.send_raw(batch.as_bytes()).expect("write");
    for (cseq, status) in [("101", 200), ("102", 404), ("103", 454)] {
        let r = c
            .read_reply()
            .unwrap_or_else(|e| panic!("reply to CSeq {cseq}: {e}"));
        assert_eq!(
            r.header("CSeq").map(str::trim),
            Some(cseq),
            "{}",
            r.summary()
        );
        assert_eq!(r.status, status, "CSeq {cseq}: {}", r.summary());
    }
}

/// Hostile peers while ffmpeg pulls 10 s over TCP: the pull must be unaffected (same frame
/// count ±2, no errors) and the server must still answer afterwards.
#[test]
fn hostile_connections_do_not_disturb_a_concurrent_pull() {
    let src = media::fixture_source();
    let mut server = Server::start(std::slice::from_ref(&src));
    let url = server.url(&src.name);
    let expected = source_frames(&src.path, 0.0, 10.0);
    let pull = {
        let url = url.clone();
        std::thread::spawn(move || ffmpeg_decode(&url, Lower::Tcp, None, 10.0))
    };
    std::thread::sleep(Duration::from_millis(1500));
    let addr = server.addr();
    // 1. Garbage then close.
    {
        let mut s = TcpStream::connect(addr).expect("connect");
        let _ = s.write_all(b"\x00\xff\xfe garbage \x01\x02\r\n\r\n\xde\xad\xbe\xef");
    }
    // 2. Half a request then close.
    {
        let mut s = TcpStream::connect(addr).expect("connect");
        let _ = s.write_all(format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nUser-Ag").as_bytes());
    }
    // 3. Half a request left open for the rest of the pull.
    let mut idle = TcpStream::connect(addr).expect("connect");
    let _ = idle.write_all(b"OPTIONS * RTSP/1.0\r\nCSe");
    // 4. A 256 KiB header line that never ends, then close.
    {
        let mut s = TcpStream::connect(addr).expect("connect");
        let _ = s.write_all(b"OPTIONS * RTSP/1.0\r\nX-Long: ");
        let _ = s.write_all(&vec![b'a'; 256 * 1024]);
    }
    // 5. A TCP-interleaved session that plays, then vanishes without TEARDOWN.
    {
        let mut p = common::player::Player::open(addr, &url, Lower::Tcp);
        p.play(Some("npt=0-"));
        std::thread::sleep(Duration::from_millis(500));
    }
    // 6. An interleaved `$` frame claiming 65535 bytes, then close.
    {
        let mut s = TcpStream::connect(addr).expect("connect");
        let _ = s.write_all(b"$\x00\xff\xff\x80\x60");
    }
    let d = pull.join().expect("ffmpeg thread");
    drop(idle);
    eprintln!(
        "pull during hostile connections: {} frames (source {expected}), {} error line(s)",
        d.frames,
        d.errors.len()
    );
    assert!(
        d.errors.is_empty(),
        "ffmpeg errors during hostile connections:\n{}",
        d.errors.join("\n")
    );
    assert!(
        d.frames.abs_diff(expected) <= 2,
        "ffmpeg decoded {} frames, source has {expected}",
        d.frames
    );
    assert!(server.is_alive(), "cadence exited");
    let mut c = RtspConn::connect(addr);
    let r = c.request(Method::Options, "*", &[]);
    assert_eq!(
        r.status,
        200,
        "OPTIONS after hostile connections: {}",
        r.summary()
    );
}

#[test]
fn second_file_in_one_session_is_459() {
    let a = media::fixture_source();
    let b = media::Source {
        name: "other.mp4".into(),
        ..a.clone()
    };
    let server = Server::start(&[a.clone(), b.clone()]);
    let mut c = RtspConn::connect(server.addr());
    let track_a = first_track(&mut c, &server.url(&a.name));
    let track_b = first_track(&mut c, &server.url(&b.name));
    let s = c.request(
        Method::Setup,
        &track_a,
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
    );
    assert_eq!(s.status, 200, "SETUP {track_a}: {}", s.summary());
    let id = s
        .header("Session")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("");
    c.session = Some(id.trim().to_string());
    let r = c.request(
        Method::Setup,
        &track_b,
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3")],
    );
    assert_eq!(
        r.status,
        459,
        "SETUP of another file's track in the same session: {}",
        r.summary()
    );
}
