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
}
