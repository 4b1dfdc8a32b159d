//! The RTSP 1.0 replies of the happy path, header by header, with a raw client: OPTIONS,
//! DESCRIBE (SDP range and controls, Content-Base), SETUP (Transport and Session for UDP and
//! TCP), the GET_PARAMETER / SET_PARAMETER keep-alives and TEARDOWN. Every reply must echo
//! the request's CSeq (checked by `RtspConn` on every request).

mod common;

use common::media::{self, Source};
use common::player::parse_sdp;
use common::rtsp::{self, param, RtspConn};
use common::server::Server;
use rtsp_types::Method;

fn fixture_server() -> (Server, String) {
    let src = media::fixture_source();
    let server = Server::start(std::slice::from_ref(&src));
    let url = server.url(&src.name);
    (server, url)
}

#[test]
fn startup_log_says_listening() {
    let (server, _) = fixture_server();
    // The line is written before the port accepts; give the log writer a moment anyway.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !server.log_text().contains("listening") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        server.log_text().contains("listening"),
        "no startup line containing 'listening' on stderr:\n{}",
        server.log_tail(20)
    );
}

#[test]
fn options_lists_the_methods() {
    let (server, url) = fixture_server();
    let mut c = RtspConn::connect(server.addr());
    for target in ["*", url.as_str()] {
        let r = c.request(Method::Options, target, &[]);
        assert_eq!(r.status, 200, "OPTIONS {target}: {}", r.summary());
        let public = r
            .header("Public")
            .unwrap_or_else(|| panic!("OPTIONS without Public: {}", r.summary()))
            .to_ascii_uppercase();
        for m in [
            "OPTIONS",
            "DESCRIBE",
            "SETUP",
            "PLAY",
            "PAUSE",
            "TEARDOWN",
            "GET_PARAMETER",
            "SET_PARAMETER",
        ] {
            assert!(
                public.split(',').any(|p| p.trim() == m),
                "Public lacks {m}: {public}"
            );
        }
    }
}

fn check_describe(server: &Server, src: &Source, duration: f64) {
    let url = server.url(&src.name);
    let mut c = RtspConn::connect(server.addr());
    let r = c.request(Method::Describe, &url, &[("Accept", "application/sdp")]);
    assert_eq!(r.status, 200, "DESCRIBE {url}: {}", r.summary());
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp")),
        "Content-Type: {}",
        r.summary()
    );
    assert_eq!(
        r.header("Content-Base"),
        Some(format!("{url}/").as_str()),
        "Content-Base must be the request URL + '/'"
    );
    let sdp = r.body_text();
    let session_part = sdp.split("\nm=").next().unwrap_or("");
    assert!(
        session_part.lines().any(|l| l.trim() == "a=control:*"),
        "no session-level a=control:* in SDP:\n{sdp}"
    );
    let range = session_part
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=range:"))
        .unwrap_or_else(|| panic!("no session-level a=range in SDP:\n{sdp}"));
    assert_eq!(rtsp::npt_start(range), Some(0.0), "a=range:{range}");
    let end = rtsp::npt_end(range).unwrap_or_else(|| panic!("a=range:{range} has no end"));
    assert!(
        (end - duration).abs() <= 0.5,
        "a=range:{range}: file lasts {duration} s"
    );
    let tracks = parse_sdp(&r.body, &format!("{url}/")).expect("SDP parses");
    assert!(tracks.len() >= 2, "expected audio and video in SDP:\n{sdp}");
    for t in &tracks {
        let n = t
            .control
            .strip_prefix("trackID=")
            .unwrap_or_else(|| panic!("a=control:{} is not trackID=N\n{sdp}", t.control));
        assert!(n.parse::<u32>().is_ok(), "a=control:{}", t.control);
        assert!(t.clock_rate > 0);
    }
}

#[test]
fn describe_has_range_controls_and_content_base() {
    let mut sources = vec![(media::fixture_source(), 60.0)];
    if let Some(path) = media::apple(media::APPLE_H264) {
        sources.push((
            Source {
                name: media::APPLE_H264.into(),
                path,
                fps: 30.0,
            },
            70.0,
        ));
    }
    let files: Vec<Source> = sources.iter().map(|(s, _)| s.clone()).collect();
    let server = Server::start(&files);
    for (src, dur) in &sources {
        check_describe(&server, src, *dur);
    }
}

