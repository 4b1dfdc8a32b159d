//! Fuzz target `authorization`: see `cadence_fuzz_harness::authorization`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::authorization(data));
