//! The `Authorization` request header (RFC 7617 Basic, RFC 7616 §3.4 Digest)
//! and the `WWW-Authenticate` challenges (RFC 2617 §1.2, §3.2.1).
//!
//! Digest parameters are `name=token` or `name="quoted string"` (RFC 7230
//! §3.2.6, with `\`-escapes), separated by commas; names are case-insensitive,
//! unknown ones are ignored, a repeated one is an error. `username*`
//! (RFC 7616 §3.4.4) is not supported.

use std::fmt;

use base64::Engine as _;

/// Longest `Authorization` value accepted, bytes.
pub const MAX_AUTHORIZATION_LEN: usize = 4096;

/// Parsed credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Basic base64(user ":" password)`.
    Basic(BasicCredentials),
    /// `Digest username=…, realm=…, …`.
    Digest(DigestCredentials),
}

/// Basic credentials (RFC 7617 §2). `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// User-id: the text before the first `:` (UTF-8).
    pub user: String,
    password: Vec<u8>,
}

impl BasicCredentials {
    /// Credentials of `user` (must not contain `:`) and `password`.
    pub fn new(user: &str, password: &[u8]) -> BasicCredentials {
        BasicCredentials {
            user: user.to_string(),
            password: password.to_vec(),
        }
    }

    /// The password, bytes as sent.
    pub fn password(&self) -> &[u8] {
        &self.password
    }

