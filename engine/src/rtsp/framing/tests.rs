use super::*;
use proptest::prelude::*;

fn feed_all(framer: &mut Framer, bytes: &[u8]) -> Vec<Frame> {
    framer.push(bytes);
    std::iter::from_fn(|| framer.next_frame()).collect()
}

/// Feeds `bytes` in chunks ending at `cuts` (sorted offsets), draining the
/// framer after each chunk, as the shard does after each receive.
fn feed_split(limits: Limits, bytes: &[u8], cuts: &[usize]) -> (Vec<Frame>, Framer) {
    let mut framer = Framer::new(limits);
    let mut out = Vec::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(at, bytes.len());
        framer.push(&bytes[at..cut]);
        at = cut;
        while let Some(f) = framer.next_frame() {
            out.push(f);
        }
    }
    (out, framer)
}

fn rejection(frame: &Frame) -> &Rejection {
    match frame {
        Frame::Malformed(r) => r,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn requests_data_and_garbage() {
    // The legacy one-shot interface the shard uses today.
    let req = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    assert!(next(&req[..10]).is_none());
    let (input, n) = next(req).expect("complete");
    assert_eq!(n, req.len());
    assert!(matches!(input, Input::Request(_)));

    let data = [b'$', 1, 0, 3, 9, 8, 7];
    let (input, n) = next(&data).expect("complete");
    assert_eq!(n, 7);
    assert!(matches!(input, Input::Data { channel: 1, ref payload } if payload == &[9, 8, 7]));

    let (input, _) = next(b"\x00\x01garbage\r\n\r\n").expect("decided");
    assert!(matches!(input, Input::Malformed));

    // Stray CR/LF alone is consumed; before a message it is counted in.
    let (input, n) = next(b"\r\n\r\n").expect("consumed");
    assert!(matches!(input, Input::Response));
    assert_eq!(n, 4);
    let mut crlf_req = b"\r\n".to_vec();
    crlf_req.extend_from_slice(req);
    let (input, n) = next(&crlf_req).expect("complete");
    assert!(matches!(input, Input::Request(_)));
    assert_eq!(n, crlf_req.len());
    // HTTP heads are not RTSP for the legacy interface.
    let (input, _) = next(b"GET /x HTTP/1.0\r\n\r\n").expect("decided");
    assert!(matches!(input, Input::Malformed));
}

#[test]
fn pipelined_messages_in_one_push() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\r\nOPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    bytes.extend_from_slice(&[b'$', 1, 0, 2, 0xaa, 0xbb]);
    bytes.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 9\r\nContent-Length: 3\r\n\r\nabc");
    bytes.extend_from_slice(b"\n\r\n");
    bytes.extend_from_slice(
        b"SET_PARAMETER rtsp://h/x.mp4 RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nhello",
    );
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, &bytes);
    assert_eq!(frames.len(), 4, "{frames:?}");
    match &frames[0] {
        Frame::Request(r) => {
            assert_eq!(r.method(), rtsp_types::Method::Options);
            assert_eq!(
                r.header(&rtsp_types::headers::CSEQ).map(|v| v.as_str()),
                Some("1")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&frames[1], Frame::Data { channel: 1, payload } if payload == &[0xaa, 0xbb]));
    assert!(matches!(frames[2], Frame::Response));
    match &frames[3] {
        Frame::Request(r) => {
            assert_eq!(r.method(), rtsp_types::Method::SetParameter);
            assert_eq!(r.body(), b"hello");
        }
        other => panic!("{other:?}"),
    }
    // Everything consumed: the idle framer holds no buffer.
    assert_eq!(framer.buffered(), 0);
    assert_eq!(framer.buffer_capacity(), 0);
}

#[test]
fn body_arrives_in_pieces() {
    let msg =
        b"ANNOUNCE rtsp://h/x.mp4 RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 10\r\n\r\n0123456789";
    let mut framer = Framer::default();
    let head_end = msg.len() - 10;
    framer.push(&msg[..head_end]);
    assert!(framer.next_frame().is_none());
    framer.push(&msg[head_end..head_end + 4]);
    assert!(framer.next_frame().is_none());
    assert_eq!(framer.buffered(), head_end + 4);
    framer.push(&msg[head_end + 4..]);
    match framer.next_frame() {
        Some(Frame::Request(r)) => assert_eq!(r.body(), b"0123456789"),
        other => panic!("{other:?}"),
    }
    assert!(framer.next_frame().is_none());
}

#[test]
fn interleaved_frame_split_everywhere() {
    let mut bytes = vec![b'$', 0, 0x01, 0x00];
    bytes.extend((0..256u32).map(|i| i as u8));
    for cut in 0..bytes.len() {
        let (frames, _) = feed_split(Limits::default(), &bytes, &[cut]);
        assert_eq!(frames.len(), 1, "cut {cut}");
        assert!(
            matches!(&frames[0], Frame::Data { channel: 0, payload } if payload[..] == bytes[4..]),
            "cut {cut}"
        );
    }
}

/// A 64 KiB header block of short lines, fed one byte per push: the scan
/// examines each byte a bounded number of times (linear, not quadratic).
#[test]
fn byte_at_a_time_is_linear() {
    let limits = Limits {
        max_header_bytes: 128 * 1024,
        max_headers: 100_000,
        ..Limits::default()
    };
    let mut msg = b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n".to_vec();
    while msg.len() < 64 * 1024 {
        msg.extend_from_slice(b"X-A: b\r\n");
    }
    let head_len = msg.len();
    let mut framer = Framer::new(limits);
    for b in &msg {
        framer.push(std::slice::from_ref(b));
        assert!(framer.next_frame().is_none());
    }
    // Every byte examined exactly once by the scan so far.
    assert_eq!(framer.scanned_bytes(), head_len as u64);
    framer.push(b"\r\n");
    assert!(matches!(framer.next_frame(), Some(Frame::Request(_))));
    let total = (head_len + 2) as u64;
    // Scan once + final parse once.
    assert_eq!(framer.scanned_bytes(), 2 * total);
    assert_eq!(framer.buffer_capacity(), 0);
}

#[test]
fn header_block_limit_is_400() {
    let limits = Limits::default();
    let mut msg = b"DESCRIBE rtsp://h/x.mp4 RTSP/1.0\r\nCSeq: 12\r\n".to_vec();
    while msg.len() <= limits.max_header_bytes {
        msg.extend_from_slice(format!("X-Padding: {}\r\n", "p".repeat(1000)).as_bytes());
    }
    let mut framer = Framer::new(limits);
    // Rejected once the limit is passed, without waiting for a blank line.
    let frames = feed_all(&mut framer, &msg);
    assert_eq!(frames.len(), 1);
    let r = rejection(&frames[0]);
    assert_eq!(
        r.error,
        FramingError::HeaderTooLarge {
            limit: DEFAULT_MAX_HEADER_BYTES
        }
    );
    assert_eq!(r.status(), 400);
    assert_eq!(r.cseq, Some(12));
    let reply = String::from_utf8(r.response_bytes()).expect("ascii");
    assert!(
        reply.starts_with("RTSP/1.0 400 Bad Request\r\nCSeq: 12\r\n"),
        "{reply}"
    );
    assert!(reply.ends_with("Connection: close\r\n\r\n"), "{reply}");
    // Dead: later input is discarded.
    framer.push(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert!(framer.next_frame().is_none());
    assert_eq!(framer.buffered(), 0);
}

#[test]
fn exactly_at_the_header_limit_is_accepted() {
    let limits = Limits {
        max_header_bytes: 200,
        ..Limits::default()
    };
    let base = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Pad: ";
    let mut msg = base.to_vec();
    msg.extend(std::iter::repeat_n(b'y', 200 - base.len() - 4));
    msg.extend_from_slice(b"\r\n\r\n");
    assert_eq!(msg.len(), limits.max_header_bytes);
    let mut framer = Framer::new(limits);
    assert!(matches!(
        feed_all(&mut framer, &msg).as_slice(),
        [Frame::Request(_)]
    ));
    msg.insert(msg.len() - 4, b'y');
    let mut framer = Framer::new(limits);
    let frames = feed_all(&mut framer, &msg);
    assert_eq!(
        rejection(&frames[0]).error,
        FramingError::HeaderTooLarge { limit: 200 }
    );
}

#[test]
fn header_count_limit_is_400() {
    let limits = Limits {
        max_headers: 4,
        ..Limits::default()
    };
    let msg = b"OPTIONS * RTSP/1.0\r\nCSeq: 5\r\nA: 1\r\nB: 2\r\n C-continued\r\nD: 3\r\n";
    // Four fields (the continuation line is not a field): still waiting.
    let mut framer = Framer::new(limits);
    assert!(feed_all(&mut framer, msg).is_empty());
    let frames = feed_all(&mut framer, b"E: 4\r\n");
    let r = rejection(&frames[0]);
    assert_eq!(r.error, FramingError::TooManyHeaders { limit: 4 });
    assert_eq!(r.status(), 400);
}

#[test]
fn request_line_limit_is_414() {
    let limits = Limits::default();
    let mut msg = b"DESCRIBE rtsp://h/".to_vec();
    msg.extend(std::iter::repeat_n(b'a', limits.max_request_line));
    let mut framer = Framer::new(limits);
    let frames = feed_all(&mut framer, &msg);
    let r = rejection(&frames[0]);
    assert_eq!(
        r.error,
        FramingError::RequestLineTooLong {
            limit: DEFAULT_MAX_REQUEST_LINE
        }
    );
    assert_eq!(r.status(), 414);
    assert!(r
        .response_bytes()
        .starts_with(b"RTSP/1.0 414 Request-URI Too Large\r\n"));
}

#[test]
fn body_limit_is_413_as_soon_as_announced() {
    let msg = b"SET_PARAMETER rtsp://h/x RTSP/1.0\r\nCSeq: 8\r\nContent-Length: 65537\r\n";
    let mut framer = Framer::default();
    // Rejected at the Content-Length line, before the head is complete.
    let frames = feed_all(&mut framer, msg);
    let r = rejection(&frames[0]);
    assert_eq!(
        r.error,
        FramingError::BodyTooLarge {
            length: 65537,
            limit: DEFAULT_MAX_BODY
        }
    );
    assert_eq!(r.status(), 413);
    assert_eq!(r.cseq, Some(8));
    assert!(r
        .response_bytes()
        .starts_with(b"RTSP/1.0 413 Request Entity Too Large\r\nCSeq: 8\r\n"));
}

#[test]
fn content_length_must_be_one_decimal_number() {
    for bad in [
        &b"Content-Length: -1"[..],
        b"Content-Length: 1x",
        b"Content-Length: +5",
        b"Content-Length:",
        b"Content-Length: 99999999999999999999999",
    ] {
        let mut msg = b"SET_PARAMETER rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
        msg.extend_from_slice(bad);
        msg.extend_from_slice(b"\r\n\r\n");
        let mut framer = Framer::default();
        let frames = feed_all(&mut framer, &msg);
        assert_eq!(
            rejection(&frames[0]).error,
            FramingError::BadContentLength,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut framer = Framer::default();
    let frames = feed_all(
        &mut framer,
        b"SET_PARAMETER rtsp://h/x RTSP/1.0\r\nContent-Length: 2\r\ncontent-length: 3\r\n\r\nabc",
    );
    assert_eq!(rejection(&frames[0]).error, FramingError::BadContentLength);
    // The same value twice is harmless.
    let mut framer = Framer::default();
    let frames = feed_all(
        &mut framer,
        b"SET_PARAMETER rtsp://h/x RTSP/1.0\r\nContent-Length: 2\r\nContent-Length:  2 \r\n\r\nab",
    );
    assert!(matches!(frames.as_slice(), [Frame::Request(r)] if r.body() == b"ab"));
}

#[test]
fn binary_input_is_rejected_at_once() {
    // A TLS ClientHello.
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, &[0x16, 0x03, 0x01, 0x02, 0x00]);
    assert_eq!(
        rejection(&frames[0]).error,
        FramingError::NotRtsp {
            byte: 0x16,
            offset: 0
        }
    );
    // A control byte in the start line, before any line end.
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, b"OPTIONS \x01");
    assert_eq!(
        rejection(&frames[0]).error,
        FramingError::NotRtsp { byte: 1, offset: 8 }
    );
    // A start line that is not RTSP.
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, b"HELLO world\r\n");
    assert_eq!(rejection(&frames[0]).error, FramingError::BadStartLine);
    // A header line without a colon.
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, b"OPTIONS * RTSP/1.0\r\nCSeq 1\r\n");
    assert_eq!(rejection(&frames[0]).error, FramingError::BadHeaderLine);
    // rtsp-types rejects the complete message (relative URI).
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, b"OPTIONS /x RTSP/1.0\r\nCSeq: 4\r\n\r\n");
    let r = rejection(&frames[0]);
    assert_eq!(r.error, FramingError::Parse);
    assert_eq!(r.cseq, Some(4));
}

