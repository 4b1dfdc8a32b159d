//! [`MemoryCatalog`]: files compiled from bytes held in memory (an anonymous
//! map), with no media folder: controller and pipeline tests run without a
//! disk, and embedders can serve generated content.

use std::collections::HashMap;
use std::sync::Arc;

use cadence_hinting::packetize::plain::schedule_plain;
use cadence_hinting::{FileSchedule, HintError};
use memmap2::MmapMut;

use super::{Catalog, CatalogError, Lookup, PLAIN_MTU};

/// A fixed set of compiled files, keyed by catalog path. Every lookup is
/// ready at once.
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    files: HashMap<String, Result<Arc<FileSchedule>, CatalogError>>,
}

impl MemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        MemoryCatalog::default()
    }

    /// Adds the MP4/MOV/3GP file `bytes` as catalog path `path`: compiled
    /// from its hint tracks, or packetized (MTU [`PLAIN_MTU`]) when it has
    /// none. The outcome, including a compile error, is what lookups of
    /// `path` then answer. Errors: the anonymous map cannot be created.
    pub fn insert_bytes(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<&mut Self> {
        let mut map = MmapMut::map_anon(bytes.len().max(1))?;
        map[..bytes.len()].copy_from_slice(bytes);
        let map = Arc::new(map.make_read_only()?);
        let compiled = match cadence_hinting::compile(map.clone()) {
            Ok(f) => Ok(f),
            Err(HintError::NoHintTracks) => schedule_plain(map, PLAIN_MTU),
            Err(e) => Err(e),
        };
        let result = compiled.map(Arc::new).map_err(|e| match e {
            HintError::Unsupported { reason, .. } => CatalogError::Unsupported {
                path: path.to_string(),
                reason,
            },
            e => CatalogError::Corrupt {
                path: path.to_string(),
                reason: e.to_string(),
            },
        });
        self.files.insert(path.to_string(), result);
        Ok(self)
    }

    /// Adds an already compiled file as catalog path `path`.
    pub fn insert(&mut self, path: &str, file: Arc<FileSchedule>) -> &mut Self {
        self.files.insert(path.to_string(), Ok(file));
        self
    }
}

impl Catalog for MemoryCatalog {
    fn lookup(&self, path: &str) -> Lookup {
        Lookup::Ready(self.compile(path))
    }

    fn compile(&self, path: &str) -> Result<Arc<FileSchedule>, CatalogError> {
        self.files
            .get(path)
            .cloned()
            .unwrap_or_else(|| Err(CatalogError::NotFound(path.to_string())))
    }

    fn len(&self) -> usize {
        self.files.len()
    }

    fn paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.files.keys().cloned().collect();
        v.sort();
        v
    }
}
