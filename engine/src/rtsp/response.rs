//! Every RTSP response Cadence sends is built here (RFC 2326 §7): the
//! controller's replies, the pipeline's refusals, challenges and redirects,
//! and the shard's answers to input that never became a request.

use rtsp_types::headers::UNSUPPORTED;
use rtsp_types::headers::{ALLOW, CSEQ, LOCATION, RETRY_AFTER, SERVER, WWW_AUTHENTICATE};
use rtsp_types::{Response, StatusCode, Version};

/// Methods we implement, for OPTIONS' `Public` and 405's `Allow`.
pub const PUBLIC_METHODS: &str =
    "DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, OPTIONS, GET_PARAMETER, SET_PARAMETER";

/// Value of the `Server` header.
pub const SERVER_NAME: &str = concat!("Cadence/", env!("CARGO_PKG_VERSION"));

/// An RTSP response with an empty body.
pub type RtspResponse = Response<Vec<u8>>;

/// A response with status `status`, no headers and no body.
pub fn status(status: StatusCode) -> RtspResponse {
    Response::builder(Version::V1_0, status).build(Vec::new())
}

/// Seconds a 503 asks the client to wait (`Retry-After`): the catalog looks
/// again for room for refused files about every second.
pub const RETRY_AFTER_S: &str = "2";

/// A refusal: `status` plus the headers that status calls for (405 gets
/// `Allow`, RFC 2326 §12.4; 503 gets `Retry-After`, §12.31).
pub fn refusal(code: StatusCode) -> RtspResponse {
    let mut r = status(code);
    if code == StatusCode::MethodNotAllowed {
        r.insert_header(ALLOW, PUBLIC_METHODS);
    }
    if code == StatusCode::ServiceUnavailable {
        r.insert_header(RETRY_AFTER, RETRY_AFTER_S);
    }
    r
}

/// 401 Unauthorized with a `WWW-Authenticate` header carrying the
/// challenges (RFC 2326 §12.44; several are joined into one comma-separated
/// list, as RFC 7235 §4.1 allows).
pub fn unauthorized(challenges: &[String]) -> RtspResponse {
    let mut r = status(StatusCode::Unauthorized);
    for c in challenges {
        r.append_header(WWW_AUTHENTICATE, c.as_str());
    }
    r
}

/// A redirect (301 or 302) to `location` (RFC 2326 §11.3.3, §12.25).
pub fn redirect(code: StatusCode, location: &str) -> RtspResponse {
    let mut r = status(code);
    r.insert_header(LOCATION, location);
    r
}

/// 551 Option not supported, with the `Unsupported` header naming the
/// options (RFC 2326 §11.3.14, §12.32, §12.43).
pub fn option_not_supported(options: &str) -> RtspResponse {
    let mut r = status(StatusCode::OptionNotSupported);
    r.insert_header(UNSUPPORTED, options);
    r
}

/// Adds what every response carries: `CSeq` echoed from the request (when it
/// had one) and `Server`.
pub fn finish(response: &mut RtspResponse, cseq: Option<&str>) {
    if let Some(cseq) = cseq {
        response.insert_header(CSEQ, cseq);
    }
    response.insert_header(SERVER, SERVER_NAME);
}

/// Serialized 400 Bad Request for input that is not an RTSP message (the
/// connection is then closed).
pub fn bad_request_bytes() -> Vec<u8> {
    serialize(&{
        let mut r = status(StatusCode::BadRequest);
        finish(&mut r, None);
        r
    })
}

/// Serialized 408 Request Timeout for a connection that did not complete a
/// request in time (it is then closed).
pub fn request_timeout_bytes() -> Vec<u8> {
    serialize(&{
        let mut r = status(StatusCode::RequestTimeout);
        finish(&mut r, None);
        r
    })
}

/// Serializes `response` (status line, headers, body).
pub fn serialize(response: &RtspResponse) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(256 + response.body().len());
    // Writing into a Vec cannot fail.
    let _ = response.write(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_bad_request_bytes() {
        let r = refusal(StatusCode::MethodNotAllowed);
        assert!(r.header(&ALLOW).is_some());
        let bytes = String::from_utf8(bad_request_bytes()).expect("utf8");
        assert!(bytes.starts_with("RTSP/1.0 400 Bad Request\r\n"), "{bytes}");
        assert!(bytes.contains("Server: Cadence/"), "{bytes}");
        let r = unauthorized(&["Basic realm=\"a\"".into(), "Digest realm=\"a\"".into()]);
        let text = String::from_utf8(serialize(&r)).expect("utf8");
        // rtsp-types joins repeated headers into one comma-separated list,
        // which RFC 7235 §4.1 allows.
        assert!(
            text.contains("WWW-Authenticate: Basic realm=\"a\", Digest realm=\"a\""),
            "{text}"
        );
        let r = option_not_supported("implicit-play");
        let text = String::from_utf8(serialize(&r)).expect("utf8");
        assert!(text.contains("551"), "{text}");
        assert!(text.contains("Unsupported: implicit-play"), "{text}");
    }
}
