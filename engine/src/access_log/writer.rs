//! The logger thread: it owns the file, formats records, rotates, reopens
//! and reports trouble. Shards reach it only through
//! [`AccessLogSender::log`], a `try_send` on a bounded channel that never
//! blocks: when the queue is full the record is dropped and counted, and
//! the count is reported (server log, a `#Remark:` line, the counters).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::config::AccessLogConfig;
use super::format::{line, w3c_header, w3c_remark, LogFormat};
use super::record::AccessRecord;
use super::report::Reporter;

/// How long the logger sleeps when idle before it looks at reports and
/// control requests again.
const IDLE_WAKE: Duration = Duration::from_millis(250);
/// Records taken off the queue before the batch is written.
const BATCH: usize = 4096;
/// Buffered bytes that force a write before the batch ends.
const FLUSH_BYTES: usize = 64 * 1024;
/// Minimum time between two attempts to open the file after a failure.
const REOPEN_RETRY: Duration = Duration::from_secs(1);

enum Msg {
    Record(Box<AccessRecord>),
    Wake,
}

/// Counters of the access log since start (relaxed atomics; read them with
/// [`AccessLog::stats`] or the metrics collector).
#[derive(Debug, Default)]
pub struct AccessLogCounters {
    accepted: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    lost: AtomicU64,
    write_errors: AtomicU64,
    rotations: AtomicU64,
}

/// A snapshot of [`AccessLogCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessLogStats {
    /// Records queued by senders.
    pub accepted: u64,
    /// Records refused because the queue was full (or the logger stopped).
    pub dropped: u64,
    /// Lines written to the file (not counting headers and remarks).
    pub written: u64,
    /// Lines formatted but not written (write error, no file open).
    pub lost: u64,
    /// Failed writes, opens and renames.
    pub write_errors: u64,
    /// Size rotations done.
    pub rotations: u64,
}

impl AccessLogCounters {
    /// A snapshot.
    pub fn snapshot(&self) -> AccessLogStats {
        AccessLogStats {
            accepted: self.accepted.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            written: self.written.load(Relaxed),
            lost: self.lost.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            rotations: self.rotations.load(Relaxed),
        }
    }
}

struct Shared {
    counters: Arc<AccessLogCounters>,
    reopen: AtomicBool,
    stop: AtomicBool,
    reconfigure: Mutex<Option<AccessLogConfig>>,
}

/// The sending side, one clone per shard. `Clone + Send`.
#[derive(Clone)]
pub struct AccessLogSender {
    tx: SyncSender<Msg>,
    counters: Arc<AccessLogCounters>,
}

impl std::fmt::Debug for AccessLogSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogSender").finish_non_exhaustive()
    }
}

impl AccessLogSender {
    /// Queues `record` for the logger thread without blocking (one boxed
    /// allocation and a `try_send`). Returns false when the queue is full or
    /// the logger has stopped; the record is then dropped and counted.
    pub fn log(&self, record: AccessRecord) -> bool {
        match self.tx.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Relaxed);
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }
}

/// The access log: a logger thread and the handle that controls it. Create
/// it with [`AccessLog::start`], give each shard an [`AccessLog::sender`],
/// call [`AccessLog::reopen`] on SIGHUP and [`AccessLog::reconfigure`] on a
/// config reload, and [`AccessLog::shutdown`] at exit.
pub struct AccessLog {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl AccessLog {
    /// Opens (creates, appends to) `cfg.path` on the calling thread, so a
    /// bad path fails at startup, then starts the `access-log` thread.
    ///
    /// Errors: the file cannot be opened, or the thread cannot be spawned.
    pub fn start(cfg: AccessLogConfig) -> io::Result<AccessLog> {
        let counters = Arc::new(AccessLogCounters::default());
        let mut writer = Writer::new(cfg.clone(), counters.clone());
        writer.open()?;
        let (tx, rx) = mpsc::sync_channel(cfg.queue.max(1));
        let (done_tx, done) = mpsc::sync_channel(1);
        let shared = Arc::new(Shared {
            counters,
            reopen: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            reconfigure: Mutex::new(None),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                writer.run(&rx, &thread_shared);
                let _ = done_tx.send(());
            })?;
        Ok(AccessLog {
            tx,
            shared,
            done,
            thread: Some(thread),
        })
    }

