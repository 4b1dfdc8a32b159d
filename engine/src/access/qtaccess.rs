//! Parser for DSS per-folder access files (`qtaccess`), the syntax of DSS
//! 6.0.3's `APICommonCode/QTAccessFile.cpp`.
//!
//! One directive per line; blank lines and lines whose first non-blank
//! character is `#` are skipped. Keywords are case-sensitive:
//!
//! - `AuthName <realm>` (quotes around the rest of the line are removed),
//! - `AuthScheme basic|digest`, `AuthUserFile <path>`, `AuthGroupFile <path>`
//!   (the rest of the line, quotes removed; a later line replaces an earlier
//!   one, as in DSS),
//! - `require user <u>…`, `require group <g>…`, `require valid-user`,
//!   `require any-user` (any one `require` line that matches grants access),
//! - `<Limit READ|WRITE …>` … `</Limit>`. Directives outside a block apply to
//!   READ; a block naming only WRITE is checked and then ignored (Cadence does
//!   not record).
//!
//! Stricter than DSS, which skipped what it did not understand: an unknown
//! directive, a bad `AuthScheme`, an empty `require`, a nested or unclosed
//! `<Limit>` is an error naming the line, and the loader makes the folder
//! refuse every request (fail closed) until the file is fixed.

use std::fmt;

use super::config::AuthScheme;

/// The file name DSS looks for in every folder.
pub const ACCESS_FILE_NAME: &str = "qtaccess";
/// Largest access file read, bytes.
pub const MAX_ACCESS_FILE_LEN: usize = 1 << 20;

/// The READ part of an access file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFile {
    /// `AuthName`: the Basic realm shown to users (Digest always uses the
    /// users file's realm, as DSS does).
    pub auth_name: Option<String>,
    /// `AuthScheme`; the server's default when absent.
    pub auth_scheme: Option<AuthScheme>,
    /// `AuthUserFile`, as written (relative paths are resolved by the loader
    /// against the access file's folder).
    pub user_file: Option<String>,
    /// `AuthGroupFile`, as written.
    pub group_file: Option<String>,
    /// The `require` lines, in file order; any one matching grants access.
    pub require: Vec<Requirement>,
}

/// A `require` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `require any-user`: no credentials needed.
    AnyUser,
    /// `require valid-user`: any user of the users file.
    ValidUser,
    /// `require user u1 u2 …`.
    Users(Vec<String>),
    /// `require group g1 g2 …` (membership from the groups file).
    Groups(Vec<String>),
}

/// A syntax error: 1-based line and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QtAccessError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for QtAccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for QtAccessError {}

/// Parses an access file's bytes (UTF-8, an optional BOM, `\n`, `\r\n` or
/// `\r` line ends).
pub fn parse_bytes(bytes: &[u8]) -> Result<AccessFile, QtAccessError> {
    let text = std::str::from_utf8(bytes).map_err(|e| QtAccessError {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        message: "not UTF-8".into(),
    })?;
    parse(text)
}

/// Parses an access file's text.
pub fn parse(text: &str) -> Result<AccessFile, QtAccessError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut file = AccessFile::default();
    // Inside a <Limit> block: Some(applies_to_read), with its first line.
    let mut block: Option<(bool, usize)> = None;
    for (idx, raw) in lines(text).enumerate() {
        let line_no = idx + 1;
        let err = |message: String| QtAccessError {
            line: line_no,
            message,
        };
        let line = raw.trim_matches(is_blank);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = split_word(line);
        let read = block.is_none_or(|(r, _)| r);
        match word {
            "<Limit" => {
                if let Some((_, open)) = block {
                    return Err(err(format!(
                        "<Limit> inside the <Limit> block opened on line {open}"
                    )));
                }
                block = Some((parse_limit(rest).map_err(err)?, line_no));
            }
            "</Limit>" => {
                if !rest.is_empty() {
                    return Err(err("text after </Limit>".into()));
                }
                if block.take().is_none() {
                    return Err(err("</Limit> without <Limit>".into()));
                }
            }
            "AuthName" => {
                let v = unquote(rest).map_err(err)?;
                if v.is_empty() {
                    return Err(err("AuthName needs a realm".into()));
                }
                if v.contains(['"', '\\']) {
                    return Err(err("AuthName must not contain '\"' or '\\'".into()));
                }
                if read {
                    file.auth_name = Some(v.to_string());
                }
            }
            "AuthScheme" => {
                let scheme = match unquote(rest).map_err(err)? {
                    "basic" => AuthScheme::Basic,
                    "digest" => AuthScheme::Digest,
                    other => {
                        return Err(err(format!(
                            "AuthScheme must be basic or digest (lower case), not {other:?}"
                        )))
                    }
                };
                if read {
                    file.auth_scheme = Some(scheme);
                }
            }
            "AuthUserFile" | "AuthGroupFile" => {
                let v = unquote(rest).map_err(err)?;
                if v.is_empty() {
                    return Err(err(format!("{word} needs a path")));
                }
                if read {
                    let slot = if word == "AuthUserFile" {
                        &mut file.user_file
                    } else {
                        &mut file.group_file
                    };
                    *slot = Some(v.to_string());
                }
            }
            "require" => {
                let r = parse_require(rest).map_err(err)?;
                if read {
                    file.require.push(r);
                }
            }
            other => {
                let hint = match other.to_ascii_lowercase().as_str() {
                    "require" | "authname" | "authscheme" | "authuserfile" | "authgroupfile"
                    | "<limit" | "</limit>" => " (keywords are case-sensitive)",
                    _ => "",
                };
                return Err(err(format!("unknown directive {other:?}{hint}")));
            }
        }
    }
    if let Some((_, open)) = block {
        return Err(QtAccessError {
            line: open,
            message: "<Limit> block is never closed".into(),
        });
    }
    Ok(file)
}

