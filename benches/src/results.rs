//! The result files: one JSON document per scenario, `results/<version>/<scenario>.json`,
//! of schema [`SCHEMA`]. Metrics are flat `name → number` maps so that
//! `compare`, `plot` and `table` work on any scenario.
//!
//! Schema `cadence-bench/1`, top-level keys: `schema`, `scenario` (the
//! scenario as run), `quick`, `started_unix_s`, `wall_s`, `machine`, `build`,
//! `media`, `link` (veth scenarios), `floor`, `runs`, `summary`, `targets`,
//! `skipped`, `notes`. Each run: `server`, `clients`, `passed`, `reasons`,
//! `metrics`, `window`, `samples` (per-second /proc samples of the server),
//! `shard_stats` (the engine's own 10 s counters), `loadtool` (the load
//! tool's JSON report without its per-session list), exit statuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::floor::{RecvReport, SendReport};
use crate::machine::{Build, Machine};
use crate::media::MediaInfo;
use crate::netns::LinkInfo;
use crate::procstat::Sample;
use crate::scenario::Scenario;

/// Schema identifier; bump on incompatible changes.
pub const SCHEMA: &str = "cadence-bench/1";

/// Metric names → values.
pub type Metrics = BTreeMap<String, f64>;

/// One floor method's measurement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FloorMethod {
    /// The sender.
    pub send: SendReport,
    /// The receiver.
    pub receive: RecvReport,
}

/// The kernel floor of a scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Floor {
    /// Sessions whose packet rate was reproduced.
    pub sessions: u64,
    /// Packets per second sent.
    pub rate_pps: f64,
    /// io_uring SENDMSG.
    pub uring: FloorMethod,
    /// sendmmsg ×64.
    pub sendmmsg: FloorMethod,
    /// The floor: the cheaper of the two, µs per packet (process CPU).
    pub us_per_packet: f64,
    /// The same by busy time of the sender's whole CPU set.
    pub cpuset_us_per_packet: f64,
}

/// Time marks of a run, in seconds of the sampler's clock.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Window {
    /// Baseline sample (server idle, schedules compiled).
    pub baseline_s: f64,
    /// Load tool started.
    pub ramp_start_s: f64,
    /// Every client playing: measurement starts.
    pub start_s: f64,
    /// Measurement ends.
    pub end_s: f64,
}

/// One server under one load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunResult {
    /// `cadence` or `gst-rtsp-server`.
    pub server: String,
    /// Requested sessions.
    pub clients: u64,
    /// Passed the scenario's `[pass]` criteria.
    pub passed: bool,
    /// Why not.
    pub reasons: Vec<String>,
    /// Derived metrics (see `run::metrics`).
    pub metrics: Metrics,
    /// Time marks.
    pub window: Window,
    /// Per-second samples of the server process.
    pub samples: Vec<Sample>,
    /// The engine's "shard stats" log lines (numbers only).
    pub shard_stats: Vec<Metrics>,
    /// The load tool's report, without `sessions`.
    pub loadtool: serde_json::Value,
    /// Load tool exit status.
    pub loadtool_exit: String,
    /// Server exit status after SIGTERM.
    pub server_exit: String,
}

/// A release target checked against the summary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TargetResult {
    /// What it says.
    pub label: String,
    /// Summary key.
    pub metric: String,
    /// `>=` or `<=`.
    pub op: String,
    /// Threshold.
    pub target: f64,
    /// Measured value (absent when the run did not produce it).
    pub measured: Option<f64>,
    /// Met.
    pub met: bool,
}

/// One scenario's result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// [`SCHEMA`].
    pub schema: String,
    /// The scenario as run (quick overrides applied).
    pub scenario: Scenario,
    /// Run with `--quick`.
    pub quick: bool,
    /// Start, Unix seconds.
    pub started_unix_s: u64,
    /// Wall time, s.
    pub wall_s: f64,
    /// Machine.
    pub machine: Machine,
    /// Build.
    pub build: Build,
    /// Files served.
    pub media: Vec<MediaInfo>,
    /// The shaped link (veth scenarios).
    pub link: Option<LinkInfo>,
    /// Kernel floor.
    pub floor: Option<Floor>,
    /// Runs in order.
    pub runs: Vec<RunResult>,
    /// Scenario summary.
    pub summary: Metrics,
    /// Targets.
    pub targets: Vec<TargetResult>,
    /// Why the scenario did not run.
    pub skipped: Option<String>,
    /// Findings in words.
    pub notes: Vec<String>,
}

