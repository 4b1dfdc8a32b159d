//! Fuzz target `rtcp`: see `cadence_fuzz_harness::rtcp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::rtcp(data));
