//! A hashed timing wheel of fixed-width slots, holding the next wake-up of
//! every playing session. Each slot is an intrusive singly linked list of
//! nodes from one pool with a free list, so insert and expiry are O(1) per
//! entry and never allocate once the pool has reached the peak number of
//! scheduled entries (one per playing session, plus stale ones).

/// One wheel entry: a session's slab key and the session epoch at insertion
/// (a stale epoch means the session was paused, seeked or removed since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Slab key of the session.
    pub key: u32,
    /// Session epoch when scheduled.
    pub epoch: u32,
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    entry: Entry,
    next: u32,
}

/// The wheel: `heads.len()` slots of `tick_us` µs each. Entries due beyond the
/// horizon (`slots × tick`) are parked in the last slot of the horizon and
/// simply rescheduled when they come up early. Entries due before the next
/// slot to expire (already past, or inside empty slots passed ahead of time by
/// [`Wheel::take_ahead`]) wait on an overdue list that the next
/// [`Wheel::expire`] drains first.
#[derive(Debug)]
pub struct Wheel {
    heads: Vec<u32>,
    overdue: u32,
    nodes: Vec<Node>,
    free: u32,
    tick_us: u64,
    /// Absolute tick number of the next slot to expire.
    cursor: u64,
    len: usize,
}

