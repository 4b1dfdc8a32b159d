//! The loaded rules snapshot: every access, users and groups file read once
//! (at startup and on reload, off the shards) into an immutable value that
//! [`AccessRules::decide`] consults without I/O.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::{AuthConfig, AuthConfigError, AuthScheme, SignedUrlMode};
use super::qtaccess::{self, Requirement, ACCESS_FILE_NAME, MAX_ACCESS_FILE_LEN};
use super::read_limited;
use super::secret::{Secret, SecretError};
use super::subnet::SubnetRule;
use super::users::{self, GroupsFile, UsersFile, MAX_USERS_FILE_LEN};

/// Deepest folder level walked below the media root.
pub const MAX_DEPTH: usize = 64;

/// File names never served, whatever the configuration (compared without
/// regard to case): DSS's access file and its conventional users and groups
/// file names.
pub const PROTECTED_NAMES: &[&str] = &[ACCESS_FILE_NAME, "qtusers", "qtgroups"];

/// Why the rules cannot be loaded at all (the server should not start, or a
/// reload should keep the previous snapshot).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The `[auth]` section is invalid.
    #[error(transparent)]
    Config(#[from] AuthConfigError),
    /// A key file named by the configuration is unusable.
    #[error("{key}: {source}")]
    Secret {
        /// `url_secret_file` or `nonce_secret_file`.
        key: &'static str,
        /// What is wrong.
        source: SecretError,
    },
    /// The media folder cannot be read.
    #[error("cannot read media folder {path}: {source}")]
    MediaRoot {
        /// The folder.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
}

/// A problem found while loading that does not stop the server: the part
/// it affects fails closed (a broken access file refuses everything below
/// it; an unusable users file refuses every user; a bad user line refuses
/// that user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// The file (or folder).
    pub file: PathBuf,
    /// 1-based line, when the problem is on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A users or groups file as loaded: the file, or why it is unusable.
#[derive(Debug)]
pub(crate) struct Loaded<T> {
    pub(crate) path: PathBuf,
    pub(crate) file: Result<T, String>,
}

/// The READ rules of one folder.
#[derive(Debug)]
pub(crate) enum Policy {
    /// The access file (or its folder) could not be loaded: refuse.
    Broken { file: PathBuf, error: String },
    /// Parsed and resolved.
    Rules(Rules),
}

#[derive(Debug)]
pub(crate) struct Rules {
    /// The access file; `None` for `require_auth_by_default`.
    pub(crate) file: Option<PathBuf>,
    pub(crate) scheme: AuthScheme,
    pub(crate) auth_name: Option<String>,
    pub(crate) require: Vec<Requirement>,
    /// Loaded when a requirement needs a user.
    pub(crate) users: Option<Arc<Loaded<UsersFile>>>,
    /// Loaded when a `require group` needs it.
    pub(crate) groups: Option<Arc<Loaded<GroupsFile>>>,
}

/// The immutable access-control snapshot shared by every shard (`Arc`).
///
/// Built by [`AccessRules::load`]; consulted by [`AccessRules::decide`] and
/// [`AccessRules::is_protected_file`], which do no I/O, take no lock and
/// read no clock. Changes to access, users or groups files take effect at
/// the next load (startup or reload). `Debug` shows no key.
pub struct AccessRules {
    /// Folder key (catalog path of the folder, `""` for the root) → the
    /// policy of the access file in it.
    pub(crate) folders: HashMap<String, Arc<Policy>>,
    /// The policy when no access file applies and `require_auth_by_default`.
    pub(crate) default_policy: Option<Arc<Policy>>,
    /// Catalog paths of files that are the configured users, groups or key
    /// files (by inode, so links and renames are caught).
    pub(crate) protected: HashSet<String>,
    pub(crate) subnets: Vec<SubnetRule>,
    pub(crate) signed_urls: SignedUrlMode,
    pub(crate) url_key: Option<Secret>,
    pub(crate) nonce_key: Secret,
    pub(crate) nonce_lifetime_s: u64,
    problems: Vec<LoadProblem>,
}

impl fmt::Debug for AccessRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessRules")
            .field("access_files", &self.folders.len())
            .field("require_auth_by_default", &self.default_policy.is_some())
            .field("protected", &self.protected.len())
            .field("subnet_rules", &self.subnets.len())
            .field("signed_urls", &self.signed_urls)
            .field("nonce_lifetime_s", &self.nonce_lifetime_s)
            .field("problems", &self.problems.len())
            .finish_non_exhaustive()
    }
}

