//! Fuzz target `proxy_header`: see `cadence_fuzz_harness::proxy_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::proxy_header(data));
