//! RTCP BYE at the end of a PLAY range (RFC 3550 §6.3.7), deferred.
//!
//! The BYE of a range that was sent to its end does not leave with the last
//! RTP packets: it waits [`BYE_GRACE_US`], and in trick play until the
//! range's end on the wall clock ([`crate::session::Session`]'s
//! `range_end_wall_us`). Over UDP the BYE travels on the RTCP socket,
//! beside the RTP socket, and a receiver does not read the two in send
//! order: live555's `openRTSP` (2026.06.24) serves one readable socket per
//! event-loop turn, takes the BYE of every track as the end of the
//! session, and so dropped the last key frame of a Scale 2 range (its five
//! RTP packets were still queued when both BYEs had been read). A PLAY,
//! PAUSE or TEARDOWN meanwhile makes the pending BYE moot: PLAY starts a
//! new range (a new epoch of the session), TEARDOWN sends its own BYE.

use slab::Slab;

use super::RtcpOutbox;
use crate::session::{Session, SessionId};

/// Time between the last RTP packet of a range and its BYE, µs: ample for
/// a receiver to read the packets already queued on its RTP socket, short
/// next to any client's end-of-stream timeout.
pub const BYE_GRACE_US: u64 = 200_000;

/// A BYE waiting for its time.
#[derive(Debug, Clone, Copy)]
struct Pending {
    due_us: u64,
    key: usize,
    id: SessionId,
    epoch: u32,
}

/// The BYEs of finished ranges waiting to be sent. Small: only sessions
/// that reached the end of a range in the last fraction of a second (or,
/// in trick play, the last key-frame interval) are in it.
#[derive(Debug, Default)]
pub(super) struct PendingByes {
    queue: Vec<Pending>,
}

impl PendingByes {
    /// Queues the BYE of session `s` (slab key `key`), whose range sent its
    /// last packet at shard clock `now_us`; `range_end_us` is the range's end
    /// on the wall clock when later than its last packet (trick play).
    /// Call after the session went back to Ready, so that its epoch is the
    /// one a later PLAY changes.
    pub(super) fn push(&mut self, key: usize, s: &Session, now_us: u64, range_end_us: Option<u64>) {
        let grace = now_us.saturating_add(BYE_GRACE_US);
        self.queue.push(Pending {
            due_us: range_end_us.map_or(grace, |e| e.max(grace)),
            key,
            id: s.id(),
            epoch: s.epoch(),
        });
    }

    /// Shard clock (µs) of the earliest pending BYE.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        self.queue.iter().map(|p| p.due_us).min()
    }

    /// Sends (into `rtcp`, wall clock `unix_us` as the NTP time) the BYEs
    /// due at `now_us` whose slab key still holds the same session in the
    /// same epoch (no PLAY since, not closed and replaced), and drops them.
    pub(super) fn send_due(
        &mut self,
        now_us: u64,
        unix_us: u64,
        sessions: &mut Slab<Session>,
        rtcp: &mut RtcpOutbox,
    ) {
        if self.queue.is_empty() {
            return;
        }
        self.queue.retain(|p| {
            if p.due_us > now_us {
                return true;
            }
            if let Some(s) = sessions.get_mut(p.key) {
                if s.id() == p.id && s.epoch() == p.epoch && s.take_bye() {
                    rtcp.bye(s, unix_us);
                }
            }
            false
        });
    }
}
