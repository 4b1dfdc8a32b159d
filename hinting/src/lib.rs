//! Cadence's hint-track layer.
//!
//! Reads RTP hint tracks (ISO/IEC 14496-12 §8–9 and the QuickTime "RTP hint
//! track format") from hinted MP4/MOV/3GP files and compiles each one into an
//! immutable [`schedule::TrackSchedule`]: the list of RTP packets a session
//! sends, with send times, RTP fields and payload segments that point into the
//! memory-mapped file. Everything here is pure: bytes in, schedules out.
//!
//! - [`open`] / [`compile()`]: file → [`FileSchedule`] (what the engine calls).
//! - [`mp4`]: the reusable movie-structure reader ([`mp4::Movie::parse`]),
//!   also used to packetize plain files and to rewrite files.
//! - [`rtp_entry`], [`hint_sample`]: the hint-specific formats.
//! - [`compile`](mod@compile): the schedule compiler.
//! - [`error`](mod@error): [`HintError`].
//! - [`budget`]: the [`Budget`] every entry point enforces (`*_with`
//!   variants take one; the others use [`Budget::default()`]).

#![deny(unsafe_code)]

pub mod budget;
pub mod cache;
pub mod compile;
pub mod error;
pub mod hint_sample;
pub mod mp4;
pub mod packetize;
pub mod rtp_entry;
pub mod schedule;
pub mod writer;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

pub use budget::{Budget, Deadline, Limit};
pub use error::HintError;
pub use schedule::{
    rtp_origin_of, FileSchedule, PacketFlags, ScheduledPacket, Segment, SegmentSource,
    TrackSchedule, MAX_SEGMENTS_PER_PACKET,
};

/// Memory-maps the file at `path` and compiles its hint tracks within the
/// default [`Budget`].
///
/// The file must not be modified while the returned schedule (which holds
/// the map) is alive. Errors: [`HintError::Io`] when the file cannot be
/// opened or mapped, otherwise as [`compile()`].
pub fn open(path: &Path) -> Result<FileSchedule, HintError> {
    open_with(path, &Budget::default())
}

/// [`open`] within `budget`. Errors as [`open`], and
/// [`HintError::OverBudget`] when the file exceeds `budget`.
pub fn open_with(path: &Path, budget: &Budget) -> Result<FileSchedule, HintError> {
    let io = |source| HintError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: the map is read-only; media files are not modified while
    // served (documented requirement above). A concurrent truncation could
    // fault, as for every mmap-based server.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(&file) }.map_err(io)?;
    compile_with(Arc::new(map), budget)
}

/// Compiles the hint tracks of a memory-mapped file into a [`FileSchedule`]
/// that keeps `map` alive for its [`SegmentSource::File`] segments.
///
/// Errors: any [`HintError`] naming the box, track, sample, packet or
/// constructor at fault; [`HintError::NoHintTracks`] for a file without RTP
/// hint tracks; [`HintError::OverBudget`] when the file exceeds the default
/// [`Budget`].
pub fn compile(map: Arc<Mmap>) -> Result<FileSchedule, HintError> {
    compile_with(map, &Budget::default())
}

/// [`compile()`] within `budget` (the engine passes its configured limits).
/// Errors as [`compile()`].
pub fn compile_with(map: Arc<Mmap>, budget: &Budget) -> Result<FileSchedule, HintError> {
    let c = compile::compile_slice_with(&map, budget)?;
    Ok(FileSchedule {
        map,
        session_sdp: c.session_sdp,
        tracks: c.tracks,
        duration_us: c.duration_us,
    })
}
