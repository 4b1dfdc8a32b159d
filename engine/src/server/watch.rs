//! Watching the media folder: files added, removed or changed while the
//! server runs. A watcher thread (inotify through the `notify` crate)
//! collects events for a short quiet period, rescans the catalog, and tells
//! every shard which files changed in place, so that the sessions playing the
//! old bytes end cleanly (RTCP BYE, a log line, an access-log status). Files
//! replaced by a rename or deleted keep their old inode mapped, so their
//! sessions play on; new sessions get the new version.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::catalog::{Catalog, RescanReport};
use crate::metrics::ServerMetrics;
use crate::shard::{ShardHandle, ShardMsg};

/// How long the folder must be quiet before a rescan.
const QUIET: Duration = Duration::from_millis(300);

/// Rescans `catalog` and tells the shards about files changed in place.
/// Returns the report, or `None` for a catalog that cannot change.
pub(super) fn rescan_and_notify(
    catalog: &Arc<dyn Catalog>,
    shards: &[ShardHandle],
    metrics: &ServerMetrics,
) -> Option<RescanReport> {
    match catalog.rescan()? {
        Ok(r) => {
            metrics.set_catalog_files(catalog.len() as u64);
            if !(r.added.is_empty() && r.removed.is_empty() && r.changed.is_empty()) {
                tracing::info!(
                    added = r.added.len(),
                    removed = r.removed.len(),
                    changed = r.changed.len(),
                    changed_in_place = r.changed_in_place.len(),
                    "media folder changed"
                );
            }
            if !r.changed_in_place.is_empty() {
                let paths = Arc::new(r.changed_in_place.clone());
                for s in shards {
                    s.send(ShardMsg::FilesChanged(paths.clone()));
                }
            }
            Some(r)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot scan the media folder");
            None
        }
    }
}

/// Starts the watcher thread for `root`. It stops when the shards do (a
/// send fails) or when the watch cannot be set up (logged; the media folder
/// is then only rescanned on SIGHUP).
pub(super) fn spawn(
    root: &Path,
    catalog: Arc<dyn Catalog>,
    shards: Vec<ShardHandle>,
    metrics: Arc<ServerMetrics>,
) {
    let (tx, rx) = mpsc::channel();
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            // Reading the folder (our own rescans) opens it: only changes count.
            if event
                .as_ref()
                .is_ok_and(|e| matches!(e.kind, notify::EventKind::Access(_)))
            {
                return;
            }
            let _ = tx.send(event);
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the media folder; changes apply on SIGHUP");
            return;
        }
    };
    if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
        tracing::warn!(folder = %root.display(), error = %e, "cannot watch the media folder; changes apply on SIGHUP");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("media-watch".into())
        .spawn(move || {
            let _watcher = watcher;
            while rx.recv().is_ok() {
                // Let a copy or a burst of writes finish.
                while rx.recv_timeout(QUIET).is_ok() {}
                rescan_and_notify(&catalog, &shards, &metrics);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the media watcher");
    }
}
