//! The inputs and outputs of [`super::AccessRules::decide`].

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use super::authorization::AuthorizationError;
use super::config::AuthScheme;
use super::signed_url::SignedUrlError;
use super::subnet::SubnetDenied;

/// The facts of one RTSP request that access control needs. All borrowed;
/// building one allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Catalog path: percent-decoded, `/`-separated, no leading `/`, no
    /// `trackID=N` segment (`crate::rtsp::url::parse_target`), no query.
    pub path: &'a str,
    /// The method as sent (`DESCRIBE`, `SETUP`, …): part of Digest's HA2.
    pub method: &'a str,
    /// The Request-URI exactly as in the request line (Digest `uri` check).
    pub uri: &'a str,
    /// The `Authorization` header value, if any.
    pub authorization: Option<&'a str>,
    /// The client address (v4-mapped IPv6 is taken as IPv4).
    pub peer: IpAddr,
    /// Percent-decoded query parameters of the Request-URI
    /// ([`super::signed_url::split_query`]).
    pub query: &'a [(String, String)],
    /// The request time, unix seconds.
    pub now_unix_s: u64,
}

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve the request.
    Allow(Grant),
    /// 401 Unauthorized with one `WWW-Authenticate` header per entry.
    Challenge {
        /// `WWW-Authenticate` values.
        www_authenticate: Vec<String>,
        /// Why, for the log line.
        reason: Refusal,
    },
    /// 403 Forbidden.
    Forbidden {
        /// Why, for the log line.
        reason: Refusal,
    },
    /// 404 Not Found: the path names an access, users, groups or key file.
    NotFound {
        /// Why, for the log line.
        reason: Refusal,
    },
}

impl Decision {
    /// The RTSP status code: 200 (go on), 401, 403 or 404.
    pub fn status(&self) -> u16 {
        match self {
            Decision::Allow(_) => 200,
            Decision::Challenge { .. } => 401,
            Decision::Forbidden { .. } => 403,
            Decision::NotFound { .. } => 404,
        }
    }

    /// The refusal, `None` for [`Decision::Allow`].
    pub fn reason(&self) -> Option<&Refusal> {
        match self {
            Decision::Allow(_) => None,
            Decision::Challenge { reason, .. }
            | Decision::Forbidden { reason }
            | Decision::NotFound { reason } => Some(reason),
        }
    }
}

/// Who was let in, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The authenticated user (DSS access log `c-username`).
    pub user: Option<String>,
    /// The realm of the challenge that applied (`sc(Realm)`).
    pub realm: Option<String>,
    /// What granted access.
    pub via: GrantedBy,
}

/// What granted access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantedBy {
    /// No access file applies and `require_auth_by_default` is off.
    NoAccessFile,
    /// The access file says `require any-user`.
    AnyUser,
    /// The user's credentials and a `require` line.
    Credentials,
    /// A valid signed URL, valid until `expires_at` (unix seconds).
    SignedUrl {
        /// `exp`.
        expires_at: u64,
    },
}

