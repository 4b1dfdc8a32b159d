//! Bodies of Cadence's fuzz targets, on the stable toolchain.
//!
//! Each target is one `pub fn <target>(data: &[u8])` that drives the real
//! engine or hinting code with `data` and returns normally on any input:
//! errors are expected answers, while a panic, an arithmetic overflow (the
//! fuzz build has overflow checks and debug assertions on), an abort on a
//! huge allocation or a hang is a bug. The targets also check invariants the
//! rest of the server relies on (a compiled schedule's segments lie inside
//! the file, a complete PROXY header's prefixes are incomplete, framing does
//! not depend on how the input was split) and panic when one fails.
//!
//! The cargo-fuzz project in `fuzz/` (nightly, libFuzzer) calls these
//! functions from `fuzz/fuzz_targets/<target>.rs`; the stable test
//! `tests/regressions.rs` replays every file of `fuzz/regressions/<target>/`
//! and of the seed corpora through them. [`TARGETS`] lists them all.
//!
//! | target | drives |
//! |---|---|
//! | [`rtsp_session`] | RTSP framing, the request pipeline with access control, the controller and pacer of one shard (`cadence_engine::sim`), with a rising simulated clock |
//! | [`rtcp`] | RTCP compound parsing (RFC 3550 §6.4) and receiver reports reaching playing sessions |
//! | [`hint_compile`] | hinted MP4/MOV/3GP compile into schedules, then serving them |
//! | [`plain_schedule`] | the plain-file plan and packetizers (H.264, H.265, AAC, MPEG-4 Visual), then serving the schedule |
//! | [`schedule_cache`] | the schedule cache reader (`--hint-cache`) |
//! | [`access_files`] | `qtaccess`, `qtusers`, `qtgroups` parsers and the `cadence passwd` rewrite |
//! | [`authorization`] | the `Authorization` parser (Basic, Digest) and the access decision |
//! | [`http_tunnel`] | RTSP-over-HTTP tunnel heads, classification and the POST body decoder |
//! | [`proxy_header`] | PROXY protocol v1/v2 header parser |

pub mod access;
pub mod budget;
pub mod check;
pub mod fixture;
pub mod input;
pub mod media;
pub mod placeholders;
pub mod schedules;
pub mod seeds;
pub mod session;
pub mod streams;

pub use access::{access_files, authorization};
pub use media::{hint_compile, plain_schedule, schedule_cache};
pub use session::{rtcp, rtsp_session};
pub use streams::{http_tunnel, proxy_header};

/// A fuzz target body: drives the code under test with one input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs`, its
/// `fuzz/regressions/<name>/` folder and its seed corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("rtsp_session", rtsp_session),
    ("rtcp", rtcp),
    ("hint_compile", hint_compile),
    ("plain_schedule", plain_schedule),
    ("schedule_cache", schedule_cache),
    ("access_files", access_files),
    ("authorization", authorization),
    ("http_tunnel", http_tunnel),
    ("proxy_header", proxy_header),
];

/// The target called `name`, if any.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
