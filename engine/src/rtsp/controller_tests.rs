//! Simulated-time tests of the RTSP state machine on the bundled sample
//! (media/sample.mp4: ffmpeg-hinted H.264 + AAC, 20 s, GOP 2 s).

use std::net::SocketAddr;
use std::sync::Arc;

use rtsp_types::{Method, Request, StatusCode, Version};

use super::controller::{Controller, ControllerConfig, Effect, RequestCtx};
use crate::catalog::Catalog;
use crate::session::{ConnId, SessionState};

const BASE: &str = "rtsp://127.0.0.1:8554/sample.mp4";

fn controller(shard: usize) -> Controller {
    let media = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../media");
    let catalog = Arc::new(Catalog::scan(&media).expect("media folder"));
    Controller::new(
        ControllerConfig {
            shard,
            session_timeout_s: 60,
            server_rtp_port: 6970,
        },
        catalog,
        7,
    )
}

fn ctx(now_us: u64) -> RequestCtx {
    RequestCtx {
        conn: ConnId {
            index: 1,
            generation: 1,
        },
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        local: SocketAddr::from(([127, 0, 0, 1], 8554)),
        now_us,
        forwarded: false,
    }
}

fn req(method: Method, url: &str, cseq: u32, headers: &[(&'static str, &str)]) -> Request<Vec<u8>> {
    let mut b = Request::builder(method, Version::V1_0)
        .request_uri(url::Url::parse(url).expect("url"))
        .header(rtsp_types::headers::CSEQ, cseq.to_string());
    for (k, v) in headers {
        b = b.header(
            rtsp_types::HeaderName::from_static_str(k).expect("name"),
            *v,
        );
    }
    b.build(Vec::new())
}

fn header(r: &rtsp_types::Response<Vec<u8>>, name: &'static str) -> String {
    let name = rtsp_types::HeaderName::from_static_str(name).expect("name");
    r.header(&name)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

/// SETUPs both tracks over UDP and returns the session header value.
fn setup_both(c: &mut Controller, now: u64) -> String {
    let r = c.handle(
        &ctx(now),
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=3"),
            2,
            &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    let session = header(&r.response, "Session");
    assert!(session.ends_with(";timeout=60"), "{session}");
    let id = session.split(';').next().expect("id").to_string();
    let t = header(&r.response, "Transport");
    assert!(
        t.contains("client_port=5000-5001")
            && t.contains("server_port=6970-6971")
            && t.contains("ssrc="),
        "{t}"
    );
    let r = c.handle(
        &ctx(now),
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=4"),
            3,
            &[
                ("Transport", "RTP/AVP;unicast;client_port=5002-5003"),
                ("Session", &id),
            ],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    id
}

#[test]
fn describe_gives_normalised_sdp() {
    let mut c = controller(0);
    let r = c.handle(&ctx(0), &req(Method::Describe, BASE, 1, &[]));
    assert_eq!(r.response.status(), StatusCode::Ok);
    assert_eq!(header(&r.response, "CSeq"), "1");
    assert_eq!(header(&r.response, "Content-Base"), format!("{BASE}/"));
    let sdp = String::from_utf8(r.response.body().clone()).expect("utf8");
    assert!(sdp.contains("a=control:*"), "{sdp}");
    assert!(sdp.contains("a=range:npt=0-20.0"), "{sdp}");
    assert!(
        sdp.contains("a=control:trackID=3") && sdp.contains("a=control:trackID=4"),
        "{sdp}"
    );
    assert!(!sdp.contains("streamid"), "{sdp}");
    let r = c.handle(
        &ctx(0),
        &req(Method::Describe, "rtsp://127.0.0.1:8554/nope.mp4", 2, &[]),
    );
    assert_eq!(r.response.status(), StatusCode::NotFound);
}

#[test]
fn play_reports_first_packet_and_pause_resumes_without_gap() {
    let mut c = controller(0);
    let id = setup_both(&mut c, 0);
    let r = c.handle(
        &ctx(1000),
        &req(
            Method::Play,
            BASE,
            4,
            &[("Session", &id), ("Range", "npt=0-")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    assert!(matches!(r.effects.as_slice(), [Effect::Schedule(_)]));
    assert!(header(&r.response, "Range").starts_with("npt=0.000-"));
    let info = header(&r.response, "RTP-Info");
    assert!(
        info.contains("/trackID=3;seq=") && info.contains("/trackID=4;seq="),
        "{info}"
    );
    let key = c
        .key_of(crate::session::SessionId::parse(&id).expect("id"))
        .expect("key");
    let (seq0, ts0) = {
        let s = &c.sessions[key];
        let t = &s.tracks[0];
        (
            t.next_seq,
            t.rtp_timestamp(&s.file.tracks[t.track].packets[t.cursor]),
        )
    };
    assert!(
        info.contains(&format!("seq={seq0};rtptime={ts0}")),
        "{info} vs {seq0}/{ts0}"
    );

    // Pretend the pacer sent 10 packets of track 0, then PAUSE at 2 s.
    {
        let s = &mut c.sessions[key];
        s.tracks[0].cursor += 10;
        s.tracks[0].next_seq = s.tracks[0].next_seq.wrapping_add(10);
    }
    let r = c.handle(
        &ctx(2_001_000),
        &req(Method::Pause, BASE, 5, &[("Session", &id)]),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    assert_eq!(c.sessions[key].state, SessionState::Ready);
    assert_eq!(c.sessions[key].paused_npt_us, Some(2_000_000));

    // Resume 5 s later without Range: same cursor, next sequence number.
    let r = c.handle(
        &ctx(7_001_000),
        &req(Method::Play, BASE, 6, &[("Session", &id)]),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    assert!(header(&r.response, "Range").starts_with("npt=2.000-"));
    let info = header(&r.response, "RTP-Info");
    assert!(
        info.contains(&format!("seq={}", seq0.wrapping_add(10))),
        "{info}"
    );
    let clock = c.sessions[key].clock.expect("playing");
    assert_eq!(clock.due_us(2_000_000), 7_001_000);
}

#[test]
fn seek_snaps_to_the_preceding_key_frame() {
    let mut c = controller(0);
    let id = setup_both(&mut c, 0);
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Play,
            BASE,
            4,
            &[("Session", &id), ("Range", "npt=10.5-")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    // GOP of 50 frames at 25 fps: key frames every 2 s.
    assert!(
        header(&r.response, "Range").starts_with("npt=10.000-"),
        "{}",
        header(&r.response, "Range")
    );
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Play,
            BASE,
            5,
            &[("Session", &id), ("Range", "npt=99-")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::InvalidRange);
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Play,
            BASE,
            6,
            &[("Session", &id), ("Range", "smpte=0:00:01-")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::InvalidRange);
}

#[test]
fn state_and_session_errors() {
    let mut c = controller(0);
    let r = c.handle(&ctx(0), &req(Method::Play, BASE, 1, &[]));
    assert_eq!(r.response.status(), StatusCode::MethodNotValidInThisState);
    let r = c.handle(
        &ctx(0),
        &req(Method::Play, BASE, 2, &[("Session", "00000000DEADBEEF")]),
    );
    assert_eq!(r.response.status(), StatusCode::SessionNotFound);
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=3"),
            3,
            &[("Transport", "RTP/AVP;multicast")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::UnsupportedTransport);
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=9"),
            4,
            &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::NotFound);
    let r = c.handle(&ctx(0), &req(Method::Record, BASE, 5, &[]));
    assert_eq!(r.response.status(), StatusCode::MethodNotAllowed);
    assert!(header(&r.response, "Allow").contains("PLAY"));
    // A session of another shard is forwarded, unless it was forwarded already.
    let r = c.handle(
        &ctx(0),
        &req(Method::Play, BASE, 6, &[("Session", "01000000DEADBEEF")]),
    );
    assert!(matches!(r.effects.as_slice(), [Effect::Forward(1)]));
    let mut fwd = ctx(0);
    fwd.forwarded = true;
    let r = c.handle(
        &fwd,
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=3"),
            7,
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::UnsupportedTransport);
    // Missing CSeq is a 400 that closes the connection.
    let bare = Request::builder(Method::Options, Version::V1_0).build(Vec::new());
    let r = c.handle(&ctx(0), &bare);
    assert_eq!(r.response.status(), StatusCode::BadRequest);
    assert!(matches!(r.effects.as_slice(), [Effect::Close]));
}

#[test]
fn sessions_time_out_and_keep_alives_count() {
    let mut c = controller(0);
    let id = setup_both(&mut c, 0);
    // GET_PARAMETER at 50 s keeps it alive past 60 s...
    let r = c.handle(
        &ctx(50_000_000),
        &req(Method::GetParameter, BASE, 9, &[("Session", &id)]),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    assert!(c.expire(100_000_000).is_empty());
    // ...and an RTCP receiver report at 105 s too.
    let ssrc = c.sessions.iter().next().expect("session").1.tracks[0].ssrc;
    assert!(c.on_report_block(ssrc, 0, 0, 12, 105_000_000));
    assert!(c.expire(160_000_000).is_empty());
    let gone = c.expire(165_000_001);
    assert_eq!(gone.len(), 1);
    assert!(c.sessions.is_empty());
    let r = c.handle(
        &ctx(170_000_000),
        &req(Method::Teardown, BASE, 10, &[("Session", &id)]),
    );
    assert_eq!(r.response.status(), StatusCode::SessionNotFound);
}

#[test]
fn interleaved_setup_and_teardown() {
    let mut c = controller(0);
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=3"),
            1,
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    assert!(
        header(&r.response, "Transport").starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=")
    );
    let id = header(&r.response, "Session")
        .split(';')
        .next()
        .expect("id")
        .to_string();
    let r = c.handle(
        &ctx(0),
        &req(Method::Teardown, BASE, 2, &[("Session", &id)]),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
    assert!(matches!(r.effects.as_slice(), [Effect::Teardown(_)]));
    assert!(c.sessions.is_empty());
}

#[test]
fn a_shard_that_is_behind_refuses_new_sessions_only() {
    let mut c = controller(0);
    let id = setup_both(&mut c, 0);
    c.set_admitting(false);
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=3"),
            7,
            &[("Transport", "RTP/AVP;unicast;client_port=5004-5005")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::NotEnoughBandwidth);
    // The existing session still plays.
    let r = c.handle(&ctx(0), &req(Method::Play, BASE, 8, &[("Session", &id)]));
    assert_eq!(r.response.status(), StatusCode::Ok);
    c.set_admitting(true);
    let r = c.handle(
        &ctx(0),
        &req(
            Method::Setup,
            &format!("{BASE}/trackID=3"),
            9,
            &[("Transport", "RTP/AVP;unicast;client_port=5004-5005")],
        ),
    );
    assert_eq!(r.response.status(), StatusCode::Ok);
}
