//! Adding or changing a user in a `qtusers` file, as DSS's `qtpasswd` does.
//!
//! Each line written is `user:crypt:MD5(user:realm:password)`. DSS writes
//! traditional DES `crypt(3)` in the second field; no well-kept Rust crate
//! implements DES crypt (`pwhash`, the one that does, has had no release
//! since 2021 and pins outdated RustCrypto versions), so Cadence writes
//! SHA-512 crypt (`$6$salt$hash`, RustCrypto's `sha-crypt`) instead.
//! Cadence never reads that field (Basic is checked against HA1); DSS on
//! Linux checks Basic with glibc's `crypt(3)`, which verifies `$6$` hashes,
//! so such a file also works with DSS there; DSS on macOS (DES only) would
//! refuse Basic for these users but still accept Digest.

use std::io::Write;
use std::path::Path;

use super::digest::Ha1;
use super::users::{check_realm, is_skipped, realm_of, user_of};

/// The realm of a new file when none is given (DSS's `kDefaultRealmString`).
pub const DEFAULT_REALM: &str = "Streaming Server";
/// Longest password accepted, bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Whether the user was added or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswdOutcome {
    /// A new line was appended (or the file was created).
    Added,
    /// The user's line was replaced.
    Changed,
}

/// Why the users file cannot be updated. Never carries the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswdError {
    /// The user name cannot be stored.
    #[error("bad user name: {0}")]
    BadUser(String),
    /// The password cannot be stored.
    #[error("bad password: {0}")]
    BadPassword(&'static str),
    /// The realm cannot be used.
    #[error("bad realm: {0}")]
    BadRealm(String),
    /// `--realm` differs from the existing file's realm (every HA1 would
    /// have to change).
    #[error("the file's realm is {existing:?}; it cannot be changed to {given:?}")]
    RealmMismatch {
        /// The file's realm.
        existing: String,
        /// The one asked for.
        given: String,
    },
    /// The existing file is not a qtusers file.
    #[error("{0}")]
    NotUsersFile(String),
    /// The crypt field cannot be computed.
    #[error("cannot compute the crypt field: {0}")]
    Crypt(String),
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// Checks a user name for a `qtusers` line: not empty, at most 255 bytes,
/// no `:`, blank, control character, and not starting with `#`.
pub fn check_user(user: &str) -> Result<(), PasswdError> {
    let bad = |m: &str| Err(PasswdError::BadUser(m.to_string()));
    if user.is_empty() {
        return bad("empty");
    }
    if user.len() > 255 {
        return bad("longer than 255 bytes");
    }
    if user.starts_with('#') {
        return bad("must not start with '#'");
    }
    if user
        .chars()
        .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return bad("must not contain ':', blanks or control characters");
    }
    Ok(())
}

/// Checks a password: not empty, at most [`MAX_PASSWORD_LEN`] bytes, no line
/// break.
pub fn check_password(password: &str) -> Result<(), PasswdError> {
    if password.is_empty() {
        return Err(PasswdError::BadPassword("empty"));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswdError::BadPassword("too long"));
    }
    if password.contains(['\n', '\r']) {
        return Err(PasswdError::BadPassword("contains a line break"));
    }
    Ok(())
}

/// The crypt field for `password`: SHA-512 crypt with a random salt and
/// the default 5000 rounds (`$6$<16 salt chars>$<86 chars>`).
pub fn crypt_field(password: &str) -> Result<String, PasswdError> {
    sha_crypt::sha512_simple(password, &sha_crypt::Sha512Params::default())
        .map_err(|e| PasswdError::Crypt(format!("{e:?}")))
}

/// The realm of an existing `qtusers` text.
pub fn realm_of_text(text: &str) -> Result<String, PasswdError> {
    let first = super::qtaccess::lines(text.strip_prefix('\u{feff}').unwrap_or(text))
        .find(|l| !is_skipped(l));
    first.and_then(realm_of).map(str::to_string).ok_or_else(|| {
        PasswdError::NotUsersFile("not a qtusers file: its first line is not `realm <name>`".into())
    })
}

