//! Fuzz target `access_files`: see `cadence_fuzz_harness::access_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::access_files(data));
