//! Turning a media file into a [`FileSchedule`]: hinted files go through the
//! hint-track compiler of `cadence-hinting`.

use std::path::Path;

use cadence_hinting::FileSchedule;

use crate::catalog::CatalogError;

/// Loads and compiles `full` (served as catalog path `path`).
/// Errors: [`CatalogError::Unsupported`] for a file without hint tracks,
/// [`CatalogError::Corrupt`] for a file the compiler rejects.
pub fn load(full: &Path, path: &str) -> Result<FileSchedule, CatalogError> {
    cadence_hinting::open(full).map_err(|e| CatalogError::Corrupt {
        path: path.to_string(),
        reason: e.to_string(),
    })
}
