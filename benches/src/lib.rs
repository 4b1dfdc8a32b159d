//! Cadence benchmarks: the sans-IO rigs the microbenchmarks drive
//! ([`rig`]), and the `cadence-bench` scenario runner (run scenarios,
//! measure the kernel floor, compare, plot and tabulate results).
//!
//! Results are JSON files of schema [`results::SCHEMA`], one per scenario,
//! under `results/<version>/`.

pub mod rig;
