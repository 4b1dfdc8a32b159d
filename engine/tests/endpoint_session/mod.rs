//! Plays sessions straight through an [`Endpoint`] (no sockets): the request
//! builder and the DESCRIBE / SETUP ×2 / PLAY sequence that the in-process
//! allocation tests (`zero_alloc_pacing.rs`, `session_memory.rs`) share.

use cadence_engine::endpoint::{Dispatch, Endpoint};
use cadence_engine::rtsp::RequestCtx;
use rtsp_types::{headers, HeaderName, Method, Request, StatusCode, Version};

/// The bundled sample's aggregate URL; its tracks are `trackID=3` (video)
/// and `trackID=4` (audio).
pub const SAMPLE_URL: &str = "rtsp://127.0.0.1:8554/sample.mp4";

/// An RTSP/1.0 request with `CSeq: cseq` and the `extra` headers.
pub fn request(
    method: Method,
    url: &str,
    cseq: u32,
    extra: &[(&'static str, String)],
) -> Request<Vec<u8>> {
    let mut b = Request::builder(method, Version::V1_0)
        .request_uri(url::Url::parse(url).expect("url"))
        .header(headers::CSEQ, cseq.to_string());
    for (k, v) in extra {
        b = b.header(HeaderName::from_static_str(k).expect("header"), v.as_str());
    }
    b.build(Vec::new())
}

/// The response of a dispatch that must be answered at once.
pub fn respond(d: Dispatch) -> rtsp_types::Response<Vec<u8>> {
    match d {
        Dispatch::Respond { response, .. } => response,
        other => panic!("expected a response: {other:?}"),
    }
}

/// What one played session sends.
pub struct Play<'a> {
    /// Session number: picks the client ports (`20000 + 2 × (i mod 100)`).
    pub i: u32,
    /// DESCRIBE first.
    pub describe: bool,
    /// Headers sent on every request (e.g. `User-Agent`).
    pub every: &'a [(&'static str, String)],
    /// Extra headers of the PLAY (e.g. `Range`, `Scale`).
    pub play: Vec<(&'static str, String)>,
}

/// Sets up both tracks of the sample over UDP and plays them on the
/// connection of `ctx`; every reply must be 200.
pub fn play_sample(endpoint: &mut Endpoint, ctx: &RequestCtx, p: Play<'_>) {
    let base = SAMPLE_URL;
    let mut cseq = 0;
    let mut send = |endpoint: &mut Endpoint, method, url: &str, own: &[(&'static str, String)]| {
        cseq += 1;
        let mut extra = own.to_vec();
        extra.extend_from_slice(p.every);
        let r = respond(endpoint.handle(ctx, request(method, url, cseq, &extra)));
        assert_eq!(r.status(), StatusCode::Ok, "{url}");
        r
    };
    if p.describe {
        send(
            endpoint,
            Method::Describe,
            base,
            &[("Accept", "application/sdp".into())],
        );
    }
    let transport = (
        "Transport",
        format!(
            "RTP/AVP;unicast;client_port={}-{}",
            20000 + 2 * (p.i % 100),
            20001 + 2 * (p.i % 100)
        ),
    );
    let r = send(
        endpoint,
        Method::Setup,
        &format!("{base}/trackID=3"),
        std::slice::from_ref(&transport),
    );
    let session = r
        .header(&headers::SESSION)
        .expect("session")
        .as_str()
        .split(';')
        .next()
        .expect("id")
        .to_string();
    send(
        endpoint,
        Method::Setup,
        &format!("{base}/trackID=4"),
        &[transport, ("Session", session.clone())],
    );
    let mut play = p.play;
    play.push(("Session", session));
    send(endpoint, Method::Play, base, &play);
}
