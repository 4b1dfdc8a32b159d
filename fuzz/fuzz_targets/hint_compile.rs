//! Fuzz target `hint_compile`: see `cadence_fuzz_harness::hint_compile`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::hint_compile(data));