/// Returns `existing` (or a new file of `realm`) with `user`'s line set to
/// `user:crypt:HA1(user, realm, password)`: the first line of that user is
/// replaced and later ones removed, or a line is appended. Every other line
/// is kept byte for byte. `realm` must match an existing file's realm when
/// given.
pub fn update_users_text(
    existing: Option<&str>,
    user: &str,
    password: &str,
    realm: Option<&str>,
    crypt: &str,
) -> Result<(String, PasswdOutcome), PasswdError> {
    check_user(user)?;
    check_password(password)?;
    let Some(text) = existing else {
        let realm = realm.unwrap_or(DEFAULT_REALM);
        check_realm(realm).map_err(PasswdError::BadRealm)?;
        let line = user_line(user, crypt, realm, password);
        return Ok((format!("realm {realm}\n{line}\n"), PasswdOutcome::Added));
    };
    let file_realm = realm_of_text(text)?;
    check_realm(&file_realm).map_err(PasswdError::BadRealm)?;
    if let Some(given) = realm {
        if given != file_realm {
            return Err(PasswdError::RealmMismatch {
                existing: file_realm,
                given: given.to_string(),
            });
        }
    }
    let line = user_line(user, crypt, &file_realm, password);
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut outcome = PasswdOutcome::Added;
    let mut seen_realm = false;
    // Lines as the users-file parser splits them (`\n`, `\r\n` or a lone
    // `\r`), so the line replaced is the one the server reads.
    for (body, end) in lines_inclusive(text) {
        let is_user_line = !is_skipped(body) && seen_realm && user_of(body) == user;
        if !is_skipped(body) {
            seen_realm = true;
        }
        if !is_user_line {
            out.push_str(body);
            out.push_str(end);
            continue;
        }
        if outcome == PasswdOutcome::Added {
            out.push_str(&line);
            out.push_str(if end.is_empty() { "\n" } else { end });
            outcome = PasswdOutcome::Changed;
        }
    }
    if outcome == PasswdOutcome::Added {
        if !out.is_empty() && !out.ends_with(['\n', '\r']) {
            out.push('\n');
        }
        out.push_str(&line);
        out.push('\n');
    }
    Ok((out, outcome))
}

/// The lines of `text` with their line ends (`\n`, `\r\n`, `\r`, or ""
/// for a last line without one), split as [`super::qtaccess::lines`] does.
fn lines_inclusive(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (body, end, tail) = match rest.find(['\r', '\n']) {
            Some(i) => {
                let n = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..i], &rest[i..i + n], &rest[i + n..])
            }
            None => (rest, "", ""),
        };
        rest = tail;
        Some((body, end))
    })
}

