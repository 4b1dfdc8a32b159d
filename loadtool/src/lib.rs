//! `cadence-loadtool`: plays N RTSP sessions at once and measures what each one
//! receives (packets, loss, reordering, duplicates, RFC 3550 jitter, lateness
//! against the RTP clock, setup latency, failures by cause).
//!
//! A few worker threads each run an epoll loop over their sessions' RTSP
//! connections and a small pool of shared UDP socket pairs; RTP over UDP is
//! demultiplexed by SSRC (see `README.md`).

pub mod churn;
pub mod cli;
pub mod cpu;
pub mod demux;
pub mod failure;
pub mod hdrext;
pub mod kernel;
pub mod mark;
pub mod media_kind;
pub mod net;
pub mod plan;
pub mod progress;
pub mod record;
pub mod report;
pub mod rtcp;
pub mod rtp;
pub mod rtsp;
pub mod run;
pub mod shared;
pub mod stats;
pub mod summary;
pub mod worker;