/// What the walk of the media folder found.
#[derive(Default)]
struct Walk {
    /// (folder key, physical folder) of every `qtaccess` file.
    access_files: Vec<(String, PathBuf)>,
    /// (catalog path, device, inode) of every regular file.
    files: Vec<(String, u64, u64)>,
    /// Folders that could not be read or are too deep: closed.
    closed: Vec<(String, PathBuf, String)>,
}

impl AccessRules {
    /// Reads every access file under `media_root` (the first `qtaccess`
    /// walking up from a file's folder applies, as in DSS) and the users
    /// and groups files they and `cfg` name, and the key files.
    ///
    /// `startup_nonce_key` is the Digest nonce key to use when
    /// `cfg.nonce_secret_file` is not set: draw it once per process
    /// ([`Secret::random`]) and pass the same one to every reload, so nonces
    /// issued before a reload stay valid.
    ///
    /// Errors only for what makes the whole configuration unusable
    /// ([`LoadError`]); broken access, users or groups files are reported in
    /// [`AccessRules::problems`] and fail closed.
    pub fn load(
        media_root: &Path,
        cfg: &AuthConfig,
        startup_nonce_key: &Secret,
    ) -> Result<AccessRules, LoadError> {
        let subnets = cfg.subnet_rules()?;
        let nonce_key = match &cfg.nonce_secret_file {
            Some(p) => Secret::read_file(p).map_err(|source| LoadError::Secret {
                key: "nonce_secret_file",
                source,
            })?,
            None => startup_nonce_key.clone(),
        };
        let url_key = match (cfg.signed_urls, &cfg.url_secret_file) {
            (SignedUrlMode::Off, _) | (_, None) => None,
            (_, Some(p)) => Some(Secret::read_file(p).map_err(|source| LoadError::Secret {
                key: "url_secret_file",
                source,
            })?),
        };
        let walk = walk(media_root).map_err(|source| LoadError::MediaRoot {
            path: media_root.to_path_buf(),
            source,
        })?;

        let mut loader = Loader::default();
        let mut folders = HashMap::new();
        for (key, dir, error) in &walk.closed {
            loader.problems.push(LoadProblem {
                file: dir.clone(),
                line: None,
                message: error.clone(),
            });
            folders.insert(
                key.clone(),
                Arc::new(Policy::Broken {
                    file: dir.clone(),
                    error: error.clone(),
                }),
            );
        }
        for (key, dir) in &walk.access_files {
            if folders.contains_key(key) {
                continue;
            }
            let policy = loader.access_file(dir, cfg);
            folders.insert(key.clone(), Arc::new(policy));
        }
        let default_policy = cfg.require_auth_by_default.then(|| {
            let users = Some(loader.users(&cfg.users_file));
            Arc::new(Policy::Rules(Rules {
                file: None,
                scheme: cfg.auth_scheme,
                auth_name: None,
                require: vec![Requirement::ValidUser],
                users,
                groups: None,
            }))
        });

        // Every users, groups and key file, by identity.
        let mut secret_paths: Vec<&Path> = vec![&cfg.users_file, &cfg.groups_file];
        secret_paths.extend(cfg.url_secret_file.as_deref());
        secret_paths.extend(cfg.nonce_secret_file.as_deref());
        let ids: HashSet<(u64, u64)> = secret_paths
            .into_iter()
            .chain(loader.referenced.iter().map(PathBuf::as_path))
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| (m.dev(), m.ino()))
            .collect();
        let protected = walk
            .files
            .into_iter()
            .filter(|(_, dev, ino)| ids.contains(&(*dev, *ino)))
            .map(|(key, _, _)| key)
            .collect();

