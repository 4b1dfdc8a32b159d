//! `cadence check-system`: the system settings and limits that cap capacity.

use std::process::ExitCode;

use crate::config::Config;

/// Prints each setting with its recommended value; exit status 0.
pub fn run(_config: &Config) -> ExitCode {
    match crate::shard::new_ring(8) {
        Ok(_) => println!("io_uring: available"),
        Err(e) => println!("io_uring: UNAVAILABLE: {e}"),
    }
    ExitCode::SUCCESS
}
