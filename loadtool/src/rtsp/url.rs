//! Control-URL resolution (RFC 2326 §C.1.1): `a=control:` values are absolute
//! (`rtsp://…`), `*` (the base itself), or relative to the base URL given by
//! Content-Base (else Content-Location, else the request URL).

use rtsp_types::Url;

/// A control value that gives no usable URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("control URL {control:?} relative to {base} is not a valid URL")]
pub struct BadControl {
    /// The `a=control:` value.
    pub control: String,
    /// The base it was resolved against.
    pub base: String,
}

/// Resolves `control` against `base`.
///
/// Relative values are appended to the base with one `/` between them, which is
/// what servers expect and what common clients (ffmpeg, live555) do: for base
/// `rtsp://h/movie.mp4` and control `trackID=3` the result is
/// `rtsp://h/movie.mp4/trackID=3` (DSS and Cadence); `streamid=0` (ffmpeg) and
/// `stream=0` (gst-rtsp-server, whose Content-Base ends in `/`) work the same.
pub fn resolve_control(base: &Url, control: &str) -> Result<Url, BadControl> {
    let control = control.trim();
    let bad = || BadControl {
        control: control.to_string(),
        base: base.to_string(),
    };
    if control.is_empty() || control == "*" {
        return Ok(base.clone());
    }
    if is_absolute(control) {
        return Url::parse(control).map_err(|_| bad());
    }
    let base_str = base.as_str();
    let joined = if base_str.ends_with('/') || control.starts_with('/') {
        format!("{base_str}{control}")
    } else {
        format!("{base_str}/{control}")
    };
    Url::parse(&joined).map_err(|_| bad())
}

/// True when `s` starts with a URL scheme (`rtsp:`, `rtsps:`, `rtspu:` …).
fn is_absolute(s: &str) -> bool {
    match s.find(':') {
        Some(colon) if colon > 0 => {
            let scheme = &s[..colon];
            scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && s[colon..].starts_with("://")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn dss_track_id() {
        let base = url("rtsp://127.0.0.1:554/sample.mp4");
        assert_eq!(
            resolve_control(&base, "trackID=3").unwrap().as_str(),
            "rtsp://127.0.0.1:554/sample.mp4/trackID=3"
        );
    }

    #[test]
    fn base_with_trailing_slash() {
        let base = url("rtsp://127.0.0.1:8554/test/");
        assert_eq!(
            resolve_control(&base, "stream=0").unwrap().as_str(),
            "rtsp://127.0.0.1:8554/test/stream=0"
        );
        assert_eq!(resolve_control(&base, "*").unwrap(), base);
    }

    #[test]
    fn ffmpeg_stream_id_and_absolute() {
        let base = url("rtsp://h/a.mp4");
        assert_eq!(
            resolve_control(&base, "streamid=1").unwrap().as_str(),
            "rtsp://h/a.mp4/streamid=1"
        );
        assert_eq!(
            resolve_control(&base, "rtsp://other:9000/x/trackID=1")
                .unwrap()
                .as_str(),
            "rtsp://other:9000/x/trackID=1"
        );
    }

    #[test]
    fn empty_control_is_base() {
        let base = url("rtsp://h/a.mp4");
        assert_eq!(resolve_control(&base, "").unwrap(), base);
    }
}
