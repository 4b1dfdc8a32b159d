//! Proof that steady-state packet emission makes zero heap allocations.
//!
//! 2,000 UDP sessions of the bundled sample play on a pacer whose packets go
//! into send slots exactly as the shard builds them (header + iovecs into a
//! preallocated `msghdr`). After a 5 s warm-up in simulated time, 10 s of
//! 1 ms ticks (about 660,000 packets) run under a counting global allocator;
//! the benchmark fails if any allocation, reallocation or free happened on
//! this thread. divan's `AllocProfiler` wraps the same allocator, so the
//! timed run also reports allocations per tick.
//!
//! `cargo bench -p cadence-benches --bench zero_alloc -- --test` runs the
//! check once (CI); without `--test` it also times the ticks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cadence_benches::rig::{repo_media_dir, PacerRig};
use divan::{AllocProfiler, Bencher};

/// Counts this thread's allocator calls, then forwards to the system allocator.
struct Counting;

thread_local! {
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread-local may already be gone at thread exit.
    let _ = CALLS.try_with(|c| c.set(c.get() + 1));
}

fn calls() -> u64 {
    CALLS.with(|c| c.get())
}

// SAFETY: every method forwards to `System` unchanged; counting touches only
// a const-initialized thread-local Cell, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count();
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: AllocProfiler<Counting> = AllocProfiler::new(Counting);

const SESSIONS: usize = 2000;

fn main() {
    assert_steady_state_does_not_allocate();
    divan::main();
}

fn assert_steady_state_does_not_allocate() {
    let mut rig = PacerRig::new(&repo_media_dir(), "sample.mp4", SESSIONS, 1000)
        .expect("bundled media/sample.mp4 plays");
    // Warm-up: every session started, wheel slots and scratch vectors sized.
    for _ in 0..5_000 {
        rig.tick();
    }
    // The counter must see allocations at all, or a 0 below proves nothing.
    let probe = calls();
    drop(std::hint::black_box(Vec::<u64>::with_capacity(16)));
    assert_eq!(
        calls() - probe,
        2,
        "the counting allocator missed an alloc/free pair"
    );
    let packets_before = rig.sink.packets;
    let before = calls();
    let mut finished = 0usize;
    for _ in 0..10_000 {
        rig.tick();
        finished += rig.finished();
    }
    let allocator_calls = calls() - before;
    let packets = rig.sink.packets - packets_before;
    assert_eq!(finished, 0, "the 20 s sample must outlast the 15 s window");
    assert!(
        packets > 500_000,
        "expected about 660,000 packets in 10 s of {SESSIONS} sessions, got {packets}"
    );
    assert_eq!(
        allocator_calls, 0,
        "steady-state emission of {packets} packets made {allocator_calls} allocator calls"
    );
    eprintln!(
        "zero_alloc: {packets} packets from {SESSIONS} sessions over 10,000 ticks: 0 allocator calls"
    );
}

/// One steady-state tick of 2,000 sessions (about 66 packets); divan's
/// allocation columns must read 0.
#[divan::bench(sample_count = 100, sample_size = 10)]
fn steady_tick_2000_sessions(b: Bencher) {
    let mut rig = PacerRig::new(&repo_media_dir(), "sample.mp4", SESSIONS, 1000)
        .expect("bundled media/sample.mp4 plays");
    for _ in 0..2_000 {
        rig.tick();
    }
    // 1000 samples of ticks stay well within the 20 s file after warm-up.
    b.bench_local(|| rig.tick());
}
