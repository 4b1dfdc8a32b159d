//! `cadence-bench compare A B`: every summary metric of every scenario both
//! result folders hold, side by side, with the ratio B/A and a mark where B
//! is more than 5% worse than A.

use std::fmt::Write as _;

use crate::results::ScenarioResult;

/// Worse-than threshold for the regression mark.
pub const REGRESSION: f64 = 0.05;

/// Whether higher values of `metric` are better (`Some(true)`), worse
/// (`Some(false)`), or neither (`None`: counts and settings).
pub fn higher_is_better(metric: &str) -> Option<bool> {
    let m = metric
        .trim_start_matches("cadence_")
        .trim_start_matches("peer_")
        .trim_start_matches("at_max_");
    // Facts of the machine or the load generator, not of the product.
    let neutral = [
        "floor_us_per_packet",
        "floor_cpuset_us_per_packet",
        "loadtool_",
        "cpuset_",
        "session_",
        "line_rate_",
    ];
    if neutral.iter().any(|n| m.starts_with(n)) {
        return None;
    }
    let higher = [
        "max_passing_sessions",
        "setup_rate_per_s",
        "packets_per_s",
        "mbit_per_s",
        "playing",
        "received",
        "cost_ratio",
        "passed",
    ];
    let lower = [
        "floor_ratio",
        "floor_ratio_cpuset",
        "us_per_packet",
        "server_us_per_setup",
        "server_cpu_pct",
        "server_cpu_pct_ramp",
        "server_user_pct",
        "server_sys_pct",
        "loss_pct",
        "lost",
        "failed",
        "lateness_us",
        "jitter_p99_ms",
        "setup_p50_ms",
        "setup_p99_ms",
        "rss_anon_per_session_bytes",
        "rss_peak_kib",
        "rss_anon_peak_kib",
        "ctx_switches_per_s",
        "rcvbuf_errors",
    ];
    if higher.contains(&m) {
        Some(true)
    } else if lower.iter().any(|l| m == *l || m.ends_with(l)) {
        Some(false)
    } else {
        None
    }
}

fn fmt(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// True when `b` is worse than `a` by more than [`REGRESSION`] for `metric`.
pub fn regressed(metric: &str, a: f64, b: f64) -> bool {
    let Some(higher) = higher_is_better(metric) else {
        return false;
    };
    if a == 0.0 {
        // From zero, any worsening counts (e.g. loss appearing).
        return if higher { b < 0.0 } else { b > 0.0 };
    }
    let change = (b - a) / a.abs();
    if higher {
        change < -REGRESSION
    } else {
        change > REGRESSION
    }
}

/// The markdown table comparing `a` (baseline) with `b`.
pub fn table(a_name: &str, a: &[ScenarioResult], b_name: &str, b: &[ScenarioResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| scenario | metric | {a_name} | {b_name} | ratio | |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
    let mut regressions = 0;
    for ra in a {
        let Some(rb) = b.iter().find(|r| r.scenario.name == ra.scenario.name) else {
            let _ = writeln!(out, "| {} | (only in {a_name}) | | | | |", ra.scenario.name);
            continue;
        };
        if ra.skipped.is_some() || rb.skipped.is_some() {
            let _ = writeln!(
                out,
                "| {} | (skipped in one run) | | | | |",
                ra.scenario.name
            );
            continue;
        }
        for (k, va) in &ra.summary {
            let Some(vb) = rb.summary.get(k) else {
                continue;
            };
            let ratio = if *va != 0.0 {
                format!("{:.3}", vb / va)
            } else {
                "–".into()
            };
            let mark = if regressed(k, *va, *vb) {
                regressions += 1;
                "⚠ regression"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "| {} | {k} | {} | {} | {ratio} | {mark} |",
                ra.scenario.name,
                fmt(*va),
                fmt(*vb)
            );
        }
    }
    for rb in b {
        if !a.iter().any(|r| r.scenario.name == rb.scenario.name) {
            let _ = writeln!(out, "| {} | (only in {b_name}) | | | | |", rb.scenario.name);
        }
    }
    let _ = writeln!(
        out,
        "\n{regressions} regression(s) worse than {:.0}%.",
        REGRESSION * 100.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regression_direction() {
        assert!(regressed("server_us_per_packet", 4.0, 4.3));
        assert!(!regressed("server_us_per_packet", 4.0, 4.1));
        assert!(regressed("max_passing_sessions", 6000.0, 5500.0));
        assert!(!regressed("max_passing_sessions", 6000.0, 7000.0));
        assert!(regressed("loss_pct", 0.0, 0.01));
        assert!(regressed("cadence_p99_lateness_us", 1000.0, 1200.0));
        assert!(!regressed("clients", 100.0, 50.0));
        assert!(!regressed("floor_us_per_packet", 2.0, 3.0));
        assert!(regressed("server_us_per_packet", 2.0, 3.0));
    }
}
