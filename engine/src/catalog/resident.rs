//! The memory limit of the catalog's schedules: [`Cell`], one file version's
//! compiled state that shards read without locks, and [`Residency`], the
//! compile thread's account of every schedule the catalog compiled and that
//! is still in memory, which evicts the least recently used unused ones to
//! make room for a new one.
//!
//! A schedule is *in use* while anyone besides the catalog holds its `Arc`
//! (a session, a request being answered): in-use schedules are never
//! evicted, and sessions keep theirs (and the file's map) until they end.
//! An evicted schedule leaves its cell empty, so the next request compiles
//! the file again. A schedule that left the catalog (evicted while someone
//! picked it up, or its file changed or disappeared) is still counted while
//! a session holds it, since its memory is still taken.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use cadence_hinting::{FileSchedule, ScheduledPacket, Segment, TrackSchedule};

use super::CatalogError;

/// A compile's outcome as lookups see it.
pub type Compiled = Result<Arc<FileSchedule>, CatalogError>;

/// How long a schedule just compiled is kept from eviction until a shard
/// has looked it up (the request that asked for it is being resumed).
pub const PICKUP_GRACE: Duration = Duration::from_secs(10);

/// Heap bytes of `file`'s schedule: per track, the packet, segment and
/// arena vectors (by capacity) and the SDP text, plus the session SDP. The
/// memory-mapped file is not counted (page cache, shared with the kernel).
pub fn schedule_heap_bytes(file: &FileSchedule) -> u64 {
    let track = |t: &TrackSchedule| {
        std::mem::size_of::<TrackSchedule>()
            + t.packets.capacity() * std::mem::size_of::<ScheduledPacket>()
            + t.segments.capacity() * std::mem::size_of::<Segment>()
            + t.arena.capacity()
            + t.sdp.capacity()
    };
    let total = std::mem::size_of::<FileSchedule>()
        + file.session_sdp.as_ref().map_or(0, String::capacity)
        + file.tracks.iter().map(track).sum::<usize>();
    total as u64
}

/// One file version's compiled state: empty (compile on next use), or a
/// compile's outcome. Read by shards without locks.
#[derive(Debug, Default)]
pub struct Cell {
    slot: ArcSwapOption<Compiled>,
    last_used: AtomicU64,
    picked_up: AtomicBool,
}

impl Cell {
    /// The outcome, for a shard: marks the cell used at `clock`'s next
    /// tick (least recently used order) and picked up. `None` when empty.
    pub fn lookup(&self, clock: &AtomicU64) -> Option<Compiled> {
        let guard = self.slot.load();
        let compiled = guard.as_ref()?;
        self.last_used
            .store(clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        self.picked_up.store(true, Ordering::Relaxed);
        Some(Compiled::clone(compiled))
    }

    /// The outcome without marking the cell used.
    pub fn get(&self) -> Option<Compiled> {
        self.slot.load().as_ref().map(|c| Compiled::clone(c))
    }

    /// Stores an outcome (not yet picked up).
    pub fn set(&self, compiled: Compiled) {
        self.picked_up.store(false, Ordering::Relaxed);
        self.slot.store(Some(Arc::new(compiled)));
    }

    /// Empties the cell: the next lookup answers pending.
    pub fn clear(&self) {
        self.slot.store(None);
    }

    /// Empties the cell if it still holds `file` (not a newer compile).
    fn clear_if(&self, file: &Weak<FileSchedule>) {
        let holds = matches!(self.slot.load().as_deref(), Some(Ok(f)) if std::ptr::eq(Arc::as_ptr(f), file.as_ptr()));
        if holds {
            self.clear();
        }
    }
}

/// Figures of the schedule memory, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of compiled schedules in memory (in the catalog, or out of it
    /// but still played), see [`schedule_heap_bytes`].
    pub held_bytes: u64,
    /// The limit, bytes (0: none).
    pub limit_bytes: u64,
    /// Schedules evicted to make room, since start.
    pub evictions: u64,
    /// Compiles refused because nothing more could be evicted, since start.
    pub refusals: u64,
}

/// Why a schedule cannot be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// Bytes of the new schedule.
    pub need: u64,
    /// The limit, bytes.
    pub limit: u64,
    /// Bytes held by schedules that cannot be evicted (in use, or just
    /// compiled and not yet picked up).
    pub pinned: u64,
}

