//! `cadence-hint`: adds RTP hint tracks to plain MP4/MOV/3GP files, shows the
//! hint tracks of a file, or removes them.
//!
//! ```text
//! cadence-hint IN -o OUT [--mtu BYTES] [--track ID...]   add hint tracks
//! cadence-hint --info FILE                               describe hint tracks
//! cadence-hint --strip IN -o OUT                         remove hint tracks
//! ```
//!
//! Every track it cannot packetize is named on stderr with the reason; the
//! exit status is non-zero when nothing could be hinted or a track named with
//! `--track` could not be.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use memmap2::Mmap;

use cadence_hinting::compile::compile_slice;
use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plan::{plan_movie, FilePlan, PlanOptions};
use cadence_hinting::packetize::{max_payload_for, DEFAULT_MTU};
use cadence_hinting::writer::{write_hinted, write_stripped, WriteSummary};
use cadence_hinting::{HintError, TrackSchedule};

/// `println!` that ignores a closed stdout (`cadence-hint --info F | head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Adds RTP hint tracks to MP4/MOV files (H.264, H.265, AAC, MPEG-4 Visual),
/// shows them, or removes them.
#[derive(Debug, Parser)]
#[command(name = "cadence-hint", version)]
struct Args {
    /// Input file.
    input: PathBuf,
    /// Output file (required to hint or strip).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Largest RTP packet in bytes, 12-byte RTP header included.
    #[arg(long, default_value_t = DEFAULT_MTU)]
    mtu: u32,
    /// Hint only these media track IDs (repeatable).
    #[arg(long = "track", num_args = 1..)]
    tracks: Vec<u32>,
    /// Print the file's hint tracks: packet counts, rates, bitrates, largest
    /// packet and SDP.
    #[arg(long, conflicts_with_all = ["output", "strip", "tracks"])]
    info: bool,
    /// Remove the hint tracks.
    #[arg(long, conflicts_with = "tracks")]
    strip: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cadence-hint: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<ExitCode> {
    let map = map_file(&args.input)?;
    let movie = Movie::parse(&map)
        .with_context(|| format!("{} is not a readable MP4/MOV file", args.input.display()))?;
    if args.info {
        return info(&args.input, &map, &movie);
    }
    let output = args
        .output
        .as_deref()
        .context("an output file is required (-o OUT)")?;
    if args.strip {
        let summary = write_atomically(output, |w| Ok(write_stripped(&map, &movie, w)?))?;
        out!(
            "{}: removed {} hint track(s), dropped {} hint-only mdat(s), moved {} chunk offset(s); wrote {} bytes",
            output.display(),
            summary.hint_tracks_removed,
            summary.mdats_dropped,
            summary.chunk_offsets_shifted,
            summary.bytes_written
        );
        return Ok(ExitCode::SUCCESS);
    }
    max_payload_for(args.mtu).map_err(|e| anyhow::anyhow!("--mtu: {e}"))?;
    let options = PlanOptions {
        mtu: args.mtu,
        tracks: (!args.tracks.is_empty()).then(|| args.tracks.clone()),
    };
    let plan = plan_movie(&map, &movie, &options);
    for s in &plan.skipped {
        eprintln!(
            "cadence-hint: track {} not hinted: {}",
            s.track_id, s.reason
        );
    }
    if plan.tracks.is_empty() {
        bail!(
            "no track of {} can be hinted; nothing written",
            args.input.display()
        );
    }
    if !args.tracks.is_empty() && !plan.skipped.is_empty() {
        bail!("some requested tracks cannot be hinted; nothing written");
    }
    let existing = movie.tracks.iter().filter(|t| t.is_hint()).count();
    if existing > 0 {
        eprintln!("cadence-hint: replacing {existing} existing hint track(s)");
    }
    let summary = write_atomically(output, |w| Ok(write_hinted(&map, &movie, &plan, w)?))?;
    report_hinted(output, &plan, &summary);
    // Read the result back through the compiler the server uses.
    let written = map_file(output)?;
    let compiled = compile_slice(&written)
        .with_context(|| format!("{} does not read back", output.display()))?;
    let planned: u64 = plan.tracks.iter().map(|t| t.stats.packets).sum();
    let read: u64 = compiled.tracks.iter().map(|t| t.packets.len() as u64).sum();
    if planned != read {
        bail!(
            "{} reads back with {read} packets, {planned} planned",
            output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: read-only map of a file this process does not modify; the
    // output is written to a different (temporary) file and renamed.
    #[allow(unsafe_code)]
    let map =
        unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
    Ok(map)
}

/// Writes to `<output>.tmp` then renames it over `output`, so a failure never
/// leaves a half-written file under the final name.
fn write_atomically(
    output: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<WriteSummary>,
) -> Result<WriteSummary> {
    let mut tmp = output.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let result = write(&mut w).and_then(|s| {
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(s)
    });
    match result {
        Ok(summary) => {
            std::fs::rename(&tmp, output).with_context(|| {
                format!("cannot rename {} to {}", tmp.display(), output.display())
            })?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn report_hinted(output: &Path, plan: &FilePlan, summary: &WriteSummary) {
    out!(
        "{}: {} bytes, {} hint track(s)",
        output.display(),
        summary.bytes_written,
        plan.tracks.len()
    );
    for t in &plan.tracks {
        let seconds = t.duration_us() as f64 / 1e6;
        out!(
            "  hint track {} -> media track {}: {} {} Hz, {} packets ({:.1}/s), {} kbit/s, max packet {} bytes",
            t.hint_track_id,
            t.media_track_id,
            t.codec,
            t.clock_rate,
            t.stats.packets,
            t.stats.packets as f64 / seconds.max(1e-9),
            t.bitrate_kbps(),
            t.stats.max_packet_size
        );
    }
}

fn info(path: &Path, map: &[u8], movie: &Movie) -> Result<ExitCode> {
    match compile_slice(map) {
        Ok(compiled) => {
            out!(
                "{}: {} RTP hint track(s), {:.3} s",
                path.display(),
                compiled.tracks.len(),
                compiled.duration_us as f64 / 1e6
            );
            if let Some(s) = &compiled.session_sdp {
                out!("session SDP:");
                print_sdp(s);
            }
            for t in &compiled.tracks {
                print_track(t);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(HintError::NoHintTracks) => {
            out!("{}: no RTP hint tracks", path.display());
            let plan = plan_movie(map, movie, &PlanOptions::default());
            for t in &plan.tracks {
                out!(
                    "  media track {} can be hinted as {} ({} packets at MTU {DEFAULT_MTU}); cadence streams it directly",
                    t.media_track_id, t.codec, t.stats.packets
                );
            }
            for s in &plan.skipped {
                out!(
                    "  media track {} cannot be hinted: {}",
                    s.track_id,
                    s.reason
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e).context("hint tracks do not compile"),
    }
}

fn print_track(t: &TrackSchedule) {
    let seconds = (t.duration_us as f64 / 1e6).max(1e-9);
    let packets = t.packets.len() as f64;
    let bytes = t.payload_bytes() + 12 * t.packets.len() as u64;
    let largest = t
        .packets
        .iter()
        .map(|p| p.payload_len + 12)
        .max()
        .unwrap_or(0);
    let media = t
        .media_track_id
        .map_or_else(|| "-".to_string(), |m| m.to_string());
    out!(
        "hint track {} (media track {media}), clock {} Hz, {:.3} s",
        t.track_id,
        t.clock_rate,
        seconds
    );
    out!(
        "  packets {} ({:.1}/s), payload {} bytes, {:.1} kbit/s with RTP headers, max packet {} bytes (declared {})",
        t.packets.len(),
        packets / seconds,
        t.payload_bytes(),
        bytes as f64 * 8.0 / seconds / 1000.0,
        largest,
        t.max_packet_size
    );
    print_sdp(&t.sdp);
}

fn print_sdp(sdp: &str) {
    for line in sdp
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
    {
        out!("    {line}");
    }
}
