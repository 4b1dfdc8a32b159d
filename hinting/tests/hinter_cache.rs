//! The schedule cache for un-hinted files (`--hint-cache`): a second build
//! of the same file loads the saved schedule, which equals a fresh one; a
//! damaged entry is rebuilt.

mod hinter_common;

use std::fs::File;
use std::sync::Arc;

use cadence_hinting::packetize::cache::schedule_plain_cached;
use cadence_hinting::packetize::plain::schedule_plain;
use hinter_common::*;

fn map(name: &str) -> Arc<memmap2::Mmap> {
    let file = File::open(fixture(name)).expect("open");
    // SAFETY: fixtures are not modified while mapped.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
    Arc::new(map)
}

#[test]
fn cached_schedule_equals_fresh_and_damage_rebuilds() {
    let dir = scratch("cache");
    let name = "h264_bframes_plain.mp4";
    let fresh = schedule_plain(map(name), 1450).expect("fresh");
    let built = schedule_plain_cached(map(name), 1450, &dir).expect("first call builds");
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(entries.len(), 1, "one cache entry: {entries:?}");
    let entry = &entries[0];

    // Mark the saved SDP (same length) to tell a load from a rebuild.
    let bytes = std::fs::read(entry).expect("read entry");
    let at = bytes
        .windows(5)
        .position(|w| w == b"b=AS:")
        .expect("SDP in the entry");
    let mut marked = bytes.clone();
    marked[at..at + 5].copy_from_slice(b"b=XS:");
    std::fs::write(entry, &marked).expect("write");
    let loaded = schedule_plain_cached(map(name), 1450, &dir).expect("second call loads");
    assert!(
        loaded
            .session_sdp
            .as_deref()
            .unwrap_or_default()
            .contains("b=XS:")
            || loaded.tracks.iter().any(|t| t.sdp.contains("b=XS:")),
        "second call read the entry"
    );
    std::fs::write(entry, &bytes).expect("restore");
    let loaded = schedule_plain_cached(map(name), 1450, &dir).expect("loads");
    assert_eq!(loaded.session_sdp, fresh.session_sdp);
    assert_eq!(loaded.duration_us, fresh.duration_us);
    for (set, file) in [(&built, &built.map), (&loaded, &loaded.map)] {
        assert_eq!(set.tracks.len(), fresh.tracks.len());
        for (a, b) in fresh.tracks.iter().zip(&set.tracks) {
            assert_same_track(a, &fresh.map, b, file);
        }
    }

    // A truncated entry is a miss: rebuilt and rewritten whole.
    std::fs::write(entry, &bytes[..bytes.len() / 2]).expect("truncate");
    let rebuilt = schedule_plain_cached(map(name), 1450, &dir).expect("rebuilds");
    assert_eq!(rebuilt.tracks.len(), fresh.tracks.len());
    assert_eq!(
        std::fs::read(entry).expect("entry"),
        bytes,
        "entry rewritten"
    );

    // Another MTU is another entry.
    let small = schedule_plain_cached(map(name), 600, &dir).expect("mtu 600");
    assert!(small.tracks[0].packets.len() > fresh.tracks[0].packets.len());
    assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 2);
}
