//! RTSP over HTTP tunnelling, QuickTime's scheme (Apple, "Tunneling
//! QuickTime RTSP and RTP over HTTP", DSS `Documentation/RTSP_Over_HTTP.pdf`
//! and `Server.tproj/RTSPSession.cpp`), sans-IO.
//!
//! A client opens two connections to the RTSP port, paired by the
//! `x-sessioncookie` header: a GET, answered with [`get_response`] and then
//! carrying RTSP replies and `$` frames to the client, and a POST, never
//! answered, whose body is the client's RTSP in base64. The pieces:
//! - [`http`]: the HTTP head type the framer produces, error responses;
//! - [`classify`](mod@classify): head → [`TunnelRequest`] or [`TunnelError`];
//! - [`base64`](mod@base64): [`Base64Decoder`] for the POST body;
//! - [`post`]: [`PostBody`], the POST body decoded and framed as RTSP;
//! - [`registry`]: [`TunnelRegistry`], the home shard's pairing table;
//! - [`home`]: [`CookieHasher`], which shard is a cookie's home.

pub mod base64;
pub mod classify;
pub mod home;
pub mod http;
pub mod post;
pub mod registry;

pub use self::base64::{Base64Decoder, Base64Error};
pub use classify::{
    classify, get_response, Cookie, TunnelError, TunnelRequest, CONTENT_TYPE, MAX_COOKIE_LEN,
};
pub use home::CookieHasher;
pub use http::{HttpRequestHead, HttpVersion};
pub use post::PostBody;
pub use registry::{
    Expired, GetOutcome, PostOutcome, RegistryConfig, RegistryError, TunnelRegistry,
};

#[cfg(test)]
mod tests;
