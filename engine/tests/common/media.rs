//! Test media: the ffmpeg fixtures and the Apple-hinted samples.
//!
//! Fixtures live in `<repo>/target/fixtures` and are generated once by `scripts/make-fixtures`
//! (the script caches). The Apple samples are read in place from `<repo>/../shared/media/apple`
//! and never copied into the repository; when that folder is absent a test skips with a
//! printed notice, unless `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root (`engine/..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine has a parent directory")
        .to_path_buf()
}

/// The folder holding the Apple-hinted samples (`<repo>/../shared/media/apple`).
pub fn apple_dir() -> PathBuf {
    repo_root().join("../shared/media/apple")
}

/// The 60 s ffmpeg-hinted H.264 (25 fps, GOP 2 s, no B-frames) + AAC 44.1 kHz fixture.
pub const FIXTURE_H264: &str = "h264_aac_hinted.mp4";

/// Path of a fixture made by `scripts/make-fixtures`, generating the fixtures first when
/// `h264_aac_hinted.mp4` is missing. Panics if the script fails (ffmpeg is required).
pub fn fixture(name: &str) -> PathBuf {
    static MADE: OnceLock<PathBuf> = OnceLock::new();
    let dir = MADE.get_or_init(|| {
        let dir = repo_root().join("target/fixtures");
        if !dir.join(FIXTURE_H264).is_file() {
            eprintln!("generating fixtures with scripts/make-fixtures (first run only)");
            let status = Command::new(repo_root().join("scripts/make-fixtures"))
                .arg(&dir)
                .current_dir(repo_root())
                .status()
                .expect("run scripts/make-fixtures");
            assert!(status.success(), "scripts/make-fixtures failed: {status}");
        }
        dir
    });
    let path = dir.join(name);
    assert!(path.is_file(), "fixture {} missing", path.display());
    path
}

/// True when `CI=true`: missing Apple media is then a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The Apple samples used by the tests.
pub const APPLE_H264: &str = "sample_h264_300kbit.mp4";
/// Sorenson Video 3 + QDesign Music 2, QuickTime.
pub const APPLE_SVQ3: &str = "sample_300kbit.mov";
/// MPEG-4 Visual + AMR-NB, 3GPP.
pub const APPLE_3GP: &str = "sample_50kbit.3gp";

/// Path of an Apple sample, or `None` (with a printed notice) when the shared media folder is
/// absent. Panics instead of skipping when `CI=true`.
pub fn apple(name: &str) -> Option<PathBuf> {
    let path = apple_dir().join(name);
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "Apple sample {} is absent ({}); the test needs ../shared/media/apple",
        name,
        path.display()
    );
    if in_ci() {
        panic!("{msg} (CI=true: failing instead of skipping)");
    }
    eprintln!("SKIP: {msg}");
    None
}

/// One file to serve: the name it gets under the media root and where it really is.
#[derive(Clone, Debug)]
pub struct Source {
    /// Relative path in the RTSP URL, e.g. `sample_h264_300kbit.mp4`.
    pub name: String,
    /// Real file on disk (symlinked into the media folder).
    pub path: PathBuf,
    /// Video frame rate of the file, frames per second.
    pub fps: f64,
}

/// The ffmpeg fixture as a [`Source`].
pub fn fixture_source() -> Source {
    Source {
        name: FIXTURE_H264.to_string(),
        path: fixture(FIXTURE_H264),
        fps: 25.0,
    }
}

/// The Apple samples that are present, as [`Source`]s (each absent one prints a notice, or
/// panics under `CI=true`).
pub fn apple_sources() -> Vec<Source> {
    [(APPLE_H264, 30.0), (APPLE_SVQ3, 30.0), (APPLE_3GP, 15.0)]
        .into_iter()
        .filter_map(|(name, fps)| {
            apple(name).map(|path| Source {
                name: name.to_string(),
                path,
                fps,
            })
        })
        .collect()
}

/// The fixture followed by every present Apple sample.
pub fn all_sources() -> Vec<Source> {
    let mut v = vec![fixture_source()];
    v.extend(apple_sources());
    v
}
