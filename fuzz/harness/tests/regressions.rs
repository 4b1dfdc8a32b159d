//! Replays every crash found by fuzzing (`fuzz/regressions/<target>/`),
//! every committed seed (`fuzz/seeds/<target>/`), every generated seed
//! (`target/fuzz/seeds/<target>/`, from `scripts/fuzz-seeds`, when present)
//! and the inputs built here from the bundled sample (`media/sample.mp4`)
//! through the fuzz targets on the stable toolchain. Each target must have
//! at least one input, so the test cannot pass empty; every input that
//! panics is named in the failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use cadence_fuzz_harness::seeds;
use cadence_fuzz_harness::TARGETS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files directly in `dir` (none when it does not exist), sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn every_regression_and_seed_runs_clean() {
    let root = root();
    let built = seeds::from_sample().expect("seeds from media/sample.mp4");
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (name, target) in TARGETS {
        let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
        for dir in ["fuzz/regressions", "fuzz/seeds", "target/fuzz/seeds"] {
            for f in files(&root.join(dir).join(name)) {
                let data = std::fs::read(&f).expect("read input");
                inputs.push((f.display().to_string(), data));
            }
        }
        for s in built.iter().filter(|s| s.target == *name) {
            inputs.push((format!("built: {}", s.name), s.bytes.clone()));
        }
        counts.push(format!("{name}: {}", inputs.len()));
        assert!(
            !inputs.is_empty(),
            "no input for fuzz target {name}: add seeds under fuzz/seeds/{name}/"
        );
        for (label, data) in &inputs {
            if catch_unwind(AssertUnwindSafe(|| target(data))).is_err() {
                failures.push(format!("{name}: {label}"));
            }
        }
    }
    eprintln!("inputs per target: {}", counts.join(", "));
    assert!(
        failures.is_empty(),
        "inputs that crash:\n{}",
        failures.join("\n")
    );
}
