//! The built-in extensions: Cadence's own features, plugged into the request
//! pipeline through the same [`crate::pipeline::Extension`] API as users'
//! extensions.
//!
//! - [`AccessControl`] and [`AccessRouter`]: users, groups, access files,
//!   Basic/Digest, signed URLs, client-subnet rules.
//! - [`Admission`]: 453 for new sessions while a shard is behind.

mod access_control;
mod admission;

pub use access_control::{AccessControl, AccessRouter, SharedRules};
pub use admission::Admission;