/// DESCRIBE + SETUP of the first track with `transport`; returns (connection, SETUP reply).
fn setup_first(server: &Server, url: &str, transport: &str) -> (RtspConn, rtsp::Reply) {
    let mut c = RtspConn::connect(server.addr());
    let d = c.request(Method::Describe, url, &[]);
    assert_eq!(d.status, 200, "DESCRIBE: {}", d.summary());
    let tracks = parse_sdp(&d.body, &format!("{url}/")).expect("SDP");
    let s = c.request(Method::Setup, &tracks[0].url, &[("Transport", transport)]);
    (c, s)
}

fn check_session_header(reply: &rtsp::Reply) -> String {
    let session = reply
        .header("Session")
        .unwrap_or_else(|| panic!("SETUP without Session: {}", reply.summary()));
    let (id, rest) = session.split_once(';').unwrap_or((session, ""));
    assert!(!id.trim().is_empty(), "empty session id: {session:?}");
    assert_eq!(
        param(rest, "timeout").as_deref(),
        Some("60"),
        "Session header must be '<id>;timeout=60', got {session:?}"
    );
    id.trim().to_string()
}

#[test]
fn setup_udp_reply_transport_and_session() {
    let (server, url) = fixture_server();
    let (_c, s) = setup_first(&server, &url, "RTP/AVP;unicast;client_port=40000-40001");
    assert_eq!(s.status, 200, "SETUP UDP: {}", s.summary());
    check_session_header(&s);
    let t = s.header("Transport").expect("Transport in SETUP reply");
    assert!(t.starts_with("RTP/AVP"), "Transport: {t}");
    assert_eq!(
        param(t, "client_port").as_deref(),
        Some("40000-40001"),
        "client_port not echoed: {t}"
    );
    let sp = param(t, "server_port").unwrap_or_else(|| panic!("no server_port: {t}"));
    let ports: Vec<u16> = sp.split('-').filter_map(|p| p.parse().ok()).collect();
    assert!(
        ports.len() == 2 && ports[1] == ports[0].wrapping_add(1),
        "server_port={sp} is not an RTP/RTCP pair"
    );
    let ssrc = param(t, "ssrc").unwrap_or_else(|| panic!("no ssrc: {t}"));
    assert!(
        ssrc.len() == 8 && u32::from_str_radix(&ssrc, 16).is_ok(),
        "ssrc={ssrc} is not 8 hex digits"
    );
    assert!(param(t, "source").is_some(), "no source= in {t}");
}

#[test]
fn setup_tcp_reply_transport_and_session() {
    let (server, url) = fixture_server();
    let (_c, s) = setup_first(&server, &url, "RTP/AVP/TCP;unicast;interleaved=0-1");
    assert_eq!(s.status, 200, "SETUP TCP: {}", s.summary());
    check_session_header(&s);
    let t = s.header("Transport").expect("Transport in SETUP reply");
    assert!(t.starts_with("RTP/AVP/TCP"), "Transport: {t}");
    assert_eq!(
        param(t, "interleaved").as_deref(),
        Some("0-1"),
        "interleaved not echoed: {t}"
    );
    let ssrc = param(t, "ssrc").unwrap_or_else(|| panic!("no ssrc: {t}"));
    assert!(
        ssrc.len() == 8 && u32::from_str_radix(&ssrc, 16).is_ok(),
        "ssrc={ssrc} is not 8 hex digits"
    );
}

#[test]
fn keepalives_then_teardown_ends_the_session() {
    let (server, url) = fixture_server();
    let (mut c, s) = setup_first(&server, &url, "RTP/AVP/TCP;unicast;interleaved=0-1");
    assert_eq!(s.status, 200, "SETUP: {}", s.summary());
    c.session = Some(check_session_header(&s));
    let g = c.request(Method::GetParameter, &url, &[]);
    assert_eq!(g.status, 200, "GET_PARAMETER keep-alive: {}", g.summary());
    let sp = c.request(Method::SetParameter, &url, &[]);
    assert_eq!(sp.status, 200, "SET_PARAMETER keep-alive: {}", sp.summary());
    let t = c.request(Method::Teardown, &url, &[]);
    assert_eq!(t.status, 200, "TEARDOWN: {}", t.summary());
    // The session is gone: a new connection using its id gets 454.
    let id = c.session.clone().expect("session");
    drop(c);
    let mut c2 = RtspConn::connect(server.addr());
    c2.session = Some(id);
    let p = c2.request(Method::Play, &url, &[]);
    assert_eq!(p.status, 454, "PLAY after TEARDOWN: {}", p.summary());
}