impl Shortfall {
    /// The catalog error for `path`.
    pub fn error(&self, path: &str) -> CatalogError {
        CatalogError::NoScheduleMemory {
            path: path.to_string(),
            need: self.need,
            limit: self.limit,
            pinned: self.pinned,
        }
    }
}

#[derive(Debug)]
struct Held {
    cell: Arc<Cell>,
    path: String,
    file: Weak<FileSchedule>,
    bytes: u64,
    admitted: Instant,
    /// Still the cell's schedule (false once evicted or retired).
    attached: bool,
}

impl Held {
    fn alive(&self) -> bool {
        self.file.strong_count() > 0
    }

    /// Evictable: in the catalog, held by nobody else, and picked up (or
    /// given up on after [`PICKUP_GRACE`]).
    fn evictable(&self, now: Instant) -> bool {
        self.attached
            && self.file.strong_count() == 1
            && (self.cell.picked_up.load(Ordering::Relaxed)
                || now.saturating_duration_since(self.admitted) >= PICKUP_GRACE)
    }
}

/// The account of the catalog's schedules against a byte limit. Lives on
/// the compile side (behind the catalog's compile lock), never on a shard.
#[derive(Debug, Default)]
pub struct Residency {
    limit: u64,
    held: Vec<Held>,
    refused: Vec<(Arc<Cell>, u64)>,
    evictions: u64,
    refusals: u64,
}

impl Residency {
    /// An empty account with `limit` bytes (0: no limit).
    pub fn new(limit: u64) -> Self {
        Residency {
            limit,
            ..Residency::default()
        }
    }

