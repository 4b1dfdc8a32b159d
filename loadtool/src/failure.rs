//! Why a client failed, as counted in the report's `failures` map.

use std::io;

/// Failure cause of one client. [`Cause::key`] is its name in the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// The server refused the TCP connection (ECONNREFUSED).
    Refused,
    /// A connect or a request got no answer within `--timeout`.
    Timeout,
    /// A request was answered with this non-2xx RTSP status.
    RtspStatus(u16),
    /// A reply (RTSP, SDP, Transport, interleaved framing) does not parse or
    /// lacks what RFC 2326 requires.
    Malformed,
    /// The server closed the RTSP connection while the session needed it
    /// (during setup, or during play over TCP).
    Closed,
    /// Another socket error (reset, unreachable, …).
    Io,
    /// A set-up stream received no RTP packet during at least 3 s of play.
    NoData,
    /// The server gave a stream an SSRC (or source port) already used by
    /// another stream on the same shared UDP port pair.
    SsrcCollision,
}

impl Cause {
    /// Name in the report: `refused`, `timeout`, `rtsp_<code>`, `malformed`,
    /// `closed`, `io`, `no_data`, `ssrc_collision`.
    pub fn key(&self) -> String {
        match self {
            Cause::Refused => "refused".into(),
            Cause::Timeout => "timeout".into(),
            Cause::RtspStatus(code) => format!("rtsp_{code}"),
            Cause::Malformed => "malformed".into(),
            Cause::Closed => "closed".into(),
            Cause::Io => "io".into(),
            Cause::NoData => "no_data".into(),
            Cause::SsrcCollision => "ssrc_collision".into(),
        }
    }

    /// The cause of a failed connect or socket operation.
    pub fn from_io(e: &io::Error) -> Cause {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Cause::Refused,
            io::ErrorKind::TimedOut => Cause::Timeout,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Cause::Closed,
            _ => Cause::Io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(Cause::RtspStatus(454).key(), "rtsp_454");
        assert_eq!(
            Cause::from_io(&io::Error::from(io::ErrorKind::ConnectionRefused)),
            Cause::Refused
        );
        assert_eq!(
            Cause::from_io(&io::Error::from(io::ErrorKind::ConnectionReset)),
            Cause::Closed
        );
        assert_eq!(
            Cause::from_io(&io::Error::from(io::ErrorKind::PermissionDenied)),
            Cause::Io
        );
    }
}
