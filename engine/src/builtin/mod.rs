//! The built-in extensions: Cadence's own features, plugged into the request
//! pipeline through the same [`crate::pipeline::Extension`] API as users'
//! extensions.
//!
//! - [`Admission`]: 453 for new sessions while a shard is behind.

mod admission;

pub use admission::Admission;