        Ok(AccessRules {
            folders,
            default_policy,
            protected,
            subnets,
            signed_urls: cfg.signed_urls,
            url_key,
            nonce_key,
            nonce_lifetime_s: cfg.nonce_lifetime,
            problems: loader.problems,
        })
    }

    /// Problems found by the load, each failing closed (see [`LoadProblem`]);
    /// log them, and a reload may refuse a snapshot that has any.
    pub fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    /// Whether `catalog_path` names a file that is never served (answer
    /// 404): a file named `qtaccess`, `qtusers` or `qtgroups` (any case) in
    /// any folder, or one that is (by inode, at load time) a configured
    /// users, groups, nonce-key or URL-key file, or one an access file names.
    pub fn is_protected_file(&self, catalog_path: &str) -> bool {
        let name = catalog_path.rsplit('/').next().unwrap_or(catalog_path);
        PROTECTED_NAMES.iter().any(|p| p.eq_ignore_ascii_case(name))
            || self.protected.contains(catalog_path)
    }

    /// The access file that applies to `catalog_path`, if any (for
    /// diagnostics; `decide` uses the same lookup).
    pub fn access_file_for(&self, catalog_path: &str) -> Option<&Path> {
        match self.policy_for(catalog_path)?.as_ref() {
            Policy::Broken { file, .. } => Some(file),
            Policy::Rules(r) => r.file.as_deref(),
        }
    }

    /// The signed-URL mode in force.
    pub fn signed_urls(&self) -> SignedUrlMode {
        self.signed_urls
    }

    /// The policy of the nearest folder with an access file, walking up
    /// from `catalog_path`'s folder to the root.
    pub(crate) fn policy_for(&self, catalog_path: &str) -> Option<&Arc<Policy>> {
        let mut dir = catalog_path.rsplit_once('/').map_or("", |(d, _)| d);
        loop {
            if let Some(p) = self.folders.get(dir) {
                return Some(p);
            }
            if dir.is_empty() {
                return None;
            }
            dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
        }
    }
}

/// Reads users and groups files once each, however many access files name
/// them.
#[derive(Default)]
struct Loader {
    users: HashMap<PathBuf, Arc<Loaded<UsersFile>>>,
    groups: HashMap<PathBuf, Arc<Loaded<GroupsFile>>>,
    /// Every users or groups file an access file names, loaded or not.
    referenced: Vec<PathBuf>,
    problems: Vec<LoadProblem>,
}

impl Loader {
    fn problem(&mut self, file: &Path, line: Option<usize>, message: String) {
        self.problems.push(LoadProblem {
            file: file.to_path_buf(),
            line,
            message,
        });
    }

    fn access_file(&mut self, dir: &Path, cfg: &AuthConfig) -> Policy {
        let path = dir.join(ACCESS_FILE_NAME);
        let parsed = match read_limited(&path, MAX_ACCESS_FILE_LEN) {
            Err(e) => Err((None, format!("cannot read: {e}"))),
            Ok(None) => Err((None, format!("larger than {MAX_ACCESS_FILE_LEN} bytes"))),
            Ok(Some(bytes)) => {
                qtaccess::parse_bytes(&bytes).map_err(|e| (Some(e.line), e.to_string()))
            }
        };
        let file = match parsed {
            Ok(f) => f,
            Err((line, error)) => {
                self.problem(&path, line, error.clone());
                return Policy::Broken { file: path, error };
            }
        };
        let resolve = |p: &Option<String>, default: &Path| match p {
            Some(p) => dir.join(p),
            None => default.to_path_buf(),
        };
        let users_path = resolve(&file.user_file, &cfg.users_file);
        let groups_path = resolve(&file.group_file, &cfg.groups_file);
        self.referenced.push(users_path.clone());
        self.referenced.push(groups_path.clone());
        let needs_users = file.require.iter().any(|r| *r != Requirement::AnyUser);
        let needs_groups = file
            .require
            .iter()
            .any(|r| matches!(r, Requirement::Groups(_)));
        let users = needs_users.then(|| self.users(&users_path));
        let groups = needs_groups.then(|| self.groups(&groups_path));
        Policy::Rules(Rules {
            file: Some(path),
            scheme: file.auth_scheme.unwrap_or(cfg.auth_scheme),
            auth_name: file.auth_name,
            require: file.require,
            users,
            groups,
        })
    }