fn user_line(user: &str, crypt: &str, realm: &str, password: &str) -> String {
    let ha1 = Ha1::compute(user, realm, password.as_bytes());
    format!("{user}:{crypt}:{}", ha1.to_hex())
}

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// folder, written and synced, then renamed over it (a symbolic link is
/// followed, so its target is replaced). A new file is created with mode
/// 0600; an existing one keeps its mode.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let target = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let mode = std::fs::metadata(&target)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Sets `user`'s password in the users file at `path` (created with
/// `realm`, or [`DEFAULT_REALM`], when missing) and writes it atomically.
pub fn set_password(
    path: &Path,
    user: &str,
    password: &str,
    realm: Option<&str>,
) -> Result<PasswdOutcome, PasswdError> {
    let io = |source| PasswdError::Io {
        path: path.to_path_buf(),
        source,
    };
    let existing = match super::read_limited(path, super::users::MAX_USERS_FILE_LEN) {
        Ok(Some(bytes)) => Some(
            String::from_utf8(bytes)
                .map_err(|_| PasswdError::NotUsersFile("not a qtusers file: not UTF-8".into()))?,
        ),
        Ok(None) => return Err(PasswdError::NotUsersFile("the file is too large".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    check_user(user)?;
    check_password(password)?;
    let crypt = crypt_field(password)?;
    let (text, outcome) = update_users_text(existing.as_deref(), user, password, realm, &crypt)?;
    write_atomically(path, text.as_bytes()).map_err(io)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::users::parse_users;

    /// Found by fuzzing (fuzz/regressions/access_files): in a file with
    /// carriage-return line ends, the user's line was not found, a second
    /// one was appended, and the server kept reading the first (the old
    /// password).
    #[test]
    fn change_in_a_file_with_carriage_return_line_ends() {
        let old = Ha1::compute("alice", "R", b"old").to_hex();
        let text = format!("realm R\r\r\ralice:C0:{old}\rbob:C0:{old}\r");
        let (t, o) = update_users_text(Some(&text), "alice", "new", None, "C1").expect("change");
        assert_eq!(o, PasswdOutcome::Changed);
        let (users, problems) = parse_users(&t).expect("parses");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(users
            .ha1("alice")
            .expect("alice")
            .ct_eq(&Ha1::compute("alice", "R", b"new")));
        assert!(users.ha1("bob").is_some());
        assert_eq!(t.matches("alice:").count(), 1, "{t:?}");
    }

    #[test]
    fn new_file_then_add_then_change() {
        let (t, o) = update_users_text(None, "alice", "pw1", None, "C1").expect("new");
        assert_eq!(o, PasswdOutcome::Added);
        assert_eq!(
            t,
            format!(
                "realm Streaming Server\nalice:C1:{}\n",
                Ha1::compute("alice", "Streaming Server", b"pw1").to_hex()
            )
        );
        let with_comment = format!("# kept\r\n{t}# trailing comment");
        let (t2, o) =
            update_users_text(Some(&with_comment), "bob", "pw2", None, "C2").expect("add");
        assert_eq!(o, PasswdOutcome::Added);
        assert!(t2.starts_with(&with_comment), "{t2}");
        assert!(t2.contains("# trailing comment\nbob:C2:"), "{t2}");
        let (t3, o) = update_users_text(Some(&t2), "alice", "new", Some("Streaming Server"), "C3")
            .expect("change");
        assert_eq!(o, PasswdOutcome::Changed);
        let (users, problems) = parse_users(&t3).expect("parses");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(users.ha1("alice").expect("alice").ct_eq(&Ha1::compute(
            "alice",
            "Streaming Server",
            b"new"
        )));
        assert!(users.ha1("bob").expect("bob").ct_eq(&Ha1::compute(
            "bob",
            "Streaming Server",
            b"pw2"
        )));
        assert!(
            t3.starts_with("# kept\r\nrealm Streaming Server\nalice:C3:"),
            "{t3}"
        );
    }

    #[test]
    fn duplicates_collapse_and_realm_is_kept() {
        let text = "realm R\nann:x:00000000000000000000000000000000\r\nbob:y:11111111111111111111111111111111\nann:z:22222222222222222222222222222222\n";
        let (t, o) = update_users_text(Some(text), "ann", "p", None, "C").expect("change");
        assert_eq!(o, PasswdOutcome::Changed);
        assert_eq!(t.matches("ann:").count(), 1);
        assert!(t.contains(&format!(
            "ann:C:{}\r\n",
            Ha1::compute("ann", "R", b"p").to_hex()
        )));
        assert!(t.contains("bob:y:1111"));
        assert!(matches!(
            update_users_text(Some(text), "ann", "p", Some("Other"), "C"),
            Err(PasswdError::RealmMismatch { .. })
        ));
        // A user named like the realm keyword is a user line after the realm.
        let (t, _) = update_users_text(Some("realm R\n"), "realm", "p", None, "C").expect("ok");
        assert!(t.starts_with("realm R\nrealm:C:"));
    }

    #[test]
    fn refusals() {
        for bad in ["", "a:b", "a b", "#x", "tab\t"] {
            assert!(matches!(
                update_users_text(None, bad, "p", None, "C"),
                Err(PasswdError::BadUser(_))
            ));
        }
        assert!(matches!(
            update_users_text(None, "u", "", None, "C"),
            Err(PasswdError::BadPassword("empty"))
        ));
        assert!(matches!(
            update_users_text(None, "u", "p", Some("a\"b"), "C"),
            Err(PasswdError::BadRealm(_))
        ));
        assert!(matches!(
            update_users_text(Some("u:x:y\n"), "u", "p", None, "C"),
            Err(PasswdError::NotUsersFile(_))
        ));
    }

    #[test]
    fn crypt_field_is_sha512_crypt_and_verifies() {
        let c = crypt_field("Circle Of Life").expect("crypt");
        assert!(c.starts_with("$6$"), "{c}");
        assert!(!c.contains(':'));
        assert!(sha_crypt::sha512_check("Circle Of Life", &c).is_ok());
        assert!(sha_crypt::sha512_check("circle of life", &c).is_err());
    }

    #[test]
    fn atomic_write_keeps_mode_and_follows_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::access::test_dir("passwd-write");
        let p = dir.join("qtusers");
        write_atomically(&p, b"one").expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let link = dir.join("link");
        std::os::unix::fs::symlink(&p, &link).expect("symlink");
        write_atomically(&link, b"two").expect("via link");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert!(std::fs::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(mode(&p), 0o640);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
