//! Starting and stopping the shards: bind every shard's sockets, start one
//! pinned thread per shard, wait for SIGINT/SIGTERM, then stop them cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::shard::mailbox::mailbox;
use crate::shard::{CompileJob, Shard, ShardHandle, ShardMsg, ShardSockets};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The media folder cannot be read.
    #[error("cannot read media folder {path}: {source}")]
    Media {
        /// Folder.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// A shard failed to start (io_uring, sockets).
    #[error("shard {index}: {message}")]
    Shard {
        /// Shard index.
        index: usize,
        /// What failed.
        message: String,
    },
}

/// Runs the server until SIGINT/SIGTERM (or until `stop` is set).
pub fn run(config: &Config, stop: Arc<AtomicBool>) -> Result<(), ServerError> {
    let mut catalog = Catalog::scan(&config.media).map_err(|source| ServerError::Media {
        path: config.media.display().to_string(),
        source,
    })?;
    if let Some(dir) = &config.hint_cache {
        catalog = catalog
            .with_hint_cache(dir)
            .map_err(|source| ServerError::Media {
                path: dir.display().to_string(),
                source,
            })?;
    }
    let catalog = Arc::new(catalog.with_deferred_compilation());
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let n = config.cores;
    // Bind everything first so that errors surface before any thread starts.
    // The listen address must be ours alone; port 0 becomes one port for all.
    let listen = crate::shard::net::claim_tcp_address(config.shard.listen).map_err(|e| {
        ServerError::Shard {
            index: 0,
            message: format!("cannot listen on {}: {e}", config.shard.listen),
        }
    })?;
    let mut sockets = Vec::with_capacity(n);
    for index in 0..n {
        sockets.push(
            ShardSockets::bind(index, listen, &config.shard).map_err(|e| ServerError::Shard {
                index,
                message: e.to_string(),
            })?,
        );
    }
    let mut txs = Vec::with_capacity(n);
    let mut rxs = Vec::with_capacity(n);
    for index in 0..n {
        let (tx, rx) = mailbox().map_err(|e| ServerError::Shard {
            index,
            message: format!("cannot create the shard's eventfd: {e}"),
        })?;
        txs.push(tx);
        rxs.push(rx);
    }
    let compiler =
        spawn_compiler(catalog.clone(), txs.clone()).map_err(|e| ServerError::Shard {
            index: 0,
            message: format!("cannot start the compile thread: {e}"),
        })?;
    let epoch = Instant::now();
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(), String>)>();
    let mut threads = Vec::with_capacity(n);
    let mut pinned = Vec::with_capacity(n);
    for (index, (socks, rx)) in sockets.into_iter().zip(rxs).enumerate() {
        let core = cores.get(index % cores.len().max(1)).copied();
        pinned.push(core.map(|c| c.id));
        let shard_config = config.shard.clone();
        let catalog = catalog.clone();
        let peers = txs.clone();
        let compiler = compiler.clone();
        let stop = stop.clone();
        let ready = ready_tx.clone();
        let handle = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                match Shard::new(
                    index,
                    shard_config,
                    socks,
                    catalog,
                    rx,
                    peers,
                    compiler,
                    stop,
                    epoch,
                ) {
                    Ok(shard) => {
                        let _ = ready.send((index, Ok(())));
                        shard.run();
                    }
                    Err(e) => {
                        let _ = ready.send((index, Err(e.to_string())));
                    }
                }
            })
            .map_err(|e| ServerError::Shard {
                index,
                message: format!("cannot start thread: {e}"),
            })?;
        threads.push(handle);
    }
    drop(ready_tx);
    let mut failure = None;
    for _ in 0..n {
        match ready_rx.recv() {
            Ok((_, Ok(()))) => {}
            Ok((index, Err(message))) => {
                failure.get_or_insert(ServerError::Shard { index, message });
            }
            Err(_) => break,
        }
    }
    if let Some(e) = failure {
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            let _ = t.join();
        }
        return Err(e);
    }
    for warning in crate::check_system::startup_warnings(config) {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        shards = n,
        cpus = ?pinned,
        listen = %listen,
        files = catalog.len(),
        media = %config.media.display(),
        "cadence listening"
    );
    for t in threads {
        let _ = t.join();
    }
    tracing::info!("cadence stopped");
    Ok(())
}

/// Starts the thread that compiles schedules on first use, off the shards:
/// each job compiles (or fails to compile) one catalog path, then tells the
/// asking shard. A file asked for by several shards at once is compiled once
/// (the catalog's cell makes the second caller wait for the first).
fn spawn_compiler(
    catalog: Arc<Catalog>,
    shards: Vec<ShardHandle>,
) -> std::io::Result<mpsc::Sender<CompileJob>> {
    let (tx, rx) = mpsc::channel::<CompileJob>();
    std::thread::Builder::new()
        .name("compile".into())
        .spawn(move || {
            for job in rx {
                let _ = catalog.get(&job.path);
                if let Some(shard) = shards.get(job.shard) {
                    shard.send(ShardMsg::Compiled(job.path));
                }
            }
        })?;
    Ok(tx)
}