    /// A sender for a shard (or any thread).
    pub fn sender(&self) -> AccessLogSender {
        AccessLogSender {
            tx: self.tx.clone(),
            counters: self.shared.counters.clone(),
        }
    }

    /// Asks the logger to close and reopen its file (same path), e.g. on
    /// SIGHUP after logrotate moved it; the new file starts with a header.
    /// Returns at once.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Relaxed);
        self.wake();
    }

    /// Applies new settings: a different path closes the old file and opens
    /// the new one; format and rotation settings apply to the next line.
    /// `queue` is read at start only. Returns at once.
    pub fn reconfigure(&self, cfg: AccessLogConfig) {
        *self
            .shared
            .reconfigure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(cfg);
        self.wake();
    }

    /// The counters.
    pub fn stats(&self) -> AccessLogStats {
        self.shared.counters.snapshot()
    }

    /// The shared counters, e.g. for the metrics collector.
    pub fn counters(&self) -> Arc<AccessLogCounters> {
        self.shared.counters.clone()
    }

    /// Writes what is queued, closes the file and ends the thread, waiting
    /// at most `timeout`. Returns false when the thread did not finish in
    /// time (a stuck disk); it is then left to finish on its own.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        self.shared.stop.store(true, Relaxed);
        self.wake();
        match self.done.recv_timeout(timeout) {
            Ok(()) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
                true
            }
            Err(_) => false,
        }
    }

    fn wake(&self) {
        // A full queue means the logger is busy and will look at the flags
        // after its batch anyway.
        let _ = self.tx.try_send(Msg::Wake);
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        // Never block in drop: tell the thread to finish and let it go.
        self.shared.stop.store(true, Relaxed);
        self.wake();
    }
}

/// The logger thread's state.
struct Writer {
    cfg: AccessLogConfig,
    counters: Arc<AccessLogCounters>,
    file: Option<File>,
    /// Bytes in the file, counting `pending`.
    size: u64,
    /// Header bytes at the start of the current file (0 when it existed).
    header_len: u64,
    /// Size rotation applies (a regular file).
    rotatable: bool,
    pending: Vec<u8>,
    pending_lines: u64,
    last_open_attempt: Option<Instant>,
    noted_dropped: u64,
    reporter: Reporter,
}

impl Writer {
    fn new(cfg: AccessLogConfig, counters: Arc<AccessLogCounters>) -> Writer {
        let reporter = Reporter::new(cfg.report_interval);
        Writer {
            cfg,
            counters,
            file: None,
            size: 0,
            header_len: 0,
            rotatable: false,
            pending: Vec::with_capacity(FLUSH_BYTES),
            pending_lines: 0,
            last_open_attempt: None,
            noted_dropped: 0,
            reporter,
        }
    }

