//! Access control, DSS style: per-folder `qtaccess` files, `qtusers` and
//! `qtgroups` files, Basic and Digest challenges (RFC 7617, RFC 2617 /
//! RFC 7616), client-subnet rules and signed URLs.
//!
//! Two phases:
//! - [`AccessRules::load`] (startup and reload, off the shards) reads every
//!   file and returns an immutable snapshot, meant to be shared as
//!   `Arc<AccessRules>`; broken files are reported and fail closed.
//! - [`AccessRules::decide`] (every request, on any shard) is a pure
//!   function of the snapshot, the [`AccessRequest`] and the time: no I/O,
//!   no lock, no clock. Digest nonces are HMACs, so any shard checks any
//!   nonce.
//!
//! CLI helpers: [`cli::passwd_main`] (`cadence passwd`) and
//! [`cli::sign_url_main`] (`cadence sign-url`).

pub mod authorization;
pub mod cli;
pub mod config;
mod decide;
pub mod decision;
pub mod digest;
pub mod passwd;
pub mod qtaccess;
pub mod rules;
pub mod secret;
pub mod signed_url;
pub mod subnet;
pub mod users;

pub use config::{AuthConfig, AuthConfigError, AuthScheme, ClientSubnetConfig, SignedUrlMode};
pub use decision::{AccessRequest, Decision, Grant, GrantedBy, Refusal};
pub use rules::{AccessRules, LoadError, LoadProblem};
pub use secret::{Secret, SecretError};

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::Path;

/// Reads a whole file of at most `max` bytes; `Ok(None)` when it is larger
/// (so a huge or endless file never becomes a huge allocation).
pub(crate) fn read_limited(path: &Path, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    f.take(limit).read_to_end(&mut buf)?;
    Ok((buf.len() <= max).then_some(buf))
}

/// A fresh empty folder under the system temp folder for one test.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cadence-access-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    dir
}
