//! `cadence`: the streaming server binary, a thin `main` over
//! [`cadence_engine::server::Server`]. See `cadence --help`.

use std::process::ExitCode;

use cadence_engine::config::{Cli, Command, Config, ServeArgs};
use cadence_engine::server::Server;
use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Passwd(args)) => return cadence_engine::access::cli::passwd_main(args),
        Some(Command::SignUrl(args)) => return cadence_engine::access::cli::sign_url_main(args),
        _ => {}
    }
    let cpus = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(1);
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return check_config(file, cpus);
    }
    let config = match Config::resolve(&cli.serve, cpus) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cadence: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, filter_handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    if let Some(Command::CheckSystem) = cli.command {
        return cadence_engine::check_system::run(&config);
    }
    let server = Server::builder(config).on_log_level(move |level| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        filter_handle.reload(filter).map_err(|e| e.to_string())
    });
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cadence: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `cadence check-config FILE`: 0 when the file (and the files it names)
/// would start a server, 2 with the error otherwise.
fn check_config(file: &std::path::Path, cpus: usize) -> ExitCode {
    let args = ServeArgs {
        config: Some(file.to_path_buf()),
        ..ServeArgs::default()
    };
    let result = Config::resolve(&args, cpus)
        .map_err(|e| e.to_string())
        .and_then(|c| cadence_engine::server::validate(&c).map_err(|e| e.to_string()));
    match result {
        Ok(()) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cadence: {e}");
            ExitCode::from(2)
        }
    }
}
