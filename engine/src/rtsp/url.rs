//! Request-URL handling: which catalog file and which track a request names.
//!
//! DESCRIBE and aggregate PLAY/PAUSE/TEARDOWN name the file
//! (`rtsp://host:port/<path>`); SETUP names a track with the control from our
//! SDP (`.../<path>/trackID=N`). ffmpeg-style `streamid=N` is accepted too.

use percent_encoding::percent_decode_str;

use crate::pipeline::Route;

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

/// The built-in router: the [`Route`] a request URL names. The query is
/// kept apart from the path, including when a client appended the track
/// control after it (ffmpeg and live555 join `Content-Base` and the control
/// by text, so a DESCRIBE of `…/f.mp4?k=v` yields SETUP `…/f.mp4?k=v/trackID=3`).
/// `None` when the path is not valid UTF-8 after percent-decoding.
pub fn route_of(url: &url::Url) -> Option<Route> {
    let target = parse_target(url.path())?;
    let mut track_id = target.track_id;
    let mut query = url.query().unwrap_or("");
    while let Some((head, tail)) = query.rsplit_once('/') {
        match track_segment(tail) {
            Some(id) => {
                track_id = track_id.or(Some(id));
                query = head;
            }
            None if tail.is_empty() => query = head,
            None => break,
        }
    }
    Some(Route {
        path: target.path,
        track_id,
        query: query.to_string(),
    })
}

/// The stem of a request URL: scheme, authority and path, without the
/// query, a trailing `/` or a trailing track segment
/// (`rtsp://h:1/d/f.mp4/trackID=3?k=v` → `rtsp://h:1/d/f.mp4`). Control URLs
/// and RTP-Info URLs are built on it.
pub fn url_stem(url: &url::Url) -> String {
    let full = url.as_str();
    let mut stem = full.split_once('?').map(|(a, _)| a).unwrap_or(full);
    stem = stem.trim_end_matches('/');
    if let Some((head, last)) = stem.rsplit_once('/') {
        if track_segment(last).is_some() && !head.ends_with('/') {
            stem = head;
        }
    }
    stem.to_string()
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

    #[test]
    fn queries_stay_apart_from_paths_and_tracks() {
        let r = |u: &str| route_of(&url::Url::parse(u).expect("url")).expect("route");
        let plain = r("rtsp://h:1/d/f.mp4?exp=9&sig=a_b");
        assert_eq!((plain.path.as_str(), plain.track_id), ("d/f.mp4", None));
        assert_eq!(plain.query, "exp=9&sig=a_b");
        for u in [
            "rtsp://h:1/d/f.mp4?exp=9&sig=a_b/trackID=3",
            "rtsp://h:1/d/f.mp4/trackID=3?exp=9&sig=a_b",
        ] {
            let t = r(u);
            assert_eq!((t.path.as_str(), t.track_id), ("d/f.mp4", Some(3)), "{u}");
            assert_eq!(t.query, "exp=9&sig=a_b", "{u}");
        }
        let stem = |u: &str| url_stem(&url::Url::parse(u).expect("url"));
        assert_eq!(
            stem("rtsp://h:1/d/f.mp4/trackID=3?k=v"),
            "rtsp://h:1/d/f.mp4"
        );
        assert_eq!(
            stem("rtsp://h:1/d/f.mp4?k=v/trackID=3"),
            "rtsp://h:1/d/f.mp4"
        );
        assert_eq!(stem("rtsp://h:1/d/f.mp4/"), "rtsp://h:1/d/f.mp4");
        let aggregate = r("rtsp://h:1/d/f.mp4?exp=9&sig=a_b/");
        assert_eq!(aggregate.query, "exp=9&sig=a_b");
        assert_eq!(aggregate.track_id, None);
        assert_eq!(
            aggregate.query_pairs(),
            vec![("exp".into(), "9".into()), ("sig".into(), "a_b".into())]
        );
    }
}
