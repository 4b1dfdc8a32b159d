//! The default [`Budget`] against real files: what each file actually costs
//! (schedule bytes, work units, packets, samples), found by searching for the
//! smallest budget it passes, and the margin the defaults leave a 2-hour
//! movie at 10 Mbit/s, extrapolated from a 10 s clip of one (H.264 at
//! 60 frames/s and AAC at 48 kHz, made with ffmpeg, hinted and plain).
//!
//! The measured table is printed (`--nocapture`); the hinting README's
//! "Budgets" section quotes it.

mod hinter_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plain::schedule_plain_with;
use cadence_hinting::{Budget, FileSchedule, HintError, Limit};
use hinter_common::{apple, fixture, repo_root};
use memmap2::Mmap;

const MTU: u32 = 1450;

/// How a file is turned into a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Its hint tracks compiled.
    Hinted,
    /// Packetized in memory.
    Plain,
}

fn build(map: &Arc<Mmap>, route: Route, budget: &Budget) -> Result<FileSchedule, HintError> {
    match route {
        Route::Hinted => cadence_hinting::compile_with(map.clone(), budget),
        Route::Plain => schedule_plain_with(map.clone(), MTU, budget),
    }
}

/// The smallest `x` (within 0.1 %) for which `budget(x)` lets the file
/// through; failures below it must be `limit`.
fn least(map: &Arc<Mmap>, route: Route, limit: Limit, budget: impl Fn(u64) -> Budget) -> u64 {
    let passes = |x: u64| match build(map, route, &budget(x)) {
        Ok(_) => true,
        Err(HintError::OverBudget { what, .. }) if what == limit => false,
        Err(e) => panic!("{route:?} with {limit:?} {x}: unexpected {e}"),
    };
    let (mut lo, mut hi) = (0u64, 1u64 << 40);
    assert!(passes(hi));
    while hi - lo > (hi / 1000).max(1) {
        let mid = lo + (hi - lo) / 2;
        if passes(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// What one file costs.
#[derive(Debug)]
struct Cost {
    file_bytes: u64,
    duration_s: f64,
    samples: u32,
    packets: u64,
    schedule_bytes: u64,
    work: u64,
}

fn cost(file: &Path, route: Route) -> Cost {
    let f = std::fs::File::open(file).expect("open");
    // SAFETY: test media, not modified while mapped.
    #[allow(unsafe_code)]
    let map = Arc::new(unsafe { Mmap::map(&f) }.expect("map"));
    let schedule = build(&map, route, &Budget::default()).expect("passes the default budget");
    let movie = Movie::parse(&map).expect("parses");
    let schedule_bytes = least(&map, route, Limit::ScheduleBytes, |x| Budget {
        schedule_bytes_per_file_byte: 0,
        schedule_bytes_allowance: x,
        max_schedule_bytes: x,
        ..Budget::default()
    });
    let work = least(&map, route, Limit::Work, |x| Budget {
        work_per_file_byte: 0,
        work_allowance: x,
        max_work: x,
        ..Budget::default()
    });
    Cost {
        file_bytes: map.len() as u64,
        duration_s: movie.duration_us() as f64 / 1e6,
        samples: movie
            .tracks
            .iter()
            .map(|t| t.samples.len())
            .max()
            .unwrap_or(0),
        packets: schedule.tracks.iter().map(|t| t.packets.len() as u64).sum(),
        schedule_bytes,
        work,
    }
}

fn print(name: &str, route: Route, c: &Cost) {
    println!(
        "{name:<34} {route:<6?} {:>11} B {:>7.1} s {:>8} samples {:>8} packets {:>11} sched B ({:.3}/B) {:>11} work ({:.3}/B)",
        c.file_bytes,
        c.duration_s,
        c.samples,
        c.packets,
        c.schedule_bytes,
        c.schedule_bytes as f64 / c.file_bytes as f64,
        c.work,
        c.work as f64 / c.file_bytes as f64,
    );
}

/// Runs ffmpeg, failing the test when it is missing or fails.
fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("run ffmpeg (needed to make the 10 Mbit/s clip)");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

/// A 10 s clip at 10 Mbit/s: 1280x720 H.264 at 60 frames/s (noise keeps
/// the encoder at its bitrate) and AAC 48 kHz, hinted and plain.
fn ten_mbit_clips() -> (PathBuf, PathBuf) {
    let dir = repo_root().join("target/fixtures");
    std::fs::create_dir_all(&dir).expect("fixtures dir");
    let hinted = dir.join("h264_10mbit_60fps_hinted.mp4");
    let plain = dir.join("h264_10mbit_60fps_plain.mp4");
    if !hinted.is_file() {
        let tmp = dir.join("h264_10mbit_60fps_hinted.tmp.mp4");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=60:duration=10,noise=alls=20:allf=t",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=10",
            "-c:v",
            "libx264",
            "-threads",
            "1",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "120",
            "-bf",
            "0",
            "-b:v",
            "10M",
            "-maxrate",
            "10M",
            "-bufsize",
            "20M",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-ar",
            "48000",
            "-movflags",
            "+rtphint",
            "-shortest",
            tmp.to_str().expect("utf-8 path"),
        ]);
        std::fs::rename(&tmp, &hinted).expect("rename");
    }
    if !plain.is_file() {
        let tmp = dir.join("h264_10mbit_60fps_plain.tmp.mp4");
        let (h, t) = (hinted.to_str().expect("path"), tmp.to_str().expect("path"));
        ffmpeg(&["-i", h, "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", t]);
        std::fs::rename(&tmp, &plain).expect("rename");
    }
    (hinted, plain)
}

#[test]
fn a_two_hour_10_mbit_movie_passes_the_defaults_comfortably() {
    let b = Budget::default();
    let (hinted, plain) = ten_mbit_clips();
    for (file, route) in [(hinted, Route::Hinted), (plain, Route::Plain)] {
        let c = cost(&file, route);
        print("10 Mbit/s 60 fps clip", route, &c);
        let mbit = c.file_bytes as f64 * 8.0 / c.duration_s / 1e6;
        assert!(mbit > 9.0, "the clip is {mbit:.1} Mbit/s, not 10");
        // The same movie, 2 hours long: every cost scales with its length.
        let scale = 7200.0 / c.duration_s;
        let file_bytes = c.file_bytes as f64 * scale;
        let margin = |what: &str, need: f64, limit: f64| {
            println!(
                "  2 h: {what}: {need:.3e} of {limit:.3e} ({:.1}x margin)",
                limit / need
            );
            limit / need
        };
        let samples = margin(
            "samples per track",
            f64::from(c.samples) * scale,
            f64::from(b.max_samples_per_track),
        );
        let packets = margin("packets", c.packets as f64 * scale, b.max_packets as f64);
        let bytes = margin(
            "schedule bytes",
            c.schedule_bytes as f64 * scale,
            b.schedule_bytes_for(file_bytes as u64) as f64,
        );
        let work = margin(
            "work",
            c.work as f64 * scale,
            b.work_for(file_bytes as u64) as f64,
        );
        assert!(samples >= 10.0, "samples: {samples:.1}x");
        assert!(packets >= 4.0, "packets: {packets:.1}x");
        assert!(bytes >= 2.0, "schedule bytes: {bytes:.1}x");
        assert!(work >= 10.0, "work: {work:.1}x");
    }
}

/// Every test file costs a small share of its own length: the per-byte
/// ratios of the defaults (8 schedule bytes, 1 work unit) hold with a
/// margin for all of them, the 64 MiB and 2^24-unit allowances aside.
#[test]
fn test_media_costs_per_file_byte() {
    let b = Budget::default();
    let mut files = vec![
        (
            "h264_aac_hinted.mp4",
            fixture("h264_aac_hinted.mp4"),
            Route::Hinted,
        ),
        (
            "h264_aac_hinted.mov",
            fixture("h264_aac_hinted.mov"),
            Route::Hinted,
        ),
        (
            "h264_aac_plain.mp4",
            fixture("h264_aac_plain.mp4"),
            Route::Plain,
        ),
        (
            "h264_bframes_plain.mp4",
            fixture("h264_bframes_plain.mp4"),
            Route::Plain,
        ),
        (
            "hevc_aac_plain.mp4",
            fixture("hevc_aac_plain.mp4"),
            Route::Plain,
        ),
        (
            "aac_only_plain.mp4",
            fixture("aac_only_plain.mp4"),
            Route::Plain,
        ),
        (
            "media/sample.mp4",
            repo_root().join("media/sample.mp4"),
            Route::Hinted,
        ),
    ];
    for name in [
        "sample_h264_300kbit.mp4",
        "sample_300kbit.mov",
        "sample_50kbit.3gp",
    ] {
        if let Some(p) = apple(name) {
            files.push((name, p, Route::Hinted));
        }
    }
    for (name, file, route) in files {
        let c = cost(&file, route);
        print(name, route, &c);
        let bytes = c.schedule_bytes as f64 / c.file_bytes as f64;
        let work = c.work as f64 / c.file_bytes as f64;
        assert!(
            bytes * 2.0 <= b.schedule_bytes_per_file_byte as f64,
            "{name}: {bytes:.2} schedule bytes per file byte"
        );
        assert!(
            work * 2.0 <= b.work_per_file_byte as f64,
            "{name}: {work:.3} work units per file byte"
        );
    }
}
