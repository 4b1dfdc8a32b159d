//! The steady state of packet emission makes no heap allocation: 1,000
//! playing sessions on the bundled sample, paced through the production
//! pacer into the production UDP send-slot pool, with a counting global
//! allocator (per thread, so the test harness does not interfere).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use cadence_engine::catalog::FsCatalog;
use cadence_engine::endpoint::{request_ctx, Endpoint, EndpointConfig};
use cadence_engine::pacer::{OutPacket, PacketSink};
use cadence_engine::pipeline::Pipeline;
use cadence_engine::session::{ConnId, TrackTransport};
use cadence_engine::shard::slots::{segment_iovecs, SlotPool};

mod endpoint_session;
use endpoint_session::{play_sample, Play};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// Fills production send slots exactly as the shard does, then completes
/// them at once (the kernel's part is what this test leaves out).
struct SlotSink {
    pool: SlotPool,
    sent: u64,
    iovecs: u64,
}

impl PacketSink for SlotSink {
    fn emit(&mut self, p: &OutPacket<'_>) -> bool {
        let TrackTransport::Udp { rtp, .. } = *p.transport else {
            return true;
        };
        let segments = p.track.segments_of(p.packet);
        let Some((index, msg)) = self.pool.fill(rtp, p.header, |iov| {
            segment_iovecs(p.file, p.track, segments, iov, 0)
        }) else {
            return false;
        };
        // SAFETY: `msg` points into the pool's slot, valid until released.
        self.iovecs += unsafe { (*msg).msg_iovlen } as u64;
        self.pool.release(index);
        self.sent += 1;
        true
    }
}

/// An endpoint over the bundled sample with `sessions` sessions of both
/// tracks, session `i` played with the extra PLAY headers `play(i)`.
fn playing_endpoint(sessions: u32, play: impl Fn(u32) -> Vec<(&'static str, String)>) -> Endpoint {
    let media = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../media");
    let catalog = FsCatalog::scan(&media).expect("bundled media");
    use cadence_engine::catalog::Catalog;
    catalog.compile("sample.mp4").expect("compiles");
    let mut endpoint = Endpoint::new(
        EndpointConfig {
            tick_us: 1000,
            // A send-ahead (off by default), so that its path (the wheel's
            // take_ahead and overdue list) is covered too.
            send_ahead_us: 2_000,
            ..EndpointConfig::default()
        },
        Arc::new(catalog),
        Pipeline::new(),
        1,
        0,
    );
    for i in 0..sessions {
        let ctx = request_ctx(
            ConnId {
                index: i,
                generation: 1,
            },
            SocketAddr::from(([127, 0, 0, 1], 20000)),
            SocketAddr::from(([127, 0, 0, 1], 8554)),
            0,
            0,
            false,
        );
        play_sample(
            &mut endpoint,
            &ctx,
            Play {
                i,
                describe: false,
                every: &[],
                play: play(i),
            },
        );
    }
    endpoint
}

#[test]
fn steady_state_pacing_does_not_allocate() {
    let sessions = 1000;
    let mut endpoint = playing_endpoint(sessions, |_| Vec::new());
    let mut sink = SlotSink {
        pool: SlotPool::new(8192, false),
        sent: 0,
        iovecs: 0,
    };
    // Warm up one simulated second (wheel slot vectors reach their size).
    let mut now = 0;
    while now < 1_000_000 {
        endpoint.tick(now, now, &mut sink);
        now += 1000;
    }
    let before = allocations();
    let sent_before = sink.sent;
    // Then 5 simulated seconds of 1 ms ticks.
    while now < 6_000_000 {
        endpoint.tick(now, now, &mut sink);
        now += 1000;
    }
    let allocated = allocations() - before;
    let sent = sink.sent - sent_before;
    // ~33 packets/s per session: about 165,000 packets in 5 s.
    assert!(sent > 150_000, "only {sent} packets paced");
    assert!(
        sink.iovecs >= 2 * sink.sent,
        "every packet has a header and payload iovecs"
    );
    assert_eq!(
        allocated, 0,
        "{allocated} heap allocations while pacing {sent} packets"
    );
    println!("paced {sent} packets from {sessions} sessions with 0 heap allocations");
}

/// The slow path (trick play forwards and backwards, and Speed 2) allocates
/// nothing either.
#[test]
fn trick_play_and_speed_pacing_do_not_allocate() {
    let sessions = 900;
    let mut endpoint = playing_endpoint(sessions, |i| match i % 3 {
        0 => vec![("Scale", "2".into()), ("Range", "npt=0-".into())],
        1 => vec![("Scale", "-2".into()), ("Range", "npt=19-0".into())],
        _ => vec![("Speed", "2".into()), ("Range", "npt=0-".into())],
    });
    let mut sink = SlotSink {
        pool: SlotPool::new(8192, false),
        sent: 0,
        iovecs: 0,
    };
    let mut now = 0;
    while now < 1_000_000 {
        endpoint.tick(now, now, &mut sink);
        now += 1000;
    }
    let before = allocations();
    let sent_before = sink.sent;
    // 5 simulated seconds: every session is still playing (the 20 s sample
    // lasts 10 s at Scale 2, 9 s backwards from 18 s, 10 s at Speed 2).
    while now < 6_000_000 {
        endpoint.tick(now, now, &mut sink);
        now += 1000;
    }
    let allocated = allocations() - before;
    let sent = sink.sent - sent_before;
    assert_eq!(endpoint.controller().len(), sessions as usize);
    // Speed 2: ~66 packets/s per session; trick play: a key frame a second.
    assert!(sent > 100_000, "only {sent} packets paced");
    assert_eq!(
        allocated, 0,
        "{allocated} heap allocations while pacing {sent} packets"
    );
    println!("paced {sent} packets from {sessions} trick-play and Speed 2 sessions with 0 heap allocations");
}
