//! RTSP 1.0 (RFC 2326), sans-IO: request framing, URL and header handling,
//! and the session state machine. Bytes and time in, responses and effects
//! out; the shard runtime does the I/O.

pub mod controller;
pub mod framing;
pub mod transport;
pub mod url;

pub use controller::{Controller, ControllerConfig, Effect, Reply, RequestCtx};

#[cfg(test)]
mod controller_tests;
