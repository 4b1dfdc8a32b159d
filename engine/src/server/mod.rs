//! The server: a [`ServerBuilder`] that registers extensions on the request
//! pipeline, binds every shard's sockets, starts one pinned thread per shard
//! and the compile thread, and stops them cleanly.
//!
//! ```no_run
//! use cadence_engine::config::Config;
//! use cadence_engine::server::Server;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::defaults(2);
//! Server::builder(config).run()?; // until SIGINT or SIGTERM
//! # Ok(()) }
//! ```

mod admin_backend;
mod compiler;
mod load;
mod ops;
mod reload;
mod watch;

pub use load::ServerLoad;
pub use reload::ReloadError;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::access::{AccessRules, Secret};
use crate::builtin::{self, LimitSettings, SharedRules};
use crate::catalog::{Catalog, FsCatalog};
use crate::config::Config;
use crate::pipeline::{
    Authenticator, AuthenticatorFactory, Extension, ExtensionContext, ExtensionFactory, Offload,
    OffloadPool, Pipeline,
};
use crate::shard::mailbox::mailbox;
use crate::shard::{Shard, ShardHandle, ShardMsg, ShardParts, ShardSockets};

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
    /// A helper thread could not start, or signals could not be handled.
    #[error("{0}")]
    Startup(String),
}

/// The entry point: `Server::builder(config)`.
pub struct Server;

impl Server {
    /// A builder over `config`, with the built-in extensions.
    pub fn builder(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            catalog: None,
            extensions: Vec::new(),
            authenticator: None,
            log_level: None,
        }
    }
}

/// Registers extensions and starts the server.
///
/// Extensions run in this order: the built-in ones, then those registered
/// here, in registration order. Each shard gets its own instance of every
/// extension (see [`crate::pipeline`] for the threading rules).
pub struct ServerBuilder {
    config: Config,
    catalog: Option<Arc<dyn Catalog>>,
    extensions: Vec<Arc<ExtensionFactory>>,
    authenticator: Option<Arc<AuthenticatorFactory>>,
    log_level: Option<Box<LogLevelHook>>,
}

/// Applies a new log filter (from a reload); errors when it does not parse.
pub type LogLevelHook = dyn Fn(&str) -> Result<(), String> + Send + Sync;

impl ServerBuilder {
    /// Sets how a reload changes the log filter (the binary owns the
    /// tracing subscriber).
    pub fn on_log_level(
        mut self,
        hook: impl Fn(&str) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.log_level = Some(Box::new(hook));
        self
    }

