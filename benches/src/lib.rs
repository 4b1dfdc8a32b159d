//! Cadence benchmarks.