/// The GET that ffmpeg 5.1 (`-rtsp_transport http`) sent, captured.
const FFMPEG_GET: &[u8] = b"GET /x.mp4 HTTP/1.1\r\n\
User-Agent: Lavf/59.27.100\r\n\
Range: bytes=0-\r\n\
Connection: close\r\n\
Host: 127.0.0.1:18554\r\n\
Icy-MetaData: 1\r\n\
x-sessioncookie: b18a356fd837d8c5\r\n\
Accept: application/x-rtsp-tunnelled\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
\r\n";

#[test]
fn http_get_head_is_handed_off() {
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, FFMPEG_GET);
    let [Frame::Http(head)] = frames.as_slice() else {
        panic!("{frames:?}");
    };
    assert_eq!(head.method, "GET");
    assert_eq!(head.path, "/x.mp4");
    assert_eq!(head.version, HttpVersion::Http11);
    assert_eq!(head.head_len, FFMPEG_GET.len());
    assert_eq!(head.header("X-SessionCookie"), Some("b18a356fd837d8c5"));
    assert_eq!(
        head.header_values("accept").collect::<Vec<_>>(),
        ["application/x-rtsp-tunnelled"]
    );
    assert_eq!(head.headers.len(), 9);
    // Debug never shows header values (the cookie binds a session).
    assert!(!format!("{head:?}").contains("b18a356fd837d8c5"));
    // Handed off: RTSP after it is not framed, only buffered.
    framer.push(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert!(framer.next_frame().is_none());
    assert_eq!(framer.buffered(), 31);
}

