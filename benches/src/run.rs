//! Running a scenario: media, network, floor, then one run per client count
//! (a server process and a load tool process on separate CPUs, the server
//! sampled every second from /proc), then the summary and the targets.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::floor::{Method, RecvReport, SendReport};
use crate::machine::{Build, Machine};
use crate::media::{self, MediaInfo};
use crate::netns::Netns;
use crate::procs::{self, Guard, Programs};
use crate::procstat::{self, Sample, Sampler};
use crate::results::{
    Floor, FloorMethod, Metrics, RunResult, ScenarioResult, TargetResult, Window, SCHEMA,
};
use crate::scenario::{n_floor, Kind, NetworkMode, Scenario};

mod flash;

/// Settings of a `cadence-bench run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--quick`.
    pub quick: bool,
    /// Result folder.
    pub out: PathBuf,
    /// Programs.
    pub programs: Programs,
    /// Where looped media files are kept.
    pub media_dir: PathBuf,
}

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `cadence`.
    Cadence,
    /// gst-rtsp-server through `scripts/peer-rtsp-server`.
    Peer,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Cadence => "cadence",
            Server::Peer => "gst-rtsp-server",
        }
    }
}

fn log(msg: impl AsRef<str>) {
    eprintln!("cadence-bench: {}", msg.as_ref());
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why the peer server cannot run here, if it cannot.
pub fn peer_unavailable(repo: &Path) -> Option<String> {
    let script = repo.join("scripts/peer-rtsp-server");
    if !script.is_file() {
        return Some(format!("{} is missing", script.display()));
    }
    let ok = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    (!ok).then(|| {
        "gst-rtsp-server is not installed (python3-gi, gir1.2-gst-rtsp-server-1.0): run scripts/install-peers".to_string()
    })
}

/// Why a veth link cannot be made here, if it cannot.
pub fn veth_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the veth link needs root (ip netns, tc)".into());
    }
    let ok = |cmd: &str| {
        Command::new(cmd)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !ok("ip") || !ok("tc") {
        return Some("the veth link needs iproute2 (ip, tc): apt-get install iproute2".into());
    }
    None
}

