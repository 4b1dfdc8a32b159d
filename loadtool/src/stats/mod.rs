//! Per-stream measurements: loss, reordering and duplicates (RFC 3550 A.1),
//! interarrival jitter (RFC 3550 A.8) and lateness against the RTP clock.

mod jitter;
mod lateness;
mod sequence;
mod stream;

pub use jitter::Jitter;
pub use lateness::Lateness;
pub use sequence::{SeqOutcome, SeqTracker, MAX_DROPOUT, MAX_MISORDER};
pub use stream::{ReportValues, StreamStats};
