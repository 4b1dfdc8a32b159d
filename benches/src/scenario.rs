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
    /// A base cohort plays; a crowd joins at a high rate on the same
    /// shard; the base cohort's loss and lateness are measured over the
    /// join, apart from the crowd's own figures (`[flash_crowd]`).
    FlashCrowd,
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
    /// Instead of `clients`: this fraction of the floor-limited capacity
    /// N_floor = 1 s / (floor µs/packet × packets/s per session), both
    /// measured in the same run; clients = round(fraction × N_floor),
    /// computed once the floor is measured. Needs `[floor] sessions`.
    #[serde(default)]
    pub clients_floor_fraction: Option<f64>,
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
    /// Sessions start with DESCRIBE, without OPTIONS (`cadence-loadtool
    /// --no-options`): a session is DESCRIBE, SETUP per track, PLAY.
    #[serde(default)]
    pub no_options: bool,
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
    /// Receive packet steering (RPS) of the namespace end of the veth pair
    /// onto this CPU list (`taskset -c` syntax; veth only). Without it the
    /// receiving half of every packet (IP, UDP, socket wake-up of the load
    /// tool) runs in softirq on the engine's CPU, where the tbf watchdog
    /// dequeues it; a real receiver does that work on its own host. `"loadtool"`
    /// means the load tool's CPUs [default: none, the kernel's choice].
    /// With `shaper = "router"`, these are the CPUs the router namespace's
    /// forwarding and shaping run on.
    #[serde(default)]
    pub rps_cpus: Option<String>,
    /// Where the tbf runs: `sender` (both ends of one veth pair; the
    /// downstream shaping runs on the engine's CPU) or `router` (a router
    /// namespace between engine and load tool, its receive processing on
    /// `rps_cpus`, as a switch shapes in its own hardware) [default sender].
    #[serde(default)]
    pub shaper: crate::netns::Shaper,
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
    /// Counts as fractions of N_floor (see `load.clients_floor_fraction`),
    /// ascending; replaced by counts once the floor is measured.
    #[serde(default)]
    pub floor_fractions: Vec<f64>,
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
    /// Run every count even after a failure (for figures wanted at every
    /// load, such as CPU per packet against the floor); no refinement then.
    #[serde(default)]
    pub run_all: bool,
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

/// Kind `flash_crowd`: the base cohort and the crowd.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlashCrowdSpec {
    /// Base cohort as a fraction of N_floor [default 0.4].
    #[serde(default = "base_fraction")]
    pub base_fraction: f64,
    /// Crowd as a fraction of N_floor [default 0.5].
    #[serde(default = "crowd_fraction")]
    pub crowd_fraction: f64,
    /// Base cohort as a fixed count (wins over `base_fraction`).
    #[serde(default)]
    pub base_clients: Option<u64>,
    /// Crowd as a fixed count (wins over `crowd_fraction`).
    #[serde(default)]
    pub crowd_clients: Option<u64>,
    /// Base cohort sessions started per second [default 2000].
    #[serde(default = "base_ramp")]
    pub base_ramp: f64,
    /// Seconds the base cohort plays alone before the crowd [default 3].
    #[serde(default = "three")]
    pub settle_s: f64,
    /// Crowd sessions started per second [default 5000].
    #[serde(default = "crowd_ramp")]
    pub crowd_ramp: f64,
    /// Seconds the measured window lasts after every joiner plays
    /// [default 3].
    #[serde(default = "three")]
    pub tail_s: f64,
}

fn base_fraction() -> f64 {
    0.4
}
fn crowd_fraction() -> f64 {
    0.5
}
fn base_ramp() -> f64 {
    2000.0
}
fn crowd_ramp() -> f64 {
    5000.0
}
fn three() -> f64 {
    3.0
}

impl Default for FlashCrowdSpec {
    fn default() -> Self {
        FlashCrowdSpec {
            base_fraction: base_fraction(),
            crowd_fraction: crowd_fraction(),
            base_clients: None,
            crowd_clients: None,
            base_ramp: base_ramp(),
            settle_s: three(),
            crowd_ramp: crowd_ramp(),
            tail_s: three(),
        }
    }
}

