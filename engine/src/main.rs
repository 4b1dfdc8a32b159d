//! `cadence`: the streaming server binary. See `cadence --help`.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cadence_engine::config::{Cli, Command, Config};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Passwd(args)) => return cadence_engine::access::cli::passwd_main(args),
        Some(Command::SignUrl(args)) => return cadence_engine::access::cli::sign_url_main(args),
        _ => {}
    }
    let cpus = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(1);
    let config = match Config::resolve(&cli.serve, cpus) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cadence: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Some(Command::CheckSystem) = cli.command {
        return cadence_engine::check_system::run(&config);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("cadence: cannot install signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    match cadence_engine::server::run(&config, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cadence: {e}");
            ExitCode::FAILURE
        }
    }
}