/// Why a request is refused. `Display` gives the log line's reason: it names
/// users, files and addresses, never a password, hash, nonce key, digest
/// response or signature. User names are shown escaped (`{:?}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The path names an access, users, groups or key file.
    ProtectedFile,
    /// The path has an empty, `.` or `..` segment.
    BadPath,
    /// A client-subnet rule refuses the client.
    Subnet(SubnetDenied),
    /// The signed URL is missing (required), malformed, forged, expired or
    /// for another subnet.
    SignedUrl(SignedUrlError),
    /// The access file that applies did not load; the folder is closed.
    BrokenAccessFile {
        /// The access file (or the folder that could not be read).
        file: PathBuf,
        /// What is wrong, with its line.
        error: String,
    },
    /// The users file the access file needs did not load.
    UnusableUsersFile {
        /// The users file.
        file: PathBuf,
        /// What is wrong.
        error: String,
    },
    /// The groups file a `require group` needs did not load.
    UnusableGroupsFile {
        /// The groups file.
        file: PathBuf,
        /// What is wrong.
        error: String,
    },
    /// The access file has no `require` line for READ: nobody may read.
    NoRequirement {
        /// The access file.
        file: PathBuf,
    },
    /// No `Authorization` header.
    NoCredentials,
    /// The `Authorization` header does not parse.
    BadAuthorization(AuthorizationError),
    /// The client used the other scheme.
    WrongScheme {
        /// The scheme the access file requires.
        required: AuthScheme,
    },
    /// The user is not in the users file.
    UnknownUser {
        /// User name as sent.
        user: String,
    },
    /// Basic: the password does not match.
    WrongPassword {
        /// User name.
        user: String,
    },
    /// Digest: `realm` is not the users file's realm.
    WrongRealm {
        /// User name.
        user: String,
    },
    /// Digest: `algorithm` other than MD5.
    UnsupportedAlgorithm {
        /// User name.
        user: String,
    },
    /// Digest: `qop` other than `auth`.
    UnsupportedQop {
        /// User name.
        user: String,
    },
    /// Digest: `uri` does not name the Request-URI.
    UriMismatch {
        /// User name.
        user: String,
    },
    /// Digest: a nonce we did not mint for this realm.
    BadNonce {
        /// User name.
        user: String,
    },
    /// Digest: the response does not match (wrong password).
    WrongResponse {
        /// User name.
        user: String,
    },
    /// Digest: right response, but the nonce is older than the lifetime
    /// (the challenge says `stale=true`).
    StaleNonce {
        /// User name.
        user: String,
    },
    /// Authenticated, but no `require` line names the user or a group of
    /// theirs.
    NotPermitted {
        /// User name.
        user: String,
        /// The access file, or `None` for `require_auth_by_default`.
        file: Option<PathBuf>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::ProtectedFile => {
                f.write_str("access, users, groups and key files are never served")
            }
            Refusal::BadPath => f.write_str("path has an empty, '.' or '..' segment"),
            Refusal::Subnet(d) => {
                let rule = if d.prefix.is_empty() { "/" } else { &d.prefix };
                match d.denied_by {
                    Some(net) => write!(
                        f,
                        "client {} denied by {net} in the subnet rule for {rule:?}",
                        d.client
                    ),
                    None => write!(
                        f,
                        "client {} not in the allow list of the subnet rule for {rule:?}",
                        d.client
                    ),
                }
            }
            Refusal::SignedUrl(e) => write!(f, "{e}"),
            Refusal::BrokenAccessFile { file, error } => {
                write!(
                    f,
                    "access file {} is broken ({error}); refusing everything below it",
                    file.display()
                )
            }
            Refusal::UnusableUsersFile { file, error } => {
                write!(f, "users file {} is unusable: {error}", file.display())
            }
            Refusal::UnusableGroupsFile { file, error } => {
                write!(f, "groups file {} is unusable: {error}", file.display())
            }
            Refusal::NoRequirement { file } => {
                write!(
                    f,
                    "access file {} has no require line for READ",
                    file.display()
                )
            }
            Refusal::NoCredentials => f.write_str("no credentials"),
            Refusal::BadAuthorization(e) => write!(f, "bad Authorization header: {e}"),
            Refusal::WrongScheme { required } => {
                write!(f, "client used the wrong scheme; {required:?} is required")
            }
            Refusal::UnknownUser { user } => write!(f, "unknown user {user:?}"),
            Refusal::WrongPassword { user } => write!(f, "wrong password for user {user:?}"),
            Refusal::WrongRealm { user } => write!(f, "user {user:?} answered for another realm"),
            Refusal::UnsupportedAlgorithm { user } => {
                write!(f, "user {user:?}: Digest algorithm other than MD5")
            }
            Refusal::UnsupportedQop { user } => {
                write!(f, "user {user:?}: Digest qop other than auth")
            }
            Refusal::UriMismatch { user } => {
                write!(f, "user {user:?}: Digest uri does not name the request URI")
            }
            Refusal::BadNonce { user } => {
                write!(f, "user {user:?}: nonce not issued by this server")
            }
            Refusal::WrongResponse { user } => {
                write!(f, "wrong Digest response (password) for user {user:?}")
            }
            Refusal::StaleNonce { user } => write!(f, "user {user:?}: stale nonce"),
            Refusal::NotPermitted { user, file } => match file {
                Some(file) => write!(f, "user {user:?} is not permitted by {}", file.display()),
                None => write!(
                    f,
                    "user {user:?} is not permitted (require_auth_by_default)"
                ),
            },
        }
    }
}
