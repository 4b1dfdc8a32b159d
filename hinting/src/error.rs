//! The one error type of the hint-track layer.
//!
//! Every failure names what is at fault: the box path for structural problems
//! (`moov/trak[3]/mdia/minf/stbl/stsz`, with `trak[n]` counting the `trak`
//! boxes of `moov` from 1), the track ID and 1-based sample number for sample
//! table problems, and additionally the 1-based packet and constructor numbers
//! for hint-sample problems. Nothing in this crate panics on bad input.

use std::path::PathBuf;

/// Errors of the MP4 reader ([`crate::mp4`]) and the schedule compiler
/// ([`mod@crate::compile`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HintError {
    /// The file could not be opened or memory-mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A box, or a field inside it, extends past the end of its parent box or
    /// of the file.
    #[error("{box_path}: truncated: needs {needed} bytes, only {available} available")]
    Truncated {
        /// Path of the box at fault, e.g. `moov/trak[3]/mdia/minf/stbl/stsz`.
        box_path: String,
        /// Bytes the box or field needs.
        needed: u64,
        /// Bytes actually present.
        available: u64,
    },

    /// A box is present but its contents are invalid (bad version, zero
    /// timescale, inconsistent counts, ...).
    #[error("{box_path}: {reason}")]
    InvalidBox {
        /// Path of the box at fault.
        box_path: String,
        /// What is wrong.
        reason: String,
    },

    /// A box the format requires is absent.
    #[error("{box_path}: required box is missing")]
    MissingBox {
        /// Path the box should have.
        box_path: String,
    },

    /// A track's sample tables describe a sample that cannot exist (outside
    /// the file, not covered by any chunk, ...).
    #[error("track {track}, sample {sample}: {reason}")]
    BadSample {
        /// Track ID ('tkhd').
        track: u32,
        /// 1-based sample number.
        sample: u32,
        /// What is wrong.
        reason: String,
    },

    /// A hint sample is malformed as a whole (truncated packet table, bad
    /// extra-information table, packet too large, ...).
    #[error("hint track {track}, hint sample {sample}: {reason}")]
    BadHintSample {
        /// Track ID of the hint track.
        track: u32,
        /// 1-based hint sample number.
        sample: u32,
        /// What is wrong.
        reason: String,
    },

    /// A constructor of a hint packet is invalid or points outside the
    /// referenced sample, sample description or file.
    #[error("hint track {track}, hint sample {sample}, packet {packet}, constructor {constructor}: {reason}")]
    BadConstructor {
        /// Track ID of the hint track.
        track: u32,
        /// 1-based hint sample number.
        sample: u32,
        /// 1-based packet number within the hint sample.
        packet: u32,
        /// 1-based constructor number within the packet.
        constructor: u32,
        /// What is wrong.
        reason: String,
    },

    /// The file uses a feature this crate does not implement (external data
    /// references, unknown hint track version, ...).
    #[error("track {track}: unsupported: {reason}")]
    Unsupported {
        /// Track ID.
        track: u32,
        /// The feature.
        reason: String,
    },

    /// Compiling a track would need more memory than the file justifies
    /// (a hostile file amplifying a few bytes into many copies).
    #[error("hint track {track}: immediate-data arena would exceed {limit} bytes")]
    ArenaLimit {
        /// Track ID of the hint track.
        track: u32,
        /// The limit in bytes (file length + 1 MiB).
        limit: u64,
    },

    /// Reading, packetizing or compiling the file would exceed a
    /// [`crate::Budget`] limit (a hostile file declaring far more samples,
    /// packets or work than its bytes justify). Nothing was allocated for the
    /// excess.
    #[error("{at}{}: {what}: needs {declared}, budget {limit}", track_suffix(*.track))]
    OverBudget {
        /// Box path (e.g. `moov/trak[2]/mdia/minf/stbl/stsz`) or scope
        /// (`moov`, `hint cache`) at fault.
        at: String,
        /// Track ID ('tkhd') when one track is at fault.
        track: Option<u32>,
        /// The budget exceeded.
        what: crate::budget::Limit,
        /// The limit in force (count, bytes or work units, per `what`).
        limit: u64,
        /// The value the file declares, or would need when the limit was hit.
        declared: u64,
    },

    /// The file has no RTP ('rtp ') hint track. Plain files are packetized
    /// elsewhere.
    #[error("no RTP hint tracks in the file")]
    NoHintTracks,
}

fn track_suffix(track: Option<u32>) -> String {
    track.map_or_else(String::new, |t| format!(" (track {t})"))
}

impl HintError {
    pub(crate) fn invalid(box_path: impl Into<String>, reason: impl Into<String>) -> Self {
        HintError::InvalidBox {
            box_path: box_path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(box_path: impl Into<String>) -> Self {
        HintError::MissingBox {
            box_path: box_path.into(),
        }
    }
}