    /// Registers an extension; each shard gets a clone of `extension`.
    pub fn extension<E: Extension + Clone + Sync + 'static>(self, extension: E) -> Self {
        self.extension_with(move |_| Box::new(extension.clone()))
    }

    /// Registers an extension built per shard by `factory`.
    pub fn extension_with(
        mut self,
        factory: impl Fn(&ExtensionContext) -> Box<dyn Extension> + Send + Sync + 'static,
    ) -> Self {
        self.extensions.push(Arc::new(factory));
        self
    }

    /// Sets the authenticator (at most one per server: a second call
    /// replaces the first), built per shard by `factory`.
    pub fn authenticator_with(
        mut self,
        factory: impl Fn(&ExtensionContext) -> Box<dyn Authenticator> + Send + Sync + 'static,
    ) -> Self {
        self.authenticator = Some(Arc::new(factory));
        self
    }

    /// Serves `catalog` instead of the media folder of the configuration.
    pub fn catalog(mut self, catalog: Arc<dyn Catalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Starts the server and runs it until SIGINT or SIGTERM; SIGHUP
    /// reloads the configuration file (see [`RunningServer::reload`]).
    pub fn run(self) -> Result<(), ServerError> {
        let running = Arc::new(self.start()?);
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ])
        .map_err(|e| ServerError::Startup(format!("cannot install signal handlers: {e}")))?;
        let handle = signals.handle();
        let server = running.clone();
        let watcher = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if sig == signal_hook::consts::SIGHUP {
                        server.reload_from_file();
                        continue;
                    }
                    tracing::info!("signal received: stopping");
                    server.stopper().stop();
                    return;
                }
            })
            .map_err(|e| ServerError::Startup(format!("cannot start the signal thread: {e}")))?;
        running.wait();
        handle.close();
        let _ = watcher.join();
        tracing::info!("cadence stopped");
        Ok(())
    }

    /// Starts the server and returns at once with a handle to stop it.
    pub fn start(self) -> Result<RunningServer, ServerError> {
        let config = self.config;
        let watch_media = self.catalog.is_none();
        let catalog: Arc<dyn Catalog> = match self.catalog {
            Some(c) => c,
            None => Arc::new(fs_catalog(&config)?),
        };
        let n = config.cores;
        let ops = Arc::new(ops::Ops::start(&config, n)?);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
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
                ShardSockets::bind(index, listen, &config.shard).map_err(|e| {
                    ServerError::Shard {
                        index,
                        message: e.to_string(),
                    }
                })?,
            );
        }
        let mut handles = Vec::with_capacity(n);
        let mut mailboxes = Vec::with_capacity(n);
        for index in 0..n {
            let (tx, rx) = mailbox().map_err(|e| ServerError::Shard {
                index,
                message: format!("cannot create the shard's eventfd: {e}"),
            })?;
            handles.push(tx);
            mailboxes.push(rx);
        }
        let (offload, offload_pool) = Offload::start(2)
            .map_err(|e| ServerError::Startup(format!("cannot start offload threads: {e}")))?;
        let compiler = compiler::spawn(catalog.clone(), handles.clone(), ops.metrics.clone())
            .map_err(|e| ServerError::Startup(format!("cannot start the compile thread: {e}")))?;
        let rules = load_access_rules(&config)?;
        let access: SharedRules = Arc::new(arc_swap::ArcSwap::from_pointee(rules));
        let load = Arc::new(ServerLoad::new(n));
        let limits = Arc::new(LimitSettings::default());
        limits.set(
            config.limits.max_sessions,
            config.limits.max_bandwidth_mbps,
            config.limits.redirect_when_full.clone(),
        );
        let builtins = Builtins {
            access: access.clone(),
            limits: limits.clone(),
            load: load.clone(),
            metrics: ops.shard_metrics.clone(),
            access_log: ops.access_log_sender(),
        };
        let limiter = Arc::new(crate::shard::ip_limit::IpLimiter::new(
            config.shard.max_connections_per_ip,
        ));
        let factories = Arc::new(self.extensions);
        let authenticator = self.authenticator;
        let epoch = Instant::now();
        let (ready_tx, ready_rx) = mpsc::channel::<(usize, Result<(), String>)>();
        let mut threads = Vec::with_capacity(n);
        let mut pinned = Vec::with_capacity(n);
        for (index, (socks, rx)) in sockets.into_iter().zip(mailboxes).enumerate() {
            let core = cores.get(index % cores.len().max(1)).copied();
            pinned.push(core.map(|c| c.id));
            let cx = ExtensionContext {
                shard: index,
                shards: n,
                offload: offload.clone(),
            };
            let pipeline = build_pipeline(&cx, &factories, authenticator.as_deref(), &builtins);
            let parts = ShardParts {
                index,
                config: config.shard.clone(),
                sockets: socks,
                catalog: catalog.clone(),
                pipeline,
                mailbox: rx,
                peers: handles.clone(),
                compiler: compiler.clone(),
                epoch,
                limiter: limiter.clone(),
                load: load.clone(),
                metrics: ops.shard_metrics[index].clone(),
            };
            let ready = ready_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("shard-{index}"))
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    match Shard::new(parts) {
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
            threads.push(thread);
        }
        drop(ready_tx);
        drop(offload);
        let running = RunningServer {
            handles: handles.clone(),
            threads: std::sync::Mutex::new(threads),
            offload_pool: std::sync::Mutex::new(Some(offload_pool)),
            listen,
            live: std::sync::Mutex::new(reload::Live {
                config: config.clone(),
                access,
                limits,
                catalog: catalog.clone(),
                log_level: self.log_level,
                shards: handles.clone(),
                ops: ops.clone(),
            }),
            load: load.clone(),
            ops: ops.clone(),
        };
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
            running.stopper().stop();
            running.wait();
            return Err(e);
        }
        if let Err(e) = ops.start_admin(&config, handles.clone(), pinned.clone(), load) {
            running.stopper().stop();
            running.wait();
            return Err(e);
        }
        ops.metrics.set_catalog_files(catalog.len() as u64);
        if watch_media {
            watch::spawn(
                &config.media,
                catalog.clone(),
                running.handles.clone(),
                ops.metrics.clone(),
            );
        }
        for warning in crate::check_system::startup_warnings(&config) {
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
        Ok(running)
    }
}

