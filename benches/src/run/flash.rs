//! Kind `flash_crowd`: two load tool processes on the load tool's CPUs
//! against one server. The first plays the base cohort for the whole
//! scenario; once it has played alone for `settle_s`, the runner opens its
//! marked window (SIGUSR1), starts the second, the crowd, and closes the
//! window (SIGUSR1 again) `tail_s` after every joiner plays. The base
//! cohort's loss and lateness over that window are its `join_*` metrics;
//! the crowd's own figures (playing, failures by kind, setup rate and
//! times) come from the second report.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::{log, metric, metrics, num, read_report, Runner, Server, Started};
use crate::procs::Guard;
use crate::procstat::{self, Sampler};
use crate::results::{Metrics, RunResult, ScenarioResult, Window};

/// Sends `signal` to `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Starts a load tool with its progress lines (stderr) copied to `log`;
/// the receiver gets one message when its measurement window begins (every
/// client played or failed).
fn spawn_watched(
    mut cmd: std::process::Command,
    log: &std::path::Path,
    what: &str,
) -> Result<(Guard, mpsc::Receiver<()>)> {
    let mut file = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(Stdio::piped());
    let mut guard = Guard::new(cmd.spawn().with_context(|| format!("start {what}"))?, what);
    let stderr = guard
        .child()
        .and_then(|c| c.stderr.take())
        .ok_or_else(|| anyhow!("{what}: no stderr"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            let _ = writeln!(file, "{line}");
            if !told && line.contains(" measure") {
                told = tx.send(()).is_ok();
            }
        }
    });
    Ok((guard, rx))
}

/// Waits for the window to begin, at most `limit`; false on timeout or
/// when the process ended first.
fn wait_window(rx: &mpsc::Receiver<()>, limit: Duration) -> bool {
    rx.recv_timeout(limit).is_ok()
}

