//! Fuzz target `plain_schedule`: see `cadence_fuzz_harness::plain_schedule`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::plain_schedule(data));
