//! The DESCRIBE reply's session description (RFC 4566, RFC 2326 Appendix C),
//! built from the file's hint-track SDP ('hnti' boxes) with `sdp-types`.
//!
//! Apple files carry session-level lines in moov/udta/hnti/'rtp ' and
//! `a=control:trackID=N` per track; ffmpeg files carry only track-level SDP with
//! `a=control:streamid=N`. Both become one description with `a=control:*`,
//! `a=range:npt=0-<duration>` and per-track controls normalised to
//! `trackID=<hint track ID>`, which is what SETUP URLs then name.
//!
//! The session level also says what PLAY can do with the file, in
//! `a=x-media-properties:` ([`MEDIA_PROPERTIES_ATTRIBUTE`]). RTSP 1.0 and
//! SDP have no standard way to announce trick play; this attribute carries
//! RTSP 2.0's `Media-Properties` value (RFC 7826 §18.29) as it is, under an
//! `x-` name as for the other unregistered attributes servers send (QuickTime
//! and DSS `a=x-qt-…`, `a=x-copyright`): for example
//! `Random-Access, Immutable, Unlimited, Scales="-8:-1, 1:8"`.

use std::net::IpAddr;

use cadence_hinting::FileSchedule;
use sdp_types::{Attribute, Bandwidth, Session};

/// Why a description could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SdpError {
    /// The SDP text stored in the file does not parse (RFC 4566 §5).
    #[error("hint-track SDP of {path} does not parse: {reason}")]
    Parse {
        /// Catalog path of the file.
        path: String,
        /// Parser message.
        reason: String,
    },
}

/// Lines of stored SDP text, with CR/LF removed and blank lines dropped.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r').trim_end_matches('\0'))
        .filter(|l| l.len() >= 2 && l.as_bytes()[1] == b'=')
}

/// The session-level SDP attribute that carries the file's media properties.
pub const MEDIA_PROPERTIES_ATTRIBUTE: &str = "x-media-properties";

/// Formats a duration in µs as npt seconds with millisecond precision.
pub fn npt_seconds(us: u64) -> String {
    format!("{}.{:03}", us / 1_000_000, (us % 1_000_000) / 1000)
}

/// Builds the SDP for `file`, served as `path`, with `server_ip` in the origin
/// line and, when given, `media_properties` (an RFC 7826 §18.29 value) in
/// `a=x-media-properties:`. Errors when the file's stored SDP does not parse.
/// Tracks flagged in `toffset` announce the RFC 5450 transmission time
/// offset header extension (`a=extmap:1 urn:ietf:params:rtp-hdrext:toffset`,
/// RFC 8285 §5).
pub fn describe(
    file: &FileSchedule,
    path: &str,
    server_ip: IpAddr,
    media_properties: Option<&str>,
    toffset: &[bool],
) -> Result<String, SdpError> {
    let family = if server_ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut text = format!(
        "v=0\r\no=- 0 0 IN {family} {server_ip}\r\ns={}\r\nc=IN {family} {}\r\nt=0 0\r\n",
        if path.is_empty() { "cadence" } else { path },
        if server_ip.is_ipv4() { "0.0.0.0" } else { "::" },
    );
    for track in &file.tracks {
        for line in lines(&track.sdp) {
            text.push_str(line);
            text.push_str("\r\n");
        }
    }
    let mut session = Session::parse(text.as_bytes()).map_err(|e| SdpError::Parse {
        path: path.to_string(),
        reason: e.to_string(),
    })?;
    if let Some(session_sdp) = &file.session_sdp {
        for line in lines(session_sdp) {
            let (kind, value) = line.split_at(2);
            match kind {
                "b=" => {
                    if let Some((bwtype, bw)) = value.split_once(':') {
                        if let Ok(bw) = bw.trim().parse::<u64>() {
                            session.bandwidths.push(Bandwidth {
                                bwtype: bwtype.to_string(),
                                bandwidth: bw,
                            });
                        }
                    }
                }
                "a=" => {
                    let attr = match value.split_once(':') {
                        Some((name, v)) => Attribute::with_value(name, v),
                        None => Attribute::new(value),
                    };
                    if !["control", "range", MEDIA_PROPERTIES_ATTRIBUTE]
                        .contains(&attr.attribute.as_str())
                    {
                        session.attributes.push(attr);
                    }
                }
                _ => {}
            }
        }
    }
    session
        .attributes
        .push(Attribute::with_value("control", "*"));
    session.attributes.push(Attribute::with_value(
        "range",
        format!("npt=0-{}", npt_seconds(file.duration_us)),
    ));
    if let Some(properties) = media_properties {
        session.attributes.push(Attribute::with_value(
            MEDIA_PROPERTIES_ATTRIBUTE,
            properties,
        ));
    }
    if session.medias.len() != file.tracks.len() {
        return Err(SdpError::Parse {
            path: path.to_string(),
            reason: format!(
                "{} hint tracks but {} m= sections",
                file.tracks.len(),
                session.medias.len()
            ),
        });
    }
    for (i, (media, track)) in session.medias.iter_mut().zip(&file.tracks).enumerate() {
        media.attributes.retain(|a| a.attribute != "control");
        if toffset.get(i).copied().unwrap_or(false) {
            media.attributes.retain(|a| a.attribute != "extmap");
            media.attributes.push(Attribute::with_value(
                "extmap",
                format!(
                    "{} {}",
                    crate::pacer::header::TOFFSET_ID,
                    crate::pacer::header::TOFFSET_URI
                ),
            ));
        }
        media.attributes.push(Attribute::with_value(
            "control",
            format!("trackID={}", track.track_id),
        ));
    }
    let mut out = Vec::with_capacity(text.len() + 128);
    // Writing into a Vec cannot fail.
    let _ = session.write(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// True when `track`'s packets leave in another order than they are
/// presented (B-frames: a sample presented before one sent earlier), so
/// receivers need the RFC 5450 transmission time offset to measure lateness
/// and jitter.
pub fn needs_toffset(track: &cadence_hinting::TrackSchedule) -> bool {
    let mut latest: Option<i32> = None;
    for p in track.packets.iter().filter(|p| p.flags.sample_start()) {
        let t = p.rtp_time.wrapping_sub(track.rtp_origin) as i32;
        if latest.is_some_and(|l| t < l) {
            return true;
        }
        latest = Some(latest.map_or(t, |l| l.max(t)));
    }
    false
}
