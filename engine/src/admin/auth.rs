//! Admin authentication: a bearer token (RFC 6750 §2.1) and/or HTTP Basic
//! (RFC 7617), compared in constant time (`subtle`). Secrets never reach a
//! log or a `Debug` impl.

use base64::Engine as _;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The realm in `WWW-Authenticate` challenges.
pub const REALM: &str = "cadence-admin";

/// A secret string: `Debug` prints `<redacted>`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret's bytes, for comparison.
    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which credentials the admin server accepts. With both a token and a
/// user, either one is enough.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminAuth {
    /// `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// `Authorization: Basic base64(user:password)`.
    pub basic: Option<(String, Secret)>,
}

/// Result of checking a request's `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthCheck {
    /// Admitted (or no authentication configured).
    Ok,
    /// No `Authorization` header.
    Missing,
    /// Wrong, malformed or of a scheme not configured.
    Wrong,
}

/// Constant-time equality (the length of `b` may leak, not its content).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

impl AdminAuth {
    /// True when any credential is configured.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.basic.is_some()
    }

    /// Checks the raw `Authorization` header value (RFC 7235 §4.2; the
    /// scheme name is case-insensitive).
    pub fn check(&self, header: Option<&[u8]>) -> AuthCheck {
        if !self.enabled() {
            return AuthCheck::Ok;
        }
        let Some(h) = header else {
            return AuthCheck::Missing;
        };
        let Ok(h) = std::str::from_utf8(h) else {
            return AuthCheck::Wrong;
        };
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(t) = &self.token {
                if ct_eq(rest.as_bytes(), t.bytes()) {
                    return AuthCheck::Ok;
                }
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            if let Some((user, pass)) = &self.basic {
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                    return AuthCheck::Wrong;
                };
                let Some(colon) = raw.iter().position(|&b| b == b':') else {
                    return AuthCheck::Wrong;
                };
                let (u, p) = (&raw[..colon], &raw[colon + 1..]);
                // Both compared, no short circuit.
                let ok = u.ct_eq(user.as_bytes()) & p.ct_eq(pass.bytes());
                if bool::from(ok) {
                    return AuthCheck::Ok;
                }
            }
        }
        AuthCheck::Wrong
    }

    /// The `WWW-Authenticate` challenges of a 401, one per configured
    /// scheme.
    pub fn challenges(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.token.is_some() {
            v.push(format!("Bearer realm=\"{REALM}\""));
        }
        if self.basic.is_some() {
            v.push(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
        .into_bytes()
    }

    #[test]
    fn token_and_basic() {
        let a = AdminAuth {
            token: Some(Secret::new("s3cret")),
            basic: Some(("ops".into(), Secret::new("pa:ss"))),
        };
        assert_eq!(a.check(Some(b"Bearer s3cret")), AuthCheck::Ok);
        assert_eq!(a.check(Some(b"bearer s3cret")), AuthCheck::Ok);
        assert_eq!(a.check(Some(b"Bearer s3cre")), AuthCheck::Wrong);
        assert_eq!(a.check(Some(b"Bearer s3cretX")), AuthCheck::Wrong);
        assert_eq!(a.check(Some(&basic("ops:pa:ss"))), AuthCheck::Ok);
        assert_eq!(a.check(Some(&basic("ops:pass"))), AuthCheck::Wrong);
        assert_eq!(a.check(Some(&basic("opsx:pa:ss"))), AuthCheck::Wrong);
        assert_eq!(a.check(Some(b"Basic !!!")), AuthCheck::Wrong);
        assert_eq!(a.check(Some(&basic("nocolon"))), AuthCheck::Wrong);
        assert_eq!(a.check(Some(b"Digest x")), AuthCheck::Wrong);
        assert_eq!(a.check(Some(&[0xff, 0xfe])), AuthCheck::Wrong);
        assert_eq!(a.check(None), AuthCheck::Missing);
        assert_eq!(a.challenges().len(), 2);
        assert!(!format!("{a:?}").contains("s3cret"));
        assert!(!format!("{a:?}").contains("pa:ss"));
        let token_only = AdminAuth {
            token: Some(Secret::new("t")),
            basic: None,
        };
        assert_eq!(
            token_only.check(Some(&basic("ops:pa:ss"))),
            AuthCheck::Wrong
        );
        assert_eq!(AdminAuth::default().check(None), AuthCheck::Ok);
    }
}
