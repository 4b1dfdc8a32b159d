//! Scenario files (`benches/scenarios/*.toml`): what to run, on which CPUs,
//! with what load, over which network, what passes, and which release
//! targets the result is checked against.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What a scenario measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// One run at `load.clients`.
    Load,
    /// Client counts stepping upward until the first run that fails the
    /// `[pass]` criteria; the result is the largest passing count.
    Sweep,
    /// Sessions set up as fast as the server accepts them (`load.ramp` = 0
    /// starts every client at once); the result is sessions per second.
    SetupRate,
    /// The same load against Cadence and against gst-rtsp-server.
    Peer,
}

/// The engine process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// `cadence --cores`.
    pub cores: usize,
    /// CPU list the engine process is confined to (`taskset -c`); shard i
    /// pins itself to the i-th CPU of the list.
    pub cpus: String,
}

/// The load tool process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadtoolSpec {
    /// CPU list for `taskset -c` and `cadence-loadtool --cpus` (one worker
    /// per CPU).
    pub cpus: String,
}

/// The offered load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Concurrent sessions (kinds `load`, `setup_rate`, `peer`).
    #[serde(default)]
    pub clients: u64,
    /// Sessions started per second (0: all at once).
    pub ramp: f64,
    /// Measurement window after the ramp, seconds.
    pub duration_s: f64,
    /// `udp`, `tcp` or `mixed`.
    pub transport: String,
    /// Media files, by name in the repository's `media/` folder, or
    /// `fixtures/NAME` for `scripts/make-fixtures` output. Each is looped (ffmpeg stream copy, re-hinted) into the bench media folder
    /// until it outlasts ramp + window, so no session ends early.
    pub files: Vec<String>,
}

/// Where the load tool sits.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// `loopback` (default) or `veth`: the load tool runs in a network
    /// namespace linked to the engine by a veth pair shaped with tc tbf.
    #[serde(default)]
    pub mode: NetworkMode,
    /// tbf rate in Mbit/s (veth only) [default 1000].
    #[serde(default)]
    pub rate_mbit: Option<u64>,
    /// tbf bucket, bytes [default 131072].
    #[serde(default)]
    pub burst_bytes: Option<u64>,
    /// tbf queue limit, bytes [default 2097152 = 16 ms at 1 Gbit/s].
    #[serde(default)]
    pub limit_bytes: Option<u64>,
}

/// Network mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// 127.0.0.1.
    #[default]
    Loopback,
    /// A veth pair into a namespace, shaped by tc tbf.
    Veth,
}

/// Client counts of a sweep: an explicit list, or start/step/max.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Explicit counts, ascending (wins over start/step/max).
    #[serde(default)]
    pub counts: Vec<u64>,
    /// First count.
    #[serde(default)]
    pub start: u64,
    /// Increment.
    #[serde(default)]
    pub step: u64,
    /// Last count tried.
    #[serde(default)]
    pub max: u64,
    /// After the first failure, halve the gap to the last pass this many
    /// times (each halving is one more run).
    #[serde(default)]
    pub refine: u32,
}

impl SweepSpec {
    /// The counts to try, ascending.
    pub fn counts(&self) -> Vec<u64> {
        if !self.counts.is_empty() {
            return self.counts.clone();
        }
        if self.step == 0 || self.start == 0 {
            return vec![self.start.max(1)];
        }
        (0..)
            .map(|i| self.start + i * self.step)
            .take_while(|c| *c <= self.max.max(self.start))
            .collect()
    }
}

/// What a run must show to pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassSpec {
    /// Highest loss, percent.
    #[serde(default)]
    pub max_loss_pct: f64,
    /// Highest p99 lateness, µs (none: not checked).
    #[serde(default)]
    pub max_p99_lateness_us: Option<u64>,
}

impl Default for PassSpec {
    fn default() -> Self {
        PassSpec {
            max_loss_pct: 0.0,
            max_p99_lateness_us: Some(2_000),
        }
    }
}

/// The raw UDP floor measured before the runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloorSpec {
    /// Measure it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds per method.
    #[serde(default = "floor_seconds")]
    pub seconds: f64,
    /// Sessions whose packet rate the floor sender reproduces [default:
    /// `load.clients`, or the sweep's largest count].
    #[serde(default)]
    pub sessions: Option<u64>,
}

fn yes() -> bool {
    true
}

fn floor_seconds() -> f64 {
    4.0
}

impl Default for FloorSpec {
    fn default() -> Self {
        FloorSpec {
            enabled: true,
            seconds: floor_seconds(),
            sessions: None,
        }
    }
}

/// A release target: `summary[metric] op value`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// What the target says, for tables.
    pub label: String,
    /// Key of the scenario summary.
    pub metric: String,
    /// `>=` or `<=`.
    pub op: String,
    /// Threshold.
    pub value: f64,
}

