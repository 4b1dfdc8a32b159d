//! `cadence`: the streaming server binary, a thin `main` over
//! [`cadence_engine::server::Server`]. See `cadence --help`.

use std::process::ExitCode;

use cadence_engine::config::{Cli, Command, Config};
use cadence_engine::server::Server;
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(Command::CheckSystem) = cli.command {
        return cadence_engine::check_system::run(&config);
    }
    match Server::builder(config).run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cadence: {e}");
            ExitCode::FAILURE
        }
    }
}
