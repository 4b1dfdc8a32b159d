//! The server's metrics registry: the shard collector plus the metrics kept
//! off the shards (catalog, schedule compiler, build info), encoded in the
//! Prometheus text exposition format 0.0.4.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::collector::ShardCollector;
use super::shard::{ShardMetrics, ShardTotals};

/// `Content-Type` of [`ServerMetrics::encode`]'s output: the Prometheus text
/// format 0.0.4, which Prometheus, promtool and the Python client parse.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Bucket bounds of the schedule compile time histogram, seconds.
pub const COMPILE_BOUNDS_S: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// All of the server's metrics. Build it once at startup with every shard's
/// block, register extra metrics with [`ServerMetrics::registry_mut`], then
/// share it (`Arc<ServerMetrics>`) with the admin server.
#[derive(Debug)]
pub struct ServerMetrics {
    registry: Registry,
    shards: Vec<Arc<ShardMetrics>>,
    compile_seconds: Histogram,
    catalog_files: Gauge,
    schedule_bytes: Gauge,
    schedule_limit: Gauge,
    evictions: Counter,
    memory_refusals: Counter,
}

impl ServerMetrics {
    /// A registry reading `shards` at scrape time, with the off-shard
    /// metrics `cadence_schedule_compile_seconds` (histogram),
    /// `cadence_catalog_files` (gauge), the schedule memory
    /// (`cadence_schedule_memory_bytes`, `cadence_schedule_memory_limit_bytes`
    /// gauges, `cadence_schedule_evictions_total`,
    /// `cadence_schedule_memory_refusals_total` counters) and
    /// `cadence_build_info{version}`.
    pub fn new(shards: Vec<Arc<ShardMetrics>>) -> ServerMetrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ShardCollector {
            shards: shards.clone(),
        }));
        let compile_seconds = Histogram::new(COMPILE_BOUNDS_S);
        registry.register(
            "cadence_schedule_compile_seconds",
            "Time to compile one file's schedule (hint tracks or packetizer), seconds",
            compile_seconds.clone(),
        );
        let catalog_files = Gauge::default();
        registry.register(
            "cadence_catalog_files",
            "Media files in the catalog",
            catalog_files.clone(),
        );
        let schedule_bytes = Gauge::default();
        registry.register(
            "cadence_schedule_memory_bytes",
            "Bytes of compiled schedules in memory (held by the catalog or by playing sessions)",
            schedule_bytes.clone(),
        );
        let schedule_limit = Gauge::default();
        registry.register(
            "cadence_schedule_memory_limit_bytes",
            "Limit of the compiled schedules' bytes (--schedule-memory-mb; 0: none)",
            schedule_limit.clone(),
        );
        let evictions = Counter::default();
        registry.register(
            "cadence_schedule_evictions",
            "Unused schedules evicted from the catalog to make room for another",
            evictions.clone(),
        );
        let memory_refusals = Counter::default();
        registry.register(
            "cadence_schedule_memory_refusals",
            "Files refused (503) because the schedules in use left no room",
            memory_refusals.clone(),
        );
        let build: Family<Vec<(String, String)>, Gauge> = Family::default();
        build
            .get_or_create(&vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )])
            .set(1);
        registry.register("cadence_build_info", "Cadence version, value 1", build);
        ServerMetrics {
            registry,
            shards,
            compile_seconds,
            catalog_files,
            schedule_bytes,
            schedule_limit,
            evictions,
            memory_refusals,
        }
    }

    /// The registry, to register more off-shard metrics or collectors
    /// before the server starts.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// A handle to the compile time histogram (cheap clone, thread-safe),
    /// for the compile thread.
    pub fn compile_time(&self) -> Histogram {
        self.compile_seconds.clone()
    }

    /// Records one schedule compilation that took `d`.
    pub fn observe_compile(&self, d: Duration) {
        self.compile_seconds.observe(d.as_secs_f64());
    }

    /// Sets the number of files in the catalog.
    pub fn set_catalog_files(&self, n: u64) {
        self.catalog_files.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Copies the catalog's schedule memory figures (from the compile
    /// thread; the counters only move forward).
    pub fn set_schedule_memory(&self, m: &crate::catalog::MemoryStats) {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.schedule_bytes.set(gauge(m.held_bytes));
        self.schedule_limit.set(gauge(m.limit_bytes));
        self.evictions
            .inc_by(m.evictions.saturating_sub(self.evictions.get()));
        self.memory_refusals
            .inc_by(m.refusals.saturating_sub(self.memory_refusals.get()));
    }

    /// The shard blocks given to [`ServerMetrics::new`].
    pub fn shards(&self) -> &[Arc<ShardMetrics>] {
        &self.shards
    }

    /// Session and traffic totals summed over all shards.
    pub fn totals(&self) -> ShardTotals {
        self.shards.iter().fold(ShardTotals::default(), |mut a, s| {
            let t = s.totals();
            a.sessions += t.sessions;
            a.playing += t.playing;
            a.sessions_started += t.sessions_started;
            a.rtp_packets = a.rtp_packets.wrapping_add(t.rtp_packets);
            a.rtp_bytes = a.rtp_bytes.wrapping_add(t.rtp_bytes);
            a
        })
    }

    /// Encodes every metric in the Prometheus text format 0.0.4
    /// ([`CONTENT_TYPE`]). Reads the shard blocks with relaxed loads; never
    /// blocks a shard.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
