//! Fixed label sets of the metrics: every label value comes from one of these
//! small enums or tables, never from a per-session value, so the number of
//! series is bounded at compile time.

use serde::{Deserialize, Serialize};

use crate::session::SessionState;

/// How a session's RTP reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RTP/AVP over UDP (RFC 2326 §12.39).
    Udp,
    /// RTP/AVP/TCP interleaved on the RTSP connection (RFC 2326 §10.12).
    Tcp,
}

impl Transport {
    /// Every transport, in index order.
    pub const ALL: [Transport; 2] = [Transport::Udp, Transport::Tcp];

    /// Table index, `0..ALL.len()`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Prometheus label value: `udp` or `tcp`.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }

    /// The access log's `transport` field (DSS writes `UDP` or `TCP`).
    pub fn w3c(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Every session state, in index order (RFC 2326 Appendix A.2; "Init" has
/// no session yet, so it is not counted).
pub const SESSION_STATES: [SessionState; 2] = [SessionState::Ready, SessionState::Playing];

/// Table index of a session state, `0..SESSION_STATES.len()`.
pub fn state_index(s: SessionState) -> usize {
    match s {
        SessionState::Ready => 0,
        SessionState::Playing => 1,
    }
}

/// Label value of a session state: `ready` or `playing` (also the admin
/// API's `state` strings).
pub fn state_label(s: SessionState) -> &'static str {
    match s {
        SessionState::Ready => "ready",
        SessionState::Playing => "playing",
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The client sent TEARDOWN.
    Teardown,
    /// No RTSP request and no RTCP report within the session timeout.
    Timeout,
    /// The client closed the RTSP connection (or it failed).
    Disconnect,
    /// An operator ended it (admin API `DELETE /api/v1/sessions/{id}`).
    AdminKill,
    /// The server is stopping (SIGINT/SIGTERM).
    ServerStop,
    /// The stream reached its end and the session was closed by the server.
    EndOfStream,
    /// A TCP-interleaved client stopped reading and its backlog passed
    /// `--tcp-backlog`.
    SlowClient,
    /// The file could not be streamed (corrupt sample, I/O error).
    StreamError,
    /// The file changed or disappeared while it was served.
    FileChanged,
}

impl EndReason {
    /// Every reason, in index order.
    pub const ALL: [EndReason; 9] = [
        EndReason::Teardown,
        EndReason::Timeout,
        EndReason::Disconnect,
        EndReason::AdminKill,
        EndReason::ServerStop,
        EndReason::EndOfStream,
        EndReason::SlowClient,
        EndReason::StreamError,
        EndReason::FileChanged,
    ];

    /// Table index, `0..ALL.len()`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Prometheus label value (snake case, as in the JSON form).
    pub fn label(self) -> &'static str {
        match self {
            EndReason::Teardown => "teardown",
            EndReason::Timeout => "timeout",
            EndReason::Disconnect => "disconnect",
            EndReason::AdminKill => "admin_kill",
            EndReason::ServerStop => "server_stop",
            EndReason::EndOfStream => "end_of_stream",
            EndReason::SlowClient => "slow_client",
            EndReason::StreamError => "stream_error",
            EndReason::FileChanged => "file_changed",
        }
    }
}

/// RTSP methods counted separately (RFC 2326 §10); everything else is
/// [`RtspMethod::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtspMethod {
    /// OPTIONS.
    Options,
    /// DESCRIBE.
    Describe,
    /// SETUP.
    Setup,
    /// PLAY.
    Play,
    /// PAUSE.
    Pause,
    /// TEARDOWN.
    Teardown,
    /// GET_PARAMETER.
    GetParameter,
    /// SET_PARAMETER.
    SetParameter,
    /// ANNOUNCE.
    Announce,
    /// RECORD.
    Record,
    /// REDIRECT.
    Redirect,
    /// Any other method, including extensions.
    Other,
}

impl RtspMethod {
    /// Every method, in index order.
    pub const ALL: [RtspMethod; 12] = [
        RtspMethod::Options,
        RtspMethod::Describe,
        RtspMethod::Setup,
        RtspMethod::Play,
        RtspMethod::Pause,
        RtspMethod::Teardown,
        RtspMethod::GetParameter,
        RtspMethod::SetParameter,
        RtspMethod::Announce,
        RtspMethod::Record,
        RtspMethod::Redirect,
        RtspMethod::Other,
    ];

    /// Table index, `0..ALL.len()`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Maps a parsed request method.
    pub fn from_rtsp(m: &rtsp_types::Method) -> RtspMethod {
        use rtsp_types::Method as M;
        match m {
            M::Options => RtspMethod::Options,
            M::Describe => RtspMethod::Describe,
            M::Setup => RtspMethod::Setup,
            M::Play => RtspMethod::Play,
            M::Pause => RtspMethod::Pause,
            M::Teardown => RtspMethod::Teardown,
            M::GetParameter => RtspMethod::GetParameter,
            M::SetParameter => RtspMethod::SetParameter,
            M::Announce => RtspMethod::Announce,
            M::Record => RtspMethod::Record,
            M::Redirect => RtspMethod::Redirect,
            _ => RtspMethod::Other,
        }
    }

