//! Cadence engine: an RTSP/RTP video-on-demand server library, with the
//! `cadence` binary as a thin `main` over [`server::Server`].
//!
//! # Data path
//! [`catalog`] compiles each file's hint tracks once into immutable
//! schedules (shared read-only by every shard); the [`pipeline`] runs every
//! RTSP request through its stages, ending in the [`rtsp`] controller, which
//! creates and steers [`session`]s; the [`pacer`] walks each playing
//! session's schedule and builds RTP headers and iovecs; the [`shard`] is the
//! thread-per-core io_uring runtime that submits them. [`endpoint`] is the
//! sans-IO heart of a shard (pipeline, controller, pacer, RTCP, timers),
//! driven by the shard with bytes and the clock.
//!
//! # The request pipeline
//! Every request passes through one fixed sequence of stages:
//!
//! | stage | hook | may return |
//! |---|---|---|
//! | 1. filter | [`pipeline::Extension::filter`] | continue, or any response |
//! | 2. route | [`pipeline::Extension::route`] | rewrite the [`pipeline::Route`], or answer (301/302 redirect) |
//! | 3. authenticate | [`pipeline::Authenticator::authenticate`] (at most one) | an [`pipeline::Identity`] |
//! | 4. authorize | [`pipeline::Extension::authorize`] (all must allow) | allow, 401 (with the authenticator's challenge), 403/453/any status, or any response |
//! | 5. handle | the built-in RTSP methods ([`rtsp::Controller`]) | the response |
//! | 6. post-process | [`pipeline::Extension::post_process`] | nothing: sees request, response and identity |
//!
//! Session lifecycle events (opened, playing, paused, closed with its final
//! counters: [`pipeline::SessionEvent`]) go to the same extensions; no hook
//! runs per RTP packet. Built-in features are extensions on the same API
//! ([`builtin`]). Register your own with [`server::ServerBuilder`]; see
//! `engine/examples/session_cap.rs` for a server with a custom authorizer.
//!
//! # Threading rules
//! - One shard per CPU, pinned, owning its io_uring, RTSP listener
//!   (SO_REUSEPORT), UDP sockets and sessions. Shards share only read-only
//!   data (the catalog, compiled schedules, configuration snapshots) and talk
//!   by message passing ([`shard::ShardMsg`]); there are no locks on the
//!   packet path, and the steady state allocates nothing per packet.
//! - Each shard owns one instance of every extension and calls it on its
//!   own thread. Hooks must never block: no file or network I/O, no sleeping,
//!   no waiting on locks. Slow work goes to [`pipeline::Offload`], a pool of
//!   threads off the shards; schedules compile on the compile thread.
//! - A request naming another shard's session is forwarded to its owner and
//!   runs the pipeline there.
//! - Protocol code (RTSP, SDP, RTCP, the pacer, the pipeline, the endpoint)
//!   is sans-IO: it never reads a clock or touches a socket, so it is tested
//!   in simulated time (`engine/tests/sim_harness.rs`).

pub mod access;
pub mod access_log;
pub mod admin;
pub mod builtin;
pub mod catalog;
pub mod check_system;
pub mod config;
pub mod endpoint;
pub mod log_limit;
pub mod metrics;
pub mod pacer;
pub mod pipeline;
pub mod proxy_protocol;
pub mod rtcp;
pub mod rtsp;
pub mod sdp;
pub mod server;
pub mod session;
pub mod shard;
pub mod sim;
pub mod tunnel;
