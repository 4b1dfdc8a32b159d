//! Turning a media file into a [`FileSchedule`]: hinted files go through the
//! hint-track compiler of `cadence-hinting`; files without hint tracks are
//! packetized in memory by the same packetizers `cadence-hint` uses.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use cadence_hinting::error::HintError;
use cadence_hinting::packetize::plain::schedule_plain;
use cadence_hinting::FileSchedule;
use memmap2::Mmap;

use crate::catalog::CatalogError;

/// MTU for packetizing un-hinted files, bytes (RTP header included), as
/// `cadence-hint`'s default.
pub const PLAIN_MTU: u32 = 1450;

/// Loads and compiles `full` (served as catalog path `path`).
/// Errors: [`CatalogError::Unsupported`] for a file with no hint track and no
/// track we can packetize; [`CatalogError::Corrupt`] for a file that cannot be
/// read or that the compiler rejects (the reason names the box or sample).
pub fn load(full: &Path, path: &str) -> Result<FileSchedule, CatalogError> {
    let corrupt = |reason: String| CatalogError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let file = File::open(full).map_err(|e| corrupt(format!("cannot open: {e}")))?;
    // SAFETY: the map is read-only; the catalog's contract is that served
    // files are not modified in place while the server runs.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| corrupt(format!("cannot map: {e}")))?;
    let map = Arc::new(map);
    match cadence_hinting::compile(map.clone()) {
        Ok(f) => Ok(f),
        Err(HintError::NoHintTracks) => match schedule_plain(map, PLAIN_MTU) {
            Ok(f) => {
                tracing::info!(path, "no hint tracks: packetized in memory");
                Ok(f)
            }
            Err(HintError::Unsupported { reason, .. }) => Err(CatalogError::Unsupported {
                path: path.to_string(),
                reason,
            }),
            Err(e) => Err(corrupt(e.to_string())),
        },
        Err(e) => Err(corrupt(e.to_string())),
    }
}
