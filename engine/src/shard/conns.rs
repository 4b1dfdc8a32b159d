//! The shard's connection table: RTSP connections by [`ConnId`] (slab index
//! plus generation), with the one lookup that checks the generation, so a
//! handle to a closed connection never reaches a new one in its slot, and the
//! list of connections whose write queue needs flushing.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use slab::Slab;

use super::conn::{Conn, WriteItem};
use crate::session::ConnId;

/// Highest slab index a connection may have (the io_uring `user_data`
/// encoding holds 24 bits).
pub const MAX_CONNECTIONS: usize = 1 << 24;

/// The connections of one shard.
pub struct ConnTable {
    slab: Slab<Conn>,
    next_generation: u32,
    dirty: Vec<ConnId>,
}

impl Default for ConnTable {
    fn default() -> Self {
        ConnTable {
            slab: Slab::new(),
            next_generation: 1,
            dirty: Vec::with_capacity(256),
        }
    }
}

impl ConnTable {
    /// Adds a connection; `None` when the table is full (the socket is
    /// dropped, which closes it).
    pub fn insert(&mut self, fd: OwnedFd, peer: SocketAddr, local: SocketAddr) -> Option<ConnId> {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let entry = self.slab.vacant_entry();
        let index = entry.key();
        if index >= MAX_CONNECTIONS {
            return None;
        }
        entry.insert(Conn::new(fd, generation, peer, local));
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
            self.slab.remove(id.index as usize);
        }
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
