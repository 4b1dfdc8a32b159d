//! Heap held per playing session: 6,000 two-track UDP sessions of the
//! bundled sample (DESCRIBE, SETUP ×2, PLAY with a realistic User-Agent,
//! each from its own RTSP connection) through the production endpoint, with
//! a counting global allocator (live bytes, per thread, so the test harness
//! does not interfere). The capacity benchmark's
//! `rss_anon_per_session_bytes` is this plus the connection's state in the
//! shard and the allocator's own overhead.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use cadence_engine::catalog::{Catalog, FsCatalog};
use cadence_engine::endpoint::{request_ctx, Endpoint, EndpointConfig};
use cadence_engine::pipeline::Pipeline;
use cadence_engine::session::ConnId;

mod endpoint_session;
use endpoint_session::{play_sample, Play};

struct Counting;

/// Allocation sizes tracked one by one in the histogram (larger ones share
/// the last bucket).
const SIZES: usize = 1024;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static HISTOGRAM: [Cell<i64>; SIZES] = const { [const { Cell::new(0) }; SIZES] };
}

fn count(size: usize, delta: i64) {
    let _ = LIVE.try_with(|c| c.set(c.get() + delta * size as i64));
    let _ = HISTOGRAM.try_with(|h| {
        let b = &h[size.min(SIZES - 1)];
        b.set(b.get() + delta)
    });
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> i64 {
    LIVE.with(|c| c.get())
}

fn histogram() -> Vec<i64> {
    HISTOGRAM.with(|h| h.iter().map(Cell::get).collect())
}

/// What VLC sends (the most common player in the access logs).
const USER_AGENT: &str = "LibVLC/3.0.20 (LIVE555 Streaming Media v2023.11.07)";

/// Plays session `i` (DESCRIBE, SETUP of both tracks, PLAY) on its own
/// connection at shard clock `now_us`.
fn play_one(endpoint: &mut Endpoint, i: u32, now_us: u64) {
    let ctx = request_ctx(
        ConnId {
            index: i,
            generation: 1,
        },
        SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 40000 + (i % 1000) as u16)),
        SocketAddr::from(([127, 0, 0, 1], 8554)),
        now_us,
        1_700_000_000_000_000 + now_us,
        false,
    );
    play_sample(
        endpoint,
        &ctx,
        Play {
            i,
            describe: true,
            every: &[("User-Agent", USER_AGENT.into())],
            play: vec![("Range", "npt=0.000-".into())],
        },
    );
}

/// Live heap bytes per session, and the allocations (size → count per
/// session, ×1000) that they are made of.
fn measure(sessions: u32) -> (f64, Vec<(usize, f64)>) {
    let media = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../media");
    let catalog = FsCatalog::scan(&media).expect("bundled media");
    catalog.compile("sample.mp4").expect("compiles");
    let mut endpoint = Endpoint::new(
        EndpointConfig {
            tick_us: 1000,
            ..EndpointConfig::default()
        },
        Arc::new(catalog),
        Pipeline::new(),
        1,
        0,
    );
    // The first session fills the shard's caches (the description, the
    // toffset table): what the others cost is what stays per session.
    play_one(&mut endpoint, 0, 0);
    let mut sink = cadence_engine::sim::Recorder::default();
    endpoint.tick(1000, 1000, &mut sink);
    let before = live_bytes();
    let hist_before = histogram();
    for i in 1..=sessions {
        play_one(&mut endpoint, i, 1000 + u64::from(i));
    }
    let after = live_bytes();
    let hist_after = histogram();
    assert_eq!(endpoint.controller().len(), sessions as usize + 1);
    let per = (after - before) as f64 / f64::from(sessions);
    let by_size = hist_before
        .iter()
        .zip(&hist_after)
        .enumerate()
        .filter(|(_, (b, a))| **a != **b)
        .map(|(size, (b, a))| (size, (a - b) as f64 / f64::from(sessions)))
        .filter(|(_, n)| n.abs() >= 0.01)
        .collect();
    drop(endpoint);
    (per, by_size)
}

/// The heap a playing two-track UDP session holds in the endpoint (the
/// session, its tracks, the controller's and the pacer's indexes of it,
/// timers, with the tables' slack at 6,000 sessions): at most 1,000 bytes.
/// Measured 852 (main before this test: 1,157, of which 413 in per-session
/// strings and a per-connection key list).
#[test]
fn playing_session_heap_stays_small() {
    let sessions = 6000;
    let (per, by_size) = measure(sessions);
    println!("live heap per playing session: {per:.0} bytes");
    for (size, n) in &by_size {
        println!("  allocations of {size:>4} B: {n:+.2} per session");
    }
    println!(
        "size_of: Session {} B, TrackStream {} B, SessionMeta {} B, Conn {} B",
        std::mem::size_of::<cadence_engine::session::Session>(),
        std::mem::size_of::<cadence_engine::session::TrackStream>(),
        std::mem::size_of::<cadence_engine::session::SessionMeta>(),
        std::mem::size_of::<cadence_engine::shard::conn::Conn>(),
    );
    assert!(per > 0.0, "a session holds some heap");
    assert!(
        per <= 1000.0,
        "{per:.0} bytes of heap per playing session (bound 1,000)"
    );
}
