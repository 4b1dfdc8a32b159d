//! Why a catalog path cannot be served, with the RTSP status each reason maps to.

/// Why a catalog path cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    /// No such file under the media folder (RTSP 404).
    #[error("no such file: {0}")]
    NotFound(String),
    /// The file is readable but its media cannot be streamed: no hint tracks and
    /// no codec we can packetize (RTSP 415).
    #[error("{path}: unsupported media: {reason}")]
    Unsupported {
        /// Catalog path.
        path: String,
        /// What is unsupported.
        reason: String,
    },
    /// The file is corrupt or truncated (RTSP 500); the reason names the box or
    /// sample at fault.
    #[error("{path}: {reason}")]
    Corrupt {
        /// Catalog path.
        path: String,
        /// The hinting layer's error.
        reason: String,
    },
    /// The file exceeds a compile budget (`--max-packets-per-file`,
    /// `--max-samples-per-track`, `--max-tracks-per-file`,
    /// `--max-schedule-bytes-per-file-byte`, `--compile-timeout-ms`; RTSP
    /// 500, as a broken file); the reason names the box and the limit.
    #[error("{path}: over budget: {reason}")]
    OverBudget {
        /// Catalog path.
        path: String,
        /// The hinting layer's [`cadence_hinting::HintError::OverBudget`].
        reason: String,
    },
    /// The file's schedule does not fit in `--schedule-memory-mb` beside the
    /// schedules in use (RTSP 503 Service Unavailable, with `Retry-After`);
    /// it is compiled again once room returns.
    #[error("{path}: schedule memory full: needs {need} bytes, {pinned} of {limit} in use")]
    NoScheduleMemory {
        /// Catalog path.
        path: String,
        /// Bytes of the file's schedule.
        need: u64,
        /// The limit, bytes.
        limit: u64,
        /// Bytes of schedules that could not be evicted.
        pinned: u64,
    },
}