impl FlashCrowdSpec {
    /// (base, crowd) sessions, when both are known.
    pub fn cohorts(&self) -> Option<(u64, u64)> {
        Some((self.base_clients?, self.crowd_clients?))
    }
}

/// The floor-limited capacity N_floor = 1 s / (floor µs per packet ×
/// packets/s per session), in sessions; None when either is not positive.
pub fn n_floor(floor_us_per_packet: f64, packets_per_s: f64) -> Option<f64> {
    let per_session = floor_us_per_packet * packets_per_s;
    (per_session > 0.0 && per_session.is_finite()).then(|| 1e6 / per_session)
}

fn of_floor(fraction: f64, n: f64) -> u64 {
    (fraction * n).round().max(1.0) as u64
}

fn fraction_ok(f: f64) -> bool {
    f.is_finite() && f > 0.0 && f <= 10.0
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
    /// Flash crowd: base cohort, sessions.
    pub base_clients: Option<u64>,
    /// Flash crowd: crowd, sessions.
    pub crowd_clients: Option<u64>,
    /// Flash crowd: seconds the base cohort plays alone.
    pub settle_s: Option<f64>,
    /// Flash crowd: seconds measured after every joiner plays.
    pub tail_s: Option<f64>,
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
    /// Cohorts of kind `flash_crowd`.
    #[serde(default)]
    pub flash_crowd: Option<FlashCrowdSpec>,
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
        let fractions = self.uses_floor_fractions();
        match self.kind {
            Kind::Sweep => {
                let sw = self.sweep.clone().unwrap_or_default();
                if !sw.floor_fractions.is_empty() {
                    let f = &sw.floor_fractions;
                    if !f.iter().all(|x| fraction_ok(*x)) || f.windows(2).any(|w| w[0] >= w[1]) {
                        bail!("[sweep] floor_fractions must be ascending, in (0, 10]");
                    }
                } else {
                    let counts = sw.counts();
                    if counts.is_empty() || counts.windows(2).any(|w| w[0] >= w[1]) {
                        bail!("a sweep needs [sweep] counts in ascending order");
                    }
                }
            }
            Kind::FlashCrowd => {
                let Some(fc) = &self.flash_crowd else {
                    bail!("kind flash_crowd needs a [flash_crowd] table");
                };
                if !fraction_ok(fc.base_fraction) || !fraction_ok(fc.crowd_fraction) {
                    bail!("[flash_crowd] fractions must be in (0, 10]");
                }
                if fc.base_clients == Some(0) || fc.crowd_clients == Some(0) {
                    bail!("[flash_crowd] cohorts must have at least 1 session");
                }
                for (name, v) in [("base_ramp", fc.base_ramp), ("crowd_ramp", fc.crowd_ramp)] {
                    if !(v.is_finite() && v > 0.0) {
                        bail!("[flash_crowd] {name} must be positive");
                    }
                }
                for (name, v) in [("settle_s", fc.settle_s), ("tail_s", fc.tail_s)] {
                    if !(v.is_finite() && v >= 0.0) {
                        bail!("[flash_crowd] {name} must be a non-negative number");
                    }
                }
            }
            _ => match self.load.clients_floor_fraction {
                Some(f) if !fraction_ok(f) => {
                    bail!("load.clients_floor_fraction must be in (0, 10]")
                }
                Some(_) => {}
                None if self.load.clients == 0 => bail!("load.clients must be at least 1"),
                None => {}
            },
        }
        if fractions && (!self.floor.enabled || self.floor.sessions.is_none()) {
            bail!("counts as fractions of N_floor need the floor: [floor] enabled and sessions");
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
        if q.clients.is_some() {
            s.load.clients_floor_fraction = None;
        }
        if let Some(fc) = s.flash_crowd.as_mut() {
            fc.base_clients = q.base_clients.or(fc.base_clients);
            fc.crowd_clients = q.crowd_clients.or(fc.crowd_clients);
            fc.settle_s = q.settle_s.unwrap_or(fc.settle_s);
            fc.tail_s = q.tail_s.unwrap_or(fc.tail_s);
        }
        // Quick runs are small: the floor at their own packet rate, unless
        // a count still depends on N_floor.
        if !s.uses_floor_fractions() {
            s.floor.sessions = None;
        }
        s
    }

    /// True while some count is a fraction of N_floor (not yet resolved).
    pub fn uses_floor_fractions(&self) -> bool {
        match self.kind {
            Kind::Sweep => self
                .sweep
                .as_ref()
                .is_some_and(|sw| !sw.floor_fractions.is_empty()),
            Kind::FlashCrowd => self
                .flash_crowd
                .as_ref()
                .is_some_and(|fc| fc.cohorts().is_none()),
            _ => self.load.clients_floor_fraction.is_some(),
        }
    }

    /// The scenario with every fraction of N_floor turned into a count
    /// (`n_floor` sessions, see [`n_floor`]); errors when a fraction is used
    /// and `n_floor` is unknown.
    pub fn resolve(&self, n_floor: Option<f64>) -> Result<Scenario> {
        let mut s = self.clone();
        if !self.uses_floor_fractions() {
            return Ok(s);
        }
        let Some(n) = n_floor.filter(|n| n.is_finite() && *n >= 1.0) else {
            bail!(
                "{}: counts are fractions of N_floor, and the floor was not measured",
                self.name
            );
        };
        if let Some(f) = s.load.clients_floor_fraction.take() {
            s.load.clients = of_floor(f, n);
        }
        if let Some(sw) = s.sweep.as_mut() {
            if !sw.floor_fractions.is_empty() {
                let mut counts: Vec<u64> =
                    sw.floor_fractions.iter().map(|f| of_floor(*f, n)).collect();
                counts.dedup();
                sw.counts = counts;
                sw.floor_fractions.clear();
            }
        }
        if let Some(fc) = s.flash_crowd.as_mut() {
            fc.base_clients = Some(fc.base_clients.unwrap_or(of_floor(fc.base_fraction, n)));
            fc.crowd_clients = Some(fc.crowd_clients.unwrap_or(of_floor(fc.crowd_fraction, n)));
        }
        Ok(s)
    }

    /// Client counts to run, in order (one for non-sweeps).
    pub fn counts(&self) -> Vec<u64> {
        match (self.kind, &self.sweep, &self.flash_crowd) {
            (Kind::Sweep, Some(sw), _) => sw.counts(),
            (Kind::FlashCrowd, _, Some(fc)) => {
                vec![fc.cohorts().map(|(b, c)| b + c).unwrap_or(0)]
            }
            _ => vec![self.load.clients],
        }
    }

    /// Seconds of media a run needs: the ramp of the largest count, the
    /// window (for a flash crowd: base ramp, settle, crowd ramp and tail),
    /// and 30 s to spare.
    pub fn play_seconds(&self) -> f64 {
        let max_clients = self.counts().into_iter().max().unwrap_or(1);
        let ramp_s = if self.load.ramp > 0.0 {
            max_clients as f64 / self.load.ramp
        } else {
            5.0
        };
        let mut need = ramp_s + self.load.duration_s;
        if let (Kind::FlashCrowd, Some(fc)) = (self.kind, &self.flash_crowd) {
            let (b, c) = fc.cohorts().unwrap_or((0, 0));
            need =
                b as f64 / fc.base_ramp + fc.settle_s + c as f64 / fc.crowd_ramp + fc.tail_s + 15.0;
        }
        need + 30.0
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
            assert!(
                !q.uses_floor_fractions(),
                "{}: --quick must run fixed counts",
                s.name
            );
            if !s.quick.skip && !s.uses_floor_fractions() {
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

    fn parse(text: &str) -> Result<Scenario> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    const HEAD: &str = r#"
name = "t"
description = "t"
[engine]
cores = 1
cpus = "0"
[loadtool]
cpus = "1"
"#;

    #[test]
    fn n_floor_is_one_second_over_the_floor_cost_of_a_session() {
        // 2.5 µs per packet, 40 packets/s: 100 µs of CPU per session-second.
        assert_eq!(n_floor(2.5, 40.0), Some(10_000.0));
        assert_eq!(n_floor(0.0, 40.0), None);
        assert_eq!(n_floor(2.5, 0.0), None);
    }

    #[test]
    fn floor_fractions_resolve_to_counts() {
        let load = format!(
            "kind = \"load\"\n{HEAD}[load]\nclients_floor_fraction = 0.9\nramp = 1000\nduration_s = 5\ntransport = \"udp\"\nfiles = [\"a.mp4\"]\n[floor]\nsessions = 6000\n[quick]\nclients = 30\n"
        );
        let s = parse(&load).unwrap();
        assert!(s.uses_floor_fractions());
        assert!(s.resolve(None).is_err());
        let r = s.resolve(n_floor(2.5, 40.0)).unwrap();
        assert_eq!(r.load.clients, 9_000);
        assert!(!r.uses_floor_fractions());
        // Quick runs its fixed count and the floor at its own rate.
        let q = s.quick();
        assert!(!q.uses_floor_fractions());
        assert_eq!((q.load.clients, q.floor.sessions), (30, None));
        // Without [floor] sessions the floor's rate is unknown: refused.
        assert!(parse(&load.replace("sessions = 6000", "seconds = 2")).is_err());

        let sweep = format!(
            "kind = \"sweep\"\n{HEAD}[load]\nramp = 1000\nduration_s = 5\ntransport = \"udp\"\nfiles = [\"a.mp4\"]\n[sweep]\nfloor_fractions = [0.3, 0.5, 0.9]\n[floor]\nsessions = 6000\n"
        );
        let s = parse(&sweep).unwrap();
        let r = s.resolve(Some(7_001.0)).unwrap();
        assert_eq!(r.counts(), vec![2_100, 3_501, 6_301]);
        assert!(parse(&sweep.replace("[0.3, 0.5, 0.9]", "[0.5, 0.3]")).is_err());
    }

    #[test]
    fn flash_crowd_cohorts() {
        let text = format!(
            "kind = \"flash_crowd\"\n{HEAD}[load]\nramp = 1000\nduration_s = 5\ntransport = \"udp\"\nfiles = [\"a.mp4\"]\n[flash_crowd]\ncrowd_ramp = 4000\n[floor]\nsessions = 6000\n[quick]\nbase_clients = 100\ncrowd_clients = 200\ntail_s = 1\n"
        );
        let s = parse(&text).unwrap();
        let fc = s.flash_crowd.clone().unwrap();
        assert_eq!(
            (fc.base_fraction, fc.crowd_fraction, fc.base_ramp),
            (0.4, 0.5, 2000.0)
        );
        assert_eq!(fc.cohorts(), None);
        let r = s.resolve(Some(10_000.0)).unwrap();
        assert_eq!(
            r.flash_crowd.as_ref().unwrap().cohorts(),
            Some((4_000, 5_000))
        );
        assert_eq!(r.counts(), vec![9_000]);
        // 2 s base ramp + 3 s settle + 1.25 s crowd ramp + 3 s tail + 15 + 30.
        assert!(
            (r.play_seconds() - 54.25).abs() < 1e-9,
            "{}",
            r.play_seconds()
        );
        let q = s.quick();
        assert_eq!(q.flash_crowd.as_ref().unwrap().cohorts(), Some((100, 200)));
        assert_eq!(q.flash_crowd.as_ref().unwrap().tail_s, 1.0);
        assert!(parse(&text.replace("[flash_crowd]\ncrowd_ramp = 4000\n", "")).is_err());
        assert!(parse(&text.replace("crowd_ramp = 4000", "crowd_ramp = 0")).is_err());
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
