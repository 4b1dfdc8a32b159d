//! `cadence-loadtool`: plays N RTSP sessions at once and measures what each one
//! receives. See `loadtool/README.md`.

use std::process::ExitCode;

use clap::Parser;

use cadence_loadtool::cli::Cli;
use cadence_loadtool::run::run;
use cadence_loadtool::summary::table;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cadence-loadtool: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match run(&config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cadence-loadtool: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", table(&report));
    if let Some(path) = &cli.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("cadence-loadtool: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.verdict.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
