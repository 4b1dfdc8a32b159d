//! Builds the fuzz seed corpora (see `cadence_fuzz_harness::seeds`).
//!
//! - `cadence-fuzz-seeds build --out DIR [--media DIR]`: every seed built
//!   from the bundled sample, plus the seeds of every media file in the
//!   media folder, into `DIR/<target>/`.
//! - `cadence-fuzz-seeds capture --client F --server F --out F`: one
//!   `rtsp_session` seed from a recorded connection (client and server
//!   bytes).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cadence_fuzz_harness::seeds;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Builds Cadence's fuzz seed corpora")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes every seed into OUT/<target>/.
    Build {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Folder of media files (MP4, MOV, 3GP) to make seeds of.
        #[arg(long)]
        media: Option<PathBuf>,
    },
    /// Turns one recorded RTSP connection into an rtsp_session seed.
    Capture {
        /// What the client sent.
        #[arg(long)]
        client: PathBuf,
        /// What the server answered.
        #[arg(long)]
        server: PathBuf,
        /// Seed file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Build { out, media } => {
            let mut all = seeds::from_sample()?;
            if let Some(dir) = media {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .with_context(|| format!("reading {}", dir.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                files.sort();
                for f in files {
                    let bytes =
                        std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
                    let name = f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    all.extend(
                        seeds::from_media(&name, &bytes)
                            .with_context(|| format!("seeds of {}", f.display()))?,
                    );
                }
            }
            seeds::write_all(&out, &all).with_context(|| format!("writing {}", out.display()))?;
            println!("{} seeds in {}", all.len(), out.display());
        }
        Command::Capture {
            client,
            server,
            out,
        } => {
            let c =
                std::fs::read(&client).with_context(|| format!("reading {}", client.display()))?;
            let s =
                std::fs::read(&server).with_context(|| format!("reading {}", server.display()))?;
            std::fs::write(&out, seeds::from_capture(&c, &s))
                .with_context(|| format!("writing {}", out.display()))?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cadence-fuzz-seeds: {e:#}");
            ExitCode::FAILURE
        }
    }
}