#[test]
fn http_post_body_stays_buffered() {
    let head = b"POST /x.mp4 HTTP/1.0\r\nx-sessioncookie: abc\r\n\
Content-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n";
    let body = b"T1BUSU9OUyAqIFJUU1AvMS4wDQo=";
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(body);
    for cut in 0..bytes.len() {
        let (frames, mut framer) = feed_split(Limits::default(), &bytes, &[cut]);
        let [Frame::Http(h)] = frames.as_slice() else {
            panic!("cut {cut}: {frames:?}");
        };
        assert_eq!(h.method, "POST");
        assert_eq!(h.head_len, head.len());
        // The dummy Content-Length is not held against the body limit.
        assert_eq!(framer.take_buffered(), body, "cut {cut}");
        assert_eq!(framer.buffered(), 0);
    }
}

#[test]
fn other_http_methods_and_versions() {
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, b"HEAD /x.mp4 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(matches!(frames.as_slice(), [Frame::HttpUnsupported(h)] if h.method == "HEAD"));

    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, b"GET /x.mp4 HTTP/2.0\r\n");
    let r = rejection(&frames[0]);
    assert_eq!(r.error, FramingError::HttpVersion);
    assert_eq!(r.status(), 505);
    assert!(r
        .response_bytes()
        .starts_with(b"HTTP/1.0 505 HTTP Version Not Supported\r\n"));

    // httparse rejects a bad header name in an HTTP head.
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, b"GET /x HTTP/1.0\r\nBad Name: v\r\n\r\n");
    let r = rejection(&frames[0]);
    assert!(matches!(r.error, FramingError::Http(_)), "{r:?}");
    assert!(r.http);
    assert!(r
        .response_bytes()
        .starts_with(b"HTTP/1.0 400 Bad Request\r\n"));
}

