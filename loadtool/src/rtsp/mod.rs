//! The RTSP player side: control URLs, SDP, Transport, framing of the RTSP
//! connection, and the per-session state machine.

pub mod client;
pub mod framing;
pub mod sdp;
pub mod transport;
pub mod url;

pub use client::{Client, ClientError, Output, Phase, RtpInfoEntry};
pub use framing::{next_frame, Frame, FramingError};
pub use sdp::{parse_presentation, Presentation, SdpError, TrackInfo};
pub use transport::{Lower, TransportReply};
