//! SDP text for hint tracks (RFC 4566): the media-level block of one track,
//! as stored in the hint track's udta/hnti/'sdp ' box, and the session-level
//! lines stored in moov/udta/hnti/'rtp '.

use std::fmt::Write as _;

use base64::Engine as _;

/// The codec-specific part of a track's SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSdp {
    /// Media kind of the `m=` line: `video` or `audio`.
    pub media: &'static str,
    /// RTP payload type (96..=127, dynamic).
    pub payload_type: u8,
    /// `a=rtpmap` value after the payload type: `H264/90000`,
    /// `mpeg4-generic/44100/2`, ...
    pub rtpmap: String,
    /// `a=fmtp` value after the payload type, if any.
    pub fmtp: Option<String>,
    /// Extra attribute lines without the `a=` prefix (for example
    /// `framesize:96 426-240`).
    pub attributes: Vec<String>,
}

impl MediaSdp {
    /// The media-level SDP block with CRLF line ends:
    /// `m=<media> 0 RTP/AVP <pt>`, `b=AS:<kbit/s>` (when known),
    /// `a=rtpmap`, `a=fmtp`, extra attributes and `a=control:trackID=<id>`.
    /// `bitrate_kbps` is the track's mean payload bitrate in kbit/s, rounded up.
    pub fn to_track_sdp(&self, bitrate_kbps: u32, control_track_id: u32) -> String {
        let pt = self.payload_type;
        let mut s = format!("m={} 0 RTP/AVP {pt}\r\n", self.media);
        if bitrate_kbps > 0 {
            let _ = write!(s, "b=AS:{bitrate_kbps}\r\n");
        }
        let _ = write!(s, "a=rtpmap:{pt} {}\r\n", self.rtpmap);
        if let Some(fmtp) = &self.fmtp {
            let _ = write!(s, "a=fmtp:{pt} {fmtp}\r\n");
        }
        for a in &self.attributes {
            let _ = write!(s, "a={a}\r\n");
        }
        let _ = write!(s, "a=control:trackID={control_track_id}\r\n");
        s
    }
}

/// Session-level SDP lines for moov/udta/hnti/'rtp ': `b=AS:<sum of the
/// tracks' kbit/s>` and `a=range:npt=0-<seconds>` (RFC 2326 §C.1.5), CRLF ends.
pub fn session_sdp(total_kbps: u32, duration_us: u64) -> String {
    let mut s = String::new();
    if total_kbps > 0 {
        let _ = write!(s, "b=AS:{total_kbps}\r\n");
    }
    let _ = write!(
        s,
        "a=range:npt=0-{}.{:03}\r\n",
        duration_us / 1_000_000,
        duration_us % 1_000_000 / 1000
    );
    s
}

/// Standard base64 with padding (RFC 4648 §4), as sprop-parameter-sets uses.
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Lower-case hexadecimal (for `config=` and `profile-level-id=`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_sdp_layout() {
        let m = MediaSdp {
            media: "video",
            payload_type: 96,
            rtpmap: "H264/90000".into(),
            fmtp: Some("packetization-mode=1".into()),
            attributes: vec![],
        };
        assert_eq!(
            m.to_track_sdp(236, 3),
            "m=video 0 RTP/AVP 96\r\nb=AS:236\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=3\r\n"
        );
        assert_eq!(
            session_sdp(300, 60_040_000),
            "b=AS:300\r\na=range:npt=0-60.040\r\n"
        );
        assert_eq!(base64(&[0x67, 0x4d]), "Z00=");
        assert_eq!(hex(&[0x4d, 0x40, 0x15]), "4d4015");
    }
}
