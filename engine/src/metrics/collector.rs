//! The scrape-time collector: reads every shard's [`ShardMetrics`] block and
//! encodes the shard metrics. Counters that describe requests and sessions
//! are summed over the shards; those that show how load is spread
//! (sessions, packets, bytes, late packets, busy share) carry a `shard`
//! label.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::labels::{
    state_label, status_label, AuthFailure, EndReason, RtspMethod, Transport, SESSION_STATES,
    STATUS_SLOTS,
};
use super::lateness::{LatenessTally, LATENESS_BOUNDS_US};
use super::shard::ShardMetrics;

/// Reads all shards' blocks on each scrape.
#[derive(Debug)]
pub(crate) struct ShardCollector {
    pub(crate) shards: Vec<Arc<ShardMetrics>>,
}

type Res = Result<(), std::fmt::Error>;

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
) -> Res {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter1(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Res {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge<V>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Vec<(&'static str, String)>, V)>,
) -> Res
where
    V: prometheus_client::encoding::EncodeGaugeValue,
{
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl ShardCollector {
    fn per_shard(
        &self,
        f: impl Fn(&ShardMetrics) -> u64,
    ) -> Vec<(Vec<(&'static str, String)>, u64)> {
        self.shards
            .iter()
            .map(|s| (vec![("shard", s.index().to_string())], f(s)))
            .collect()
    }

    fn sum(&self, f: impl Fn(&ShardMetrics) -> u64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s))
            .fold(0u64, u64::wrapping_add)
    }
}

impl Collector for ShardCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Res {
        // Sessions now, by shard, transport and state.
        let mut sessions = Vec::new();
        for s in &self.shards {
            for t in Transport::ALL {
                for st in SESSION_STATES {
                    sessions.push((
                        vec![
                            ("shard", s.index().to_string()),
                            ("transport", t.label().to_string()),
                            ("state", state_label(st).to_string()),
                        ],
                        s.sessions(t, st),
                    ));
                }
            }
        }
        gauge(
            &mut enc,
            "cadence_sessions",
            "RTSP sessions that exist now, by shard, transport and state.",
            sessions,
        )?;
        counter(
            &mut enc,
            "cadence_sessions_started",
            "Sessions created (first SETUP), by transport.",
            Transport::ALL.map(|t| {
                (
                    vec![("transport", t.label().to_string())],
                    self.sum(|s| s.started(t)),
                )
            }),
        )?;
        counter(
            &mut enc,
            "cadence_sessions_ended",
            "Sessions ended, by reason.",
            EndReason::ALL.map(|r| {
                (
                    vec![("reason", r.label().to_string())],
                    self.sum(|s| s.ended(r)),
                )
            }),
        )?;
        counter(
            &mut enc,
            "cadence_rtp_sent_packets",
            "RTP packets sent, by shard.",
            self.per_shard(ShardMetrics::rtp_packets),
        )?;
        counter(
            &mut enc,
            "cadence_rtp_sent_bytes",
            "RTP bytes sent (RTP header and payload, plus the interleave header on TCP), by shard.",
            self.per_shard(ShardMetrics::rtp_bytes),
        )?;
        counter(
            &mut enc,
            "cadence_rtp_late_packets",
            "RTP packets sent later than the late tolerance after their due time, by shard.",
            self.per_shard(ShardMetrics::late_packets),
        )?;

        let mut tally = LatenessTally::default();
        for s in &self.shards {
            s.lateness_into(&mut tally);
        }
        let buckets: Vec<(f64, u64)> = LATENESS_BOUNDS_US
            .iter()
            .map(|&b| b as f64 / 1e6)
            .chain(std::iter::once(f64::INFINITY))
            .zip(tally.buckets.iter().copied())
            .collect();
        let mut m = enc.encode_descriptor(
            "cadence_rtp_lateness_seconds",
            "Time between an RTP packet's due time and its send, seconds.",
            None,
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(tally.sum_us as f64 / 1e6, tally.count(), &buckets, None)?;

        let mut requests = Vec::new();
        for method in RtspMethod::ALL {
            for slot in 0..STATUS_SLOTS {
                let n = self.sum(|s| s.requests(method, slot));
                if n != 0 {
                    requests.push((
                        vec![
                            ("method", method.label().to_string()),
                            ("status", status_label(slot)),
                        ],
                        n,
                    ));
                }
            }
        }
        counter(
            &mut enc,
            "cadence_rtsp_requests",
            "RTSP requests answered, by method and status code.",
            requests,
        )?;
        gauge(
            &mut enc,
            "cadence_shard_busy_ratio",
            "Share of wall time the shard spent working over its last window, 0 to 1.",
            self.shards
                .iter()
                .map(|s| (vec![("shard", s.index().to_string())], s.busy_share())),
        )?;
        counter1(
            &mut enc,
            "cadence_tcp_backlog_drops",
            "TCP-interleaved clients dropped because their unsent backlog passed --tcp-backlog.",
            self.sum(ShardMetrics::tcp_backlog_drops),
        )?;
        counter1(
            &mut enc,
            "cadence_admission_refusals",
            "SETUP requests refused with 453 Not Enough Bandwidth.",
            self.sum(ShardMetrics::admission_refusals),
        )?;
        counter(
            &mut enc,
            "cadence_auth_failures",
            "Requests refused by authentication (401) or authorization (403), by reason class.",
            AuthFailure::ALL.map(|a| {
                (
                    vec![
                        ("status", a.status().to_string()),
                        ("reason", a.label().to_string()),
                    ],
                    self.sum(|s| s.auth_failures(a)),
                )
            }),
        )?;
        Ok(())
    }
}
