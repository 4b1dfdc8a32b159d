//! Fuzz target `http_tunnel`: see `cadence_fuzz_harness::http_tunnel`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::http_tunnel(data));
