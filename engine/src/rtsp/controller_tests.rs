//! Simulated-time tests of the RTSP state machine, through the endpoint, on
//! the bundled sample (media/sample.mp4: ffmpeg-hinted H.264 + AAC, 20 s,
//! GOP 2 s) held in an in-memory catalog: no disk, no socket, no clock.

use std::sync::Arc;

use rtsp_types::StatusCode;

use crate::catalog::MemoryCatalog;
use crate::endpoint::{Dispatch, EndpointConfig};
use crate::pipeline::Pipeline;
use crate::session::{SessionId, SessionState};
use crate::sim::{header, parse_request, session_of, Sim};

const BASE: &str = "rtsp://127.0.0.1:8554/sample.mp4";
const SAMPLE: &[u8] = include_bytes!("../../../media/sample.mp4");

fn catalog() -> Arc<MemoryCatalog> {
    let mut c = MemoryCatalog::new();
    c.insert_bytes("sample.mp4", SAMPLE).expect("anonymous map");
    Arc::new(c)
}

fn sim() -> Sim {
    Sim::new(catalog())
}

fn sim_with(pipeline: Pipeline, shard: usize) -> Sim {
    Sim::with_pipeline(
        catalog(),
        pipeline,
        EndpointConfig {
            shard,
            ..EndpointConfig::default()
        },
    )
}

/// SETUPs both tracks over UDP and returns the session ID.
fn setup_both(s: &mut Sim) -> String {
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    let session = header(&r, "Session");
    assert!(session.ends_with(";timeout=60"), "{session}");
    let t = header(&r, "Transport");
    assert!(
        t.contains("client_port=5000-5001")
            && t.contains("server_port=6970-6971")
            && t.contains("ssrc="),
        "{t}"
    );
    let id = session_of(&r);
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=4 RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\nTransport: RTP/AVP;unicast;client_port=5002-5003\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    id
}

fn session_req(method: &str, id: &str, cseq: u32, extra: &str) -> String {
    format!("{method} {BASE} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {id}\r\n{extra}\r\n")
}

