//! The built-in extensions: Cadence's own features, plugged into the request
//! pipeline through the same [`crate::pipeline::Extension`] API as users'
//! extensions.
//!
//! - [`AccessControl`] and [`AccessRouter`]: users, groups, access files,
//!   Basic/Digest, signed URLs, client-subnet rules.
//! - [`Admission`]: 453 for new sessions while a shard is behind.
//! - [`Limits`]: `max_sessions`, `max_bandwidth_mbps`, `redirect_when_full`.

mod access_control;
mod admission;
mod limits;

pub use access_control::{AccessControl, AccessRouter, SharedRules};
pub use admission::Admission;
pub use limits::{LimitSettings, Limits};
