//! [`FsCatalog`]: the media files under a folder on disk.
//!
//! The set of files is an immutable snapshot (a map from catalog path to an
//! entry), swapped atomically when the folder is scanned again
//! ([`FsCatalog::rescan`], run off the shards on SIGHUP), so that shards read
//! it without locks. Each entry compiles its file at most once; a file whose
//! size, mtime or inode changed since the last scan gets a fresh entry, so new
//! sessions see the new version while playing ones keep the schedules (and
//! the map) they hold.
//!
//! Compiles run within the [`CompileLimits`] budgets, and the schedules held
//! stay within its memory limit: to make room for a new one, the least
//! recently used schedules that no session holds are evicted (their files
//! compile again on their next use); when the schedules in use leave no room,
//! the file is refused ([`CatalogError::NoScheduleMemory`]) until they do.
//! Eviction and accounting happen on the compile side, under a lock shards
//! never take: a lookup reads the file set and the entry's cell lock-free.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use cadence_hinting::FileSchedule;

use super::resident::{schedule_heap_bytes, Cell, Residency};
use super::{load, Catalog, CatalogError, CompileLimits, Lookup, MemoryStats};
use crate::log_limit::LogLimiter;

/// File name extensions the catalog serves (ISO BMFF family).
pub const EXTENSIONS: &[&str] = &["mp4", "m4v", "m4a", "mov", "3gp", "3g2"];

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    len: u64,
    mtime_ns: i128,
    inode: u64,
    device: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    id: FileId,
    cell: Arc<Cell>,
}

type Files = HashMap<String, Arc<Entry>>;

/// What a [`FsCatalog::rescan`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescanReport {
    /// Catalog paths that appeared.
    pub added: Vec<String>,
    /// Catalog paths that disappeared.
    pub removed: Vec<String>,
    /// Catalog paths whose file changed (size, mtime or inode).
    pub changed: Vec<String>,
    /// Of `changed`, those rewritten in place (same inode): the mapped bytes
    /// of sessions playing the old version changed under them, so those
    /// sessions must end. A file replaced by a rename keeps its old inode
    /// mapped, and its sessions play on.
    pub changed_in_place: Vec<String>,
}

/// The servable files of a media folder.
#[derive(Debug)]
pub struct FsCatalog {
    root: PathBuf,
    hint_cache: Option<PathBuf>,
    files: ArcSwap<Files>,
    /// Serializes rescans (the media watcher and SIGHUP can ask at once), so
    /// that one never stores a snapshot built from an older one. Lookups do
    /// not take it.
    rescans: std::sync::Mutex<()>,
    /// Ticks of least-recently-used order, advanced by every lookup.
    clock: AtomicU64,
    compiler: Mutex<CompileSide>,
}

/// What only the compile side touches.
#[derive(Debug)]
struct CompileSide {
    limits: CompileLimits,
    residency: Residency,
    refusal_log: LogLimiter,
    epoch: Instant,
}

impl CompileSide {
    fn new(limits: CompileLimits) -> Self {
        CompileSide {
            residency: Residency::new(limits.schedule_memory_bytes),
            limits,
            refusal_log: LogLimiter::new(3, 10_000_000),
            epoch: Instant::now(),
        }
    }
}

impl FsCatalog {
    /// Scans `root` recursively for files with one of [`EXTENSIONS`].
    /// Errors when `root` cannot be read.
    pub fn scan(root: &Path) -> std::io::Result<FsCatalog> {
        let files = scan_folder(root, &Files::new())?;
        Ok(FsCatalog {
            root: root.to_path_buf(),
            hint_cache: None,
            files: ArcSwap::from_pointee(files),
            rescans: std::sync::Mutex::new(()),
            clock: AtomicU64::new(1),
            compiler: Mutex::new(CompileSide::new(CompileLimits::default())),
        })
    }

    /// Compiles within `limits` (budgets and schedule memory) instead of
    /// [`CompileLimits::default()`].
    pub fn with_limits(self, limits: CompileLimits) -> FsCatalog {
        FsCatalog::set_limits(&self, &limits);
        self
    }