fn fs_catalog(config: &Config) -> Result<FsCatalog, ServerError> {
    let media_error = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| ServerError::Media { path, source }
    };
    let mut catalog = FsCatalog::scan(&config.media)
        .map_err(media_error(&config.media))?
        .with_limits(config.compile.clone());
    if let Some(dir) = &config.hint_cache {
        catalog = catalog.with_hint_cache(dir).map_err(media_error(dir))?;
    }
    Ok(catalog)
}

/// Validates `config` as a start or a reload would, reading the files it
/// names (access control). Errors name the key or file at fault.
pub fn validate(config: &Config) -> Result<(), ServerError> {
    load_access_rules(config).map(|_| ())
}

/// Reads the access-control files (users, groups, access files, keys).
/// Broken files are logged and fail closed; an unusable configuration is
/// an error.
fn load_access_rules(config: &Config) -> Result<AccessRules, ServerError> {
    let key = Secret::random()
        .map_err(|e| ServerError::Startup(format!("cannot draw the nonce key: {e}")))?;
    let rules = AccessRules::load(&config.media, &config.auth, &key)
        .map_err(|e| ServerError::Startup(format!("access control: {e}")))?;
    for p in rules.problems() {
        tracing::warn!(problem = %p, "access control: refusing what this file governs");
    }
    Ok(rules)
}

/// What the built-in extensions share across shards.
struct Builtins {
    access: SharedRules,
    limits: Arc<LimitSettings>,
    load: Arc<ServerLoad>,
    metrics: Vec<Arc<crate::metrics::ShardMetrics>>,
    access_log: Option<crate::access_log::AccessLogSender>,
}

/// One shard's pipeline: the built-in extensions, then the registered ones.
/// The built-in access control is the authenticator unless one was
/// registered (which then replaces it).
fn build_pipeline(
    cx: &ExtensionContext,
    factories: &[Arc<ExtensionFactory>],
    authenticator: Option<&AuthenticatorFactory>,
    builtins: &Builtins,
) -> Pipeline {
    let access = &builtins.access;
    let mut p = Pipeline::new();
    p.push(Box::new(builtin::AccessRouter::new(access.clone())));
    p.push(Box::new(builtin::Limits::new(
        builtins.limits.clone(),
        builtins.load.clone(),
    )));
    p.push(Box::new(builtin::Admission));
    if let Some(m) = builtins.metrics.get(cx.shard) {
        p.push(Box::new(builtin::MetricsHooks::new(m.clone())));
    }
    if let Some(sender) = &builtins.access_log {
        p.push(Box::new(builtin::AccessLogging::new(
            sender.clone(),
            builtins.load.clone(),
        )));
    }
    for f in factories {
        p.push(f(cx));
    }
    match authenticator {
        Some(a) => p.set_authenticator(a(cx)),
        None => p.set_authenticator(Box::new(builtin::AccessControl::new(access.clone()))),
    };
    p
}

/// A running server: stop it with [`RunningServer::stopper`], wait for it
/// with [`RunningServer::wait`], reload it with [`RunningServer::reload`].
pub struct RunningServer {
    handles: Vec<ShardHandle>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    offload_pool: std::sync::Mutex<Option<OffloadPool>>,
    listen: SocketAddr,
    live: std::sync::Mutex<reload::Live>,
    load: Arc<ServerLoad>,
    ops: Arc<ops::Ops>,
}

/// Stops a running server from any thread.
#[derive(Clone)]
pub struct Stopper {
    handles: Vec<ShardHandle>,
}

impl Stopper {
    /// Asks every shard to send RTCP BYE on its sessions and stop.
    pub fn stop(&self) {
        for h in &self.handles {
            h.send(ShardMsg::Stop);
        }
    }
}

impl RunningServer {
    /// The RTSP address every shard listens on (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Handles to message the shards, by index.
    pub fn shards(&self) -> &[ShardHandle] {
        &self.handles
    }

    /// Server-wide load counters.
    pub fn load(&self) -> &Arc<ServerLoad> {
        &self.load
    }

    /// A handle that stops the server.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handles: self.handles.clone(),
        }
    }

    /// Waits until every shard has stopped.
    pub fn wait(&self) {
        let threads = match self.threads.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => return,
        };
        for t in threads {
            let _ = t.join();
        }
        let pool = self.offload_pool.lock().ok().and_then(|mut p| p.take());
        if let Some(pool) = pool {
            pool.join();
        }
        self.ops.stop();
    }
}
