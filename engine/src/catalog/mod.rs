//! The media catalog: which files are served, by catalog path (relative to
//! the media folder, '/'-separated, no leading slash), and their compiled
//! schedules, built once and shared read-only by every shard and session.
//!
//! [`Catalog`] is the interface the RTSP controller sees. Shards only call
//! [`Catalog::lookup`], which never blocks and never touches the disk: a file
//! that still needs compiling answers [`Lookup::Pending`], and the server's
//! compile thread calls [`Catalog::compile`]. Two implementations:
//! - [`FsCatalog`]: the files of a media folder on disk (the server's);
//! - [`MemoryCatalog`]: schedules compiled from bytes in memory, for tests and
//!   for embedding Cadence without a media folder.
//!
//! [`CompileLimits`] carries the operator's compile budgets and the memory
//! limit of the schedules held; [`FsCatalog`] evicts unused schedules (least
//! recently used first) to stay within it, on the compile thread, while the
//! shards' lookups stay lock-free.

mod error;
mod fs;
mod limits;
mod load;
mod memory;
mod resident;

use std::sync::Arc;

use cadence_hinting::FileSchedule;

pub use error::CatalogError;
pub use fs::{FsCatalog, RescanReport, EXTENSIONS};
pub use limits::{CompileLimits, DEFAULT_COMPILE_TIMEOUT_MS};
pub use load::{cache_name, load, PLAIN_MTU};
pub use memory::MemoryCatalog;
pub use resident::{schedule_heap_bytes, MemoryStats, PICKUP_GRACE};

/// The answer of a non-blocking [`Catalog::lookup`].
#[derive(Debug)]
pub enum Lookup {
    /// Compiled, or known not to be servable (the error says why).
    Ready(Result<Arc<FileSchedule>, CatalogError>),
    /// The file exists but is not compiled yet: have [`Catalog::compile`]
    /// run off the shard, then look it up again.
    Pending,
}

/// A set of servable files and their compiled schedules.
///
/// Implementations are shared by every shard (`Arc<dyn Catalog>`), so they
/// are `Send + Sync`; [`Catalog::lookup`] runs on shard threads and must not
/// block, [`Catalog::compile`] runs on the compile thread and may.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// The schedules of catalog path `path` if compiled, the reason it cannot
    /// be served, or [`Lookup::Pending`]. Never blocks, never does I/O.
    fn lookup(&self, path: &str) -> Lookup;

    /// Compiles `path` (blocking; called off the shards), or returns the
    /// schedules compiled before. Errors: [`CatalogError`].
    fn compile(&self, path: &str) -> Result<Arc<FileSchedule>, CatalogError>;

    /// Number of servable files.
    fn len(&self) -> usize;

    /// True when there is no servable file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every catalog path, sorted.
    fn paths(&self) -> Vec<String>;

    /// Looks at the media again (blocking; off the shards), for a catalog
    /// backed by a folder: `None` for a catalog that cannot change.
    fn rescan(&self) -> Option<std::io::Result<RescanReport>> {
        None
    }

    /// Applies new compile budgets and schedule memory limit (blocking; off
    /// the shards). A catalog that compiles nothing ignores them.
    fn set_limits(&self, _limits: &CompileLimits) {}

    /// Housekeeping of the schedule memory, run by the compile thread about
    /// every second (see [`FsCatalog`]): forgets freed schedules, evicts
    /// down to a lowered limit, lets refused files be compiled again.
    fn maintain(&self) {}

    /// The schedule memory figures, for a catalog that keeps them.
    fn memory(&self) -> Option<MemoryStats> {
        None
    }
}