/// Runs one scenario and writes its result file.
pub fn run_scenario(opts: &RunOptions, original: &Scenario) -> Result<ScenarioResult> {
    let started = Instant::now();
    let scenario = if opts.quick {
        original.quick()
    } else {
        original.clone()
    };
    let p = &opts.programs;
    let mut result = ScenarioResult {
        schema: SCHEMA.into(),
        scenario: scenario.clone(),
        quick: opts.quick,
        started_unix_s: unix_now(),
        wall_s: 0.0,
        machine: Machine::detect(),
        build: Build::detect(&p.repo, &p.engine, &p.loadtool),
        media: Vec::new(),
        link: None,
        floor: None,
        runs: Vec::new(),
        summary: Metrics::new(),
        targets: Vec::new(),
        skipped: None,
        notes: Vec::new(),
    };
    let skip = if opts.quick && original.quick.skip {
        Some("skipped in --quick mode (see the scenario's [quick] table)".to_string())
    } else if scenario.kind == Kind::Peer {
        peer_unavailable(&p.repo)
    } else if scenario.network.mode == NetworkMode::Veth {
        veth_unavailable()
    } else {
        None
    };
    if let Some(why) = skip {
        log(format!("{}: SKIPPED: {why}", scenario.name));
        result.skipped = Some(why);
        result.targets = evaluate_targets(&scenario, &result.summary);
        result.write(&opts.out)?;
        return Ok(result);
    }

    // Media long enough for the longest run.
    let min_seconds = scenario.play_seconds();
    for f in &scenario.load.files {
        result
            .media
            .push(media::prepare(&p.repo, &opts.media_dir, f, min_seconds)?);
    }

    // The runner belongs to the load side: keep it off the engine's CPUs.
    let runner_cpus = procstat::parse_cpus(&scenario.loadtool.cpus);
    if let Err(e) = procs::confine_self(&runner_cpus) {
        log(format!(
            "{}: the runner stays on every CPU ({e:#}); it may disturb the engine",
            scenario.name
        ));
    }

    let link = match scenario.network.mode {
        NetworkMode::Loopback => None,
        NetworkMode::Veth => {
            let rate = scenario.network.rate_mbit.unwrap_or(1000);
            let burst = scenario.network.burst_bytes.unwrap_or(128 * 1024);
            let limit = scenario.network.limit_bytes.unwrap_or(2 * 1024 * 1024);
            let rps = scenario.network.rps_cpus.as_deref().map(|c| {
                let list = if c == "loadtool" {
                    scenario.loadtool.cpus.as_str()
                } else {
                    c
                };
                procstat::parse_cpus(list)
            });
            Some(
                Netns::create(rate, burst, limit, rps.as_deref(), scenario.network.shaper)
                    .context("set up the veth link")?,
            )
        }
    };

    if scenario.floor.enabled {
        let sessions = scenario.floor_sessions();
        log(format!(
            "{}: floor at the packet rate of {sessions} sessions",
            scenario.name
        ));
        result.floor = Some(measure_floor(
            opts,
            &scenario,
            &result.media,
            link.as_ref(),
            sessions,
        )?);
    }

    // Counts given as fractions of N_floor become counts now.
    let n_floor = result
        .floor
        .as_ref()
        .zip(result.media.first())
        .and_then(|(f, m)| n_floor(f.us_per_packet, m.packets_per_s));
    let scenario = scenario.resolve(n_floor)?;
    // result.scenario keeps the fractions; the runs carry the counts.
    let need = scenario.play_seconds();
    if result.media.iter().any(|m| m.duration_s < need) {
        result.media = scenario
            .load
            .files
            .iter()
            .map(|f| media::prepare(&p.repo, &opts.media_dir, f, need))
            .collect::<Result<_>>()?;
    }
    if let Some(n) = n_floor {
        log(format!(
            "{}: N_floor = {n:.0} sessions; running {:?}",
            scenario.name,
            scenario.counts()
        ));
    }

    let runner = Runner {
        opts,
        scenario: &scenario,
        media: &result.media,
        link: link.as_ref(),
    };
    match scenario.kind {
        Kind::Load | Kind::SetupRate => {
            result
                .runs
                .push(runner.run_once(Server::Cadence, scenario.load.clients)?);
        }
        Kind::Peer => {
            result
                .runs
                .push(runner.run_once(Server::Cadence, scenario.load.clients)?);
            result
                .runs
                .push(runner.run_once(Server::Peer, scenario.load.clients)?);
        }
        Kind::FlashCrowd => {
            result.runs.extend(runner.run_flash_crowd()?);
        }
        Kind::Sweep => {
            let mut last_pass: Option<u64> = None;
            let mut first_fail: Option<u64> = None;
            let run_all = scenario.sweep.as_ref().is_some_and(|s| s.run_all);
            for c in scenario.counts() {
                let r = runner.run_once(Server::Cadence, c)?;
                let passed = r.passed;
                result.runs.push(r);
                if passed && first_fail.is_none() {
                    last_pass = Some(c);
                } else if !passed && first_fail.is_none() {
                    first_fail = Some(c);
                }
                if first_fail.is_some() && !run_all {
                    break;
                }
            }
            let refine = if run_all {
                0
            } else {
                scenario.sweep.as_ref().map(|s| s.refine).unwrap_or(0)
            };
            if let (Some(mut hi), false) = (first_fail, opts.quick) {
                let mut lo = last_pass.unwrap_or(0);
                for _ in 0..refine {
                    let mid = ((lo + hi) / 2 / 50) * 50;
                    if mid <= lo || mid >= hi {
                        break;
                    }
                    let r = runner.run_once(Server::Cadence, mid)?;
                    if r.passed {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                    result.runs.push(r);
                }
            }
        }
    }
    if let Some(l) = &link {
        let mut info = l.info.clone();
        info.qdisc_stats = l.qdisc_stats();
        result.link = Some(info);
    }
    drop(link);

    // N_floor as the counts were computed from it (the media may have been
    // looped again since, changing packets/s slightly).
    if let Some(n) = n_floor {
        for run in &mut result.runs {
            run.metrics.insert("n_floor".into(), n);
        }
    }
    result.summary = summarize(&scenario, &result);
    if let Some(n) = n_floor {
        result.summary.insert("n_floor".into(), n);
    }
    result.targets = evaluate_targets(&scenario, &result.summary);
    result.notes = notes(&scenario, &result);
    result.wall_s = started.elapsed().as_secs_f64();
    let path = result.write(&opts.out)?;
    log(format!(
        "{}: wrote {} ({:.0} s)",
        scenario.name,
        path.display(),
        result.wall_s
    ));
    Ok(result)
}

/// Measures the kernel floor with both methods.
fn measure_floor(
    opts: &RunOptions,
    scenario: &Scenario,
    media: &[MediaInfo],
    link: Option<&Netns>,
    sessions: u64,
) -> Result<Floor> {
    let file = media.first().ok_or_else(|| anyhow!("no media"))?;
    let path = opts.media_dir.join(&file.name);
    let rate = sessions as f64 * file.packets_per_s;
    let mut floor = Floor {
        sessions,
        rate_pps: rate,
        ..Floor::default()
    };
    for method in [Method::Uring, Method::Sendmmsg] {
        let m = floor_once(opts, scenario, link, &path, rate, method)?;
        log(format!(
            "  floor {method:?}: {:.2} µs/packet ({:.0} packets/s, {} received, {} rcvbuf errors)",
            m.send.us_per_packet, m.send.rate_achieved, m.receive.received, m.receive.rcvbuf_errors
        ));
        match method {
            Method::Uring => floor.uring = m,
            Method::Sendmmsg => floor.sendmmsg = m,
        }
    }
    floor.us_per_packet = [
        floor.uring.send.us_per_packet,
        floor.sendmmsg.send.us_per_packet,
    ]
    .into_iter()
    .filter(|v| *v > 0.0)
    .fold(f64::INFINITY, f64::min);
    if !floor.us_per_packet.is_finite() {
        floor.us_per_packet = 0.0;
    }
    floor.cpuset_us_per_packet = [
        floor.uring.send.cpuset_us_per_packet,
        floor.sendmmsg.send.cpuset_us_per_packet,
    ]
    .into_iter()
    .filter(|v| *v > 0.0)
    .fold(f64::INFINITY, f64::min);
    if !floor.cpuset_us_per_packet.is_finite() {
        floor.cpuset_us_per_packet = 0.0;
    }
    Ok(floor)
}

fn floor_once(
    opts: &RunOptions,
    scenario: &Scenario,
    link: Option<&Netns>,
    media: &Path,
    rate: f64,
    method: Method,
) -> Result<FloorMethod> {
    let p = &opts.programs;
    let ip: IpAddr = match link {
        Some(l) => l.ns_ip.into(),
        None => Ipv4Addr::LOCALHOST.into(),
    };
    let mut recv_cmd = procs::pinned(
        &p.bench,
        &scenario.loadtool.cpus,
        link.map(|l| l.info.namespace.as_str()),
    );
    recv_cmd
        .args(["floor-recv", "--ip", &ip.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut recv = Guard::new(
        recv_cmd.spawn().context("start floor receiver")?,
        "floor receiver",
    );
    let child = recv.child().ok_or_else(|| anyhow!("receiver gone"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("receiver stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines
        .next()
        .ok_or_else(|| anyhow!("floor receiver exited"))??;
    let ports = ready
        .strip_prefix("READY ")
        .ok_or_else(|| anyhow!("floor receiver said {ready:?}"))?;
    let targets: Vec<String> = ports
        .split(',')
        .map(|port| format!("{ip}:{port}"))
        .collect();

    let out = procs::pinned(&p.bench, &scenario.engine.cpus, None)
        .args([
            "floor-send",
            "--method",
            &format!("{method:?}").to_lowercase(),
            "--media",
        ])
        .arg(media)
        .args([
            "--rate",
            &format!("{rate:.1}"),
            "--seconds",
            &scenario.floor.seconds.to_string(),
        ])
        .args(["--targets", &targets.join(",")])
        .stderr(Stdio::inherit())
        .output()
        .context("run floor sender")?;
    if !out.status.success() {
        bail!("floor sender failed ({})", out.status);
    }
    let send: SendReport = serde_json::from_slice(&out.stdout).context("floor sender report")?;
    // Let the last datagrams arrive, then close the receiver's stdin.
    std::thread::sleep(Duration::from_millis(100));
    if let Some(c) = recv.child() {
        drop(c.stdin.take());
    }
    let line = lines
        .next()
        .ok_or_else(|| anyhow!("floor receiver gave no report"))??;
    let receive: RecvReport = serde_json::from_str(&line).context("floor receiver report")?;
    let _ = recv.wait_for(Duration::from_secs(5));
    Ok(FloorMethod { send, receive })
}

/// A server started for a run, with its CPU sampler running.
struct Started {
    /// Kills the server when dropped.
    guard: Guard,
    /// Its log file.
    server_log: PathBuf,
    /// `rtsp://addr/<file>` of every media file of the scenario.
    urls: Vec<String>,
    /// Its process id.
    pid: u32,
    /// Samples its CPU (and the CPU sets') once a second.
    sampler: Sampler,
    /// The idle sample before the load starts.
    baseline: procstat::Sample,
}

struct Runner<'a> {
    opts: &'a RunOptions,
    scenario: &'a Scenario,
    media: &'a [MediaInfo],
    link: Option<&'a Netns>,
}

impl Runner<'_> {
    fn host_ip(&self) -> IpAddr {
        match self.link {
            Some(l) => l.host_ip.into(),
            None => Ipv4Addr::LOCALHOST.into(),
        }
    }

    fn log_path(&self, server: Server, clients: u64, what: &str) -> Result<PathBuf> {
        let dir = self.opts.out.join("logs");
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join(format!(
            "{}-{}-{clients}-{what}.log",
            self.scenario.name,
            server.name()
        )))
    }

    fn start_server(&self, server: Server, clients: u64) -> Result<(Guard, SocketAddr, PathBuf)> {
        let p = &self.opts.programs;
        let ip = self.host_ip();
        let port = procs::free_port(ip)?;
        let addr = SocketAddr::new(ip, port);
        let log_path = self.log_path(server, clients, "server")?;
        let log_file = std::fs::File::create(&log_path)?;
        let mut cmd = match server {
            Server::Cadence => {
                let mut c = procs::pinned(&p.engine, &self.scenario.engine.cpus, None);
                c.args([
                    "--cores",
                    &self.scenario.engine.cores.to_string(),
                    "--media",
                ])
                .arg(&self.opts.media_dir)
                .args(["--listen", &addr.to_string()])
                .args(["--udp-port-base", &procs::free_udp_pair(ip)?.to_string()])
                .args(["--log-level", "warn,cadence_engine::shard::stats=info"])
                .env("NO_COLOR", "1");
                // The load tool opens every session from one address; lift
                // the per-address connection cap where the engine has one
                // (releases before 0.2.0 do not know the flag).
                if engine_has_flag(&p.engine, "--max-connections-per-ip") {
                    c.args(["--max-connections-per-ip", "0"]);
                }
                c
            }
            Server::Peer => {
                let mut c = procs::pinned(
                    Path::new("/usr/bin/python3"),
                    &self.scenario.engine.cpus,
                    None,
                );
                c.arg(p.repo.join("scripts/peer-rtsp-server"))
                    .args(["--port", &port.to_string()]);
                for m in self.media {
                    c.arg(self.opts.media_dir.join(&m.name));
                }
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let mut guard = Guard::new(
            cmd.spawn()
                .with_context(|| format!("start {}", server.name()))?,
            server.name(),
        );
        procs::wait_listening(&mut guard, addr, Duration::from_secs(20))?;
        Ok((guard, addr, log_path))
    }

    /// One server under `clients` sessions.
    /// Starts the server for `clients` sessions, DESCRIBEs every file (so
    /// schedules are compiled before the load), starts the 1 s CPU sampler
    /// and takes its idle baseline after 1.2 s.
    pub(super) fn start_measured(&self, server: Server, clients: u64) -> Result<Started> {
        let s = self.scenario;
        let (guard, addr, server_log) = self.start_server(server, clients)?;
        let urls: Vec<String> = self
            .media
            .iter()
            .map(|m| format!("rtsp://{addr}/{}", m.name))
            .collect();
        for u in &urls {
            let code = procs::describe(addr, u)?;
            if code != 200 {
                bail!("DESCRIBE {u} answered {code}");
            }
        }
        let pid = guard.pid();
        let sampler = Sampler::start(
            pid,
            Duration::from_secs(1),
            procstat::parse_cpus(&s.engine.cpus),
            procstat::parse_cpus(&s.loadtool.cpus),
        );
        std::thread::sleep(Duration::from_millis(1200));
        let baseline = sampler
            .mark(pid)
            .ok_or_else(|| anyhow!("{} exited", server.name()))?;
        Ok(Started {
            guard,
            server_log,
            urls,
            pid,
            sampler,
            baseline,
        })
    }

    fn run_once(&self, server: Server, clients: u64) -> Result<RunResult> {
        let s = self.scenario;
        log(format!(
            "{}: {} x{clients} ({})",
            s.name,
            server.name(),
            s.load.transport
        ));
        let Started {
            guard,
            server_log,
            urls,
            pid,
            sampler,
            baseline,
        } = self.start_measured(server, clients)?;

        let json = self
            .log_path(server, clients, "loadtool")?
            .with_extension("json");
        let lt_log = std::fs::File::create(self.log_path(server, clients, "loadtool")?)?;
        let mut cmd =
            self.loadtool_command(clients, s.load.ramp, s.load.duration_s, &json, &urls, pid);
        cmd.arg("--quiet")
            .stdin(Stdio::null())
            .stdout(lt_log.try_clone()?)
            .stderr(lt_log);
        let ramp_start_s = sampler.started.elapsed().as_secs_f64();
        let lt = Guard::new(
            cmd.spawn().context("start cadence-loadtool")?,
            "cadence-loadtool",
        );
        let ramp = if s.load.ramp > 0.0 {
            clients as f64 / s.load.ramp
        } else {
            5.0
        };
        let limit = Duration::from_secs_f64(ramp + s.load.duration_s + 120.0);
        let lt_status = lt.wait_for(limit);
        let _ = sampler.mark(pid);
        let server_exit = guard.stop(Duration::from_secs(10));
        let samples = sampler.finish();

        let report = read_report(&json);
        let ramp_s = num(&report, "/ramp_s");
        let window_s = num(&report, "/duration_s");
        let window = Window {
            baseline_s: baseline.t_s,
            ramp_start_s,
            start_s: ramp_start_s + ramp_s,
            end_s: ramp_start_s + ramp_s + window_s,
        };
        let mut run = RunResult {
            server: server.name().into(),
            clients,
            window,
            shard_stats: if server == Server::Cadence {
                shard_stats(&server_log)
            } else {
                Vec::new()
            },
            loadtool_exit: match &lt_status {
                Ok(st) => st.to_string(),
                Err(e) => e.to_string(),
            },
            server_exit,
            ..RunResult::default()
        };
        run.metrics = metrics(&report, &samples, &baseline, &window, clients);
        let reasons = self.judge(&report, clients, &run.loadtool_exit);
        run.passed = reasons.is_empty();
        run.reasons = reasons;
        run.samples = samples;
        run.loadtool = report;
        log(format!(
            "  {} x{clients}: {} | loss {:.4}% | p99 {:.0} µs | server CPU {:.0}% ({:.2} µs/packet; run-queue wait {:.1}%) | RSS anon +{:.0} B/session{}",
            server.name(),
            if run.passed { "PASS" } else { "FAIL" },
            metric(&run.metrics, "loss_pct"),
            metric(&run.metrics, "p99_lateness_us"),
            metric(&run.metrics, "server_cpu_pct"),
            metric(&run.metrics, "server_us_per_packet"),
            metric(&run.metrics, "server_runqueue_wait_pct"),
            metric(&run.metrics, "rss_anon_per_session_bytes"),
            if run.passed { String::new() } else { format!(" | {}", run.reasons.join("; ")) }
        ));
        // Let sockets in TIME_WAIT and the CPUs settle between runs.
        std::thread::sleep(Duration::from_secs(1));
        Ok(run)
    }

    /// The load tool's command line for `clients` sessions at `ramp`/s and
    /// a window of `duration_s`, its report to `json` (removed first).
    fn loadtool_command(
        &self,
        clients: u64,
        ramp: f64,
        duration_s: f64,
        json: &Path,
        urls: &[String],
        server_pid: u32,
    ) -> Command {
        let s = self.scenario;
        let _ = std::fs::remove_file(json);
        let mut cmd = procs::pinned(
            &self.opts.programs.loadtool,
            &s.loadtool.cpus,
            self.link.map(|l| l.info.namespace.as_str()),
        );
        cmd.args(["--clients", &clients.to_string()])
            .args(["--ramp", &ramp.to_string()])
            .args(["--duration", &duration_s.to_string()])
            .args(["--transport", &s.load.transport])
            .args(["--cpus", &s.loadtool.cpus])
            .args(["--max-loss", &s.pass.max_loss_pct.to_string()])
            // The load tool samples the server's run time at both ends of
            // the ramp (`ramp_cpu` in its report).
            .args(["--server-pid", &server_pid.to_string()])
            .arg("--json")
            .arg(json)
            .args(urls);
        if s.load.no_options {
            cmd.arg("--no-options");
        }
        cmd
    }

    /// Why a load tool report fails the scenario's `[pass]` criteria
    /// (empty: it passes).
    fn judge(&self, report: &serde_json::Value, clients: u64, exit: &str) -> Vec<String> {
        let s = self.scenario;
        let mut reasons = Vec::new();
        if report.is_null() {
            reasons.push(format!("the load tool wrote no report ({exit})"));
        } else {
            let playing = num(report, "/clients/playing") as u64;
            let failed = num(report, "/clients/failed") as u64;
            if playing < clients {
                reasons.push(format!("{playing} of {clients} clients played"));
            }
            if failed > 0 {
                let causes = report
                    .get("failures")
                    .map(|f| f.to_string())
                    .unwrap_or_default();
                reasons.push(format!("{failed} clients failed: {causes}"));
            }
            let loss = num(report, "/packets/loss_pct");
            if loss > s.pass.max_loss_pct {
                reasons.push(format!(
                    "loss {loss:.4}% > {}% ({} packets)",
                    s.pass.max_loss_pct,
                    num(report, "/packets/lost")
                ));
            }
            if let Some(max) = s.pass.max_p99_lateness_us {
                let p99 = num(report, "/lateness_us/p99");
                if p99 > max as f64 {
                    reasons.push(format!("p99 lateness {p99:.0} µs > {max} µs"));
                }
            }
            if let Some(errs) = report.get("errors").and_then(|e| e.as_array()) {
                if !errs.is_empty() {
                    reasons.push(format!("load tool errors: {errs:?}"));
                }
            }
        }
        reasons
    }
}

/// The load tool's JSON report without the per-session list (the full
/// report stays in logs/); null when it is missing or does not parse.
fn read_report(json: &Path) -> serde_json::Value {
    let mut report: serde_json::Value = match std::fs::read_to_string(json) {
        Ok(t) => serde_json::from_str(&t).unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::Null,
    };
    if let Some(o) = report.as_object_mut() {
        o.remove("sessions");
    }
    report
}

fn num(v: &serde_json::Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(|x| x.as_f64()).unwrap_or(0.0)
}

fn metric(m: &Metrics, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(f64::NAN)
}

/// Numbers of the engine's "shard stats" log lines (`key=value` pairs).
fn shard_stats(log: &Path) -> Vec<Metrics> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| l.contains("shard stats"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|tok| {
                    let (k, v) = tok.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').parse::<f64>().ok()?))
                })
                .collect()
        })
        .collect()
}

/// Derived metrics of one run: the load tool's numbers, the server's CPU
/// over the measurement window (and over the ramp), memory growth per
/// session over the idle baseline, descriptors and context switches.
fn metrics(
    report: &serde_json::Value,
    samples: &[Sample],
    baseline: &Sample,
    w: &Window,
    clients: u64,
) -> Metrics {
    let mut m = Metrics::new();
    let mut put = |k: &str, v: f64| {
        m.insert(k.to_string(), v);
    };
    put("clients", clients as f64);
    for (k, ptr) in [
        ("playing", "/clients/playing"),
        ("failed", "/clients/failed"),
        ("received", "/packets/received"),
        ("lost", "/packets/lost"),
        ("loss_pct", "/packets/loss_pct"),
        ("p50_lateness_us", "/lateness_us/p50"),
        ("p99_lateness_us", "/lateness_us/p99"),
        ("p999_lateness_us", "/lateness_us/p999"),
        ("max_lateness_us", "/lateness_us/max"),
        ("jitter_p99_ms", "/jitter_ms/p99"),
        ("setup_p50_ms", "/setup_ms/p50"),
        ("setup_p99_ms", "/setup_ms/p99"),
        ("packets_per_s", "/rates/packets_per_s"),
        ("mbit_per_s", "/rates/mbit_per_s"),
        ("window_s", "/duration_s"),
        ("ramp_s", "/ramp_s"),
        ("loadtool_us_per_packet", "/cpu/us_per_packet"),
        ("rcvbuf_errors", "/kernel_udp/rcvbuf_errors"),
    ] {
        put(k, num(report, ptr));
    }
    let received = num(report, "/packets/received");
    let playing = num(report, "/clients/playing");
    let ramp_s = num(report, "/ramp_s");
    if let (Some(a), Some(b)) = (
        procstat::at(samples, w.start_s),
        procstat::at(samples, w.end_s),
    ) {
        let dt = (b.t_s - a.t_s).max(1e-9);
        put("server_cpu_pct", (b.run_s - a.run_s) / dt * 100.0);
        put("server_user_pct", (b.user_s - a.user_s) / dt * 100.0);
        put("server_sys_pct", (b.sys_s - a.sys_s) / dt * 100.0);
        put(
            "server_us_per_packet",
            if received > 0.0 {
                (b.run_s - a.run_s) * 1e6 / received
            } else {
                0.0
            },
        );
        put(
            "server_runqueue_wait_pct",
            (b.wait_s - a.wait_s) / dt * 100.0,
        );
        put(
            "ctx_switches_per_s",
            (b.ctx_switches.saturating_sub(a.ctx_switches)) as f64 / dt,
        );
        // Whole CPUs of the server from /proc/stat: tick-sampled (250 Hz here)
        // and NO_HZ idle accounting, so a workload that wakes every 1 ms
        // aliases with the tick; informational only. The precise figures
        // are the schedstat ones above.
        let busy = b.server_cpus_busy_s - a.server_cpus_busy_s;
        put("cpuset_busy_pct", busy / dt * 100.0);
        put(
            "cpuset_softirq_pct",
            (b.server_cpus_softirq_s - a.server_cpus_softirq_s) / dt * 100.0,
        );
        put(
            "cpuset_steal_pct",
            (b.server_cpus_steal_s - a.server_cpus_steal_s) / dt * 100.0,
        );
        put(
            "cpuset_other_pct",
            ((busy - (b.run_s - a.run_s)) / dt * 100.0).max(0.0),
        );
        put(
            "cpuset_us_per_packet",
            if received > 0.0 {
                busy * 1e6 / received
            } else {
                0.0
            },
        );
        put(
            "loadtool_cpus_busy_pct",
            (b.loadtool_cpus_busy_s - a.loadtool_cpus_busy_s) / dt * 100.0,
        );
    }
    if let (Some(a), Some(b)) = (
        procstat::at(samples, w.ramp_start_s),
        procstat::at(samples, w.start_s),
    ) {
        let dt = (b.t_s - a.t_s).max(1e-9);
        put("server_cpu_pct_ramp", (b.run_s - a.run_s) / dt * 100.0);
        put(
            "server_us_per_setup",
            if playing > 0.0 {
                (b.run_s - a.run_s) * 1e6 / playing
            } else {
                0.0
            },
        );
    }
    // The load tool samples the server at both ends of the ramp: exact
    // where the interpolation above, between samples a second apart, mixes
    // in the idle time before the ramp and the steady sending after it
    // (a ramp of 0.6 s read as 67% busy when it was 90-100%).
    if let (Some(run), Some(pct)) = (
        report
            .pointer("/ramp_cpu/server_run_s")
            .and_then(|v| v.as_f64()),
        report
            .pointer("/ramp_cpu/server_pct")
            .and_then(|v| v.as_f64()),
    ) {
        put("server_cpu_pct_ramp", pct);
        put(
            "server_us_per_setup",
            if playing > 0.0 {
                run * 1e6 / playing
            } else {
                0.0
            },
        );
    }
    if let Some(pct) = report
        .pointer("/ramp_cpu/tool_pct")
        .and_then(|v| v.as_f64())
    {
        put("loadtool_cpu_pct_ramp", pct);
    }
    if let Some(pct) = report
        .pointer("/ramp_cpu/server_wait_pct")
        .and_then(|v| v.as_f64())
    {
        put("server_runqueue_wait_pct_ramp", pct);
    }
    put(
        "setup_rate_per_s",
        if ramp_s > 0.0 { playing / ramp_s } else { 0.0 },
    );
    let anon_peak = procstat::peak(samples, w.start_s, w.end_s, |s| s.rss_anon_kib);
    let rss_peak = procstat::peak(samples, w.start_s, w.end_s, |s| s.rss_kib);
    put("rss_idle_kib", baseline.rss_kib as f64);
    put("rss_anon_idle_kib", baseline.rss_anon_kib as f64);
    put("rss_peak_kib", rss_peak as f64);
    put("rss_anon_peak_kib", anon_peak as f64);
    put(
        "rss_anon_per_session_bytes",
        if playing > 0.0 {
            (anon_peak.saturating_sub(baseline.rss_anon_kib)) as f64 * 1024.0 / playing
        } else {
            0.0
        },
    );
    put(
        "fds_peak",
        procstat::peak(samples, w.ramp_start_s, w.end_s, |s| s.fds) as f64,
    );
    put(
        "threads",
        procstat::peak(samples, w.ramp_start_s, w.end_s, |s| s.threads) as f64,
    );
    m
}

/// The scenario's summary metrics.
fn summarize(s: &Scenario, r: &ScenarioResult) -> Metrics {
    let mut m = Metrics::new();
    let floor = r
        .floor
        .as_ref()
        .map(|f| f.us_per_packet)
        .filter(|v| *v > 0.0);
    if let Some(f) = floor {
        m.insert("floor_us_per_packet".into(), f);
    }
    let with_floor = |run: &RunResult| -> Metrics {
        let mut x = run.metrics.clone();
        if let (Some(f), Some(e)) = (floor, run.metrics.get("server_us_per_packet")) {
            x.insert("floor_ratio".into(), e / f);
        }
        x.insert("passed".into(), f64::from(u8::from(run.passed)));
        x
    };
    match s.kind {
        Kind::Load | Kind::SetupRate => {
            if let Some(run) = r.runs.first() {
                m.extend(with_floor(run));
            }
        }
        Kind::Peer => {
            for run in &r.runs {
                let prefix = if run.server == "cadence" {
                    "cadence_"
                } else {
                    "peer_"
                };
                for (k, v) in with_floor(run) {
                    m.insert(format!("{prefix}{k}"), v);
                }
            }
            let c = m.get("cadence_server_us_per_packet").copied();
            let p = m.get("peer_server_us_per_packet").copied();
            if let (Some(c), Some(p)) = (c, p) {
                if c > 0.0 {
                    m.insert("peer_cost_ratio".into(), p / c);
                }
            }
        }
        Kind::Sweep => {
            let best = r.runs.iter().filter(|x| x.passed).max_by_key(|x| x.clients);
            let fail = r
                .runs
                .iter()
                .filter(|x| !x.passed)
                .min_by_key(|x| x.clients);
            m.insert(
                "max_passing_sessions".into(),
                best.map(|x| x.clients as f64).unwrap_or(0.0),
            );
            m.insert(
                "first_failing_sessions".into(),
                fail.map(|x| x.clients as f64).unwrap_or(0.0),
            );
            m.insert("steps".into(), r.runs.len() as f64);
            // CPU per packet against the floor at every load run where every
            // client played (with clients refused or failed, the packets per
            // CPU second describe another load than the step's).
            let full: Vec<&RunResult> = r
                .runs
                .iter()
                .filter(|run| run.metrics.get("playing").copied() == Some(run.clients as f64))
                .collect();
            let ratios: Vec<f64> = full
                .iter()
                .filter_map(|run| with_floor(run).get("floor_ratio").copied())
                .collect();
            if let Some(max) = ratios.iter().copied().reduce(f64::max) {
                m.insert("max_floor_ratio".into(), max);
                m.insert(
                    "min_sessions".into(),
                    full.iter().map(|x| x.clients).min().unwrap_or(0) as f64,
                );
            }
            m.insert("floor_ratio_steps".into(), ratios.len() as f64);
            if let Some(b) = best {
                for (k, v) in with_floor(b) {
                    if [
                        "server_cpu_pct",
                        "server_us_per_packet",
                        "floor_ratio",
                        "p99_lateness_us",
                        "packets_per_s",
                        "mbit_per_s",
                        "rss_anon_per_session_bytes",
                    ]
                    .contains(&k.as_str())
                    {
                        m.insert(format!("at_max_{k}"), v);
                    }
                }
            }
        }
        Kind::FlashCrowd => m.extend(flash::summary(r)),
    }
    if let (Some(f), Some(media)) = (floor, r.media.first()) {
        if let Some(n) = n_floor(f, media.packets_per_s) {
            m.insert("n_floor".into(), n);
        }
    }
    if let (Some(l), Some(media)) = (&r.link, r.media.first()) {
        let rate_kbit = l.rate_mbit as f64 * 1000.0;
        m.insert(
            "line_rate_sessions_rtp".into(),
            rate_kbit / media.rtp_kbit_per_s,
        );
        m.insert(
            "line_rate_sessions_l2".into(),
            rate_kbit / media.l2_kbit_per_s,
        );
    }
    if let Some(media) = r.media.first() {
        m.insert("session_rtp_kbit_per_s".into(), media.rtp_kbit_per_s);
        m.insert("session_packets_per_s".into(), media.packets_per_s);
    }
    m
}

/// Each target against the summary.
pub fn evaluate_targets(s: &Scenario, summary: &Metrics) -> Vec<TargetResult> {
    s.targets
        .iter()
        .map(|t| {
            let measured = summary.get(&t.metric).copied().filter(|v| v.is_finite());
            let met = match (measured, t.op.as_str()) {
                (Some(v), ">=") => v >= t.value,
                (Some(v), "<=") => v <= t.value,
                _ => false,
            };
            TargetResult {
                label: t.label.clone(),
                metric: t.metric.clone(),
                op: t.op.clone(),
                target: t.value,
                measured,
                met,
            }
        })
        .collect()
}

/// Findings in words: missed targets with the measured figure and the
/// evidence of what holds them back.
fn notes(s: &Scenario, r: &ScenarioResult) -> Vec<String> {
    let mut out = Vec::new();
    for t in r.targets.iter().filter(|t| !t.met) {
        out.push(format!(
            "MISSED: {} — measured {} (target {} {})",
            t.label,
            t.measured
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "nothing".into()),
            t.op,
            t.target
        ));
    }
    for run in r.runs.iter().filter(|x| !x.passed) {
        let m = &run.metrics;
        out.push(format!(
            "{} x{} failed: {}. Server CPU {:.0}% (user {:.0}%, sys {:.0}%), {:.2} µs/packet; run-queue wait {:.1}% (other tasks held its CPU); load tool {:.2} µs/packet; rcvbuf errors {:.0}",
            run.server,
            run.clients,
            run.reasons.join("; "),
            metric(m, "server_cpu_pct"),
            metric(m, "server_user_pct"),
            metric(m, "server_sys_pct"),
            metric(m, "server_us_per_packet"),
            metric(m, "server_runqueue_wait_pct"),
            metric(m, "loadtool_us_per_packet"),
            metric(m, "rcvbuf_errors"),
        ));
    }
    if s.network.mode == NetworkMode::Veth {
        out.push("tbf counts Ethernet frames without preamble, FCS and inter-frame gap (24 B per packet more on a real wire)".into());
    }
    out
}

/// Reads `--targets ip:port,...`.
pub fn parse_targets(s: &str) -> Result<Vec<SocketAddr>> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().with_context(|| format!("bad target {x}")))
        .collect()
}

/// Prints a line to stdout and flushes (child-process protocol).
pub fn emit_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(v)?)?;
    out.flush()?;
    Ok(())
}

/// True when `engine --help` lists `flag`.
fn engine_has_flag(engine: &Path, flag: &str) -> bool {
    std::process::Command::new(engine)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(flag))
        .unwrap_or(false)
}
