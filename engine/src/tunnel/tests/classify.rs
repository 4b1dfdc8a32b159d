//! Classification of HTTP heads, the statuses of refusals, and the bytes
//! of every response (parsed back with `httparse`).

use crate::rtsp::framing::{Frame, Framer, Limits};
use crate::tunnel::{classify, get_response, Cookie, TunnelError, TunnelRequest, MAX_COOKIE_LEN};

/// Frames `text` as the first message of a connection.
fn head(text: &str) -> crate::tunnel::HttpRequestHead {
    let mut framer = Framer::new(Limits::default());
    framer.push(text.as_bytes());
    match framer.next_frame() {
        Some(Frame::Http(h) | Frame::HttpUnsupported(h)) => h,
        other => panic!("expected an HTTP head, got {other:?}"),
    }
}

fn get(extra: &str) -> crate::tunnel::HttpRequestHead {
    head(&format!("GET /a.mp4 HTTP/1.0\r\n{extra}\r\n"))
}

fn post(extra: &str) -> crate::tunnel::HttpRequestHead {
    head(&format!("POST /a.mp4 HTTP/1.0\r\n{extra}\r\n"))
}

/// Parses an HTTP response: (version minor, status, headers).
fn parse_response(bytes: &[u8]) -> (u8, u16, Vec<(String, String)>) {
    let mut fields = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut fields);
    let status = resp.parse(bytes).expect("valid HTTP response");
    assert_eq!(
        status,
        httparse::Status::Complete(bytes.len()),
        "exactly one complete head"
    );
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            let v = std::str::from_utf8(h.value).expect("ASCII value");
            (h.name.to_ascii_lowercase(), v.to_string())
        })
        .collect();
    (
        resp.version.expect("version"),
        resp.code.expect("code"),
        headers,
    )
}

fn value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn get_and_post_halves() {
    let g = classify(&get(
        "x-sessioncookie: abc\r\nAccept: application/x-rtsp-tunnelled\r\n",
    ))
    .expect("GET");
    assert_eq!(
        g,
        TunnelRequest::Get {
            cookie: Cookie::new("abc").expect("cookie"),
            path: "/a.mp4".into()
        }
    );
    // Header names are case-insensitive; DSS spells it X-SessionCookie.
    let p = classify(&post(
        "X-SessionCookie: abc\r\nContent-Type: Application/X-RTSP-Tunnelled; charset=x\r\n",
    ))
    .expect("POST");
    assert_eq!(p.cookie().as_str(), "abc");
    assert!(matches!(p, TunnelRequest::Post { .. }));
}

#[test]
fn accept_header_of_the_get() {
    // No Accept at all: accepted (the type is implied by the scheme).
    assert!(classify(&get("x-sessioncookie: c\r\n")).is_ok());
    for accept in [
        "*/*",
        "application/*",
        "text/html, application/x-rtsp-tunnelled;q=1",
    ] {
        let h = get(&format!("x-sessioncookie: c\r\nAccept: {accept}\r\n"));
        assert!(classify(&h).is_ok(), "Accept: {accept}");
    }
    // Several Accept headers: one admitting the type is enough.
    let h = get("x-sessioncookie: c\r\nAccept: text/html\r\nAccept: */*\r\n");
    assert!(classify(&h).is_ok());
    let h = get("x-sessioncookie: c\r\nAccept: text/html, image/*\r\n");
    assert_eq!(classify(&h), Err(TunnelError::NotAcceptable));
}

#[test]
fn refusals_and_their_statuses() {
    let cases: Vec<(crate::tunnel::HttpRequestHead, TunnelError, u16)> = vec![
        (get("Accept: */*\r\n"), TunnelError::MissingCookie, 400),
        (get("x-sessioncookie:\r\n"), TunnelError::BadCookie, 400),
        (get("x-sessioncookie: a b\r\n"), TunnelError::BadCookie, 400),
        (
            get(&format!(
                "x-sessioncookie: {}\r\n",
                "c".repeat(MAX_COOKIE_LEN + 1)
            )),
            TunnelError::BadCookie,
            400,
        ),
        (
            get("x-sessioncookie: a\r\nx-sessioncookie: b\r\n"),
            TunnelError::ConflictingCookies,
            400,
        ),
        (
            get("x-sessioncookie: a\r\nAccept: text/html\r\n"),
            TunnelError::NotAcceptable,
            406,
        ),
        (
            post("x-sessioncookie: a\r\n"),
            TunnelError::UnsupportedMediaType,
            415,
        ),
        (
            post("x-sessioncookie: a\r\nContent-Type: text/plain\r\n"),
            TunnelError::UnsupportedMediaType,
            415,
        ),
        (
            head("OPTIONS * HTTP/1.1\r\nx-sessioncookie: a\r\n\r\n"),
            TunnelError::MethodNotAllowed,
            405,
        ),
        (
            head("HEAD / HTTP/1.0\r\n\r\n"),
            TunnelError::MethodNotAllowed,
            405,
        ),
        (
            head("BREW /pot HTTP/1.1\r\n\r\n"),
            TunnelError::NotImplemented,
            501,
        ),
        // Methods are case-sensitive (RFC 9110 §9.1).
        (
            head("get / HTTP/1.0\r\n\r\n"),
            TunnelError::NotImplemented,
            501,
        ),
    ];
    for (h, error, status) in cases {
        assert_eq!(classify(&h), Err(error), "{h:?}");
        assert_eq!(error.status(), status);
        let (minor, code, headers) = parse_response(&error.response_bytes());
        assert_eq!((minor, code), (0, status), "HTTP/1.0 {status}");
        assert_eq!(value(&headers, "connection"), Some("close"));
        assert_eq!(value(&headers, "content-length"), Some("0"));
        assert_eq!(
            value(&headers, "allow"),
            (status == 405).then_some("GET, POST"),
            "Allow only on 405"
        );
    }
}

#[test]
fn duplicate_equal_cookies_are_one() {
    let h = get("x-sessioncookie: same\r\nx-sessioncookie: same\r\n");
    assert_eq!(classify(&h).expect("GET").cookie().as_str(), "same");
}

#[test]
fn cookie_validation_and_debug() {
    assert!(Cookie::new(&"x".repeat(MAX_COOKIE_LEN)).is_ok());
    for bad in ["", "a\u{7f}", "tab\there", "é"] {
        assert_eq!(Cookie::new(bad), Err(TunnelError::BadCookie), "{bad:?}");
    }
    let c = Cookie::new("secret-cookie").expect("cookie");
    let shown = format!("{c:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("13 bytes"), "{shown}");
    // Nor does the head's Debug show header values.
    let h = get("x-sessioncookie: secret-cookie\r\nAuthorization: Basic c2VjcmV0\r\n");
    let shown = format!("{h:?}");
    assert!(
        !shown.contains("secret") && !shown.contains("c2VjcmV0"),
        "{shown}"
    );
}

#[test]
fn the_get_reply() {
    let bytes = get_response();
    let (minor, code, headers) = parse_response(&bytes);
    assert_eq!((minor, code), (0, 200));
    assert!(bytes.starts_with(b"HTTP/1.0 200 OK\r\n"));
    assert_eq!(
        value(&headers, "content-type"),
        Some("application/x-rtsp-tunnelled")
    );
    assert_eq!(value(&headers, "cache-control"), Some("no-cache"));
    assert_eq!(value(&headers, "pragma"), Some("no-cache"));
    // No Content-Length: the reply's body is the rest of the connection.
    assert_eq!(value(&headers, "content-length"), None);
}
