//! RTSP 1.0 (RFC 2326), sans-IO: request framing, URL and header handling,
//! the responses, and the session state machine (the handle stage of the
//! request pipeline). Bytes and time in, responses and effects out; the
//! shard runtime does the I/O.

mod conn_sessions;
pub mod controller;
pub mod framing;
mod interner;
pub mod response;
pub mod transport;
pub mod url;

pub use controller::{Controller, ControllerConfig, Effect, Handled, RequestCtx};

#[cfg(test)]
mod controller_tests;
