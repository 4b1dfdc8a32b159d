//! The admin HTTP server: axum on a current-thread tokio runtime in its own
//! thread (`admin`), never on a shard. Backend calls run on the runtime's
//! blocking pool with a timeout: a shard that does not answer yields 503,
//! not a hung server.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::oneshot;

use super::auth::AuthCheck;
use super::backend::{AdminBackend, KillResult};
use super::config::AdminConfig;
use crate::metrics::{ServerMetrics, CONTENT_TYPE};

/// Blocking threads for backend calls; calls beyond this wait (and time
/// out) instead of piling up threads behind a stuck shard.
const BLOCKING_THREADS: usize = 4;
/// Longest wait for open connections at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Longest accepted session ID.
const MAX_ID_LEN: usize = 64;

#[derive(Clone)]
struct AppState {
    backend: Arc<dyn AdminBackend>,
    metrics: Arc<ServerMetrics>,
    cfg: Arc<AdminConfig>,
}

/// A running admin server. Dropping it stops the server without waiting;
/// [`AdminServer::shutdown`] waits.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Binds `cfg.addr` on the calling thread (so a taken port fails at
    /// startup) and serves on a new `admin` thread:
    ///
    /// - `GET /metrics`: Prometheus text format 0.0.4;
    /// - `GET /api/v1/sessions`: JSON array of [`SessionInfo`](super::SessionInfo);
    /// - `DELETE /api/v1/sessions/{id}`: 204, 404 (no such session) or 400
    ///   (malformed ID);
    /// - `GET /api/v1/server`: [`ServerInfo`](super::ServerInfo);
    /// - `GET /healthz`: `ok`, without authentication.
    ///
    /// Every route but `/healthz` requires the configured credentials (401
    /// with `WWW-Authenticate` otherwise); unknown routes get 404, other
    /// methods 405, a backend slower than `cfg.timeout` 503. Logs a warning
    /// when no credentials are configured and the address is not loopback.
    ///
    /// Errors: bind failure, runtime or thread creation failure.
    pub fn start(
        cfg: AdminConfig,
        backend: Arc<dyn AdminBackend>,
        metrics: Arc<ServerMetrics>,
    ) -> io::Result<AdminServer> {
        let listener = std::net::TcpListener::bind(cfg.addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        if !cfg.auth.enabled() && !addr.ip().is_loopback() {
            tracing::warn!(
                %addr,
                "admin API has no admin_token or admin_user configured and listens beyond loopback"
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("admin-blocking")
            .build()?;
        let state = AppState {
            backend,
            metrics,
            cfg: Arc::new(cfg),
        };
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("admin".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "admin API: cannot use the listener");
                            return;
                        }
                    };
                    let (grace_tx, grace_rx) = oneshot::channel::<()>();
                    let server = tokio::spawn(
                        axum::serve(listener, router(state))
                            .with_graceful_shutdown(async {
                                let _ = grace_rx.await;
                            })
                            .into_future(),
                    );
                    // Stop on request or when the handle is dropped.
                    let _ = stop_rx.await;
                    let _ = grace_tx.send(());
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
                });
                // Backend calls stuck in a shard are abandoned, not awaited.
                rt.shutdown_timeout(Duration::from_millis(100));
            })?;
        tracing::info!(%addr, "admin API listening");
        Ok(AdminServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish (at most 2 s) and joins
    /// the thread.
    pub fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/sessions", get(sessions))
        .route("/api/v1/sessions/{id}", axum::routing::delete(kill))
        .route("/api/v1/server", get(server))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}

/// A JSON error body `{"error": "..."}` with `status`.
fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match st.cfg.auth.check(h) {
        AuthCheck::Ok => next.run(req).await,
        AuthCheck::Missing | AuthCheck::Wrong => {
            let mut r = error(StatusCode::UNAUTHORIZED, "authentication required");
            for c in st.cfg.auth.challenges() {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().append(header::WWW_AUTHENTICATE, v);
                }
            }
            r
        }
    }
}

/// Runs `f` on the blocking pool; 503 when it takes longer than the
/// timeout, 500 when it panics.
async fn call<T, F>(st: &AppState, f: F) -> Result<T, Response>
where
    T: Send + 'static,
    F: FnOnce(&dyn AdminBackend) -> T + Send + 'static,
{
    let b = st.backend.clone();
    let task = tokio::task::spawn_blocking(move || f(&*b));
    match tokio::time::timeout(st.cfg.timeout, task).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "backend failed")),
        Err(_) => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "shards did not answer in time",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Err(r)
        }
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    match st.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics"),
    }
}

async fn sessions(State(st): State<AppState>) -> Response {
    match call(&st, |b| b.sessions()).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

async fn server(State(st): State<AppState>) -> Response {
    match call(&st, |b| b.server()).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// A session ID we pass on: 1..=64 of `[0-9A-Za-z_-]`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn kill(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return error(StatusCode::BAD_REQUEST, "malformed session id");
    }
    match call(&st, move |b| b.kill(&id)).await {
        Ok(KillResult::Killed) => StatusCode::NO_CONTENT.into_response(),
        Ok(KillResult::NotFound) => error(StatusCode::NOT_FOUND, "no such session"),
        Err(r) => r,
    }
}
