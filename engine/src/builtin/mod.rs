//! The built-in extensions: Cadence's own features, plugged into the request
//! pipeline through the same [`crate::pipeline::Extension`] API as users'
//! extensions.
//!
//! - [`AccessControl`] and [`AccessRouter`]: users, groups, access files,
//!   Basic/Digest, signed URLs, client-subnet rules.
//! - [`Admission`]: 453 for new sessions while a shard is behind.
//! - [`Limits`]: `max_sessions`, `max_bandwidth_mbps`, `redirect_when_full`.
//! - [`MetricsHooks`]: requests, refusals and sessions into `/metrics`.
//! - [`AccessLogging`]: the DSS-format access log.

mod access_control;
mod access_logging;
mod admission;
mod limits;
mod metrics_hooks;

pub use access_control::{AccessControl, AccessRouter, SharedRules};
pub use access_logging::{session_record, AccessLogging};
pub use admission::Admission;
pub use limits::{LimitSettings, Limits};
pub use metrics_hooks::{auth_failure, MetricsHooks};