impl Wheel {
    /// A wheel of `slots` slots (rounded up to a power of two, at least 2) of
    /// `tick_us` µs each (at least 1), starting at shard clock `now_us`.
    pub fn new(slots: usize, tick_us: u64, now_us: u64) -> Self {
        let n = slots.max(2).next_power_of_two();
        let tick_us = tick_us.max(1);
        Wheel {
            heads: vec![NIL; n],
            overdue: NIL,
            nodes: Vec::new(),
            free: NIL,
            tick_us,
            cursor: now_us / tick_us,
            len: 0,
        }
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slot width in µs.
    pub fn tick_us(&self) -> u64 {
        self.tick_us
    }

    /// Shard clock (µs) at which the next slot to expire begins: entries due
    /// before it are overdue.
    pub fn next_slot_us(&self) -> u64 {
        self.cursor * self.tick_us
    }

    /// Schedules `entry` to expire at shard clock `due_us` (a time before
    /// [`Wheel::next_slot_us`] expires on the next [`Wheel::expire`]).
    pub fn insert(&mut self, due_us: u64, entry: Entry) {
        let mask = self.heads.len() as u64 - 1;
        let tick = (due_us / self.tick_us).min(self.cursor + mask);
        let head = if tick < self.cursor {
            &mut self.overdue
        } else {
            &mut self.heads[(tick & mask) as usize]
        };
        let node = Node { entry, next: *head };
        let index = if self.free != NIL {
            let i = self.free;
            self.free = self.nodes[i as usize].next;
            self.nodes[i as usize] = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        if tick < self.cursor {
            self.overdue = index;
        } else {
            self.heads[(tick & mask) as usize] = index;
        }
        self.len += 1;
    }

    /// Moves the entries of list `head` into `out` and frees their nodes.
    fn drain(&mut self, mut i: u32, out: &mut Vec<Entry>) {
        while i != NIL {
            let node = self.nodes[i as usize];
            out.push(node.entry);
            self.nodes[i as usize].next = self.free;
            self.free = i;
            self.len -= 1;
            i = node.next;
        }
    }

    /// Takes one entry of the next slot to expire, ahead of its time, as
    /// long as that slot ends by `limit_us`: the send-ahead of a light tick,
    /// one session at a time. Empty slots on the way are passed (entries
    /// later scheduled into them are overdue). Returns the entry and the end
    /// of its slot (µs), or `None`.
    pub fn take_ahead(&mut self, limit_us: u64) -> Option<(Entry, u64)> {
        let mask = self.heads.len() as u64 - 1;
        // Never more than one revolution, nor past the last entry.
        for _ in 0..=mask {
            let end = (self.cursor + 1) * self.tick_us;
            if end > limit_us || self.len == 0 {
                return None;
            }
            let slot = (self.cursor & mask) as usize;
            let i = self.heads[slot];
            if i != NIL {
                let node = self.nodes[i as usize];
                self.heads[slot] = node.next;
                self.nodes[i as usize].next = self.free;
                self.free = i;
                self.len -= 1;
                return Some((node.entry, end));
            }
            self.cursor += 1;
        }
        None
    }

    /// Moves every entry of every slot that `now_us` has reached (entries due
    /// before the end of the current slot) into `out`, appending.
    pub fn expire(&mut self, now_us: u64, out: &mut Vec<Entry>) {
        let mask = self.heads.len() as u64 - 1;
        let overdue = std::mem::replace(&mut self.overdue, NIL);
        self.drain(overdue, out);
        let now_tick = now_us / self.tick_us;
        // Never walk more than one revolution.
        let last = now_tick.min(self.cursor + mask);
        while self.cursor <= last {
            let slot = (self.cursor & mask) as usize;
            let head = std::mem::replace(&mut self.heads[slot], NIL);
            self.drain(head, out);
            self.cursor += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: u32) -> Entry {
        Entry { key, epoch: 0 }
    }

    #[test]
    fn expires_in_time_order_and_parks_far_entries() {
        let mut w = Wheel::new(8, 1000, 0);
        w.insert(500, e(1));
        w.insert(2500, e(2));
        w.insert(1_000_000, e(3)); // beyond the 8 ms horizon: parked at 7 ms
        w.insert(0, e(4));
        assert_eq!(w.len(), 4);
        let mut out = Vec::new();
        w.expire(999, &mut out);
        out.sort_by_key(|e| e.key);
        assert_eq!(out, vec![e(1), e(4)]);
        out.clear();
        // A slot expires as soon as the clock enters it (the pacer sends up to
        // one slot early rather than late).
        w.expire(1999, &mut out);
        assert!(out.is_empty());
        w.expire(2000, &mut out);
        assert_eq!(out, vec![e(2)]);
        out.clear();
        w.expire(7000, &mut out);
        assert_eq!(out, vec![e(3)]);
        assert!(w.is_empty());
    }

    #[test]
    fn late_expiry_catches_up_once_around() {
        let mut w = Wheel::new(4, 10, 0);
        w.insert(15, e(1));
        w.insert(35, e(2));
        let mut out = Vec::new();
        w.expire(10_000, &mut out);
        assert_eq!(out.len(), 2);
        // After a long stall, new entries land relative to the new cursor.
        w.insert(10_005, e(3));
        out.clear();
        w.expire(10_010, &mut out);
        assert_eq!(out, vec![e(3)]);
    }

    #[test]
    fn take_ahead_pops_entries_early_within_the_limit_and_later_inserts_stay_overdue() {
        let mut w = Wheel::new(16, 1000, 0);
        w.insert(1500, e(1));
        w.insert(1600, e(2));
        w.insert(3500, e(3));
        let mut out = Vec::new();
        w.expire(999, &mut out);
        assert!(out.is_empty());
        // Slot 1 ends at 2000: within a limit of 2500, one entry at a time.
        let (a, end) = w.take_ahead(2500).expect("slot 1");
        assert_eq!(end, 2000);
        let (b, _) = w.take_ahead(2500).expect("slot 1 again");
        let mut keys = [a.key, b.key];
        keys.sort();
        assert_eq!(keys, [1, 2]);
        // Slot 2 is empty and ends at 3000 > 2500: nothing more.
        assert_eq!(w.take_ahead(2500), None);
        // With a later limit, the empty slot 2 is passed and slot 3 given.
        assert_eq!(w.take_ahead(4000), Some((e(3), 4000)));
        assert_eq!(w.next_slot_us(), 3000);
        // Due inside the passed slot 2: overdue, out on the next expire even
        // though the clock has not reached it.
        w.insert(2200, e(4));
        w.expire(1000, &mut out);
        assert_eq!(out, vec![e(4)]);
        assert!(w.is_empty());
    }
}
