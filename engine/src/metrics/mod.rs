//! Prometheus metrics (issue 10).
//!
//! Shards publish without locks: each owns a [`ShardMetrics`] block of
//! relaxed atomics that only it increments, and adds per-tick totals to it
//! (packets, bytes, a [`LatenessTally`]). [`ServerMetrics`] holds the
//! `prometheus-client` registry; its collector reads every block at scrape
//! time, next to the off-shard metrics (compile time, catalog files). No
//! label takes a per-session value: labels come from the fixed tables in
//! [`labels`] and the shard index.
//!
//! Series (text format 0.0.4, [`CONTENT_TYPE`]):
//! - `cadence_sessions{shard,transport,state}` gauge
//! - `cadence_sessions_started_total{transport}`, `cadence_sessions_ended_total{reason}`
//! - `cadence_rtp_sent_packets_total{shard}`, `cadence_rtp_sent_bytes_total{shard}`,
//!   `cadence_rtp_late_packets_total{shard}`
//! - `cadence_rtp_lateness_seconds` histogram (100 µs … 1 s)
//! - `cadence_rtsp_requests_total{method,status}` (combinations seen so far)
//! - `cadence_shard_busy_ratio{shard}` gauge 0..1
//! - `cadence_tcp_backlog_drops_total`, `cadence_admission_refusals_total`,
//!   `cadence_auth_failures_total{status,reason}`
//! - `cadence_schedule_compile_seconds` histogram, `cadence_catalog_files` gauge,
//!   `cadence_build_info{version}`
//! - `cadence_schedule_memory_bytes`, `cadence_schedule_memory_limit_bytes` gauges,
//!   `cadence_schedule_evictions_total`, `cadence_schedule_memory_refusals_total`

mod collector;
pub mod labels;
mod lateness;
mod server;
mod shard;

pub use labels::{AuthFailure, EndReason, RtspMethod, Transport};
pub use lateness::{lateness_slot, LatenessTally, LATENESS_BOUNDS_US, LATENESS_SLOTS};
pub use server::{ServerMetrics, COMPILE_BOUNDS_S, CONTENT_TYPE};
pub use shard::{ShardMetrics, ShardTotals};

#[cfg(test)]
mod tests;
