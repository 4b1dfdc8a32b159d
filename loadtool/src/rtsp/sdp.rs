//! What the load tool needs from a DESCRIBE reply's SDP (RFC 4566 / RFC 8866,
//! parsed with sdp-types): the media to SET UP, their control URLs and RTP
//! clock rates, the header extensions they announce (`a=extmap`, RFC 8285
//! §5), and the aggregate control URL for PLAY.

use rtsp_types::Url;

use super::url::{resolve_control, BadControl};
use crate::hdrext::TOFFSET_URI;
use crate::media_kind::MediaKind;

/// One media description (`m=` section) to SET UP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Media type from the `m=` line (`video`, `audio`, …).
    pub media: String,
    /// [`MediaKind`] of `media`.
    pub kind: MediaKind,
    /// The `a=control:` value as written (`trackID=3`, `streamid=0`, …).
    pub control: String,
    /// The control URL, resolved against the base URL.
    pub url: Url,
    /// RTP payload type of the first format on the `m=` line.
    pub payload_type: u8,
    /// Encoding name from `a=rtpmap` (`H264`, `mpeg4-generic`, …), if given.
    pub encoding: Option<String>,
    /// RTP clock rate in Hz, from `a=rtpmap`, or the static payload type's
    /// rate (RFC 3551 §6), else 90000 for video and 8000 for audio.
    pub clock_rate: u32,
    /// Local identifier (1–255) of the transmission time offset extension
    /// (`a=extmap:<id> urn:ietf:params:rtp-hdrext:toffset`, RFC 5450 §5,
    /// RFC 8285 §5) announced for this media, or at session level; `None`
    /// when not announced.
    pub toffset_id: Option<u8>,
}

/// The parts of a presentation description that a player acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// Media to SET UP, in SDP order.
    pub tracks: Vec<TrackInfo>,
    /// URL for aggregate PLAY / TEARDOWN / GET_PARAMETER: the session-level
    /// `a=control:` resolved against the base, or the base itself.
    pub aggregate: Url,
}