impl Runner<'_> {
    /// The base cohort's run and the crowd's run.
    pub(super) fn run_flash_crowd(&self) -> Result<Vec<RunResult>> {
        let s = self.scenario;
        let fc = s
            .flash_crowd
            .clone()
            .ok_or_else(|| anyhow!("no [flash_crowd] table"))?;
        let (base, crowd) = fc
            .cohorts()
            .ok_or_else(|| anyhow!("flash crowd cohorts not resolved"))?;
        log(format!(
            "{}: {base} sessions at {}/s, then {crowd} joining at {}/s",
            s.name, fc.base_ramp, fc.crowd_ramp
        ));
        let Started {
            guard,
            server_log,
            urls,
            pid,
            sampler,
            baseline,
        } = self.start_measured(Server::Cadence, base + crowd)?;
        let now_s = |sampler: &Sampler| sampler.started.elapsed().as_secs_f64();

        // Base cohort: its window is ended by the runner (SIGTERM) once the
        // marked window is closed; the duration is only an upper bound.
        let crowd_ramp_s = crowd as f64 / fc.crowd_ramp;
        let timeout_s = 10.0;
        let base_duration = fc.settle_s + crowd_ramp_s + timeout_s + fc.tail_s + 60.0;
        let base_json = self
            .log_path(Server::Cadence, base, "loadtool-base")?
            .with_extension("json");
        let cmd = self.loadtool_command(base, fc.base_ramp, base_duration, &base_json, &urls, pid);
        let base_ramp_start = now_s(&sampler);
        let (mut base_lt, base_rx) = spawn_watched(
            cmd,
            &self.log_path(Server::Cadence, base, "loadtool-base")?,
            "cadence-loadtool (base)",
        )?;
        let base_limit = Duration::from_secs_f64(base as f64 / fc.base_ramp + timeout_s + 30.0);
        if !wait_window(&base_rx, base_limit) {
            log("  the base cohort did not settle in time; the crowd joins anyway");
        }
        std::thread::sleep(Duration::from_secs_f64(fc.settle_s));

        // The crowd, with the base cohort's marked window around it.
        let crowd_json = self
            .log_path(Server::Cadence, crowd, "loadtool-crowd")?
            .with_extension("json");
        let cmd = self.loadtool_command(
            crowd,
            fc.crowd_ramp,
            fc.tail_s + 2.0,
            &crowd_json,
            &urls,
            pid,
        );
        signal(base_lt.pid(), libc::SIGUSR1);
        let join_start = now_s(&sampler);
        let (crowd_lt, crowd_rx) = spawn_watched(
            cmd,
            &self.log_path(Server::Cadence, crowd, "loadtool-crowd")?,
            "cadence-loadtool (crowd)",
        )?;
        let crowd_limit = Duration::from_secs_f64(crowd_ramp_s + timeout_s + 30.0);
        let joined = Instant::now();
        if !wait_window(&crowd_rx, crowd_limit) {
            log("  the crowd did not settle in time");
        }
        let join_settled = joined.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs_f64(fc.tail_s));
        signal(base_lt.pid(), libc::SIGUSR1);
        let join_end = now_s(&sampler);
        let crowd_status =
            crowd_lt.wait_for(Duration::from_secs_f64(fc.tail_s + 2.0 + timeout_s + 30.0));
        // End the base cohort's window (SIGTERM ends it at once, then the
        // sessions tear down and the report is written).
        std::thread::sleep(Duration::from_millis(300));
        let base_end = now_s(&sampler);
        if base_lt.alive() {
            signal(base_lt.pid(), libc::SIGTERM);
        }
        let base_status = base_lt.wait_for(Duration::from_secs_f64(timeout_s + 30.0));
        let _ = sampler.mark(pid);
        let server_exit = guard.stop(Duration::from_secs(10));
        let samples = sampler.finish();
        let shard_stats = super::shard_stats(&server_log);

        let exit = |st: &Result<std::process::ExitStatus>| match st {
            Ok(st) => st.to_string(),
            Err(e) => e.to_string(),
        };
        let base_report = read_report(&base_json);
        let crowd_report = read_report(&crowd_json);

        // Base cohort: its own window, plus the join window's figures.
        let b_ramp = num(&base_report, "/ramp_s");
        let b_window = Window {
            baseline_s: baseline.t_s,
            ramp_start_s: base_ramp_start,
            start_s: base_ramp_start + b_ramp,
            end_s: (base_ramp_start + b_ramp + num(&base_report, "/duration_s")).min(base_end),
        };
        let mut b = RunResult {
            server: "cadence".into(),
            clients: base,
            window: b_window,
            shard_stats: shard_stats.clone(),
            loadtool_exit: exit(&base_status),
            server_exit: server_exit.clone(),
            ..RunResult::default()
        };
        b.metrics = metrics(&base_report, &samples, &baseline, &b.window, base);
        b.metrics.insert("cohort_base".into(), 1.0);
        let join = join_metrics(&base_report, &samples, join_start, join_end);
        b.metrics.extend(join);
        let mut reasons = self.judge(&base_report, base, &b.loadtool_exit);
        reasons.extend(join_reasons(
            &b.metrics,
            s.pass.max_loss_pct,
            s.pass.max_p99_lateness_us,
        ));
        b.passed = reasons.is_empty();
        b.reasons = reasons;
        b.samples = samples.clone();
        b.loadtool = base_report;

        // The crowd: playing / failed, setup rate and times.
        let c_ramp = num(&crowd_report, "/ramp_s");
        let c_window = Window {
            baseline_s: baseline.t_s,
            ramp_start_s: join_start,
            start_s: join_start + c_ramp,
            end_s: join_start + c_ramp + num(&crowd_report, "/duration_s"),
        };
        let mut c = RunResult {
            server: "cadence".into(),
            clients: crowd,
            window: c_window,
            shard_stats,
            loadtool_exit: exit(&crowd_status),
            server_exit,
            ..RunResult::default()
        };
        c.metrics = metrics(&crowd_report, &samples, &baseline, &c.window, crowd);
        c.metrics.insert("cohort_base".into(), 0.0);
        let mut reasons = Vec::new();
        if crowd_report.is_null() {
            reasons.push(format!(
                "the crowd's load tool wrote no report ({})",
                c.loadtool_exit
            ));
        } else {
            let playing = num(&crowd_report, "/clients/playing") as u64;
            let failed = num(&crowd_report, "/clients/failed") as u64;
            if playing < crowd {
                reasons.push(format!("{playing} of {crowd} joiners played"));
            }
            if failed > 0 {
                let causes = crowd_report
                    .get("failures")
                    .map(|f| f.to_string())
                    .unwrap_or_default();
                reasons.push(format!("{failed} joiners failed: {causes}"));
            }
        }
        c.passed = reasons.is_empty();
        c.reasons = reasons;
        c.samples = samples;
        c.loadtool = crowd_report;

        log(format!(
            "  crowd x{crowd}: {}/{crowd} playing, {} failed, {:.0} setups/s (p50 {:.1} ms, p99 {:.1} ms), settled in {join_settled:.1} s",
            metric(&c.metrics, "playing"),
            metric(&c.metrics, "failed"),
            metric(&c.metrics, "setup_rate_per_s"),
            metric(&c.metrics, "setup_p50_ms"),
            metric(&c.metrics, "setup_p99_ms"),
        ));
        log(format!(
            "  base x{base} over the join ({:.1} s): {} | loss {:.4}% | p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs, worst 1 s p99 {:.0} µs | server CPU {:.0}% | load tool CPUs {:.0}% busy",
            metric(&b.metrics, "join_window_s"),
            if b.passed { "PASS" } else { "FAIL" },
            metric(&b.metrics, "join_loss_pct"),
            metric(&b.metrics, "join_p99_lateness_us"),
            metric(&b.metrics, "join_p999_lateness_us"),
            metric(&b.metrics, "join_max_lateness_us"),
            metric(&b.metrics, "join_max_second_p99_us"),
            metric(&b.metrics, "join_server_cpu_pct"),
            metric(&b.metrics, "join_loadtool_cpus_busy_pct"),
        ));
        std::thread::sleep(Duration::from_secs(1));
        Ok(vec![b, c])
    }
}

