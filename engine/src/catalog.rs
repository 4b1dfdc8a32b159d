//! The media catalog: every file under the media folder, by its relative path,
//! with its compiled schedules built once on first use and shared read-only by
//! every shard and session.
//!
//! Lookups happen on DESCRIBE and SETUP only, never on the packet path; the
//! schedules themselves are immutable `Arc<FileSchedule>`s.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use cadence_hinting::FileSchedule;

/// File name extensions the catalog serves (ISO BMFF family).
pub const EXTENSIONS: &[&str] = &["mp4", "m4v", "m4a", "mov", "3gp", "3g2"];

/// Why a catalog path cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    /// No such file under the media folder (RTSP 404).
    #[error("no such file: {0}")]
    NotFound(String),
    /// The file is readable but its media cannot be streamed: no hint tracks and
    /// no codec we can packetize (RTSP 415).
    #[error("{path}: unsupported media: {reason}")]
    Unsupported {
        /// Catalog path.
        path: String,
        /// What is unsupported.
        reason: String,
    },
    /// The file is corrupt or truncated (RTSP 500); the reason names the box or
    /// sample at fault.
    #[error("{path}: {reason}")]
    Corrupt {
        /// Catalog path.
        path: String,
        /// The hinting layer's error.
        reason: String,
    },
}

type Compiled = OnceLock<Result<Arc<FileSchedule>, CatalogError>>;

/// The answer of a non-blocking [`Catalog::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// Compiled (or failed to compile, or does not exist).
    Ready(Result<Arc<FileSchedule>, CatalogError>),
    /// Exists but is not compiled yet; with deferred compilation on, the
    /// caller must have it compiled elsewhere ([`Catalog::get`]) and ask again.
    Pending,
}

/// The set of servable files, keyed by path relative to the media folder
/// ('/'-separated, no leading slash).
#[derive(Debug)]
pub struct Catalog {
    root: PathBuf,
    hint_cache: Option<PathBuf>,
    deferred: bool,
    entries: RwLock<HashMap<String, Arc<Compiled>>>,
}

impl Catalog {
    /// Scans `root` recursively for files with one of [`EXTENSIONS`].
    /// Errors when `root` cannot be read.
    pub fn scan(root: &Path) -> std::io::Result<Catalog> {
        let mut entries = HashMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let path = entry.path();
                let meta = std::fs::metadata(&path)?;
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() && has_media_extension(&path) {
                    if let Some(rel) = relative_key(root, &path) {
                        entries.insert(rel, Arc::new(Compiled::new()));
                    }
                }
            }
        }
        Ok(Catalog {
            root: root.to_path_buf(),
            hint_cache: None,
            deferred: false,
            entries: RwLock::new(entries),
        })
    }

    /// Keeps schedules built for un-hinted files in `dir` between runs
    /// (created when missing). Errors when `dir` cannot be created.
    pub fn with_hint_cache(mut self, dir: &Path) -> std::io::Result<Catalog> {
        std::fs::create_dir_all(dir)?;
        self.hint_cache = Some(dir.to_path_buf());
        Ok(self)
    }

    /// Makes [`Catalog::lookup`] answer [`Lookup::Pending`] for files not yet
    /// compiled, instead of compiling them on the caller's thread (the server
    /// compiles on a background thread so that no shard stalls).
    pub fn with_deferred_compilation(mut self) -> Catalog {
        self.deferred = true;
        self
    }

    /// Non-blocking look-up: the compiled schedules of `path` if ready, the
    /// error if the path cannot be served, or [`Lookup::Pending`] when the
    /// file still needs compiling and compilation is deferred (otherwise it is
    /// compiled here, as [`Catalog::get`] does).
    pub fn lookup(&self, path: &str) -> Lookup {
        let cell = match self.entry(path) {
            Ok(c) => c,
            Err(e) => return Lookup::Ready(Err(e)),
        };
        match cell.get() {
            Some(r) => Lookup::Ready(r.clone()),
            None if self.deferred => Lookup::Pending,
            None => Lookup::Ready(cell.get_or_init(|| self.compile(path)).clone()),
        }
    }

    /// Number of files found.
    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    /// True when no servable file was found.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All catalog paths, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .entries
            .read()
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The compiled schedules of `path` (relative, '/'-separated), compiling
    /// them on first use. A file added to the folder after the scan is found
    /// too. Errors: [`CatalogError`].
    pub fn get(&self, path: &str) -> Result<Arc<FileSchedule>, CatalogError> {
        let cell = self.entry(path)?;
        cell.get_or_init(|| self.compile(path)).clone()
    }

    fn entry(&self, path: &str) -> Result<Arc<Compiled>, CatalogError> {
        if let Some(e) = self.entries.read().ok().and_then(|m| m.get(path).cloned()) {
            return Ok(e);
        }
        // Not seen at scan time: accept a regular media file inside the root.
        let safe = Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        let full = self.root.join(path);
        if !safe || !has_media_extension(&full) || !full.is_file() {
            return Err(CatalogError::NotFound(path.to_string()));
        }
        let mut map = self
            .entries
            .write()
            .map_err(|_| CatalogError::NotFound(path.to_string()))?;
        Ok(map.entry(path.to_string()).or_default().clone())
    }

    fn compile(&self, path: &str) -> Result<Arc<FileSchedule>, CatalogError> {
        let full = self.root.join(path);
        let started = std::time::Instant::now();
        let result = crate::media::load(&full, path, self.hint_cache.as_deref());
        match &result {
            Ok(f) => tracing::info!(
                path,
                tracks = f.tracks.len(),
                packets = f.tracks.iter().map(|t| t.packets.len()).sum::<usize>(),
                ms = started.elapsed().as_millis() as u64,
                "compiled schedule"
            ),
            Err(e) => tracing::warn!(path, error = %e, "cannot serve file"),
        }
        result.map(Arc::new)
    }
}

fn has_media_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

fn relative_key(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}
