//! RTSP over HTTP tunnelling, QuickTime's scheme (Apple, "Tunneling
//! QuickTime RTSP and RTP over HTTP", DSS `Documentation/RTSP_Over_HTTP.pdf`).

pub mod http;

pub use http::{HttpRequestHead, HttpVersion};
