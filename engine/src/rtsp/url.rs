//! Request-URL handling: which catalog file and which track a request names.
//!
//! DESCRIBE and aggregate PLAY/PAUSE/TEARDOWN name the file
//! (`rtsp://host:port/<path>`); SETUP names a track with the control from our
//! SDP (`.../<path>/trackID=N`). ffmpeg-style `streamid=N` is accepted too.

use percent_encoding::percent_decode_str;

/// A request target: the catalog path and, for per-track URLs, the track ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Catalog path: percent-decoded, '/'-separated, no leading or trailing '/'.
    pub path: String,
    /// Track ID from a trailing `trackID=N` (or `streamid=N`) segment.
    pub track_id: Option<u32>,
}

/// Parses the path of a request URL. `None` when it is not valid UTF-8 after
/// percent-decoding.
pub fn parse_target(url_path: &str) -> Option<Target> {
    let decoded = percent_decode_str(url_path).decode_utf8().ok()?;
    let trimmed = decoded.trim_matches('/');
    let (path, track_id) = match trimmed.rsplit_once('/') {
        Some((head, last)) => match track_segment(last) {
            Some(id) => (head, Some(id)),
            None => (trimmed, None),
        },
        None => match track_segment(trimmed) {
            Some(id) => ("", Some(id)),
            None => (trimmed, None),
        },
    };
    Some(Target {
        path: path.to_string(),
        track_id,
    })
}

fn track_segment(seg: &str) -> Option<u32> {
    let v = seg
        .strip_prefix("trackID=")
        .or_else(|| seg.strip_prefix("streamid="))?;
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_track_urls() {
        assert_eq!(
            parse_target("/sample.mp4"),
            Some(Target {
                path: "sample.mp4".into(),
                track_id: None
            })
        );
        assert_eq!(
            parse_target("/dir/a%20b.mov/"),
            Some(Target {
                path: "dir/a b.mov".into(),
                track_id: None
            })
        );
        assert_eq!(
            parse_target("/dir/x.3gp/trackID=4"),
            Some(Target {
                path: "dir/x.3gp".into(),
                track_id: Some(4)
            })
        );
        assert_eq!(
            parse_target("/x.mp4/streamid=3"),
            Some(Target {
                path: "x.mp4".into(),
                track_id: Some(3)
            })
        );
        assert_eq!(parse_target("/%ff"), None);
    }
}
