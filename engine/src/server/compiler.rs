//! The compile thread: schedules are compiled on first use, off the shards.
//! Each job compiles (or fails to compile) one catalog path, then tells the
//! asking shard, which resumes the requests it parked for it. A file asked
//! for by several shards at once is compiled once (the catalog's entry makes
//! the second caller wait for the first).
//!
//! The thread also owns the catalog's schedule memory: the catalog evicts
//! during a compile, and about every second (and after each job) the thread
//! runs [`Catalog::maintain`] and copies the memory figures to the metrics.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::metrics::ServerMetrics;
use crate::shard::{CompileJob, ShardHandle, ShardMsg};

/// How often the compile thread runs [`Catalog::maintain`] when idle.
pub const MAINTAIN_EVERY: Duration = Duration::from_secs(1);

/// Starts the compile thread; jobs go in through the returned sender.
/// Errors: the thread cannot be started.
pub fn spawn(
    catalog: Arc<dyn Catalog>,
    shards: Vec<ShardHandle>,
    metrics: Arc<ServerMetrics>,
) -> std::io::Result<mpsc::Sender<CompileJob>> {
    let (tx, rx) = mpsc::channel::<CompileJob>();
    if let Some(m) = catalog.memory() {
        metrics.set_schedule_memory(&m);
    }
    std::thread::Builder::new()
        .name("compile".into())
        .spawn(move || loop {
            match rx.recv_timeout(MAINTAIN_EVERY) {
                Ok(job) => {
                    let fresh =
                        matches!(catalog.lookup(&job.path), crate::catalog::Lookup::Pending);
                    let started = std::time::Instant::now();
                    let _ = catalog.compile(&job.path);
                    if fresh {
                        metrics.observe_compile(started.elapsed());
                    }
                    if let Some(shard) = shards.get(job.shard) {
                        shard.send(ShardMsg::Compiled(job.path));
                    }
                }
                Err(RecvTimeoutError::Timeout) => catalog.maintain(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Some(m) = catalog.memory() {
                metrics.set_schedule_memory(&m);
            }
        })?;
    Ok(tx)
}