#[test]
fn describe_gives_normalised_sdp() {
    let mut s = sim();
    let r = s.request(&format!("DESCRIBE {BASE} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(header(&r, "CSeq"), "1");
    assert!(header(&r, "Server").starts_with("Cadence/"));
    assert_eq!(header(&r, "Content-Base"), format!("{BASE}/"));
    let sdp = String::from_utf8(r.body().clone()).expect("utf8");
    assert!(sdp.contains("a=control:*"), "{sdp}");
    assert!(sdp.contains("a=range:npt=0-20.0"), "{sdp}");
    assert!(
        sdp.contains("a=control:trackID=3") && sdp.contains("a=control:trackID=4"),
        "{sdp}"
    );
    assert!(!sdp.contains("streamid"), "{sdp}");
    let r = s.request("DESCRIBE rtsp://127.0.0.1:8554/nope.mp4 RTSP/1.0\r\nCSeq: 2\r\n\r\n");
    assert_eq!(r.status(), StatusCode::NotFound);
}

#[test]
fn a_query_gives_absolute_controls_that_carry_it() {
    let mut s = sim();
    let r = s.request(&format!(
        "DESCRIBE {BASE}?token=abc RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    let sdp = String::from_utf8(r.body().clone()).expect("utf8");
    assert!(
        sdp.contains(&format!("a=control:{BASE}?token=abc\r\n")),
        "{sdp}"
    );
    assert!(
        sdp.contains(&format!("a=control:{BASE}/trackID=3?token=abc\r\n")),
        "{sdp}"
    );
    // The shapes clients build from it all reach the track.
    for url in [
        format!("{BASE}/trackID=3?token=abc"),
        format!("{BASE}?token=abc/trackID=3"),
    ] {
        let r = s.request(&format!(
            "SETUP {url} RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"
        ));
        assert_eq!(r.status(), StatusCode::Ok, "{url}");
        let id = session_of(&r);
        let r = s.request(&format!(
            "PLAY {BASE}?token=abc RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"
        ));
        assert_eq!(r.status(), StatusCode::Ok);
        assert!(
            header(&r, "RTP-Info").starts_with(&format!("url={BASE}/trackID=3?token=abc;seq=")),
            "{}",
            header(&r, "RTP-Info")
        );
    }
}

#[test]
fn play_reports_first_packet_and_pause_resumes_without_gap() {
    let mut s = sim();
    let id = setup_both(&mut s);
    s.advance(1000);
    let r = s.request(&session_req("PLAY", &id, 4, "Range: npt=0-\r\n"));
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(header(&r, "Range").starts_with("npt=0.000-"));
    let info = header(&r, "RTP-Info");
    assert!(
        info.contains("/trackID=3;seq=") && info.contains("/trackID=4;seq="),
        "{info}"
    );
    // The first packet sent is the one RTP-Info announced.
    s.advance(100_000);
    let first = s.rtp.packets[0].clone();
    let video_info = info
        .split(',')
        .find(|i| i.contains(&format!("/trackID={};", 3)))
        .expect("track 3 info")
        .to_string();
    let first_video = s
        .rtp
        .packets
        .iter()
        .find(|p| p.track_index == 0)
        .expect("video packet");
    assert!(
        video_info.contains(&format!(
            "seq={};rtptime={}",
            first_video.seq, first_video.timestamp
        )),
        "{video_info} vs {first_video:?}"
    );
    assert!(first.at_us >= 1000);

    // PAUSE at 2 s, resume 5 s later without Range: the next sequence number.
    s.advance(1_900_000);
    let r = s.request(&session_req("PAUSE", &id, 5, ""));
    assert_eq!(r.status(), StatusCode::Ok);
    let key = s
        .endpoint
        .controller()
        .key_of(SessionId::parse(&id).expect("id"))
        .expect("key");
    let session = s.endpoint.controller().session(key).expect("session");
    assert_eq!(session.state(), SessionState::Ready);
    assert_eq!(session.npt_us(s.now_us), 2_000_000);
    let last_video_seq = s
        .rtp
        .packets
        .iter()
        .rfind(|p| p.track_index == 0)
        .expect("video")
        .seq;
    let sent = s.rtp.packets.len();
    s.advance(5_000_000);
    assert_eq!(s.rtp.packets.len(), sent, "nothing is sent while paused");
    let r = s.request(&session_req("PLAY", &id, 6, ""));
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(
        header(&r, "Range").starts_with("npt=2.000-"),
        "{}",
        header(&r, "Range")
    );
    assert!(
        header(&r, "RTP-Info").contains(&format!("seq={}", last_video_seq.wrapping_add(1))),
        "{}",
        header(&r, "RTP-Info")
    );
    s.advance(500_000);
    let next_video = s.rtp.packets[sent..]
        .iter()
        .find(|p| p.track_index == 0)
        .expect("video after resume");
    assert_eq!(next_video.seq, last_video_seq.wrapping_add(1));
}

#[test]
fn seek_snaps_to_the_preceding_key_frame() {
    let mut s = sim();
    let id = setup_both(&mut s);
    let r = s.request(&session_req("PLAY", &id, 4, "Range: npt=10.5-\r\n"));
    assert_eq!(r.status(), StatusCode::Ok);
    // GOP of 50 frames at 25 fps: key frames every 2 s.
    assert!(
        header(&r, "Range").starts_with("npt=10.000-"),
        "{}",
        header(&r, "Range")
    );
    for range in [
        "npt=99-",
        "smpte=0:00:01-",
        "npt=18446744073709.999999-",
        "npt=5124095576030431:59:59-",
    ] {
        let r = s.request(&session_req("PLAY", &id, 5, &format!("Range: {range}\r\n")));
        assert_eq!(r.status(), StatusCode::InvalidRange, "{range}");
    }
}

#[test]
fn state_and_session_errors() {
    let mut s = sim();
    let r = s.request(&format!("PLAY {BASE} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(r.status(), StatusCode::MethodNotValidInThisState);
    let r = s.request(&session_req("PLAY", "00000000DEADBEEF", 2, ""));
    assert_eq!(r.status(), StatusCode::SessionNotFound);
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;multicast\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::UnsupportedTransport);
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=9 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::NotFound);
    let r = s.request(&format!("RECORD {BASE} RTSP/1.0\r\nCSeq: 5\r\n\r\n"));
    assert_eq!(r.status(), StatusCode::MethodNotAllowed);
    assert!(header(&r, "Allow").contains("PLAY"));
    let r = s.request(&format!(
        "OPTIONS {BASE} RTSP/1.0\r\nCSeq: 6\r\nRequire: implicit-play\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::OptionNotSupported);
    assert_eq!(header(&r, "Unsupported"), "implicit-play");
    // Missing CSeq is a 400 that closes the connection.
    match s.dispatch(parse_request(b"OPTIONS * RTSP/1.0\r\n\r\n")) {
        Dispatch::Respond { response, close } => {
            assert_eq!(response.status(), StatusCode::BadRequest);
            assert!(close);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn requests_for_other_shards_are_forwarded_once() {
    let mut s = sim();
    let d = s.dispatch(parse_request(
        session_req("PLAY", "01000000DEADBEEF", 6, "").as_bytes(),
    ));
    assert!(matches!(d, Dispatch::Forward { shard: 1, .. }), "{d:?}");
    // A forwarded request is handled where it lands (and cannot set up
    // interleaved transport on a connection that is not ours).
    let mut s1 = sim_with(Pipeline::new(), 1);
    let ctx = crate::endpoint::request_ctx(s1.conn, s1.peer, s1.local, 0, 0, true);
    let req = parse_request(
        format!(
            "SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 7\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        )
        .as_bytes(),
    );
    match s1.endpoint.handle(&ctx, req) {
        Dispatch::Respond { response, .. } => {
            assert_eq!(response.status(), StatusCode::UnsupportedTransport)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sessions_time_out_and_keep_alives_count() {
    let mut s = sim();
    let id = setup_both(&mut s);
    // GET_PARAMETER at 50 s keeps it alive past 60 s...
    s.advance(50_000_000);
    let r = s.request(&session_req("GET_PARAMETER", &id, 9, ""));
    assert_eq!(r.status(), StatusCode::Ok);
    s.advance(50_000_000);
    assert_eq!(s.endpoint.controller().len(), 1);
    // ...and so does an OPTIONS without Session header on the connection
    // that created the session (live555 and DSS keep-alives).
    let r = s.request("OPTIONS * RTSP/1.0\r\nCSeq: 10\r\n\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    s.advance(59_000_000);
    assert_eq!(s.endpoint.controller().len(), 1);
    s.advance(2_000_000);
    assert!(s.endpoint.controller().is_empty());
    let r = s.request(&session_req("TEARDOWN", &id, 11, ""));
    assert_eq!(r.status(), StatusCode::SessionNotFound);
}

#[test]
fn interleaved_setup_channels_and_teardown() {
    let mut s = sim();
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(header(&r, "Transport").starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc="));
    let id = session_of(&r);
    // The same channels for the second track are refused.
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=4 RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::UnsupportedTransport);
    // Channels left to us follow the track index.
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=4 RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(header(&r, "Transport").contains("interleaved=2-3"));
    let r = s.request(&session_req("TEARDOWN", &id, 4, ""));
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(s.endpoint.controller().is_empty());
    // The teardown sent RTCP BYE on both interleaved channels.
    assert_eq!(s.rtcp.len(), 2);
}

#[test]
fn a_shard_that_is_behind_refuses_new_sessions_only() {
    let mut p = Pipeline::new();
    p.push(Box::new(crate::builtin::Admission));
    let mut s = sim_with(p, 0);
    let id = setup_both(&mut s);
    let r = s.request(&session_req("PLAY", &id, 4, ""));
    assert_eq!(r.status(), StatusCode::Ok);
    // Stall the shard: a tick 200 ms late puts it behind at housekeeping.
    s.now_us += 200_000;
    s.step();
    assert!(s.endpoint.load().behind);
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 7\r\nTransport: RTP/AVP;unicast;client_port=5004-5005\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::NotEnoughBandwidth);
    // The existing session is untouched.
    let r = s.request(&session_req("GET_PARAMETER", &id, 8, ""));
    assert_eq!(r.status(), StatusCode::Ok);
    // A window on time clears it.
    s.advance(200_000);
    assert!(!s.endpoint.load().behind);
    let r = s.request(&format!(
        "SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP;unicast;client_port=5004-5005\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
}

#[test]
fn transport_destination_is_refused_unless_allowed() {
    let mut s = sim();
    let setup = |dest: &str| {
        format!(
            "SETUP {BASE}/trackID=3 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;destination={dest};client_port=5000-5001\r\n\r\n"
        )
    };
    // Another host, or a name: 403 (no flooding a third party).
    assert_eq!(
        s.request(&setup("10.1.2.3")).status(),
        StatusCode::Forbidden
    );
    assert_eq!(
        s.request(&setup("victim.example")).status(),
        StatusCode::Forbidden
    );
    // The client's own address is fine.
    assert_eq!(s.request(&setup("127.0.0.1")).status(), StatusCode::Ok);
    // A listed subnet is allowed, and RTP goes there.
    let mut s = Sim::with_pipeline(
        catalog(),
        Pipeline::new(),
        EndpointConfig {
            allow_destination: Arc::new(vec!["10.1.0.0/16".parse().expect("cidr")]),
            ..EndpointConfig::default()
        },
    );
    let r = s.request(&setup("10.1.2.3"));
    assert_eq!(r.status(), StatusCode::Ok);
    let id = session_of(&r);
    assert_eq!(
        s.request(&session_req("PLAY", &id, 2, "")).status(),
        StatusCode::Ok
    );
    s.advance(100_000);
    let first = s.rtp.packets.first().expect("a packet");
    assert_eq!(
        first.udp,
        Some(std::net::SocketAddr::from(([10, 1, 2, 3], 5000)))
    );
}
