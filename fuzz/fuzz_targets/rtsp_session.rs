//! Fuzz target `rtsp_session`: see `cadence_fuzz_harness::rtsp_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cadence_fuzz_harness::rtsp_session(data));