    /// Prometheus label value: the method name as on the wire, or `other`.
    pub fn label(self) -> &'static str {
        match self {
            RtspMethod::Options => "OPTIONS",
            RtspMethod::Describe => "DESCRIBE",
            RtspMethod::Setup => "SETUP",
            RtspMethod::Play => "PLAY",
            RtspMethod::Pause => "PAUSE",
            RtspMethod::Teardown => "TEARDOWN",
            RtspMethod::GetParameter => "GET_PARAMETER",
            RtspMethod::SetParameter => "SET_PARAMETER",
            RtspMethod::Announce => "ANNOUNCE",
            RtspMethod::Record => "RECORD",
            RtspMethod::Redirect => "REDIRECT",
            RtspMethod::Other => "other",
        }
    }
}

/// The RTSP status codes counted separately (those Cadence sends, RFC 2326
/// §7.1.1); any other code is counted in the `other` slot.
pub const STATUS_CODES: [u16; 23] = [
    200, 301, 302, 400, 401, 403, 404, 405, 406, 410, 415, 451, 453, 454, 455, 457, 459, 460, 461,
    500, 501, 503, 505,
];

/// Slots of the status table: [`STATUS_CODES`] plus `other`.
pub const STATUS_SLOTS: usize = STATUS_CODES.len() + 1;

/// Table slot of an RTSP status code; codes not in [`STATUS_CODES`] map to
/// the last slot (`other`).
pub fn status_slot(code: u16) -> usize {
    STATUS_CODES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(STATUS_CODES.len())
}

/// Label value of a status slot: the code, or `other`.
pub fn status_label(slot: usize) -> String {
    match STATUS_CODES.get(slot) {
        Some(c) => c.to_string(),
        None => "other".into(),
    }
}

/// Why a request was refused by authentication or authorization. The label
/// is a reason class, never a user name or address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// 401: the request carried no credentials (the challenge).
    NoCredentials,
    /// 401: unknown user or wrong password / digest response.
    BadCredentials,
    /// 401: a Digest nonce that is too old (`stale="true"`).
    StaleNonce,
    /// 401: a malformed `Authorization` header.
    Malformed,
    /// 403: authenticated, but no `require` rule admits the user.
    NotAuthorized,
    /// 403: the client address is not allowed.
    AddressDenied,
    /// 403: a signed URL with a bad or missing signature.
    BadSignature,
    /// 403: a signed URL past its expiry.
    Expired,
}

impl AuthFailure {
    /// Every reason, in index order.
    pub const ALL: [AuthFailure; 8] = [
        AuthFailure::NoCredentials,
        AuthFailure::BadCredentials,
        AuthFailure::StaleNonce,
        AuthFailure::Malformed,
        AuthFailure::NotAuthorized,
        AuthFailure::AddressDenied,
        AuthFailure::BadSignature,
        AuthFailure::Expired,
    ];

    /// Table index, `0..ALL.len()`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The RTSP status sent: 401 or 403.
    pub fn status(self) -> u16 {
        match self {
            AuthFailure::NoCredentials
            | AuthFailure::BadCredentials
            | AuthFailure::StaleNonce
            | AuthFailure::Malformed => 401,
            AuthFailure::NotAuthorized
            | AuthFailure::AddressDenied
            | AuthFailure::BadSignature
            | AuthFailure::Expired => 403,
        }
    }

    /// Prometheus label value of the reason class.
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::NoCredentials => "no_credentials",
            AuthFailure::BadCredentials => "bad_credentials",
            AuthFailure::StaleNonce => "stale_nonce",
            AuthFailure::Malformed => "malformed",
            AuthFailure::NotAuthorized => "not_authorized",
            AuthFailure::AddressDenied => "address_denied",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired => "expired",
        }
    }
}

impl From<crate::pipeline::CloseReason> for EndReason {
    fn from(r: crate::pipeline::CloseReason) -> Self {
        use crate::pipeline::CloseReason as C;
        match r {
            C::Teardown => EndReason::Teardown,
            C::Timeout => EndReason::Timeout,
            C::Disconnect => EndReason::Disconnect,
            C::AdminKill => EndReason::AdminKill,
            C::ServerStop => EndReason::ServerStop,
            C::FileChanged => EndReason::FileChanged,
            C::SlowClient => EndReason::SlowClient,
        }
    }
}

impl Transport {
    /// The transport of a session's first set-up track (UDP when none).
    pub fn of(s: &crate::session::Session) -> Transport {
        match s.tracks().first().map(|t| *t.transport()) {
            Some(crate::session::TrackTransport::Interleaved { .. }) => Transport::Tcp,
            _ => Transport::Udp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_table_positions() {
        for (i, t) in Transport::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
        }
        for (i, r) in EndReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        for (i, m) in RtspMethod::ALL.iter().enumerate() {
            assert_eq!(m.index(), i);
        }
        for (i, a) in AuthFailure::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
        }
        for (i, s) in SESSION_STATES.iter().enumerate() {
            assert_eq!(state_index(*s), i);
        }
    }

    #[test]
    fn status_slots() {
        assert_eq!(status_slot(200), 0);
        assert_eq!(status_label(status_slot(453)), "453");
        assert_eq!(status_slot(299), STATUS_CODES.len());
        assert_eq!(status_label(status_slot(299)), "other");
        assert_eq!(
            RtspMethod::from_rtsp(&rtsp_types::Method::GetParameter),
            RtspMethod::GetParameter
        );
        assert_eq!(
            RtspMethod::from_rtsp(&rtsp_types::Method::Extension("FOO".into())),
            RtspMethod::Other
        );
    }
}
