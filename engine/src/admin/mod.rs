//! The admin HTTP endpoint (issue 10): `--admin ADDR:PORT`, off by default.
//!
//! [`AdminServer`] runs axum on a current-thread tokio runtime in its own
//! thread. It serves `/metrics` from [`ServerMetrics`](crate::metrics::ServerMetrics)
//! and reaches everything the shards own through an [`AdminBackend`] that
//! the server implements with message passing; a backend call that takes
//! longer than the timeout answers 503. Authentication: a bearer token
//! and/or Basic credentials, compared in constant time.

mod auth;
mod backend;
mod config;
mod server;

pub use auth::{AdminAuth, AuthCheck, Secret, REALM};
pub use backend::{
    AdminBackend, KillResult, RateMeter, ServerInfo, SessionInfo, ShardInfo, TrackInfo,
};
pub use config::{AdminArgs, AdminConfig, AdminKeys, DEFAULT_TIMEOUT};
pub use server::AdminServer;