#[test]
fn http_only_as_the_first_message() {
    let mut bytes = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n".to_vec();
    bytes.extend_from_slice(FFMPEG_GET);
    let mut framer = Framer::default();
    let frames = feed_all(&mut framer, &bytes);
    assert!(matches!(frames[0], Frame::Request(_)));
    assert_eq!(rejection(&frames[1]).error, FramingError::UnexpectedHttp);

    // Inside a tunnel, never.
    let mut framer = Framer::tunnelled(Limits::default());
    let frames = feed_all(&mut framer, FFMPEG_GET);
    assert_eq!(rejection(&frames[0]).error, FramingError::UnexpectedHttp);
}

/// One generated message and the summary the framer must produce for it.
#[derive(Clone, Debug)]
enum Gen {
    Request {
        method: &'static str,
        cseq: u32,
        extra: u8,
        body: Vec<u8>,
    },
    Data {
        channel: u8,
        payload: Vec<u8>,
    },
    Response {
        body: Vec<u8>,
    },
    Blank(&'static str),
}

impl Gen {
    fn bytes(&self, out: &mut Vec<u8>) {
        match self {
            Gen::Request {
                method,
                cseq,
                extra,
                body,
            } => {
                out.extend_from_slice(
                    format!("{method} rtsp://127.0.0.1:8554/x.mp4 RTSP/1.0\r\nCSeq: {cseq}\r\n")
                        .as_bytes(),
                );
                for i in 0..*extra {
                    out.extend_from_slice(format!("X-Extra-{i}: value {i}\r\n").as_bytes());
                }
                if !body.is_empty() {
                    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(body);
            }
            Gen::Data { channel, payload } => {
                out.push(b'$');
                out.push(*channel);
                out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                out.extend_from_slice(payload);
            }
            Gen::Response { body } => {
                out.extend_from_slice(
                    format!(
                        "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(body);
            }
            Gen::Blank(s) => out.extend_from_slice(s.as_bytes()),
        }
    }

    fn summary(&self) -> Option<String> {
        match self {
            Gen::Request {
                method, cseq, body, ..
            } => Some(format!("req {method} {cseq} {body:?}")),
            Gen::Data { channel, payload } => Some(format!("data {channel} {payload:?}")),
            Gen::Response { .. } => Some("resp".to_string()),
            Gen::Blank(_) => None,
        }
    }
}

fn summarize(frame: &Frame) -> String {
    match frame {
        Frame::Request(r) => format!(
            "req {} {} {:?}",
            <&str>::from(r.method()),
            r.header(&rtsp_types::headers::CSEQ)
                .map(|v| v.as_str())
                .unwrap_or("-"),
            r.body()
        ),
        Frame::Data { channel, payload } => format!("data {channel} {payload:?}"),
        Frame::Response => "resp".to_string(),
        other => format!("{other:?}"),
    }
}

fn gen_message() -> impl Strategy<Value = Gen> {
    let method = prop::sample::select(vec![
        "OPTIONS",
        "DESCRIBE",
        "SETUP",
        "PLAY",
        "GET_PARAMETER",
        "SET_PARAMETER",
    ]);
    prop_oneof![
        (
            method,
            any::<u32>(),
            0u8..8,
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(method, cseq, extra, body)| Gen::Request {
                method,
                cseq,
                extra,
                body
            }),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(channel, payload)| Gen::Data { channel, payload }),
        prop::collection::vec(any::<u8>(), 0..32).prop_map(|body| Gen::Response { body }),
        prop::sample::select(vec!["\r\n", "\n", "\r\n\r\n"]).prop_map(Gen::Blank),
    ]
}

proptest! {
    /// Any stream of valid messages, split anywhere, frames to the same
    /// messages, and the scan stays linear.
    #[test]
    fn valid_streams_frame_identically_however_split(
        msgs in prop::collection::vec(gen_message(), 1..12),
        mut cuts in prop::collection::vec(0usize..4000, 0..24),
    ) {
        let mut bytes = Vec::new();
        for m in &msgs {
            m.bytes(&mut bytes);
        }
        cuts.sort_unstable();
        let (frames, framer) = feed_split(Limits::default(), &bytes, &cuts);
        let want: Vec<String> = msgs.iter().filter_map(Gen::summary).collect();
        let got: Vec<String> = frames.iter().map(summarize).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(framer.buffered(), 0);
        prop_assert!(framer.scanned_bytes() <= 2 * bytes.len() as u64);
    }

    /// Arbitrary bytes never panic, and the outcome does not depend on how
    /// the input was split.
    #[test]
    fn arbitrary_input_is_split_invariant(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        prefix in prop::sample::select(vec![&b""[..], b"OPTIONS * RTSP/1.0\r\n", b"GET / HTTP/1.0\r\n", b"$"]),
        mut cuts in prop::collection::vec(0usize..700, 0..16),
    ) {
        let limits = Limits { max_header_bytes: 256, max_request_line: 128, max_headers: 8, max_body: 64 };
        let mut input = prefix.to_vec();
        input.extend_from_slice(&bytes);
        cuts.sort_unstable();
        let (whole, a) = feed_split(limits, &input, &[]);
        let (split, b) = feed_split(limits, &input, &cuts);
        let whole: Vec<String> = whole.iter().map(|f| format!("{f:?}")).collect();
        let split: Vec<String> = split.iter().map(|f| format!("{f:?}")).collect();
        prop_assert_eq!(whole, split);
        prop_assert_eq!(a.buffered(), b.buffered());
    }
}