/// `<Limit READ WRITE>` after the `<Limit` word: whether it applies to READ.
fn parse_limit(rest: &str) -> Result<bool, String> {
    let inner = rest
        .strip_suffix('>')
        .ok_or_else(|| "<Limit …> must end with '>'".to_string())?;
    let mut read = false;
    let mut any = false;
    for m in inner.split(is_blank).filter(|w| !w.is_empty()) {
        match m {
            "READ" => read = true,
            "WRITE" => {}
            other => {
                return Err(format!(
                    "<Limit> method must be READ or WRITE, not {other:?}"
                ))
            }
        }
        any = true;
    }
    if !any {
        return Err("<Limit> names no method".into());
    }
    Ok(read)
}

fn parse_require(rest: &str) -> Result<Requirement, String> {
    let (kind, names) = split_word(rest);
    let names: Vec<String> = names
        .split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let none = |r: Requirement| {
        if names.is_empty() {
            Ok(r)
        } else {
            Err(format!("nothing may follow require {kind}"))
        }
    };
    match kind {
        "any-user" => none(Requirement::AnyUser),
        "valid-user" => none(Requirement::ValidUser),
        "user" | "group" if names.is_empty() => Err(format!("require {kind} needs names")),
        "user" => Ok(Requirement::Users(names)),
        "group" => Ok(Requirement::Groups(names)),
        "" => Err("require needs user, group, valid-user or any-user".into()),
        other => Err(format!(
            "require {other:?}: expected user, group, valid-user or any-user"
        )),
    }
}