/// Overrides applied by `cadence-bench run --quick` (CI: small, short).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuickSpec {
    /// Skip this scenario in quick mode.
    #[serde(default)]
    pub skip: bool,
    /// Clients.
    pub clients: Option<u64>,
    /// Ramp.
    pub ramp: Option<f64>,
    /// Window, s.
    pub duration_s: Option<f64>,
    /// Sweep counts.
    #[serde(default)]
    pub counts: Vec<u64>,
    /// Floor seconds per method.
    pub floor_seconds: Option<f64>,
    /// Media files.
    #[serde(default)]
    pub files: Vec<String>,
}

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; the result file is `<name>.json`.
    pub name: String,
    /// One sentence for tables.
    pub description: String,
    /// What it measures.
    pub kind: Kind,
    /// Engine process.
    pub engine: EngineSpec,
    /// Load tool process.
    pub loadtool: LoadtoolSpec,
    /// Offered load.
    pub load: LoadSpec,
    /// Network.
    #[serde(default)]
    pub network: NetworkSpec,
    /// Sweep counts (kind `sweep`).
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// Pass criteria of each run.
    #[serde(default)]
    pub pass: PassSpec,
    /// Floor measurement.
    #[serde(default)]
    pub floor: FloorSpec,
    /// Release targets checked against the summary.
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Quick-mode overrides.
    #[serde(default)]
    pub quick: QuickSpec,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let s: Scenario =
            toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        s.validate()
            .with_context(|| format!("invalid scenario {}", path.display()))?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("name must be [A-Za-z0-9_-]+, got {:?}", self.name);
        }
        if self.engine.cores == 0 {
            bail!("engine.cores must be at least 1");
        }
        if self.load.files.is_empty() {
            bail!("load.files is empty");
        }
        if !["udp", "tcp", "mixed"].contains(&self.load.transport.as_str()) {
            bail!("load.transport must be udp, tcp or mixed");
        }
        match self.kind {
            Kind::Sweep => {
                let counts = self.sweep.as_ref().map(|s| s.counts()).unwrap_or_default();
                if counts.is_empty() || counts.windows(2).any(|w| w[0] >= w[1]) {
                    bail!("a sweep needs [sweep] counts in ascending order");
                }
            }
            _ if self.load.clients == 0 => bail!("load.clients must be at least 1"),
            _ => {}
        }
        for t in &self.targets {
            if t.op != ">=" && t.op != "<=" {
                bail!("target {:?}: op must be >= or <=", t.label);
            }
        }
        Ok(())
    }

    /// The scenario as `--quick` runs it.
    pub fn quick(&self) -> Scenario {
        let mut s = self.clone();
        let q = &self.quick;
        if let Some(c) = q.clients {
            s.load.clients = c;
        }
        if let Some(r) = q.ramp {
            s.load.ramp = r;
        }
        if let Some(d) = q.duration_s {
            s.load.duration_s = d;
        }
        if !q.counts.is_empty() {
            s.sweep = Some(SweepSpec {
                counts: q.counts.clone(),
                ..SweepSpec::default()
            });
        }
        if let Some(f) = q.floor_seconds {
            s.floor.seconds = f;
        }
        if !q.files.is_empty() {
            s.load.files = q.files.clone();
        }
        s.floor.sessions = None;
        s
    }

    /// Client counts to run, in order (one for non-sweeps).
    pub fn counts(&self) -> Vec<u64> {
        match (self.kind, &self.sweep) {
            (Kind::Sweep, Some(sw)) => sw.counts(),
            _ => vec![self.load.clients],
        }
    }

    /// Sessions whose packet rate the floor reproduces.
    pub fn floor_sessions(&self) -> u64 {
        self.floor
            .sessions
            .unwrap_or_else(|| self.counts().into_iter().max().unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_scenarios_parse_and_quick_overrides_apply() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).expect("scenarios folder") {
            let path = e.expect("entry").path();
            if path.extension().and_then(|x| x.to_str()) != Some("toml") {
                continue;
            }
            let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(
                path.file_stem().and_then(|x| x.to_str()),
                Some(s.name.as_str()),
                "file name and scenario name differ"
            );
            let q = s.quick();
            assert!(!q.counts().is_empty());
            if !s.quick.skip {
                assert!(
                    q.counts().iter().max() <= s.counts().iter().max(),
                    "{}: quick must not be heavier",
                    s.name
                );
            }
            n += 1;
        }
        assert!(n >= 5, "expected the shipped scenarios, found {n}");
    }

    #[test]
    fn sweep_counts() {
        let s = SweepSpec {
            start: 500,
            step: 1000,
            max: 3000,
            ..SweepSpec::default()
        };
        assert_eq!(s.counts(), vec![500, 1500, 2500]);
        let e = SweepSpec {
            counts: vec![1, 5],
            start: 9,
            ..SweepSpec::default()
        };
        assert_eq!(e.counts(), vec![1, 5]);
    }
}