/// Why an SDP gives nothing to play.
#[derive(Debug, thiserror::Error)]
pub enum SdpError {
    /// sdp-types could not parse the text.
    #[error("SDP does not parse: {0}")]
    Parse(String),
    /// No `m=` section with an RTP profile.
    #[error("SDP has no RTP media")]
    NoMedia,
    /// More than one media section without `a=control:` (which URL to SET UP is
    /// ambiguous).
    #[error("SDP media {0} has no a=control and is not the only media")]
    NoControl(usize),
    /// A control value does not resolve to a URL.
    #[error(transparent)]
    BadControl(#[from] BadControl),
}

/// Parses `sdp` (a DESCRIBE body) against the base URL `base`
/// (Content-Base, else Content-Location, else the DESCRIBE URL).
pub fn parse_presentation(sdp: &[u8], base: &Url) -> Result<Presentation, SdpError> {
    let session = sdp_types::Session::parse(sdp).map_err(|e| SdpError::Parse(e.to_string()))?;
    let aggregate = match session.get_first_attribute_value("control") {
        Some(Some(control)) => resolve_control(base, control)?,
        _ => base.clone(),
    };
    let rtp_media: Vec<&sdp_types::Media> = session
        .medias
        .iter()
        .filter(|m| m.proto.to_ascii_uppercase().starts_with("RTP/"))
        .collect();
    if rtp_media.is_empty() {
        return Err(SdpError::NoMedia);
    }
    let session_toffset = extmap_id(&session.attributes, TOFFSET_URI);
    let mut tracks = Vec::with_capacity(rtp_media.len());
    for (index, media) in rtp_media.iter().enumerate() {
        let control = match media.get_first_attribute_value("control") {
            Some(Some(c)) => c.trim().to_string(),
            _ if rtp_media.len() == 1 => String::new(),
            _ => return Err(SdpError::NoControl(index)),
        };
        // Media controls are relative to the base URL (RFC 2326 §C.1.1).
        let url = resolve_control(base, &control)?;
        let payload_type = media
            .fmt
            .split_ascii_whitespace()
            .next()
            .and_then(|f| f.parse::<u8>().ok())
            .unwrap_or(96);
        let (encoding, rtpmap_rate) = rtpmap(media, payload_type);
        let clock_rate = rtpmap_rate
            .or_else(|| static_clock_rate(payload_type))
            .unwrap_or(if media.media == "audio" { 8000 } else { 90_000 });
        tracks.push(TrackInfo {
            media: media.media.clone(),
            kind: MediaKind::from_sdp(&media.media),
            control,
            url,
            payload_type,
            encoding,
            clock_rate,
            toffset_id: extmap_id(&media.attributes, TOFFSET_URI).or(session_toffset),
        });
    }
    Ok(Presentation { tracks, aggregate })
}

/// The local identifier of extension `uri` among `attributes`:
/// `a=extmap:<value>["/"<direction>] <URI> [<extensionattributes>]`
/// (RFC 8285 §5). Identifiers outside 1–255 (the one- and two-byte header
/// forms, §4.2 and §4.3) are not usable in packets and are ignored.
fn extmap_id(attributes: &[sdp_types::Attribute], uri: &str) -> Option<u8> {
    attributes
        .iter()
        .filter(|a| a.attribute.eq_ignore_ascii_case("extmap"))
        .filter_map(|a| a.value.as_deref())
        .find_map(|value| {
            let mut parts = value.split_ascii_whitespace();
            let id = parts.next()?.split('/').next()?;
            if !parts.next()?.eq_ignore_ascii_case(uri) {
                return None;
            }
            id.parse::<u8>().ok().filter(|id| *id > 0)
        })
}

/// The encoding name and clock rate of `a=rtpmap:<pt> <name>/<rate>[/<ch>]`.
fn rtpmap(media: &sdp_types::Media, payload_type: u8) -> (Option<String>, Option<u32>) {
    for attr in media
        .attributes
        .iter()
        .filter(|a| a.attribute.eq_ignore_ascii_case("rtpmap"))
    {
        let Some(value) = attr.value.as_deref() else {
            continue;
        };
        let mut parts = value.trim().splitn(2, char::is_whitespace);
        let pt = parts.next().and_then(|p| p.parse::<u8>().ok());
        if pt != Some(payload_type) {
            continue;
        }
        let mut enc = parts.next().unwrap_or("").trim().split('/');
        let name = enc.next().filter(|n| !n.is_empty()).map(str::to_string);
        let rate = enc
            .next()
            .and_then(|r| r.trim().parse::<u32>().ok())
            .filter(|r| *r > 0);
        return (name, rate);
    }
    (None, None)
}

/// Clock rates of the static payload types (RFC 3551 §6, tables 4 and 5).
fn static_clock_rate(payload_type: u8) -> Option<u32> {
    match payload_type {
        0..=5 | 7..=9 | 12 | 13 | 15 | 18 => Some(8000),
        6 => Some(16_000),
        10 | 11 => Some(44_100),
        16 => Some(11_025),
        17 => Some(22_050),
        14 | 25 | 26 | 28 | 31..=34 => Some(90_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    const DSS: &str = "v=0\r\no=StreamingServer 3331435948 1116644250000 IN IP4 10.0.0.2\r\n\
s=sample_h264_300kbit.mp4\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n\
a=range:npt=0- 70.00000\r\nm=video 0 RTP/AVP 96\r\nb=AS:221\r\na=rtpmap:96 H264/90000\r\n\
a=control:trackID=3\r\na=fmtp:96 packetization-mode=1\r\nm=audio 0 RTP/AVP 97\r\n\
b=AS:64\r\na=rtpmap:97 mpeg4-generic/44100/2\r\na=control:trackID=4\r\n";

    #[test]
    fn dss_style() {
        let p = parse_presentation(DSS.as_bytes(), &url("rtsp://127.0.0.1:554/s.mp4/")).unwrap();
        assert_eq!(p.aggregate.as_str(), "rtsp://127.0.0.1:554/s.mp4/");
        assert_eq!(p.tracks.len(), 2);
        assert_eq!(
            p.tracks[0].url.as_str(),
            "rtsp://127.0.0.1:554/s.mp4/trackID=3"
        );
        assert_eq!(p.tracks[0].clock_rate, 90_000);
        assert_eq!(p.tracks[0].encoding.as_deref(), Some("H264"));
        assert_eq!(p.tracks[1].clock_rate, 44_100);
        assert_eq!(p.tracks[1].payload_type, 97);
    }

    #[test]
    fn ffmpeg_style_without_session_control() {
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nt=0 0\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:streamid=0\r\n\
m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=control:streamid=1\r\n";
        let p = parse_presentation(sdp.as_bytes(), &url("rtsp://h:8554/live")).unwrap();
        assert_eq!(p.aggregate.as_str(), "rtsp://h:8554/live");
        assert_eq!(p.tracks[1].url.as_str(), "rtsp://h:8554/live/streamid=1");
        assert_eq!(p.tracks[1].clock_rate, 48_000);
    }

    #[test]
    fn static_payload_type_and_single_media_without_control() {
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n";
        let p = parse_presentation(sdp.as_bytes(), &url("rtsp://h/a")).unwrap();
        assert_eq!(p.tracks[0].clock_rate, 8000);
        assert_eq!(p.tracks[0].url.as_str(), "rtsp://h/a");
    }

    #[test]
    fn extmap_toffset_per_media_and_session() {
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n\
m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=1\r\n\
a=extmap:3 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:5/sendonly urn:ietf:params:rtp-hdrext:toffset\r\n\
m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/44100/2\r\na=control:trackID=2\r\n\
m=application 0 RTP/AVP 98\r\na=control:trackID=3\r\n\
a=extmap:0 urn:ietf:params:rtp-hdrext:toffset\r\n";
        let p = parse_presentation(sdp.as_bytes(), &url("rtsp://h/a/")).unwrap();
        assert_eq!(p.tracks[0].toffset_id, Some(5));
        assert_eq!(p.tracks[0].kind, MediaKind::Video);
        assert_eq!(p.tracks[1].toffset_id, None);
        assert_eq!(p.tracks[1].kind, MediaKind::Audio);
        // Id 0 is not a valid identifier.
        assert_eq!(p.tracks[2].toffset_id, None);
        assert_eq!(p.tracks[2].kind, MediaKind::Other);

        // Session level applies to every media; media level wins; ids above
        // 255 cannot appear in packets.
        let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n\
a=extmap:200 URN:IETF:PARAMS:RTP-HDREXT:TOFFSET\r\n\
m=video 0 RTP/AVP 96\r\na=control:trackID=1\r\na=extmap:4096 urn:ietf:params:rtp-hdrext:toffset\r\n\
m=audio 0 RTP/AVP 0\r\na=control:trackID=2\r\na=extmap:7 urn:ietf:params:rtp-hdrext:toffset\r\n";
        let p = parse_presentation(sdp.as_bytes(), &url("rtsp://h/a/")).unwrap();
        assert_eq!(p.tracks[0].toffset_id, Some(200));
        assert_eq!(p.tracks[1].toffset_id, Some(7));
        // No extmap at all.
        let p = parse_presentation(DSS.as_bytes(), &url("rtsp://h/a/")).unwrap();
        assert!(p.tracks.iter().all(|t| t.toffset_id.is_none()));
    }

    #[test]
    fn errors() {
        let base = url("rtsp://h/a");
        assert!(matches!(
            parse_presentation(b"garbage", &base),
            Err(SdpError::Parse(_))
        ));
        let no_media = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n";
        assert!(matches!(
            parse_presentation(no_media.as_bytes(), &base),
            Err(SdpError::NoMedia)
        ));
        let two = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=video 0 RTP/AVP 26\r\n";
        assert!(matches!(
            parse_presentation(two.as_bytes(), &base),
            Err(SdpError::NoControl(0))
        ));
    }
}
