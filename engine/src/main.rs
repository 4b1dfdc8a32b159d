//! `cadence`: the streaming server binary.
fn main() {}