    /// The header value, `Basic <base64>`.
    pub fn to_header(&self) -> String {
        let mut raw = self.user.as_bytes().to_vec();
        raw.push(b':');
        raw.extend_from_slice(&self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Digest credentials (RFC 7616 §3.4). `Debug` redacts `response`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct DigestCredentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`, as received in the challenge.
    pub nonce: String,
    /// `uri` (digest-uri), as the client sent it.
    pub uri: String,
    /// `response`, 32 hex digits for MD5.
    pub response: String,
    /// `algorithm`, absent meaning MD5.
    pub algorithm: Option<String>,
    /// `qop` (`auth`), absent for RFC 2069 clients.
    pub qop: Option<String>,
    /// `nc`, present when `qop` is.
    pub nc: Option<String>,
    /// `cnonce`, present when `qop` is.
    pub cnonce: Option<String>,
    /// `opaque`, echoed from the challenge (we send none).
    pub opaque: Option<String>,
}

impl DigestCredentials {
    /// The header value, every string parameter quoted, `algorithm`, `qop`
    /// and `nc` as tokens (as RFC 7616 §3.4 writes them).
    pub fn to_header(&self) -> String {
        let mut s = String::from("Digest ");
        let mut first = true;
        let mut put = |name: &str, value: &str, quoted: bool| {
            if !first {
                s.push_str(", ");
            }
            first = false;
            s.push_str(name);
            s.push('=');
            if quoted {
                s.push_str(&quote(value));
            } else {
                s.push_str(value);
            }
        };
        put("username", &self.username, true);
        put("realm", &self.realm, true);
        put("nonce", &self.nonce, true);
        put("uri", &self.uri, true);
        put("response", &self.response, true);
        if let Some(v) = &self.algorithm {
            put("algorithm", v, false);
        }
        if let Some(v) = &self.qop {
            put("qop", v, false);
        }
        if let Some(v) = &self.nc {
            put("nc", v, false);
        }
        if let Some(v) = &self.cnonce {
            put("cnonce", v, true);
        }
        if let Some(v) = &self.opaque {
            put("opaque", v, true);
        }
        s
    }
}

impl fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .field("algorithm", &self.algorithm)
            .field("qop", &self.qop)
            .field("nc", &self.nc)
            .field("response", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Why an `Authorization` value is unusable. Never carries the credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    /// Longer than [`MAX_AUTHORIZATION_LEN`].
    #[error("Authorization header longer than {MAX_AUTHORIZATION_LEN} bytes")]
    TooLong,
    /// Neither `Basic` nor `Digest`.
    #[error("unsupported authorization scheme {0:?}")]
    UnknownScheme(String),
    /// Basic: not base64, or no `:`, or a user-id that is not UTF-8.
    #[error("malformed Basic credentials: {0}")]
    BadBasic(&'static str),
    /// Digest: a syntax error in the parameter list.
    #[error("malformed Digest parameters: {0}")]
    Syntax(&'static str),
    /// Digest: a required parameter is missing.
    #[error("Digest credentials lack {0}")]
    Missing(&'static str),
    /// Digest: a parameter is given twice.
    #[error("Digest parameter {0:?} given twice")]
    Duplicate(String),
}

/// Parses an `Authorization` header value.
pub fn parse_authorization(value: &str) -> Result<Credentials, AuthorizationError> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthorizationError::TooLong);
    }
    let value = value.trim_matches(is_ows);
    let (scheme, rest) = match value.find(is_ows) {
        Some(i) => (&value[..i], value[i..].trim_start_matches(is_ows)),
        None => (value, ""),
    };
    if scheme.eq_ignore_ascii_case("Basic") {
        parse_basic(rest).map(Credentials::Basic)
    } else if scheme.eq_ignore_ascii_case("Digest") {
        parse_digest(rest).map(Credentials::Digest)
    } else {
        let shown: String = scheme.chars().take(32).collect();
        Err(AuthorizationError::UnknownScheme(shown))
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn parse_basic(token: &str) -> Result<BasicCredentials, AuthorizationError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| AuthorizationError::BadBasic("not base64"))?;
    let colon = raw
        .iter()
        .position(|&b| b == b':')
        .ok_or(AuthorizationError::BadBasic(
            "no ':' between user and password",
        ))?;
    let user = std::str::from_utf8(&raw[..colon])
        .map_err(|_| AuthorizationError::BadBasic("user-id is not UTF-8"))?;
    Ok(BasicCredentials {
        user: user.to_string(),
        password: raw[colon + 1..].to_vec(),
    })
}

fn parse_digest(params: &str) -> Result<DigestCredentials, AuthorizationError> {
    let mut c = DigestCredentials::default();
    let mut seen: [bool; 10] = [false; 10];
    let mut p = ParamParser {
        s: params.as_bytes(),
        i: 0,
    };
    while let Some((name, value)) = p.next_param()? {
        let slot = match name.to_ascii_lowercase().as_str() {
            "username" => 0,
            "realm" => 1,
            "nonce" => 2,
            "uri" => 3,
            "response" => 4,
            "algorithm" => 5,
            "qop" => 6,
            "nc" => 7,
            "cnonce" => 8,
            "opaque" => 9,
            _ => continue,
        };
        if seen[slot] {
            return Err(AuthorizationError::Duplicate(name.to_ascii_lowercase()));
        }
        seen[slot] = true;
        match slot {
            0 => c.username = value,
            1 => c.realm = value,
            2 => c.nonce = value,
            3 => c.uri = value,
            4 => c.response = value,
            5 => c.algorithm = Some(value),
            6 => c.qop = Some(value),
            7 => c.nc = Some(value),
            8 => c.cnonce = Some(value),
            _ => c.opaque = Some(value),
        }
    }
    for (i, name) in ["username", "realm", "nonce", "uri", "response"]
        .iter()
        .enumerate()
    {
        if !seen[i] {
            return Err(AuthorizationError::Missing(name));
        }
    }
    if c.qop.is_some() {
        if c.nc.is_none() {
            return Err(AuthorizationError::Missing("nc (qop is given)"));
        }
        if c.cnonce.is_none() {
            return Err(AuthorizationError::Missing("cnonce (qop is given)"));
        }
    }
    Ok(c)
}

struct ParamParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl ParamParser<'_> {
    fn skip(&mut self, set: &[u8]) {
        while self.i < self.s.len() && set.contains(&self.s[self.i]) {
            self.i += 1;
        }
    }

    /// The next `name=value`, or `None` at the end.
    fn next_param(&mut self) -> Result<Option<(String, String)>, AuthorizationError> {
        self.skip(b" \t,");
        if self.i >= self.s.len() {
            return Ok(None);
        }
        let name = self.token();
        if name.is_empty() {
            return Err(AuthorizationError::Syntax("expected a parameter name"));
        }
        self.skip(b" \t");
        if self.s.get(self.i) != Some(&b'=') {
            return Err(AuthorizationError::Syntax("expected '=' after a name"));
        }
        self.i += 1;
        self.skip(b" \t");
        let value = if self.s.get(self.i) == Some(&b'"') {
            self.quoted()?
        } else {
            let t = self.token();
            if t.is_empty() {
                return Err(AuthorizationError::Syntax("expected a value after '='"));
            }
            t
        };
        self.skip(b" \t");
        match self.s.get(self.i) {
            None | Some(b',') => Ok(Some((name, value))),
            Some(_) => Err(AuthorizationError::Syntax(
                "expected ',' between parameters",
            )),
        }
    }

    /// RFC 7230 token characters (plus `/`, which some clients leave
    /// unquoted in `uri`).
    fn token(&mut self) -> String {
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            let ok = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:;?@[]".contains(&c);
            if !ok {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// A quoted-string starting at `"`; returns it unescaped.
    fn quoted(&mut self) -> Result<String, AuthorizationError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(AuthorizationError::Syntax("unterminated quoted string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let Some(&c) = self.s.get(self.i + 1) else {
                        return Err(AuthorizationError::Syntax("unterminated quoted string"));
                    };
                    out.push(c);
                    self.i += 2;
                }
                Some(&c) if c < 0x20 && c != b'\t' || c == 0x7f => {
                    return Err(AuthorizationError::Syntax(
                        "control character in quoted string",
                    ))
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out).map_err(|_| AuthorizationError::Syntax("quoted string is not UTF-8"))
    }
}

/// `"…"` with `"` and `\` escaped (RFC 7230 §3.2.6 quoted-pair).
fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `Basic realm="…"` (RFC 7617 §2).
pub fn basic_challenge(realm: &str) -> String {
    format!("Basic realm={}", quote(realm))
}

/// `Digest realm="…", nonce="…", qop="auth"` plus `, stale=true` when the
/// client's nonce was valid but too old (RFC 2617 §3.2.1, RFC 7616 §3.3).
/// Clients that do not implement qop (GStreamer, live555) answer without it,
/// which [`super::AccessRules::decide`] accepts.
pub fn digest_challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let mut s = format!(
        "Digest realm={}, nonce={}, qop=\"auth\"",
        quote(realm),
        quote(nonce)
    );
    if stale {
        s.push_str(", stale=true");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn basic_from_rfc7617() {
        // RFC 7617 §2: Aladdin / open sesame.
        let c = parse_authorization("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").expect("basic");
        let Credentials::Basic(b) = c else {
            panic!("not basic")
        };
        assert_eq!(b.user, "Aladdin");
        assert_eq!(b.password(), b"open sesame");
        assert!(!format!("{b:?}").contains("sesame"));
        assert_eq!(b.to_header(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        // A password may contain ':'; the scheme is case-insensitive.
        let c = parse_authorization("basic   dTpwOnE=").expect("basic");
        assert_eq!(c, Credentials::Basic(BasicCredentials::new("u", b"p:q")));
        assert_eq!(
            parse_authorization("Basic !!!"),
            Err(AuthorizationError::BadBasic("not base64"))
        );
        assert_eq!(
            parse_authorization("Basic dXNlcg=="),
            Err(AuthorizationError::BadBasic(
                "no ':' between user and password"
            ))
        );
        assert!(matches!(
            parse_authorization("Bearer abc"),
            Err(AuthorizationError::UnknownScheme(s)) if s == "Bearer"
        ));
    }

    #[test]
    fn digest_from_rfc2617_and_real_clients() {
        // RFC 2617 §3.5.
        let v = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#
            .replace('\n', " ");
        let Credentials::Digest(d) = parse_authorization(&v).expect("digest") else {
            panic!("not digest")
        };
        assert_eq!(d.username, "Mufasa");
        assert_eq!(d.realm, "testrealm@host.com");
        assert_eq!(d.uri, "/dir/index.html");
        assert_eq!(d.qop.as_deref(), Some("auth"));
        assert_eq!(d.nc.as_deref(), Some("00000001"));
        assert_eq!(d.cnonce.as_deref(), Some("0a4f113b"));
        assert_eq!(d.response, "6629fae49393a05397450978507c4ef1");
        assert!(!format!("{d:?}").contains("6629fae4"));
        // GStreamer's shape (no qop, full URL in uri).
        let g = r#"Digest username="bob", realm="Streaming Server", nonce="00ab", uri="rtsp://127.0.0.1:8554/a.mp4", response="0123456789abcdef0123456789abcdef""#;
        let Credentials::Digest(d) = parse_authorization(g).expect("gst") else {
            panic!("not digest")
        };
        assert_eq!(d.uri, "rtsp://127.0.0.1:8554/a.mp4");
        assert_eq!(d.qop, None);
        // Escapes, odd spacing, upper-case names, empty list elements.
        let e = r#"Digest USERNAME = "a\"b\\c" ,, realm="r",nonce=n,uri=/x,response="00""#;
        let Credentials::Digest(d) = parse_authorization(e).expect("esc") else {
            panic!("not digest")
        };
        assert_eq!(d.username, "a\"b\\c");
        assert_eq!(d.nonce, "n");
    }

    #[test]
    fn digest_errors() {
        let ok = r#"username="u", realm="r", nonce="n", uri="/", response="x""#;
        assert!(parse_authorization(&format!("Digest {ok}")).is_ok());
        assert_eq!(
            parse_authorization(r#"Digest username="u", realm="r", nonce="n", uri="/""#),
            Err(AuthorizationError::Missing("response"))
        );
        assert_eq!(
            parse_authorization(&format!("Digest {ok}, qop=auth, cnonce=\"c\"")),
            Err(AuthorizationError::Missing("nc (qop is given)"))
        );
        assert_eq!(
            parse_authorization(&format!("Digest {ok}, Realm=\"again\"")),
            Err(AuthorizationError::Duplicate("realm".into()))
        );
        assert_eq!(
            parse_authorization(r#"Digest username="u"#),
            Err(AuthorizationError::Syntax("unterminated quoted string"))
        );
        assert_eq!(
            parse_authorization(r#"Digest username"u""#),
            Err(AuthorizationError::Syntax("expected '=' after a name"))
        );
        assert_eq!(
            parse_authorization(r#"Digest username="u" realm="r""#),
            Err(AuthorizationError::Syntax(
                "expected ',' between parameters"
            ))
        );
        assert_eq!(
            parse_authorization(&format!("Digest {}", "a".repeat(MAX_AUTHORIZATION_LEN))),
            Err(AuthorizationError::TooLong)
        );
    }

    #[test]
    fn challenges() {
        assert_eq!(
            basic_challenge("Streaming Server"),
            r#"Basic realm="Streaming Server""#
        );
        assert_eq!(
            digest_challenge("r", "abc", false),
            r#"Digest realm="r", nonce="abc", qop="auth""#
        );
        assert_eq!(
            digest_challenge("r", "abc", true),
            r#"Digest realm="r", nonce="abc", qop="auth", stale=true"#
        );
        assert_eq!(basic_challenge(r#"a"b"#), r#"Basic realm="a\"b""#);
    }

    fn text() -> impl Strategy<Value = String> {
        // Printable text, including quotes, backslashes and non-ASCII.
        proptest::string::string_regex(r#"[ -~éü€]{0,24}"#).expect("regex")
    }

    fn digest() -> impl Strategy<Value = DigestCredentials> {
        let opt_token = proptest::option::of("[A-Za-z0-9-]{1,12}");
        (
            (text(), text(), text(), text(), "[0-9a-f]{32}"),
            (
                opt_token.clone(),
                opt_token.clone(),
                opt_token,
                proptest::option::of(text()),
            ),
            proptest::option::of(text()),
        )
            .prop_map(
                |(
                    (username, realm, nonce, uri, response),
                    (algorithm, qop, nc, cnonce),
                    opaque,
                )| {
                    let with_qop = qop.is_some();
                    DigestCredentials {
                        username,
                        realm,
                        nonce,
                        uri,
                        response,
                        algorithm,
                        qop,
                        nc: if with_qop {
                            nc.or(Some("00000001".into()))
                        } else {
                            nc
                        },
                        cnonce: if with_qop {
                            cnonce.or(Some(String::new()))
                        } else {
                            cnonce
                        },
                        opaque,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse_authorization(&s);
            let _ = parse_authorization(&format!("Digest {s}"));
            let _ = parse_authorization(&format!("Basic {s}"));
        }

        #[test]
        fn digest_round_trips(d in digest()) {
            let parsed = parse_authorization(&d.to_header());
            prop_assert_eq!(parsed, Ok(Credentials::Digest(d)));
        }

        #[test]
        fn basic_round_trips(user in "[^:\u{0}]{0,20}", pw in proptest::collection::vec(any::<u8>(), 0..40)) {
            let b = BasicCredentials::new(&user, &pw);
            prop_assert_eq!(parse_authorization(&b.to_header()), Ok(Credentials::Basic(b)));
        }
    }
}
