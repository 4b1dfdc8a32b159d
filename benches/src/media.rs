//! Bench media: the scenario's files from the repository's `media/` folder,
//! looped by ffmpeg stream copy (and re-hinted with `+rtphint`) until they
//! outlast the run, so that no session reaches its end inside the window.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// A file as served in a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Name in the bench media folder (the URL path).
    pub name: String,
    /// Source in the repository's `media/` folder.
    pub source: String,
    /// Times the source is repeated.
    pub repeats: u32,
    /// Duration, s.
    pub duration_s: f64,
    /// RTP packets per second of one session.
    pub packets_per_s: f64,
    /// Mean RTP packet (header + payload), bytes.
    pub mean_packet_bytes: f64,
    /// RTP bit rate of one session (header + payload), kbit/s.
    pub rtp_kbit_per_s: f64,
    /// Bit rate of one session as Ethernet frames (RTP + UDP 8 + IPv4 20 +
    /// Ethernet header 14, as tc counts them), kbit/s.
    pub l2_kbit_per_s: f64,
}

/// Facts of a hinted file.
pub fn describe(path: &Path, source: &str, repeats: u32) -> Result<MediaInfo> {
    let (sizes, rate) = crate::floor::packet_sizes(path)?;
    let n = sizes.len() as f64;
    let total: f64 = sizes.iter().map(|s| f64::from(*s)).sum();
    let seconds = n / rate;
    Ok(MediaInfo {
        name: path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string(),
        source: source.to_string(),
        repeats,
        duration_s: seconds,
        packets_per_s: rate,
        mean_packet_bytes: total / n,
        rtp_kbit_per_s: total * 8.0 / seconds / 1000.0,
        l2_kbit_per_s: (total + 42.0 * n) * 8.0 / seconds / 1000.0,
    })
}

/// Where a scenario's file name points: `fixtures/NAME` is
/// `<repo>/target/fixtures/NAME` (made by `scripts/make-fixtures` when
/// missing), anything else is `<repo>/media/NAME`.
pub fn source_path(repo: &Path, file: &str) -> Result<PathBuf> {
    if let Some(name) = file.strip_prefix("fixtures/") {
        let path = repo.join("target/fixtures").join(name);
        if !path.is_file() {
            let st = Command::new(repo.join("scripts/make-fixtures"))
                .current_dir(repo)
                .stdout(std::process::Stdio::null())
                .status()
                .context("run scripts/make-fixtures")?;
            if !st.success() {
                bail!("scripts/make-fixtures failed ({st})");
            }
        }
        if !path.is_file() {
            bail!(
                "fixture {} not found after scripts/make-fixtures",
                path.display()
            );
        }
        return Ok(path);
    }
    let path = repo.join("media").join(file);
    if !path.is_file() {
        bail!("media file {} not found", path.display());
    }
    Ok(path)
}

/// Puts `file` (see [`source_path`]) into `dir`, looped to last at least
/// `min_seconds`, and returns what is served.
pub fn prepare(repo: &Path, dir: &Path, file: &str, min_seconds: f64) -> Result<MediaInfo> {
    let source = source_path(repo, file)?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let one = describe(&source, file, 1)?;
    let repeats = (min_seconds / one.duration_s.max(0.1)).ceil().max(1.0) as u32;
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("media");
    let out: PathBuf = if repeats == 1 {
        dir.join(source.file_name().unwrap_or_default())
    } else {
        dir.join(format!("{stem}_x{repeats}.mp4"))
    };
    if !out.is_file() {
        let tmp = dir.join(format!(".{}.tmp.mp4", std::process::id()));
        if repeats == 1 {
            std::fs::copy(&source, &tmp).context("copy media")?;
        } else {
            let list = dir.join(format!(".{}.list", std::process::id()));
            let line = format!("file '{}'\n", source.display());
            std::fs::write(&list, line.repeat(repeats as usize))?;
            let st = Command::new("ffmpeg")
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-f",
                    "concat",
                    "-safe",
                    "0",
                    "-i",
                ])
                .arg(&list)
                .args([
                    "-map",
                    "0:v?",
                    "-map",
                    "0:a?",
                    "-c",
                    "copy",
                    "-movflags",
                    "+rtphint",
                ])
                .arg(&tmp)
                .status()
                .context("run ffmpeg (needed to loop the bench media)")?;
            let _ = std::fs::remove_file(&list);
            if !st.success() {
                bail!("ffmpeg could not loop {} ({st})", source.display());
            }
        }
        std::fs::rename(&tmp, &out)?;
    }
    describe(&out, file, repeats)
}