    fn read_text(&mut self, path: &Path) -> Result<String, String> {
        let bytes = match read_limited(path, MAX_USERS_FILE_LEN) {
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(None) => Err(format!("larger than {MAX_USERS_FILE_LEN} bytes")),
            Ok(Some(b)) => Ok(b),
        }?;
        String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())
    }

    fn users(&mut self, path: &Path) -> Arc<Loaded<UsersFile>> {
        if let Some(u) = self.users.get(path) {
            return u.clone();
        }
        let file = match self.read_text(path) {
            Err(e) => Err(e),
            Ok(text) => match users::parse_users(&text) {
                Ok((file, line_problems)) => {
                    for p in line_problems {
                        self.problem(path, Some(p.line), p.message);
                    }
                    Ok(file)
                }
                Err(p) => Err(p.to_string()),
            },
        };
        if let Err(e) = &file {
            self.problem(path, None, format!("users file unusable: {e}"));
        }
        let loaded = Arc::new(Loaded {
            path: path.to_path_buf(),
            file,
        });
        self.users.insert(path.to_path_buf(), loaded.clone());
        loaded
    }

    fn groups(&mut self, path: &Path) -> Arc<Loaded<GroupsFile>> {
        if let Some(g) = self.groups.get(path) {
            return g.clone();
        }
        let file = self.read_text(path).map(|text| {
            let (file, line_problems) = users::parse_groups(&text);
            for p in line_problems {
                self.problem(path, Some(p.line), p.message);
            }
            file
        });
        if let Err(e) = &file {
            self.problem(path, None, format!("groups file unusable: {e}"));
        }
        let loaded = Arc::new(Loaded {
            path: path.to_path_buf(),
            file,
        });
        self.groups.insert(path.to_path_buf(), loaded.clone());
        loaded
    }
}

/// Walks the media folder as the catalog does (following symbolic links),
/// recording access files, every file's identity, and folders that cannot
/// be read (closed). A folder that is its own ancestor (a link loop) is not
/// entered again. Errors only when the root itself cannot be read.
fn walk(root: &Path) -> std::io::Result<Walk> {
    let mut out = Walk::default();
    let root_canon = std::fs::canonicalize(root)?;
    // Read the root eagerly so its error is the caller's.
    let first = std::fs::read_dir(root)?;
    let mut stack = vec![(
        root.to_path_buf(),
        String::new(),
        vec![root_canon],
        Some(first),
    )];
    while let Some((dir, key, ancestors, entries)) = stack.pop() {
        let entries = match entries.map_or_else(|| std::fs::read_dir(&dir), Ok) {
            Ok(e) => e,
            Err(e) => {
                out.closed
                    .push((key, dir, format!("cannot read folder: {e}; closed")));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.closed.push((
                        key.clone(),
                        dir.clone(),
                        format!("cannot list folder: {e}; closed"),
                    ));
                    break;
                }
            };
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue; // Not UTF-8: the catalog cannot serve it either.
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // Dangling link.
            };
            let child = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}/{name}")
            };
            if meta.is_dir() {
                if ancestors.len() > MAX_DEPTH {
                    out.closed.push((
                        child,
                        path,
                        format!("deeper than {MAX_DEPTH} levels; closed"),
                    ));
                    continue;
                }
                let Ok(canon) = std::fs::canonicalize(&path) else {
                    continue;
                };
                if ancestors.contains(&canon) {
                    continue;
                }
                let mut a = ancestors.clone();
                a.push(canon);
                stack.push((path, child, a, None));
            } else if meta.is_file() {
                if name == ACCESS_FILE_NAME {
                    out.access_files.push((key.clone(), dir.clone()));
                }
                out.files.push((child, meta.dev(), meta.ino()));
            }
        }
    }
    Ok(out)
}
