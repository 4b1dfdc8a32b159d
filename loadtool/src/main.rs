//! `cadence-loadtool`.
fn main() {}
