//! The access log's counters as Prometheus metrics:
//! `cadence_access_log_records_total{outcome}` with `outcome` one of
//! `accepted`, `dropped`, `written`, `lost`, and
//! `cadence_access_log_errors_total`, `cadence_access_log_rotations_total`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use super::writer::AccessLogCounters;

/// Register with `ServerMetrics::registry_mut().register_collector(Box::new(..))`.
#[derive(Debug)]
pub struct AccessLogCollector(pub Arc<AccessLogCounters>);

impl Collector for AccessLogCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        let mut m = enc.encode_descriptor(
            "cadence_access_log_records",
            "Access log records by outcome: accepted by the queue, dropped (queue full), written, lost (write failed).",
            None,
            MetricType::Counter,
        )?;
        for (outcome, v) in [
            ("accepted", s.accepted),
            ("dropped", s.dropped),
            ("written", s.written),
            ("lost", s.lost),
        ] {
            ConstCounter::new(v).encode(m.encode_family(&[("outcome", outcome)])?)?;
        }
        ConstCounter::new(s.write_errors).encode(enc.encode_descriptor(
            "cadence_access_log_errors",
            "Failed access log writes, opens and renames.",
            None,
            MetricType::Counter,
        )?)?;
        ConstCounter::new(s.rotations).encode(enc.encode_descriptor(
            "cadence_access_log_rotations",
            "Access log size rotations.",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}
