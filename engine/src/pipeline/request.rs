//! What the stages of the pipeline see of a request: [`RequestInfo`] (the
//! request and its context), the [`Route`] it maps to, and the [`Identity`]
//! the authenticator gave it.

use std::net::SocketAddr;

use rtsp_types::headers::{CSEQ, SESSION, USER_AGENT};
use rtsp_types::{HeaderName, Method, Request};

use crate::session::{Session, SessionId};

/// One request and its context, as every stage sees it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The parsed request (RFC 2326 §6).
    pub request: &'a Request<Vec<u8>>,
    /// Index of the shard running the stage.
    pub shard: usize,
    /// The client's address (after PROXY protocol, when used).
    pub peer: SocketAddr,
    /// Our address on the connection.
    pub local: SocketAddr,
    /// Shard clock, µs (monotonic; only differences mean something).
    pub now_us: u64,
    /// Wall clock, µs since the Unix epoch (for expiry times and nonces).
    pub unix_us: u64,
    /// The session the request names in its `Session` header, when it is
    /// one of this shard's.
    pub session: Option<&'a Session>,
    /// Load of the shard, for admission decisions.
    pub load: ShardLoad,
}

impl RequestInfo<'_> {
    /// The request method.
    pub fn method(&self) -> &Method {
        self.request.method()
    }

    /// The value of header `name`, trimmed, when present.
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.request.header(name).map(|v| v.as_str().trim())
    }

    /// The `CSeq` value, when present.
    pub fn cseq(&self) -> Option<&str> {
        self.header(&CSEQ)
    }

    /// The `User-Agent` value, when present.
    pub fn user_agent(&self) -> Option<&str> {
        self.header(&USER_AGENT)
    }

    /// The session ID of the `Session` header, when present and well formed.
    pub fn session_id(&self) -> Option<SessionId> {
        session_id(self.request)
    }

    /// True for a SETUP that would create a new session (no `Session`
    /// header): what admission control and session caps look at.
    pub fn creates_session(&self) -> bool {
        *self.request.method() == Method::Setup && self.request.header(&SESSION).is_none()
    }

    /// The request URL as the client sent it (`*` or empty when it has none).
    pub fn url(&self) -> &str {
        self.request
            .request_uri()
            .map(|u| u.as_str())
            .unwrap_or("*")
    }
}

/// The session ID in `request`'s `Session` header (`id[;timeout=N]`), when
/// present and made of 16 hex digits.
pub fn session_id(request: &Request<Vec<u8>>) -> Option<SessionId> {
    let v = request.header(&SESSION)?;
    SessionId::parse(v.as_str().split(';').next().unwrap_or("").trim())
}

/// How loaded the shard is when a request arrives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardLoad {
    /// Sessions on this shard.
    pub sessions: usize,
    /// True while the shard is behind its schedule (packets more than the
    /// overload threshold late, or send slots exhausted, in the last
    /// housekeeping window): new sessions should be refused.
    pub behind: bool,
}

/// Where a request goes: the catalog path and track it names, and its query.
/// The built-in router fills it from the URL; route-stage extensions may
/// rewrite it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    /// Catalog path: percent-decoded, '/'-separated, no leading or trailing
    /// '/'; empty for `*` and for track-only URLs.
    pub path: String,
    /// Track ID from a `trackID=N` (or `streamid=N`) segment.
    pub track_id: Option<u32>,
    /// The URL's query without the `?` (and without any track segment a
    /// client appended after it); empty when none.
    pub query: String,
}

impl Route {
    /// The query's `key=value` pairs, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// Who the client is, as the authenticator established it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Identity {
    /// No credentials (or no authenticator).
    #[default]
    Anonymous,
    /// Verified credentials.
    User {
        /// User name.
        name: String,
        /// Realm the credentials were checked in.
        realm: String,
    },
    /// Credentials were given but do not verify. `reason` is for the log
    /// and never holds a password, hash or secret.
    Failed {
        /// Why (unknown user, wrong password, stale nonce…).
        reason: String,
        /// The credentials were right but the Digest nonce is too old: the
        /// challenge carries `stale=true` (RFC 7616 §3.3).
        stale: bool,
    },
}

impl Identity {
    /// The verified user name, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Identity::User { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The realm of a verified user, if any.
    pub fn realm(&self) -> Option<&str> {
        match self {
            Identity::User { realm, .. } => Some(realm),
            _ => None,
        }
    }
}