/// The rest of a line without one pair of surrounding `"`.
fn unquote(rest: &str) -> Result<&str, String> {
    match rest.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .ok_or_else(|| "unbalanced '\"'".to_string()),
        None => Ok(rest),
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The first blank-separated word and the rest, trimmed.
fn split_word(s: &str) -> (&str, &str) {
    match s.find(is_blank) {
        Some(i) => (&s[..i], s[i..].trim_matches(is_blank)),
        None => (s, ""),
    }
}

/// Lines split at `\r\n`, `\n` or `\r` (so line numbers match editors).
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                if s.is_empty() {
                    None
                } else {
                    Some(s)
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dss_sample_file() {
        // The shape of DSS's documentation sample.
        let f = parse(
            "# protected movies\n\
             AuthName \"Protected Movies\"\n\
             AuthUserFile /Library/QuickTimeStreaming/Config/qtusers\n\
             AuthGroupFile \"/etc/streaming/my groups\"\n\
             AuthScheme digest\n\
             require valid-user\n\
             <Limit WRITE>\n\
             require group broadcaster\n\
             </Limit>\n",
        )
        .expect("valid");
        assert_eq!(f.auth_name.as_deref(), Some("Protected Movies"));
        assert_eq!(
            f.user_file.as_deref(),
            Some("/Library/QuickTimeStreaming/Config/qtusers")
        );
        assert_eq!(f.group_file.as_deref(), Some("/etc/streaming/my groups"));
        assert_eq!(f.auth_scheme, Some(AuthScheme::Digest));
        // The WRITE block is parsed and left out.
        assert_eq!(f.require, vec![Requirement::ValidUser]);
    }

    #[test]
    fn limit_blocks() {
        let f = parse(
            "\u{feff}<Limit READ>\r\n  require user alice bob\r\n</Limit>\r\n\
             <Limit READ WRITE >\r\nrequire group staff\tadmins\r\nAuthScheme basic\r\n</Limit>\r\n\
             <Limit WRITE>\r\nAuthScheme digest\r\nrequire any-user\r\n</Limit>\r\n",
        )
        .expect("valid");
        assert_eq!(
            f.require,
            vec![
                Requirement::Users(vec!["alice".into(), "bob".into()]),
                Requirement::Groups(vec!["staff".into(), "admins".into()]),
            ]
        );
        assert_eq!(f.auth_scheme, Some(AuthScheme::Basic));
        // Last one wins, as in DSS.
        let f = parse("AuthUserFile a\nAuthUserFile b\n").expect("valid");
        assert_eq!(f.user_file.as_deref(), Some("b"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("require valid-user\nRequire user x\n", 2, "case-sensitive"),
            ("AuthScheme Basic\n", 1, "basic or digest"),
            ("\n\nrequire\n", 3, "require needs"),
            ("require user\n", 1, "needs names"),
            ("require valid-user bob\n", 1, "nothing may follow"),
            ("require friends\n", 1, "expected user"),
            ("<Limit READ>\nrequire any-user\n", 1, "never closed"),
            ("<Limit READ>\n<Limit WRITE>\n", 2, "inside"),
            ("</Limit>\n", 1, "without"),
            ("<Limit READ\n", 1, "end with"),
            ("<Limit >\n", 1, "no method"),
            ("<Limit GET>\n</Limit>\n", 1, "READ or WRITE"),
            ("AuthName \"x\n", 1, "unbalanced"),
            ("AuthName a\"b\n", 1, "must not contain"),
            ("AuthUserFile\n", 1, "needs a path"),
            ("Options +Indexes\n", 1, "unknown directive"),
            ("require any-user\r\rbad\n", 3, "unknown directive"),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.message.contains(needle), "{text:?}: {e}");
        }
        let e = parse_bytes(b"require any-user\n\xff\n").expect_err("utf8");
        assert_eq!((e.line, e.message.as_str()), (2, "not UTF-8"));
    }

    #[test]
    fn line_splitting() {
        let v: Vec<&str> = lines("a\r\nb\rc\n\nd").collect();
        assert_eq!(v, ["a", "b", "c", "", "d"]);
        assert_eq!(lines("").count(), 0);
        assert_eq!(lines("x\n").collect::<Vec<_>>(), ["x"]);
    }

    /// Writes an `AccessFile` back as text (for the round-trip property).
    fn render(f: &AccessFile, wrap_in_limit: bool) -> String {
        let mut s = String::from("# generated\n");
        if wrap_in_limit {
            s.push_str("<Limit READ>\n");
        }
        if let Some(v) = &f.auth_name {
            s.push_str(&format!("AuthName \"{v}\"\n"));
        }
        if let Some(v) = f.auth_scheme {
            let w = match v {
                AuthScheme::Basic => "basic",
                AuthScheme::Digest => "digest",
            };
            s.push_str(&format!("AuthScheme {w}\n"));
        }
        if let Some(v) = &f.user_file {
            s.push_str(&format!("AuthUserFile {v}\n"));
        }
        if let Some(v) = &f.group_file {
            s.push_str(&format!("\tAuthGroupFile \"{v}\"\n"));
        }
        for r in &f.require {
            match r {
                Requirement::AnyUser => s.push_str("require any-user\n"),
                Requirement::ValidUser => s.push_str("require  valid-user\n"),
                Requirement::Users(u) => s.push_str(&format!("require user {}\n", u.join(" "))),
                Requirement::Groups(g) => s.push_str(&format!("require group {}\n", g.join("\t"))),
            }
        }
        if wrap_in_limit {
            s.push_str("</Limit>\n<Limit WRITE>\nrequire user writer\nAuthName \"w\"\n</Limit>\n");
        }
        s
    }

    fn value() -> impl Strategy<Value = String> {
        // No leading/trailing blanks, no quotes or backslashes, no line ends.
        "[A-Za-z0-9_./@-]([A-Za-z0-9 _./@-]{0,20}[A-Za-z0-9_./@-])?"
    }

    fn names() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec("[A-Za-z0-9_.@-]{1,10}", 1..4)
    }

    fn access_file() -> impl Strategy<Value = AccessFile> {
        let req = prop_oneof![
            Just(Requirement::AnyUser),
            Just(Requirement::ValidUser),
            names().prop_map(Requirement::Users),
            names().prop_map(Requirement::Groups),
        ];
        (
            proptest::option::of(value()),
            proptest::option::of(prop_oneof![
                Just(AuthScheme::Basic),
                Just(AuthScheme::Digest)
            ]),
            proptest::option::of(value()),
            proptest::option::of(value()),
            proptest::collection::vec(req, 0..5),
        )
            .prop_map(|(auth_name, auth_scheme, user_file, group_file, require)| {
                AccessFile {
                    auth_name,
                    auth_scheme,
                    user_file,
                    group_file,
                    require,
                }
            })
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_bytes(&bytes);
        }

        #[test]
        fn never_panics_on_near_valid_text(
            parts in proptest::collection::vec(prop_oneof![
                Just("require "), Just("user "), Just("group "), Just("valid-user"),
                Just("any-user"), Just("<Limit "), Just("READ"), Just("WRITE"), Just(">"),
                Just("</Limit>"), Just("AuthName "), Just("\""), Just("AuthScheme "),
                Just("basic"), Just("\n"), Just("\r"), Just(" "), Just("#"), Just("é"),
            ], 0..60)
        ) {
            let text: String = parts.concat();
            if let Err(e) = parse(&text) {
                prop_assert!(e.line >= 1 && e.line <= lines(&text).count().max(1));
            }
        }

        #[test]
        fn round_trips(f in access_file(), wrap in any::<bool>()) {
            let text = render(&f, wrap);
            prop_assert_eq!(parse(&text), Ok(f));
        }
    }
}