/// The base cohort's figures over the join window: from its report's
/// `marked` object, and the server's and the load tool CPUs' use between
/// `start_s` and `end_s` (the runner's clock) from the samples.
fn join_metrics(
    report: &serde_json::Value,
    samples: &[procstat::Sample],
    start_s: f64,
    end_s: f64,
) -> Metrics {
    let mut m = Metrics::new();
    if report.pointer("/marked/start_s").is_some() {
        for (k, ptr) in [
            ("join_window_s", "/marked/duration_s"),
            ("join_playing_at_start", "/marked/playing_at_start"),
            ("join_failed", "/marked/failed"),
            ("join_received", "/marked/packets"),
            ("join_lost", "/marked/lost"),
            ("join_loss_pct", "/marked/loss_pct"),
            ("join_p50_lateness_us", "/marked/lateness_us/p50"),
            ("join_p99_lateness_us", "/marked/lateness_us/p99"),
            ("join_p999_lateness_us", "/marked/lateness_us/p999"),
            ("join_max_lateness_us", "/marked/lateness_us/max"),
            ("join_max_second_p99_us", "/marked/max_second_p99_us"),
        ] {
            m.insert(k.into(), num(report, ptr));
        }
    }
    if let (Some(a), Some(b)) = (procstat::at(samples, start_s), procstat::at(samples, end_s)) {
        let dt = (b.t_s - a.t_s).max(1e-9);
        m.insert(
            "join_server_cpu_pct".into(),
            (b.run_s - a.run_s) / dt * 100.0,
        );
        m.insert(
            "join_loadtool_cpus_busy_pct".into(),
            (b.loadtool_cpus_busy_s - a.loadtool_cpus_busy_s) / dt * 100.0,
        );
    }
    m
}

/// Why the base cohort's join window fails the `[pass]` criteria.
fn join_reasons(m: &Metrics, max_loss_pct: f64, max_p99_us: Option<u64>) -> Vec<String> {
    let Some(window) = m.get("join_window_s") else {
        return vec!["the base cohort reported no join window (no SIGUSR1 marks)".into()];
    };
    let mut out = Vec::new();
    let g = |k: &str| m.get(k).copied().unwrap_or(0.0);
    if g("join_loss_pct") > max_loss_pct {
        out.push(format!(
            "base cohort loss over the join {:.4}% > {max_loss_pct}% ({} packets in {window:.1} s)",
            g("join_loss_pct"),
            g("join_lost")
        ));
    }
    if g("join_failed") > 0.0 {
        out.push(format!(
            "{} base sessions failed during the join",
            g("join_failed")
        ));
    }
    if let Some(max) = max_p99_us {
        let worst = g("join_p99_lateness_us").max(g("join_max_second_p99_us"));
        if worst > max as f64 {
            out.push(format!(
                "base cohort p99 lateness over the join {:.0} µs (worst second {:.0} µs) > {max} µs",
                g("join_p99_lateness_us"),
                g("join_max_second_p99_us")
            ));
        }
    }
    out
}

