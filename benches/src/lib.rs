//! Cadence benchmarks: the sans-IO rigs the microbenchmarks drive
//! ([`rig`]), and the `cadence-bench` scenario runner: scenario files
//! ([`scenario`]), media ([`media`]), the shaped veth link ([`netns`]), the
//! kernel floor ([`floor`]), child processes ([`procs`]), /proc sampling
//! ([`procstat`]), machine facts ([`machine`]), running ([`run`]), the JSON
//! results ([`results`]), and their comparison ([`compare`]), charts
//! ([`plot`]) and performance table ([`table`]).
//!
//! Results are JSON files of schema [`results::SCHEMA`], one per scenario,
//! under `results/<version>/`.

pub mod compare;
pub mod floor;
pub mod machine;
pub mod media;
pub mod netns;
pub mod plot;
pub mod procs;
pub mod procstat;
pub mod results;
pub mod rig;
pub mod run;
pub mod scenario;
pub mod table;
