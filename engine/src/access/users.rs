//! DSS users and groups files, read as `qtpasswd` writes them
//! (`qtpasswd.tproj/QTSSPasswd.cpp`, parsed by
//! `APIModules/QTSSAccessModule/AccessChecker.cpp`).
//!
//! `qtusers`: the first line that is neither blank nor a `#` comment is
//! `realm <name>`; each further such line is
//! `user:crypt(password):MD5(user:realm:password)`. Only the third field, HA1,
//! is used: Digest needs it, and a Basic password is checked by computing its
//! HA1, so the crypt field (DES, or whatever the writer used) is never read.
//!
//! `qtgroups`: `group: user1 user2 …` per line.
//!
//! A malformed user or group line is skipped and reported with its line
//! number (that user simply cannot log in); a file without its realm line is
//! unusable as a whole.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::digest::Ha1;
use super::qtaccess::lines;

/// Largest users or groups file read, bytes.
pub const MAX_USERS_FILE_LEN: usize = 16 << 20;

/// A problem on one line of a users or groups file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong (never the hash).
    pub message: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed `qtusers` file. `Debug` shows the realm and the user count only.
#[derive(Clone, Default)]
pub struct UsersFile {
    /// The realm every HA1 of the file was computed with.
    pub realm: String,
    users: HashMap<String, Ha1>,
}

impl fmt::Debug for UsersFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsersFile")
            .field("realm", &self.realm)
            .field("users", &self.users.len())
            .finish()
    }
}

impl UsersFile {
    /// The stored HA1 of `user`, if the file has that user.
    pub fn ha1(&self, user: &str) -> Option<&Ha1> {
        self.users.get(user)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file has no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Checks a realm for use in a challenge: not empty, no `"`, `\` or control
/// characters, at most 255 bytes.
pub fn check_realm(realm: &str) -> Result<(), String> {
    if realm.is_empty() {
        return Err("the realm is empty".into());
    }
    if realm.len() > 255 {
        return Err("the realm is longer than 255 bytes".into());
    }
    if realm
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err("the realm must not contain '\"', '\\' or control characters".into());
    }
    Ok(())
}

/// Whether a line is blank or a `#` comment (after leading blanks).
pub(crate) fn is_skipped(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#')
}

/// The realm of a `realm <name>` line, or `None` when the line is not one.
pub(crate) fn realm_of(line: &str) -> Option<&str> {
    let t = line.trim_matches([' ', '\t']);
    let rest = t.strip_prefix("realm")?;
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim_matches([' ', '\t']))
}

/// The user name of a user line (text before the first `:`, leading blanks
/// skipped).
pub(crate) fn user_of(line: &str) -> &str {
    let t = line.trim_start_matches([' ', '\t']);
    t.split(':').next().unwrap_or(t)
}

/// Parses a `qtusers` file. Errors (with a line) when there is no valid
/// realm line; malformed user lines are returned as problems and skipped.
pub fn parse_users(text: &str) -> Result<(UsersFile, Vec<LineProblem>), LineProblem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut it = lines(text)
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !is_skipped(l));
    let Some((realm_line, first)) = it.next() else {
        return Err(LineProblem {
            line: 1,
            message: "no `realm <name>` line: not a qtusers file".into(),
        });
    };
    let realm = realm_of(first).ok_or_else(|| LineProblem {
        line: realm_line,
        message: "the first line must be `realm <name>`".into(),
    })?;
    check_realm(realm).map_err(|message| LineProblem {
        line: realm_line,
        message,
    })?;
    let mut file = UsersFile {
        realm: realm.to_string(),
        users: HashMap::new(),
    };
    let mut problems = Vec::new();
    for (line, text) in it {
        let mut problem = |message: String| problems.push(LineProblem { line, message });
        let t = text.trim_matches([' ', '\t']);
        let mut fields = t.splitn(3, ':');
        let (Some(user), Some(_crypt), Some(ha1)) = (fields.next(), fields.next(), fields.next())
        else {
            problem("expected user:crypt:md5".into());
            continue;
        };
        if user.is_empty() {
            problem("empty user name".into());
            continue;
        }
        let Some(ha1) = Ha1::from_hex(ha1.trim_matches([' ', '\t'])) else {
            problem(format!(
                "user {user:?}: the third field is not 32 hex digits (MD5 of user:realm:password)"
            ));
            continue;
        };
        if file.users.contains_key(user) {
            problem(format!(
                "user {user:?} appears again; the first line is used"
            ));
            continue;
        }
        file.users.insert(user.to_string(), ha1);
    }
    Ok((file, problems))
}