    /// Keeps schedules built for un-hinted files in `dir` between runs
    /// (created when missing). Errors when `dir` cannot be created.
    pub fn with_hint_cache(mut self, dir: &Path) -> std::io::Result<FsCatalog> {
        std::fs::create_dir_all(dir)?;
        self.hint_cache = Some(dir.to_path_buf());
        Ok(self)
    }

    /// The media folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Scans the folder again (blocking: call it off the shards) and swaps in
    /// the new file set: new files become servable, removed ones answer 404,
    /// changed ones are compiled again on their next use. Sessions already
    /// playing keep the schedules they hold. Errors when the folder cannot be
    /// read (the old file set stays).
    pub fn rescan(&self) -> std::io::Result<RescanReport> {
        let _one_at_a_time = self
            .rescans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.files.load_full();
        let new = scan_folder(&self.root, &old)?;
        let mut report = RescanReport::default();
        for (path, entry) in &new {
            match old.get(path) {
                None => report.added.push(path.clone()),
                Some(e) if !Arc::ptr_eq(e, entry) => {
                    report.changed.push(path.clone());
                    if e.id.inode == entry.id.inode && e.id.device == entry.id.device {
                        report.changed_in_place.push(path.clone());
                    }
                }
                Some(_) => {}
            }
        }
        report.removed = old
            .keys()
            .filter(|p| !new.contains_key(*p))
            .cloned()
            .collect();
        report.added.sort();
        report.removed.sort();
        report.changed.sort();
        report.changed_in_place.sort();
        self.files.store(Arc::new(new));
        Ok(report)
    }

    fn entry(&self, path: &str) -> Option<Arc<Entry>> {
        self.files.load().get(path).cloned()
    }

    fn side(&self) -> std::sync::MutexGuard<'_, CompileSide> {
        self.compiler.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `cell` is still the entry of `path` in the current file set.
    fn is_current(&self, path: &str, cell: &Arc<Cell>) -> bool {
        self.files
            .load()
            .get(path)
            .is_some_and(|e| Arc::ptr_eq(&e.cell, cell))
    }

    fn build(&self, path: &str, limits: &CompileLimits) -> Result<Arc<FileSchedule>, CatalogError> {
        let full = self.root.join(path);
        let started = std::time::Instant::now();
        let result = load(&full, path, self.hint_cache.as_deref(), &limits.budget());
        match &result {
            Ok(f) => tracing::info!(
                path,
                tracks = f.tracks.len(),
                packets = f.tracks.iter().map(|t| t.packets.len()).sum::<usize>(),
                bytes = schedule_heap_bytes(f),
                ms = started.elapsed().as_millis() as u64,
                "compiled schedule"
            ),
            // One line per file version (the outcome is kept).
            Err(e) => tracing::warn!(path, error = %e, "cannot serve file"),
        }
        result.map(Arc::new)
    }
}

impl Catalog for FsCatalog {
    fn lookup(&self, path: &str) -> Lookup {
        match self.entry(path) {
            None => Lookup::Ready(Err(CatalogError::NotFound(path.to_string()))),
            Some(e) => match e.cell.lookup(&self.clock) {
                Some(r) => Lookup::Ready(r),
                None => Lookup::Pending,
            },
        }
    }

