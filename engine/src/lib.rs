//! Cadence engine library: RTSP control, RTP pacing and the shard runtime.
//!
//! Data path: `catalog` compiles each file's hint tracks once into immutable
//! schedules; `rtsp` (sans-IO) turns requests into session changes; `pacer`
//! walks each playing session's schedule and builds RTP headers and iovecs;
//! `shard` is the thread-per-core io_uring loop that submits them.

pub mod catalog;
pub mod check_system;
pub mod config;
pub mod media;
pub mod pacer;
pub mod proxy_protocol;
pub mod rtcp;
pub mod rtsp;
pub mod sdp;
pub mod server;
pub mod session;
pub mod shard;
pub mod tunnel;
