//! Loading one media file into a [`FileSchedule`]: hinted files go through the
//! hint-track compiler of `cadence-hinting`; files without hint tracks are
//! packetized in memory by the same packetizers `cadence-hint` uses.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use cadence_hinting::cache::{self, CacheKey};
use cadence_hinting::error::HintError;
use cadence_hinting::packetize::plain::schedule_plain_with;
use cadence_hinting::{Budget, FileSchedule};
use memmap2::Mmap;

use super::CatalogError;

/// MTU for packetizing un-hinted files, bytes (RTP header included), as
/// `cadence-hint`'s default.
pub const PLAIN_MTU: u32 = 1450;

/// Loads and compiles `full` (served as catalog path `path`) within
/// `budget`. For an un-hinted file, the schedule built in memory is read from
/// and saved to `hint_cache` when given (keyed by file length, mtime and MTU).
/// Errors: [`CatalogError::Unsupported`] for a file with no hint track and no
/// track we can packetize; [`CatalogError::OverBudget`] for a file beyond
/// `budget` (the reason names the box and the limit);
/// [`CatalogError::Corrupt`] for a file that cannot be read or that the
/// compiler rejects (the reason names the box or sample).
pub fn load(
    full: &Path,
    path: &str,
    hint_cache: Option<&Path>,
    budget: &Budget,
) -> Result<FileSchedule, CatalogError> {
    let corrupt = |reason: String| CatalogError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let file = File::open(full).map_err(|e| corrupt(format!("cannot open: {e}")))?;
    // SAFETY: the map is read-only; the catalog's contract is that served
    // files are not modified in place while the server runs.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| corrupt(format!("cannot map: {e}")))?;
    let map = Arc::new(map);
    match cadence_hinting::compile_with(map.clone(), budget) {
        Ok(f) => Ok(f),
        Err(HintError::NoHintTracks) => {
            let cached = hint_cache.and_then(|dir| {
                let key = CacheKey::of(full, PLAIN_MTU).ok()?;
                Some((dir.join(cache_name(path)), key))
            });
            if let Some((file, key)) = &cached {
                if let Some(f) = cache::load_with(file, map.clone(), key, budget) {
                    tracing::info!(path, cache = %file.display(), "no hint tracks: schedule from the hint cache");
                    return Ok(f);
                }
            }
            let f = plain(map, path, budget)?;
            if let Some((file, key)) = &cached {
                match cache::save(file, &f, key) {
                    Ok(()) => {
                        tracing::info!(path, cache = %file.display(), "schedule saved to the hint cache")
                    }
                    Err(e) => {
                        tracing::warn!(path, cache = %file.display(), error = %e, "cannot write the hint cache")
                    }
                }
            }
            Ok(f)
        }
        Err(e) => Err(hint_error(path, e)),
    }
}

/// The catalog error of a hinting error other than "unsupported".
fn hint_error(path: &str, e: HintError) -> CatalogError {
    match e {
        e @ HintError::OverBudget { .. } => CatalogError::OverBudget {
            path: path.to_string(),
            reason: e.to_string(),
        },
        e => CatalogError::Corrupt {
            path: path.to_string(),
            reason: e.to_string(),
        },
    }
}

/// The cache file name of catalog path `path`: the path with '/' and '%'
/// escaped, plus `.schedule`.
pub fn cache_name(path: &str) -> String {
    let mut name = path.replace('%', "%25").replace('/', "%2F");
    name.push_str(".schedule");
    name
}

fn plain(map: Arc<Mmap>, path: &str, budget: &Budget) -> Result<FileSchedule, CatalogError> {
    match schedule_plain_with(map, PLAIN_MTU, budget) {
        Ok(f) => {
            tracing::info!(path, "no hint tracks: packetized in memory");
            Ok(f)
        }
        Err(HintError::Unsupported { reason, .. }) => Err(CatalogError::Unsupported {
            path: path.to_string(),
            reason,
        }),
        Err(e) => Err(hint_error(path, e)),
    }
}