    fn compile(&self, path: &str) -> Result<Arc<FileSchedule>, CatalogError> {
        let mut side = self.side();
        let entry = self
            .entry(path)
            .ok_or_else(|| CatalogError::NotFound(path.to_string()))?;
        if let Some(done) = entry.cell.get() {
            return done;
        }
        let result = match self.build(path, &side.limits) {
            Ok(file) => {
                let bytes = schedule_heap_bytes(&file);
                let admitted = side.residency.admit(
                    path,
                    &entry.cell,
                    &file,
                    bytes,
                    Instant::now(),
                    &|p, c| self.is_current(p, c),
                );
                match admitted {
                    Ok(()) => Ok(file),
                    Err(short) => {
                        let e = short.error(path);
                        let now_us = side.epoch.elapsed().as_micros() as u64;
                        if let Some(suppressed) = side.refusal_log.allow(now_us) {
                            tracing::warn!(
                                path,
                                need = short.need,
                                limit = short.limit,
                                pinned = short.pinned,
                                suppressed,
                                "schedule memory full (--schedule-memory-mb): refusing the file until schedules in use are released"
                            );
                        }
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        };
        entry.cell.set(result.clone());
        result
    }

    fn len(&self) -> usize {
        self.files.load().len()
    }

    fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.files.load().keys().cloned().collect();
        v.sort();
        v
    }

    fn rescan(&self) -> Option<std::io::Result<RescanReport>> {
        Some(FsCatalog::rescan(self))
    }

    /// New budgets make the files refused under the old ones compile again
    /// on their next use; a new memory limit applies from the next compile
    /// (a lowered one evicts at the next [`Catalog::maintain`]).
    fn set_limits(&self, limits: &CompileLimits) {
        let mut side = self.side();
        if side.limits.budgets_differ(limits) {
            for e in self.files.load().values() {
                if matches!(e.cell.get(), Some(Err(CatalogError::OverBudget { .. }))) {
                    e.cell.clear();
                }
            }
        }
        side.residency.set_limit(limits.schedule_memory_bytes);
        side.limits = limits.clone();
    }

    fn maintain(&self) {
        let mut side = self.side();
        side.residency
            .maintain(Instant::now(), &|p, c| self.is_current(p, c));
    }

    fn memory(&self) -> Option<MemoryStats> {
        Some(self.side().residency.stats())
    }
}

/// Walks `root`, keeping the entries of `old` whose file did not change.
fn scan_folder(root: &Path, old: &Files) -> std::io::Result<Files> {
    let mut files = Files::new();
    let mut stack = vec![root.to_path_buf()];
    let mut first = true;
    while let Some(dir) = stack.pop() {
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            // The root must be readable; a subfolder that is not is skipped.
            Err(e) if first => return Err(e),
            Err(e) => {
                tracing::warn!(folder = %dir.display(), error = %e, "cannot read media subfolder");
                continue;
            }
        };
        first = false;
        for entry in listing.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && has_media_extension(&path) {
                let Some(rel) = relative_key(root, &path) else {
                    continue;
                };
                let id = FileId::of(&meta);
                let entry = match old.get(&rel) {
                    Some(e) if e.id == id => e.clone(),
                    _ => Arc::new(Entry {
                        id,
                        cell: Arc::new(Cell::default()),
                    }),
                };
                files.insert(rel, entry);
            }
        }
    }
    Ok(files)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescan_adds_removes_and_notices_changes() {
        let dir = std::env::temp_dir().join(format!("cadence-fscat-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("a.mp4"), b"x").expect("write");
        std::fs::write(dir.join("notes.txt"), b"x").expect("write");
        let c = FsCatalog::scan(&dir).expect("scan");
        assert_eq!(c.paths(), vec!["a.mp4".to_string()]);
        assert!(matches!(c.lookup("a.mp4"), Lookup::Pending));
        assert!(matches!(
            c.lookup("b.mp4"),
            Lookup::Ready(Err(CatalogError::NotFound(_)))
        ));
        // A corrupt file compiles to an error once, which lookups then see.
        assert!(matches!(
            c.compile("a.mp4"),
            Err(CatalogError::Corrupt { .. })
        ));
        assert!(matches!(c.lookup("a.mp4"), Lookup::Ready(Err(_))));

        std::fs::write(dir.join("sub/b.mp4"), b"y").expect("write");
        std::fs::write(dir.join("a.mp4"), b"longer").expect("rewrite");
        let r = c.rescan().expect("rescan");
        assert_eq!(r.added, vec!["sub/b.mp4".to_string()]);
        assert_eq!(r.changed, vec!["a.mp4".to_string()]);
        assert_eq!(r.changed_in_place, vec!["a.mp4".to_string()]);
        assert!(matches!(c.lookup("a.mp4"), Lookup::Pending));
        std::fs::remove_file(dir.join("sub/b.mp4")).expect("rm");
        // Replaced by a rename: a new inode.
        std::fs::write(dir.join("a.tmp"), b"other bytes").expect("write");
        std::fs::rename(dir.join("a.tmp"), dir.join("a.mp4")).expect("rename");
        let r = c.rescan().expect("rescan");
        assert_eq!(r.removed, vec!["sub/b.mp4".to_string()]);
        assert_eq!(r.changed, vec!["a.mp4".to_string()]);
        assert!(r.changed_in_place.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