    fn run(&mut self, rx: &Receiver<Msg>, shared: &Shared) {
        loop {
            let first = rx.recv_timeout(IDLE_WAKE);
            let mut disconnected = matches!(first, Err(RecvTimeoutError::Disconnected));
            self.control(shared);
            if let Ok(Msg::Record(r)) = first {
                self.push(&r);
            }
            for _ in 0..BATCH {
                match rx.try_recv() {
                    Ok(Msg::Record(r)) => self.push(&r),
                    Ok(Msg::Wake) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            let stopping = shared.stop.load(Relaxed);
            if stopping {
                while let Ok(m) = rx.try_recv() {
                    if let Msg::Record(r) = m {
                        self.push(&r);
                    }
                }
            }
            self.note_drops();
            self.flush();
            if let Some(r) = self.reporter.poll(Instant::now()) {
                Reporter::emit(&r, &self.cfg.path);
            }
            if stopping || disconnected {
                break;
            }
        }
        self.file = None;
        if let Some(r) = self.reporter.take() {
            Reporter::emit(&r, &self.cfg.path);
        }
    }

    fn control(&mut self, shared: &Shared) {
        let new = shared
            .reconfigure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(cfg) = new {
            let moved = cfg.path != self.cfg.path;
            if let Some(r) = self.reporter.take() {
                Reporter::emit(&r, &self.cfg.path);
            }
            self.reporter = Reporter::new(cfg.report_interval);
            if moved {
                self.flush();
                self.file = None;
                self.cfg = cfg;
                self.try_open();
            } else {
                self.cfg = cfg;
            }
        }
        if shared.reopen.swap(false, Relaxed) {
            self.flush();
            self.file = None;
            self.try_open();
        }
    }

    /// Opens the configured path (create, append, mode 0640) and queues the
    /// header when the file is empty (W3C only).
    fn open(&mut self) -> io::Result<()> {
        self.last_open_attempt = Some(Instant::now());
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&self.cfg.path)?;
        let meta = file.metadata()?;
        self.rotatable = meta.is_file();
        self.size = meta.len();
        self.header_len = 0;
        self.file = Some(file);
        if self.size == 0 && self.cfg.format == LogFormat::W3c {
            let h = w3c_header(SystemTime::now());
            self.header_len = h.len() as u64;
            self.size = self.header_len;
            self.pending.extend_from_slice(h.as_bytes());
        }
        Ok(())
    }

    /// [`Writer::open`], reporting a failure.
    fn try_open(&mut self) {
        if let Err(e) = self.open() {
            self.file = None;
            self.counters.write_errors.fetch_add(1, Relaxed);
            self.reporter
                .error(format!("open {}: {e}", self.cfg.path.display()), 0);
        }
    }

    fn push(&mut self, r: &AccessRecord) {
        let text = line(self.cfg.format, r);
        if self.file.is_none() {
            let retry = self
                .last_open_attempt
                .is_none_or(|t| t.elapsed() >= REOPEN_RETRY);
            if retry {
                self.try_open();
            }
            if self.file.is_none() {
                self.counters.lost.fetch_add(1, Relaxed);
                self.reporter.lost(1);
                return;
            }
        }
        let max = self.cfg.max_bytes;
        if max > 0
            && self.rotatable
            && self.size > self.header_len
            && self.size.saturating_add(text.len() as u64) > max
        {
            self.rotate();
            if self.file.is_none() {
                self.counters.lost.fetch_add(1, Relaxed);
                self.reporter.lost(1);
                return;
            }
        }
        self.pending.extend_from_slice(text.as_bytes());
        self.pending_lines += 1;
        self.size = self.size.saturating_add(text.len() as u64);
        if self.pending.len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// Writes a `#Remark:` when records were dropped since the last batch
    /// (W3C files; JSON files rely on the counters and the server log).
    fn note_drops(&mut self) {
        let dropped = self.counters.dropped.load(Relaxed);
        let new = dropped.saturating_sub(self.noted_dropped);
        if new == 0 {
            return;
        }
        self.noted_dropped = dropped;
        self.reporter.dropped(new);
        if self.cfg.format == LogFormat::W3c && self.file.is_some() {
            let r = w3c_remark(&format!(
                "{new} access log records dropped (queue of {} full)",
                self.cfg.queue
            ));
            self.size = self.size.saturating_add(r.len() as u64);
            self.pending.extend_from_slice(r.as_bytes());
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut self.pending_lines);
        let result = match self.file.as_mut() {
            Some(f) => f.write_all(&self.pending),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no file open")),
        };
        self.pending.clear();
        match result {
            Ok(()) => {
                self.counters.written.fetch_add(lines, Relaxed);
            }
            Err(e) => {
                self.counters.write_errors.fetch_add(1, Relaxed);
                self.counters.lost.fetch_add(lines, Relaxed);
                self.reporter
                    .error(format!("write {}: {e}", self.cfg.path.display()), lines);
            }
        }
    }

    /// Numbered rotation: `FILE.(keep-1)` → `FILE.keep` … `FILE` →
    /// `FILE.1` (the oldest beyond `keep` is replaced), then a new `FILE`.
    /// With `keep == 0` the file is removed and started anew.
    fn rotate(&mut self) {
        self.flush();
        self.file = None;
        let path = self.cfg.path.clone();
        let keep = self.cfg.keep;
        let result = if keep == 0 {
            std::fs::remove_file(&path)
        } else {
            let mut r = Ok(());
            for i in (1..keep).rev() {
                match std::fs::rename(numbered(&path, i), numbered(&path, i + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => r = Err(e),
                    _ => {}
                }
            }
            r.and(std::fs::rename(&path, numbered(&path, 1)))
        };
        match result {
            Ok(()) => {
                self.counters.rotations.fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.counters.write_errors.fetch_add(1, Relaxed);
                self.reporter
                    .error(format!("rotate {}: {e}", path.display()), 0);
            }
        }
        self.try_open();
    }
}

/// `FILE.n`.
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}
