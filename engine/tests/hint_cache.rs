//! `--hint-cache DIR`: the schedule of an un-hinted file, built on first use,
//! is saved and read back by the next server run, which streams from it.

mod common;

use common::media;
use common::server::{Server, TempDir};
use common::tools::{ffmpeg_decode, source_frames, Lower};

#[test]
fn plain_file_schedule_survives_a_restart() {
    let plain = media::Source {
        name: "plain.mp4".into(),
        path: media::fixture("h264_aac_plain.mp4"),
        fps: 25.0,
    };
    let cache = TempDir::new("hint-cache");
    let dir = cache.path().to_str().expect("utf-8 path").to_string();
    let expected = source_frames(&plain.path, 0.0, 3.0);
    for run in 0..2 {
        let server = Server::start_with(std::slice::from_ref(&plain), &["--hint-cache", &dir]);
        let decode = ffmpeg_decode(&server.url("plain.mp4"), Lower::Udp, None, 3.0);
        assert!(decode.errors.is_empty(), "run {run}: {:?}", decode.errors);
        assert!(
            decode.frames.abs_diff(expected) <= 2,
            "run {run}: {} frames, {} expected",
            decode.frames,
            expected
        );
        let log = server.log_text();
        let entries = std::fs::read_dir(cache.path()).expect("cache dir").count();
        assert_eq!(entries, 1, "one cache entry after run {run}");
        if run == 0 {
            assert!(
                log.contains("schedule saved to the hint cache"),
                "{}",
                server.log_tail(20)
            );
        } else {
            assert!(
                log.contains("schedule from the hint cache"),
                "{}",
                server.log_tail(20)
            );
        }
    }
}
