//! Cadence's hint-track layer.
//!
//! Reads RTP hint tracks (ISO/IEC 14496-12 §8–9 and the QuickTime "RTP hint
//! track format") from hinted MP4/MOV/3GP files and compiles each one into an
//! immutable [`schedule::TrackSchedule`]: the list of RTP packets a session
//! sends, with send times, RTP fields and payload segments that point into the
//! memory-mapped file. Everything here is pure: bytes in, schedules out.
//!
//! - [`mp4`]: the reusable movie-structure reader ([`mp4::Movie::parse`]),
//!   also used to packetize plain files and to rewrite files.
//! - [`rtp_entry`], [`hint_sample`]: the hint-specific formats.
//! - [`error`](mod@error): [`HintError`].

#![deny(unsafe_code)]

pub mod error;
pub mod hint_sample;
pub mod mp4;
pub mod packetize;
pub mod rtp_entry;
pub mod schedule;

pub use error::HintError;
pub use schedule::{
    FileSchedule, PacketFlags, ScheduledPacket, Segment, SegmentSource, TrackSchedule,
    MAX_SEGMENTS_PER_PACKET,
};
