//! [`Offload`]: how a hook hands slow work (a file write, an HTTP call) to a
//! thread off the shard, since hooks must never block.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A handle to the server's offload workers: a small pool of threads that
/// run jobs in the order they were queued (per worker). Cheap to clone;
/// sending never blocks the caller.
#[derive(Clone)]
pub struct Offload {
    tx: Sender<Job>,
}

impl std::fmt::Debug for Offload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Offload")
    }
}

/// The worker threads behind an [`Offload`]; they finish the queued jobs and
/// exit once every handle is dropped ([`OffloadPool::join`]).
pub struct OffloadPool {
    threads: Vec<JoinHandle<()>>,
}

impl Offload {
    /// Starts `workers` threads (at least 1) named `offload-N`. Errors: a
    /// thread cannot be started.
    pub fn start(workers: usize) -> std::io::Result<(Offload, OffloadPool)> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("offload-{i}"))
                    .spawn(move || worker(&rx))?,
            );
        }
        Ok((Offload { tx }, OffloadPool { threads }))
    }

    /// Queues `job` to run on a worker thread; returns false when the pool
    /// has stopped. Never blocks.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.tx.send(Box::new(job)).is_ok()
    }
}

/// Runs jobs until the channel closes. The mutex is held only to take the
/// next job, on the worker side: shards never touch it.
fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

impl OffloadPool {
    /// Waits for the workers to finish (after every [`Offload`] is dropped).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_off_the_caller_thread() {
        let (offload, pool) = Offload::start(2).expect("start");
        let (tx, rx) = mpsc::channel();
        let me = std::thread::current().id();
        for i in 0..10 {
            let tx = tx.clone();
            assert!(offload.spawn(move || {
                let _ = tx.send((i, std::thread::current().id()));
            }));
        }
        drop(tx);
        let got: Vec<_> = rx.iter().collect();
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|(_, t)| *t != me));
        drop(offload);
        pool.join();
    }
}