impl ScenarioResult {
    /// Writes `<dir>/<name>.json`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.json", self.scenario.name));
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }
}

/// Every result file in `dir`, sorted by scenario name.
pub fn load_dir(dir: &Path) -> Result<Vec<ScenarioResult>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?;
    for e in entries {
        let path = e?.path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        if value.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
            continue;
        }
        let r: ScenarioResult = serde_json::from_value(value)
            .with_context(|| format!("{} does not match {SCHEMA}", path.display()))?;
        out.push(r);
    }
    out.sort_by(|a, b| a.scenario.name.cmp(&b.scenario.name));
    Ok(out)
}

/// Run metrics every non-skipped run must have.
pub const REQUIRED_RUN_METRICS: &[&str] = &[
    "clients",
    "playing",
    "failed",
    "loss_pct",
    "p99_lateness_us",
    "packets_per_s",
    "server_cpu_pct",
    "server_us_per_packet",
    "server_runqueue_wait_pct",
    "rss_anon_per_session_bytes",
    "fds_peak",
    "ctx_switches_per_s",
];

/// Load tool report keys every run must carry (JSON pointers).
pub const REQUIRED_LOADTOOL_KEYS: &[&str] = &[
    "/clients/requested",
    "/clients/playing",
    "/clients/failed",
    "/packets/received",
    "/packets/lost",
    "/bytes/received",
    "/lateness_us/p50",
    "/lateness_us/p99",
    "/lateness_us/p999",
    "/lateness_us/max",
    "/jitter_ms/p50",
    "/jitter_ms/p99",
    "/setup_ms/p50",
    "/setup_ms/p99",
    "/failures",
    "/duration_s",
    "/cpu/user_s",
    "/cpu/system_s",
];

/// Checks that every result in `dir` is complete: schema, machine and build
/// facts, a floor where enabled, runs with samples and every required metric
/// and load tool key, a summary, and each target evaluated. Returns one line
/// per problem (empty: complete). Errors when there is no result at all.
pub fn validate_dir(dir: &Path) -> Result<Vec<String>> {
    let all = load_dir(dir)?;
    if all.is_empty() {
        bail!("no {SCHEMA} result in {}", dir.display());
    }
    let mut problems = Vec::new();
    for r in &all {
        let name = &r.scenario.name;
        let mut p = |m: String| problems.push(format!("{name}: {m}"));
        if r.skipped.is_some() {
            continue;
        }
        if r.machine.cpu_model.is_empty() || r.machine.kernel.is_empty() || r.machine.cpus == 0 {
            p("machine facts missing".into());
        }
        if r.build.commit.is_empty()
            || r.build.engine_version.is_empty()
            || r.build.profile.is_empty()
        {
            p("build facts missing".into());
        }
        if r.media.is_empty() {
            p("media facts missing".into());
        }
        if r.scenario.floor.enabled {
            match &r.floor {
                Some(f)
                    if f.us_per_packet > 0.0
                        && f.uring.send.packets > 0
                        && f.sendmmsg.send.packets > 0 => {}
                _ => p("floor missing or empty".into()),
            }
        }
        if r.runs.is_empty() {
            p("no runs".into());
        }
        for run in &r.runs {
            let who = format!("{} x{}", run.server, run.clients);
            if run.samples.len() < 2 {
                p(format!("{who}: fewer than 2 /proc samples"));
            }
            for m in REQUIRED_RUN_METRICS {
                match run.metrics.get(*m) {
                    Some(v) if v.is_finite() => {}
                    _ => p(format!("{who}: metric {m} missing")),
                }
            }
            for k in REQUIRED_LOADTOOL_KEYS {
                if run.loadtool.pointer(k).is_none() {
                    p(format!("{who}: load tool key {k} missing"));
                }
            }
        }
        if r.summary.is_empty() {
            p("empty summary".into());
        }
        for t in &r.targets {
            if t.measured.is_none() {
                p(format!("target {:?} not measured", t.label));
            }
        }
    }
    Ok(problems)
}
