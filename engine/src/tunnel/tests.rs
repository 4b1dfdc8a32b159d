//! Tests of the tunnel codec: captured client heads, classification and
//! responses, the base64 decoder, the registry, home shards, and live
//! ffmpeg and GStreamer clients.

mod captures;
mod classify;
mod clients;
mod decoder;
mod home;
mod registry;