/// The summary of a flash-crowd result: `base_*` (the base cohort over its
/// whole window), `base_join_*` (over the join), `crowd_*` (the joiners:
/// playing, failed, failures by kind, setup rate and times), and the load
/// tool's CPU beside them.
pub(super) fn summary(r: &ScenarioResult) -> Metrics {
    let mut m = Metrics::new();
    let base = r
        .runs
        .iter()
        .find(|x| x.metrics.get("cohort_base") == Some(&1.0));
    let crowd = r
        .runs
        .iter()
        .find(|x| x.metrics.get("cohort_base") == Some(&0.0));
    if let Some(b) = base {
        m.insert("base_clients".into(), b.clients as f64);
        for k in [
            "playing",
            "failed",
            "loss_pct",
            "p99_lateness_us",
            "p999_lateness_us",
        ] {
            if let Some(v) = b.metrics.get(k) {
                m.insert(format!("base_{k}"), *v);
            }
        }
        for (k, v) in &b.metrics {
            if let Some(rest) = k.strip_prefix("join_") {
                m.insert(format!("base_join_{rest}"), *v);
            }
        }
        for k in [
            "server_us_per_packet",
            "server_cpu_pct",
            "rss_anon_per_session_bytes",
        ] {
            if let Some(v) = b.metrics.get(k) {
                m.insert(k.into(), *v);
            }
        }
        m.insert("base_passed".into(), f64::from(u8::from(b.passed)));
        if let Some(v) = b.metrics.get("join_loadtool_cpus_busy_pct") {
            m.insert("loadtool_cpus_busy_pct".into(), *v);
        }
    }
    if let Some(c) = crowd {
        m.insert("crowd_clients".into(), c.clients as f64);
        for k in [
            "playing",
            "failed",
            "setup_rate_per_s",
            "setup_p50_ms",
            "setup_p99_ms",
        ] {
            if let Some(v) = c.metrics.get(k) {
                m.insert(format!("crowd_{k}"), *v);
            }
        }
        m.insert("crowd_all_playing".into(), f64::from(u8::from(c.passed)));
        // Failures by kind; rtsp_453 and timeout always present.
        m.insert("crowd_failures_rtsp_453".into(), 0.0);
        m.insert("crowd_failures_timeout".into(), 0.0);
        if let Some(f) = c.loadtool.get("failures").and_then(|f| f.as_object()) {
            for (k, v) in f {
                m.insert(format!("crowd_failures_{k}"), v.as_f64().unwrap_or(0.0));
            }
        }
    }
    // The load tools' CPU per packet over both processes.
    let (mut cpu_s, mut packets) = (0.0, 0.0);
    for run in &r.runs {
        cpu_s += num(&run.loadtool, "/cpu/user_s") + num(&run.loadtool, "/cpu/system_s");
        packets += num(&run.loadtool, "/packets/received");
    }
    if packets > 0.0 {
        m.insert("loadtool_us_per_packet".into(), cpu_s * 1e6 / packets);
    }
    m.insert(
        "passed".into(),
        f64::from(u8::from(
            r.runs.len() == 2 && r.runs.iter().all(|x| x.passed),
        )),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_reasons_check_the_window_and_its_worst_second() {
        let mut m = Metrics::new();
        assert_eq!(join_reasons(&m, 0.0, Some(2000)).len(), 1, "no window");
        for (k, v) in [
            ("join_window_s", 5.0),
            ("join_loss_pct", 0.0),
            ("join_lost", 0.0),
            ("join_failed", 0.0),
            ("join_p99_lateness_us", 900.0),
            ("join_max_second_p99_us", 1500.0),
        ] {
            m.insert(k.into(), v);
        }
        assert!(join_reasons(&m, 0.0, Some(2000)).is_empty());
        // One bad second fails "p99 ≤ 2 ms throughout" though the window's p99 passes.
        m.insert("join_max_second_p99_us".into(), 2500.0);
        assert_eq!(join_reasons(&m, 0.0, Some(2000)).len(), 1);
        assert!(join_reasons(&m, 0.0, None).is_empty());
        m.insert("join_loss_pct".into(), 0.01);
        m.insert("join_failed".into(), 2.0);
        assert_eq!(join_reasons(&m, 0.0, None).len(), 2);
    }

    #[test]
    fn join_metrics_read_the_marked_window() {
        let report = serde_json::json!({
            "marked": {"start_s": 4.0, "duration_s": 6.5, "playing_at_start": 400, "failed": 0,
                       "packets": 1000, "lost": 2, "loss_pct": 0.2,
                       "lateness_us": {"p50": 10, "p99": 900, "p999": 1800, "max": 4000},
                       "max_second_p99_us": 1200}
        });
        let m = join_metrics(&report, &[], 0.0, 1.0);
        assert_eq!(m.get("join_window_s"), Some(&6.5));
        assert_eq!(m.get("join_p999_lateness_us"), Some(&1800.0));
        assert_eq!(m.get("join_max_second_p99_us"), Some(&1200.0));
        assert_eq!(m.get("join_lost"), Some(&2.0));
        assert!(join_metrics(&serde_json::json!({}), &[], 0.0, 1.0).is_empty());
    }
}
