//! The shard's connection table: RTSP connections by [`ConnId`] (slab index
//! plus generation), with the one lookup that checks the generation, so a
//! handle to a closed connection never reaches a new one in its slot, and the
//! list of connections whose write queue needs flushing.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use slab::Slab;

use super::conn::{Conn, WriteItem};
use super::ip_limit::{IpLimiter, IpSlot};
use crate::session::ConnId;

/// Highest slab index a connection may have (the io_uring `user_data`
/// encoding holds 24 bits).
pub const MAX_CONNECTIONS: usize = 1 << 24;

/// Why the sweep ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// It did not complete a request within `request_timeout` (answered 408).
    RequestTimeout,
    /// It holds no session and sent nothing for `idle_timeout`.
    Idle,
}

/// The connections of one shard.
pub struct ConnTable {
    slab: Slab<Conn>,
    next_generation: u32,
    dirty: Vec<ConnId>,
    limiter: Arc<IpLimiter>,
}

impl ConnTable {
    /// An empty table whose connections count against `limiter`.
    pub fn new(limiter: Arc<IpLimiter>) -> Self {
        ConnTable {
            slab: Slab::new(),
            next_generation: 1,
            dirty: Vec::with_capacity(256),
            limiter,
        }
    }

    /// The per-address limiter.
    pub fn limiter(&self) -> &IpLimiter {
        &self.limiter
    }

    /// Adds a connection accepted at `now_us` that holds `slot` and must
    /// send a complete request by `request_deadline_us`; `None` when the
    /// table is full (the socket is dropped, which closes it, and the slot is
    /// given back).
    pub fn insert(
        &mut self,
        fd: OwnedFd,
        peer: SocketAddr,
        local: SocketAddr,
        slot: Option<IpSlot>,
        now_us: u64,
        request_deadline_us: u64,
    ) -> Option<ConnId> {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let entry = self.slab.vacant_entry();
        let index = entry.key();
        if index >= MAX_CONNECTIONS {
            if let Some(slot) = slot {
                self.limiter.release(slot);
            }
            return None;
        }
        entry.insert(Conn::new(
            fd,
            generation,
            peer,
            local,
            slot,
            now_us,
            request_deadline_us,
        ));
        Some(ConnId {
            index: index as u32,
            generation,
        })
    }

    /// The connection `id`, if it is still the one that handle named.
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab
            .get(id.index as usize)
            .filter(|c| c.generation() == id.generation)
    }

    /// The connection `id`, mutably, if it is still the one that handle named.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slab
            .get_mut(id.index as usize)
            .filter(|c| c.generation() == id.generation)
    }

    /// Number of connections (including closing ones).
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// True when there is no connection.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Frees `id` once it is closing and has nothing in flight.
    pub fn free_if_done(&mut self, id: ConnId) {
        if self.get(id).is_some_and(|c| c.is_closing() && !c.busy()) {
            let mut c = self.slab.remove(id.index as usize);
            if let Some(slot) = c.take_ip_slot() {
                self.limiter.release(slot);
            }
        }
    }

    /// The connections to end at `now_us`: those past their request
    /// deadline, and those holding no session (`has_session`) idle for more
    /// than `idle_timeout_us` (a tunnel POST counts its GET's sessions).
    /// Appends to `out`.
    pub fn expired(
        &self,
        now_us: u64,
        idle_timeout_us: u64,
        has_session: impl Fn(ConnId) -> bool,
        out: &mut Vec<(ConnId, Expiry)>,
    ) {
        for (k, c) in self.slab.iter() {
            // Parked connections wait on us (a compile), draining ones close.
            if c.state() != super::conn::ConnState::Open {
                continue;
            }
            let id = ConnId {
                index: k as u32,
                generation: c.generation(),
            };
            if c.request_deadline_us().is_some_and(|d| now_us >= d) {
                out.push((id, Expiry::RequestTimeout));
            } else if now_us.saturating_sub(c.last_input_us()) > idle_timeout_us
                && !has_session(c.session_conn(id))
            {
                out.push((id, Expiry::Idle));
            }
        }
    }

    /// Up to `n` of the oldest open connections that hold no session, for
    /// shedding when the process runs out of descriptors.
    pub fn oldest_sessionless(
        &self,
        n: usize,
        has_session: impl Fn(ConnId) -> bool,
    ) -> Vec<ConnId> {
        let mut v: Vec<(u64, ConnId)> = self
            .slab
            .iter()
            .filter(|(_, c)| !c.is_closing())
            .filter_map(|(k, c)| {
                let id = ConnId {
                    index: k as u32,
                    generation: c.generation(),
                };
                (!has_session(c.session_conn(id))).then_some((c.accepted_us(), id))
            })
            .collect();
        v.sort_unstable_by_key(|(t, _)| *t);
        v.into_iter().take(n).map(|(_, id)| id).collect()
    }

    /// Removes connection `id` without closing it (its socket moves to
    /// another shard); `None` when it is gone or has operations in flight.
    pub fn take(&mut self, id: ConnId) -> Option<Conn> {
        if self.get(id)?.busy() {
            return None;
        }
        Some(self.slab.remove(id.index as usize))
    }

    /// Adds a connection that arrived from another shard (a tunnel POST).
    pub fn adopt(&mut self, mut conn: Conn) -> Option<ConnId> {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let entry = self.slab.vacant_entry();
        let index = entry.key();
        if index >= MAX_CONNECTIONS {
            if let Some(slot) = conn.take_ip_slot() {
                self.limiter.release(slot);
            }
            return None;
        }
        conn.set_generation(generation);
        entry.insert(conn);
        Some(ConnId {
            index: index as u32,
            generation,
        })
    }

    /// Queues `item` on `id` and lists it for flushing. False when the
    /// connection is gone or closing (the item is dropped).
    pub fn enqueue(&mut self, id: ConnId, item: WriteItem) -> bool {
        let Some(c) = self.get_mut(id) else {
            return false;
        };
        if !c.writable() {
            return false;
        }
        c.enqueue(item);
        self.mark_dirty(id);
        true
    }

    /// Queues the interleaved RTP `item` of `file` on `id`, pinning the file
    /// while it is queued. False when the connection is gone or closing.
    pub fn enqueue_rtp(
        &mut self,
        id: ConnId,
        item: WriteItem,
        file: &Arc<cadence_hinting::FileSchedule>,
    ) -> bool {
        match self.get_mut(id) {
            Some(c) if c.writable() => c.pin(file),
            _ => return false,
        }
        self.enqueue(id, item)
    }

    /// Lists `id` for flushing (once).
    pub fn mark_dirty(&mut self, id: ConnId) {
        if let Some(c) = self.get_mut(id) {
            if c.mark_dirty() {
                self.dirty.push(id);
            }
        }
    }

    /// True when connections wait to be flushed.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Takes the to-flush list (hand it back with [`ConnTable::restore_dirty`]
    /// to keep its allocation).
    pub fn take_dirty(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.dirty)
    }

    /// Gives back an emptied to-flush list, keeping entries added meanwhile.
    pub fn restore_dirty(&mut self, mut list: Vec<ConnId>) {
        list.clear();
        list.append(&mut self.dirty);
        self.dirty = list;
    }

    /// Ids of every connection, for shutdown.
    pub fn ids(&self) -> Vec<ConnId> {
        self.slab
            .iter()
            .map(|(k, c)| ConnId {
                index: k as u32,
                generation: c.generation(),
            })
            .collect()
    }
}
