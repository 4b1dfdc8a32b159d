//! The summary table printed on stdout at the end of a run.

use std::fmt::Write;

use crate::media_kind::MediaKind;
use crate::report::Report;

/// Formats `n` with thousands separators.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The summary table of `report`.
pub fn table(report: &Report) -> String {
    let r = report;
    let mut rows: Vec<(&str, String)> = Vec::new();
    rows.push((
        "clients",
        format!(
            "requested {}  started {}  playing {}  failed {}  (udp {}, tcp {})",
            r.clients.requested,
            r.clients.started,
            r.clients.playing,
            r.clients.failed,
            r.clients.udp,
            r.clients.tcp
        ),
    ));
    rows.push((
        "time",
        format!(
            "window {:.2} s after {:.2} s of ramp; {:.2} s in all{}",
            r.duration_s,
            r.ramp_s,
            r.wall_s,
            if r.interrupted { " (interrupted)" } else { "" }
        ),
    ));
    rows.push((
        "packets",
        format!(
            "{} received  {} expected  {} lost ({:.4}%)  {} duplicate  {} reordered",
            thousands(r.packets.received),
            thousands(r.packets.expected),
            thousands(r.packets.lost),
            r.packets.loss_pct,
            thousands(r.packets.duplicates),
            thousands(r.packets.reordered)
        ),
    ));
    if r.packets.unknown_ssrc + r.packets.malformed + r.packets.bad_extension > 0 {
        rows.push((
            "stray",
            format!(
                "{} unknown SSRC  {} not RTP  {} with a malformed header extension",
                thousands(r.packets.unknown_ssrc),
                thousands(r.packets.malformed),
                thousands(r.packets.bad_extension)
            ),
        ));
    }
    rows.push(("bytes", format!("{} received", thousands(r.bytes.received))));
    rows.push((
        "rate",
        format!(
            "{} packets/s  {:.2} Mbit/s (measurement window)",
            thousands(r.rates.packets_per_s.round() as u64),
            r.rates.mbit_per_s
        ),
    ));
    let l = &r.lateness_us;
    rows.push((
        "lateness µs",
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (early packets count as 0)",
            thousands(l.p50),
            thousands(l.p90),
            thousands(l.p99),
            thousands(l.p999),
            thousands(l.max),
        ),
    ));
    let e = &r.earliness_us;
    rows.push((
        "early µs",
        format!(
            "{} packets before their time: p50 {}  p99 {}  max {}",
            thousands(e.packets),
            thousands(e.p50),
            thousands(e.p99),
            thousands(e.max)
        ),
    ));
    rows.push((
        "jitter ms",
        format!(
            "p50 {:.3}  p99 {:.3}  max {:.3}  ({} streams)",
            r.jitter_ms.p50, r.jitter_ms.p99, r.jitter_ms.max, r.jitter_ms.samples
        ),
    ));
    for kind in MediaKind::ALL {
        let m = r.media.get(kind);
        if m.streams == 0 {
            continue;
        }
        let toffset = if m.toffset_streams == 0 {
            "no toffset".to_string()
        } else {
            format!(
                "toffset on {} streams, {} packets",
                m.toffset_streams,
                thousands(m.toffset_packets)
            )
        };
        rows.push((
            kind.key(),
            format!(
                "lateness µs p50 {}  p99 {}  max {}  early max {}; jitter ms p50 {:.3}  p99 {:.3}  max {:.3}; {} streams, {}",
                thousands(m.lateness_us.p50),
                thousands(m.lateness_us.p99),
                thousands(m.lateness_us.max),
                thousands(m.earliness_us.max),
                m.jitter_ms.p50,
                m.jitter_ms.p99,
                m.jitter_ms.max,
                m.streams,
                toffset
            ),
        ));
    }
    rows.push((
        "setup ms",
        format!(
            "p50 {:.1}  p99 {:.1}  max {:.1}",
            r.setup_ms.p50, r.setup_ms.p99, r.setup_ms.max
        ),
    ));
    rows.push((
        "rtcp",
        format!(
            "{} RR sent  {} received ({} SR, {} BYE)",
            thousands(r.rtcp.rr_sent),
            thousands(r.rtcp.received),
            thousands(r.rtcp.sender_reports),
            r.rtcp.byes
        ),
    ));
    rows.push((
        "kernel UDP",
        match &r.kernel_udp {
            Some(k) => format!(
                "InDatagrams +{}  RcvbufErrors +{}  InErrors +{}  backlog drops +{} (host-wide); {} at the tool's sockets",
                thousands(k.in_datagrams),
                thousands(k.rcvbuf_errors),
                thousands(k.in_errors),
                thousands(k.backlog_dropped),
                thousands(k.tool_socket_drops)
            ),
            None => "unavailable".into(),
        },
    ));
    rows.push((
        "tool cpu",
        format!(
            "user {:.2} s  system {:.2} s  {:.3} µs/packet  workers busy {:?} %",
            r.cpu.user_s, r.cpu.system_s, r.cpu.us_per_packet, r.cpu.workers_busy_pct
        ),
    ));
    if let Some(s) = &r.server_cpu {
        rows.push((
            "server cpu",
            format!(
                "pid {}  user {:.2} s  system {:.2} s  {:.3} µs/packet",
                s.pid, s.cpu.user_s, s.cpu.system_s, s.cpu.us_per_packet
            ),
        ));
    }
    if let Some(c) = &r.ramp_cpu {
        let server = match (c.server_run_s, c.server_pct, c.server_wait_pct) {
            (Some(s), Some(p), Some(w)) => {
                format!("; server {s:.3} s ({p:.0}%, waiting for a CPU {w:.0}%)")
            }
            _ => String::new(),
        };
        rows.push((
            "ramp cpu",
            format!(
                "{:.3} s: tool {:.3} s ({:.0}%){}",
                c.wall_s, c.tool_cpu_s, c.tool_pct, server
            ),
        ));
    }
    if let Some(c) = &r.churn {
        rows.push((
            "churn",
            format!(
                "lifetimes {}–{} s (seed {}); {} sessions, {} ended: {} torn down, {} closed without TEARDOWN; {} replaced; {} failed",
                c.min_s,
                c.max_s,
                c.seed,
                thousands(c.sessions),
                thousands(c.ended),
                thousands(c.teardowns),
                thousands(c.closed_without_teardown),
                thousands(c.replaced),
                thousands(c.failed)
            ),
        ));
    }
    rows.push((
        "failures",
        if r.failures.is_empty() {
            "none".into()
        } else {
            r.failures
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join("  ")
        },
    ));
    for e in &r.errors {
        rows.push(("error", e.clone()));
    }
    for w in &r.warnings {
        rows.push(("warning", w.clone()));
    }
    rows.push((
        "verdict",
        if r.verdict.passed {
            "PASS".into()
        } else {
            format!("FAIL: {}", r.verdict.reasons.join("; "))
        },
    ));
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let pad = width - k.chars().count();
        let _ = writeln!(out, "{k}{}  {v}", " ".repeat(pad));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