    /// Changes the limit; [`Residency::maintain`] then evicts down to it.
    pub fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// The figures now.
    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            held_bytes: self.held_bytes(),
            limit_bytes: self.limit,
            evictions: self.evictions,
            refusals: self.refusals,
        }
    }

    fn held_bytes(&self) -> u64 {
        self.held
            .iter()
            .filter(|h| h.alive())
            .map(|h| h.bytes)
            .sum()
    }

    /// Forgets schedules no longer in memory, and detaches those whose cell
    /// left the catalog (`is_current(path, cell)` false: file removed or
    /// changed).
    fn sweep(&mut self, is_current: &dyn Fn(&str, &Arc<Cell>) -> bool) {
        for h in &mut self.held {
            if h.attached && !is_current(&h.path, &h.cell) {
                h.cell.clear_if(&h.file);
                h.attached = false;
            }
        }
        self.held.retain(|h| h.attached || h.alive());
    }

    /// Evicts least recently used evictable schedules until `need` more
    /// bytes fit; evicts nothing when they cannot fit even so.
    fn make_room(&mut self, need: u64, now: Instant) -> Result<(), Shortfall> {
        if self.limit == 0 {
            return Ok(());
        }
        let held = self.held_bytes();
        if held.saturating_add(need) <= self.limit {
            return Ok(());
        }
        let mut candidates: Vec<usize> = (0..self.held.len())
            .filter(|&i| self.held[i].evictable(now))
            .collect();
        let evictable: u64 = candidates.iter().map(|&i| self.held[i].bytes).sum();
        let pinned = held - evictable;
        if pinned.saturating_add(need) > self.limit {
            return Err(Shortfall {
                need,
                limit: self.limit,
                pinned,
            });
        }
        candidates.sort_by_key(|&i| self.held[i].cell.last_used.load(Ordering::Relaxed));
        let mut now_held = held;
        for i in candidates {
            if now_held.saturating_add(need) <= self.limit {
                break;
            }
            let h = &mut self.held[i];
            h.cell.clear_if(&h.file);
            h.attached = false;
            now_held -= h.bytes;
            self.evictions += 1;
            tracing::debug!(path = %h.path, bytes = h.bytes, "schedule evicted");
        }
        self.held.retain(|h| h.attached || h.alive());
        Ok(())
    }

    /// Makes room for `file` (`bytes` of schedule, compiled for `cell` of
    /// catalog path `path`) and counts it. Errors: [`Shortfall`] when the
    /// schedules that cannot be evicted leave too little room; nothing is
    /// evicted then, and the refusal is remembered until it would fit.
    pub fn admit(
        &mut self,
        path: &str,
        cell: &Arc<Cell>,
        file: &Arc<FileSchedule>,
        bytes: u64,
        now: Instant,
        is_current: &dyn Fn(&str, &Arc<Cell>) -> bool,
    ) -> Result<(), Shortfall> {
        self.sweep(is_current);
        if let Err(s) = self.make_room(bytes, now) {
            self.refusals += 1;
            self.refused.retain(|(c, _)| !Arc::ptr_eq(c, cell));
            self.refused.push((cell.clone(), bytes));
            return Err(s);
        }
        self.held.push(Held {
            cell: cell.clone(),
            path: path.to_string(),
            file: Arc::downgrade(file),
            bytes,
            admitted: now,
            attached: true,
        });
        Ok(())
    }

    /// Housekeeping, run by the compile thread about every second: forgets
    /// freed schedules, evicts down to a lowered limit, and empties the
    /// cells of refused files that would now fit, so that their next
    /// request compiles them again.
    pub fn maintain(&mut self, now: Instant, is_current: &dyn Fn(&str, &Arc<Cell>) -> bool) {
        self.sweep(is_current);
        if self.limit > 0 && self.held_bytes() > self.limit {
            // Room for nothing more: evict down to the limit (what is in
            // use stays).
            self.evict_down_to_limit(now);
        }
        if self.refused.is_empty() {
            return;
        }
        let evictable: u64 = self
            .held
            .iter()
            .filter(|h| h.evictable(now))
            .map(|h| h.bytes)
            .sum();
        let pinned = self.held_bytes() - evictable;
        let limit = self.limit;
        self.refused.retain(|(cell, need)| {
            let fits = limit == 0 || pinned.saturating_add(*need) <= limit;
            if fits {
                cell.clear();
            }
            !fits
        });
    }

    fn evict_down_to_limit(&mut self, now: Instant) {
        let mut candidates: Vec<usize> = (0..self.held.len())
            .filter(|&i| self.held[i].evictable(now))
            .collect();
        candidates.sort_by_key(|&i| self.held[i].cell.last_used.load(Ordering::Relaxed));
        let mut held = self.held_bytes();
        for i in candidates {
            if held <= self.limit {
                break;
            }
            let h = &mut self.held[i];
            h.cell.clear_if(&h.file);
            h.attached = false;
            held -= h.bytes;
            self.evictions += 1;
        }
        self.held.retain(|h| h.attached || h.alive());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cadence_hinting::{PacketFlags, SegmentSource};

    fn schedule(packets: usize) -> Arc<FileSchedule> {
        let map = memmap2::MmapMut::map_anon(1)
            .and_then(|m| m.make_read_only())
            .expect("anonymous map");
        let packet = ScheduledPacket {
            send_time_us: 0,
            rtp_time: 0,
            first_segment: 0,
            payload_len: 1,
            segment_count: 1,
            payload_type: 96,
            flags: PacketFlags(0),
        };
        let track = TrackSchedule {
            track_id: 1,
            media_track_id: None,
            clock_rate: 90_000,
            max_packet_size: 1450,
            sdp: String::new(),
            packets: vec![packet; packets],
            segments: vec![
                Segment {
                    offset: 0,
                    len: 1,
                    source: SegmentSource::File,
                };
                1
            ],
            arena: Vec::new(),
            duration_us: 0,
            rtp_origin: 0,
        };
        Arc::new(FileSchedule {
            map: Arc::new(map),
            session_sdp: None,
            tracks: vec![track],
            duration_us: 0,
        })
    }

    struct Fixture {
        res: Residency,
        clock: AtomicU64,
        cells: Vec<Arc<Cell>>,
        bytes: u64,
    }

    impl Fixture {
        /// Four files of the same size and room for `fit` of them.
        fn new(fit: u64) -> Fixture {
            let bytes = schedule_heap_bytes(&schedule(1000));
            Fixture {
                res: Residency::new(fit * bytes + bytes / 2),
                clock: AtomicU64::new(1),
                cells: (0..4).map(|_| Arc::new(Cell::default())).collect(),
                bytes,
            }
        }

        /// Compiles file `i` as the catalog does; the caller keeps the
        /// schedule only when it plays it.
        fn compile(&mut self, i: usize, now: Instant) -> Compiled {
            let file = schedule(1000);
            let bytes = schedule_heap_bytes(&file);
            let cell = self.cells[i].clone();
            let r = match self
                .res
                .admit(&format!("f{i}"), &cell, &file, bytes, now, &|_, _| true)
            {
                Ok(()) => Ok(file),
                Err(s) => Err(s.error(&format!("f{i}"))),
            };
            cell.set(r.clone());
            r
        }

        fn lookup(&self, i: usize) -> Option<Compiled> {
            self.cells[i].lookup(&self.clock)
        }
    }

    #[test]
    fn heap_bytes_count_the_packets() {
        let small = schedule_heap_bytes(&schedule(10));
        let big = schedule_heap_bytes(&schedule(1010));
        assert_eq!(
            big - small,
            1000 * std::mem::size_of::<ScheduledPacket>() as u64
        );
    }

    #[test]
    fn least_recently_used_unused_schedules_are_evicted_first() {
        let now = Instant::now();
        let mut f = Fixture::new(2);
        f.compile(0, now).expect("room for 0");
        f.compile(1, now).expect("room for 1");
        // 0 is used after 1: 1 is the least recently used.
        assert!(f.lookup(1).is_some());
        assert!(f.lookup(0).is_some());
        assert_eq!(f.res.stats().held_bytes, 2 * f.bytes);
        f.compile(2, now).expect("room made for 2");
        let s = f.res.stats();
        assert_eq!((s.held_bytes, s.evictions), (2 * f.bytes, 1));
        assert!(f.cells[1].get().is_none(), "1 evicted");
        assert!(f.cells[0].get().is_some(), "0 kept");
        assert!(s.held_bytes <= s.limit_bytes);
    }

    #[test]
    fn schedules_in_use_are_never_evicted_and_refusals_clear_when_room_returns() {
        let now = Instant::now();
        let mut f = Fixture::new(2);
        // Two playing sessions hold 0 and 1.
        let a = f.compile(0, now).expect("0");
        let b = f.compile(1, now).expect("1");
        assert!(f.lookup(0).is_some() && f.lookup(1).is_some());
        let e = f.compile(2, now).expect_err("no room");
        assert!(
            matches!(e, CatalogError::NoScheduleMemory { pinned, .. } if pinned == 2 * f.bytes)
        );
        assert!(f.cells[0].get().is_some() && f.cells[1].get().is_some());
        let s = f.res.stats();
        assert_eq!((s.evictions, s.refusals), (0, 1));
        // The refusal stays while nothing can go...
        f.res.maintain(now, &|_, _| true);
        assert!(matches!(f.lookup(2), Some(Err(_))));
        // ...and clears once a session ends.
        drop(b);
        f.res.maintain(now, &|_, _| true);
        assert!(f.lookup(2).is_none(), "pending again");
        f.compile(2, now).expect("room now");
        assert!(f.cells[1].get().is_none(), "1 evicted");
        assert_eq!(f.res.stats().evictions, 1);
        drop(a);
    }

    #[test]
    fn a_schedule_not_yet_picked_up_is_kept_for_the_grace() {
        let now = Instant::now();
        let mut f = Fixture::new(1);
        f.compile(0, now).expect("0");
        // Nobody looked 0 up yet: 1 cannot take its place...
        assert!(f.compile(1, now).is_err());
        // ...until the grace is over.
        let later = now + PICKUP_GRACE;
        f.cells[1].clear();
        f.compile(1, later).expect("0 given up on");
        assert!(f.cells[0].get().is_none());
    }

    #[test]
    fn retired_schedules_count_while_played_and_a_lowered_limit_evicts() {
        let now = Instant::now();
        let mut f = Fixture::new(3);
        let playing = f.compile(0, now).expect("0");
        f.compile(1, now).expect("1");
        f.compile(2, now).expect("2");
        for i in 0..3 {
            f.lookup(i);
        }
        // File 0 changed on disk: its cell leaves the catalog, but a session
        // still plays its schedule.
        let cell0 = f.cells[0].clone();
        f.res
            .maintain(now, &|_, c: &Arc<Cell>| !Arc::ptr_eq(c, &cell0));
        assert!(f.cells[0].get().is_none());
        assert_eq!(f.res.stats().held_bytes, 3 * f.bytes);
        drop(playing);
        f.res.maintain(now, &|_, _| true);
        assert_eq!(f.res.stats().held_bytes, 2 * f.bytes);
        // Lowered to one file: the least recently used goes.
        f.lookup(1);
        f.res.set_limit(f.bytes + 1);
        f.res.maintain(now, &|_, _| true);
        assert_eq!(f.res.stats().held_bytes, f.bytes);
        assert!(f.cells[2].get().is_none() && f.cells[1].get().is_some());
    }
}
