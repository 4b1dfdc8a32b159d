//! Fuzz target `schedule_cache`: see `cadence_fuzz_harness::schedule_cache`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::schedule_cache(data));
