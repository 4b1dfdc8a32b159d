//! The kind of a media description (`m=` line of the SDP, RFC 8866 §5.14),
//! by which lateness and jitter are reported separately: video with B-frames
//! and audio behave differently, and one mixed distribution hides either.

use serde::Serialize;

/// Audio, video or anything else (`text`, `application`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
    /// Any other media type.
    Other,
}

impl MediaKind {
    /// Every kind, in report order.
    pub const ALL: [MediaKind; 3] = [MediaKind::Video, MediaKind::Audio, MediaKind::Other];

    /// The kind of SDP media type `media` (case-insensitive).
    pub fn from_sdp(media: &str) -> Self {
        if media.eq_ignore_ascii_case("audio") {
            MediaKind::Audio
        } else if media.eq_ignore_ascii_case("video") {
            MediaKind::Video
        } else {
            MediaKind::Other
        }
    }

    /// Position in [`MediaKind::ALL`] (for per-kind arrays).
    pub fn index(self) -> usize {
        match self {
            MediaKind::Video => 0,
            MediaKind::Audio => 1,
            MediaKind::Other => 2,
        }
    }

    /// Name in the report: `video`, `audio`, `other`.
    pub fn key(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(MediaKind::from_sdp("video"), MediaKind::Video);
        assert_eq!(MediaKind::from_sdp("AUDIO"), MediaKind::Audio);
        assert_eq!(MediaKind::from_sdp("application"), MediaKind::Other);
        for (i, k) in MediaKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