/// A parsed `qtgroups` file: group → members.
#[derive(Debug, Clone, Default)]
pub struct GroupsFile {
    groups: HashMap<String, HashSet<String>>,
}

impl GroupsFile {
    /// Whether `user` is listed in `group`.
    pub fn is_member(&self, user: &str, group: &str) -> bool {
        self.groups.get(group).is_some_and(|m| m.contains(user))
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether the file has no group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Parses a `qtgroups` file. A group named on several lines gets the union
/// of their members; malformed lines are returned as problems and skipped.
pub fn parse_groups(text: &str) -> (GroupsFile, Vec<LineProblem>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut file = GroupsFile::default();
    let mut problems = Vec::new();
    for (i, l) in lines(text).enumerate() {
        if is_skipped(l) {
            continue;
        }
        let Some((group, members)) = l.split_once(':') else {
            problems.push(LineProblem {
                line: i + 1,
                message: "expected `group: user1 user2 …`".into(),
            });
            continue;
        };
        let group = group.trim_matches([' ', '\t']);
        if group.is_empty() || group.contains([' ', '\t']) {
            problems.push(LineProblem {
                line: i + 1,
                message: format!("bad group name {group:?}"),
            });
            continue;
        }
        file.groups.entry(group.to_string()).or_default().extend(
            members
                .split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .map(str::to_string),
        );
    }
    (file, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the exact format of DSS's `qtpasswd`: the DES crypt field is
    /// glibc `crypt(3)` output with a 2-character salt, the third field
    /// MD5(user:realm:password) (both made with Python's `crypt` and
    /// `hashlib`, not with this code), and a comment line.
    const DSS_QTUSERS: &str = "realm Streaming Server\n\
        # comment kept by admins\n\
        aaa:ZV3vr/OTUD6rE:51ceda728578451777263dd710a9ab5c\n\
        Mufasa:v6C2UxB4lw7GY:5d08fde125f0a069131a8284af1950a9\n";

    #[test]
    fn dss_qtusers_file() {
        let (f, problems) = parse_users(DSS_QTUSERS).expect("valid");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(f.realm, "Streaming Server");
        assert_eq!(f.len(), 2);
        // aaa's HA1 is MD5("aaa:Streaming Server:aaa").
        let ha1 = f.ha1("aaa").expect("aaa");
        assert!(ha1.ct_eq(&Ha1::compute("aaa", "Streaming Server", b"aaa")));
        assert!(!ha1.ct_eq(&Ha1::compute("aaa", "Streaming Server", b"aab")));
        assert!(f.ha1("AAA").is_none());
        let m = f.ha1("Mufasa").expect("Mufasa");
        assert!(m.ct_eq(&Ha1::compute(
            "Mufasa",
            "Streaming Server",
            b"Circle Of Life"
        )));
        assert!(!format!("{f:?}").contains("51ceda"));
    }

    #[test]
    fn users_file_problems() {
        let text = "\n# header\r\nrealm  My Realm \r\n\
            bob:x\r\n\
            :x:fcd1d1b1d2e4288f6eddc5d5c99b43a9\r\n\
            eve:x:nothex\r\n\
            ann:x:fcd1d1b1d2e4288f6eddc5d5c99b43a9\r\n\
            ann:y:00000000000000000000000000000000\r\n";
        let (f, problems) = parse_users(text).expect("realm is fine");
        assert_eq!(f.realm, "My Realm");
        assert_eq!(f.len(), 1);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [4, 5, 6, 8]);
        assert!(problems[3].message.contains("first line is used"));
        // The first of a duplicated user wins.
        assert!(f
            .ha1("ann")
            .expect("ann")
            .ct_eq(&Ha1::from_hex("fcd1d1b1d2e4288f6eddc5d5c99b43a9").expect("hex")));

        assert_eq!(parse_users("").expect_err("empty").line, 1);
        assert_eq!(
            parse_users("# c\nbob:x:fcd1d1b1d2e4288f6eddc5d5c99b43a9\n")
                .expect_err("no realm")
                .line,
            2
        );
        assert!(parse_users("realm\n").is_err());
        assert!(parse_users("realmX y\n").is_err());
        assert!(parse_users("realm a\"b\n").is_err());
    }

    #[test]
    fn groups_file() {
        let (g, problems) = parse_groups(
            "admins: alice bob\n# c\nstaff:carol\t alice\nbroken line\nadmins: dave\n",
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 4);
        assert!(g.is_member("alice", "admins"));
        assert!(g.is_member("dave", "admins"));
        assert!(g.is_member("alice", "staff"));
        assert!(!g.is_member("carol", "admins"));
        assert!(!g.is_member("alice", "nobody"));
        assert_eq!(g.len(), 2);
    }
}
