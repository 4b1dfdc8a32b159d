//! `cadence-bench`: runs benchmark scenarios against `cadence` with
//! `cadence-loadtool`, measures the kernel floor, and compares, plots and
//! tabulates the JSON results. See `cadence-bench --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use cadence_benches::floor::{self, Method};
use cadence_benches::procs::Programs;
use cadence_benches::results;
use cadence_benches::run::{self, RunOptions};
use cadence_benches::scenario::Scenario;
use cadence_benches::{compare, plot, table};
use clap::{Parser, Subcommand};

/// Benchmark scenarios for Cadence: capacity, CPU per packet against the
/// kernel floor, memory per session, setup rate, a shaped gigabit link, and a
/// peer server.
#[derive(Debug, Parser)]
#[command(name = "cadence-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs scenarios (default: every benches/scenarios/*.toml) and writes
    /// one JSON result per scenario, plus README.md (the performance table)
    /// and plots/, into --out.
    Run {
        /// Small, short runs for CI (each scenario's [quick] table).
        #[arg(long)]
        quick: bool,
        /// Result folder, e.g. results/0.1.0/.
        #[arg(long)]
        out: PathBuf,
        /// The `cadence` binary [default: next to this one].
        #[arg(long)]
        engine: Option<PathBuf>,
        /// The `cadence-loadtool` binary [default: next to this one].
        #[arg(long)]
        loadtool: Option<PathBuf>,
        /// Where looped media are kept [default: <repo>/target/bench-media].
        #[arg(long)]
        media_dir: Option<PathBuf>,
        /// CPU list for the engine in every scenario (`taskset -c` syntax),
        /// instead of the scenario's `[engine] cpus`: a scenario then runs
        /// unchanged on a larger box (e.g. `--engine-cpus 0,1
        /// --loadtool-cpus 2-5` for sweep-2shards with the load tool on CPUs
        /// of its own). Recorded in each result's `scenario`.
        #[arg(long)]
        engine_cpus: Option<String>,
        /// CPU list for the load tool (and floor receiver) in every scenario,
        /// instead of the scenario's `[loadtool] cpus`.
        #[arg(long)]
        loadtool_cpus: Option<String>,
        /// KVM guests: the cpuidle-haltpoll limit, ns, set for the whole run
        /// and restored after (needs root). 0 halts an idle vCPU at once;
        /// 1000000 polls up to 1 ms first, so a shard's next tick does not
        /// wait for the hypervisor to wake the vCPU. Recorded in each
        /// result's `machine.guest_halt_poll_ns`.
        #[arg(long)]
        guest_halt_poll_ns: Option<u64>,
        /// Scenario files.
        scenarios: Vec<PathBuf>,
    },
    /// Markdown table of two result folders: each metric, both values, the
    /// ratio B/A, and a mark on regressions worse than 5%.
    Compare {
        /// Baseline.
        a: PathBuf,
        /// New.
        b: PathBuf,
    },
    /// SVG charts of a result folder into DIR/plots/.
    Plot {
        /// Result folder.
        dir: PathBuf,
    },
    /// Prints the README performance table of a result folder.
    Table {
        /// Result folder.
        dir: PathBuf,
    },
    /// Checks that every result in a folder is complete; exit 1 if not.
    Validate {
        /// Result folder.
        dir: PathBuf,
    },
    /// Prints a hinted file's per-session packet rate and bit rates (JSON).
    MediaInfo {
        /// Hinted MP4/MOV/3GP file.
        file: PathBuf,
    },
    /// (internal) Floor receiver: binds UDP sockets, prints READY and the
    /// ports, drains until stdin closes, prints a JSON report.
    #[command(hide = true)]
    FloorRecv {
        #[arg(long, default_value = "127.0.0.1")]
        ip: std::net::IpAddr,
    },
    /// (internal) Floor sender: prints a JSON report.
    #[command(hide = true)]
    FloorSend {
        #[arg(long, value_enum)]
        method: Method,
        #[arg(long)]
        media: PathBuf,
        #[arg(long)]
        rate: f64,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        targets: String,
    },
}

fn scenario_files(given: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given);
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("toml"))
        .collect();
    v.sort();
    Ok(v)
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("results")
        .to_string()
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cadence-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            quick,
            out,
            engine,
            loadtool,
            media_dir,
            engine_cpus,
            loadtool_cpus,
            guest_halt_poll_ns,
            scenarios,
        } => {
            let programs = Programs::locate(engine, loadtool)?;
            let _halt_poll = guest_halt_poll_ns
                .map(cadence_benches::machine::HaltPollGuard::set)
                .transpose()?;
            let files = scenario_files(scenarios)?;
            let mut loaded: Vec<Scenario> = files
                .iter()
                .map(|f| Scenario::load(f))
                .collect::<Result<_>>()?;
            for s in &mut loaded {
                if let Some(c) = &engine_cpus {
                    s.engine.cpus = c.clone();
                }
                if let Some(c) = &loadtool_cpus {
                    s.loadtool.cpus = c.clone();
                }
            }
            if loaded.is_empty() {
                bail!("no scenarios");
            }
            let opts = RunOptions {
                quick,
                media_dir: media_dir.unwrap_or_else(|| programs.repo.join("target/bench-media")),
                out: out.clone(),
                programs,
            };
            std::fs::create_dir_all(&out)?;
            let mut failed = Vec::new();
            for s in &loaded {
                if let Err(e) = run::run_scenario(&opts, s) {
                    eprintln!("cadence-bench: {}: ERROR: {e:#}", s.name);
                    failed.push(s.name.clone());
                }
            }
            let all = results::load_dir(&out)?;
            let t = table::table(&dir_name(&out), &all);
            std::fs::write(out.join("README.md"), &t)?;
            let plots = plot::plot(&out, &all)?;
            println!("{t}");
            eprintln!(
                "cadence-bench: {} result(s), README.md and {} plot(s) in {}",
                all.len(),
                plots.len(),
                out.display()
            );
            if !failed.is_empty() {
                eprintln!(
                    "cadence-bench: scenarios that could not run: {}",
                    failed.join(", ")
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare { a, b } => {
            let ra = results::load_dir(&a)?;
            let rb = results::load_dir(&b)?;
            print!("{}", compare::table(&dir_name(&a), &ra, &dir_name(&b), &rb));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Plot { dir } => {
            let all = results::load_dir(&dir)?;
            for p in plot::plot(&dir, &all)? {
                println!("{}", p.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Table { dir } => {
            let all = results::load_dir(&dir)?;
            print!("{}", table::table(&dir_name(&dir), &all));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate { dir } => {
            let problems = results::validate_dir(&dir)?;
            if problems.is_empty() {
                println!("{}: complete", dir.display());
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &problems {
                    println!("{p}");
                }
                Ok(ExitCode::FAILURE)
            }
        }
        Cmd::MediaInfo { file } => {
            let info = cadence_benches::media::describe(&file, &file.display().to_string(), 1)?;
            println!("{}", serde_json::to_string_pretty(&info)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::FloorRecv { ip } => {
            floor::receive(ip)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::FloorSend {
            method,
            media,
            rate,
            seconds,
            targets,
        } => {
            let targets = run::parse_targets(&targets)?;
            let report = floor::send(method, &media, rate, seconds, &targets)?;
            run::emit_json(&report)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
