//! Churn mode in a worker: ending sessions at the end of their lifetime
//! (TEARDOWN, or closing the connection without it), starting their
//! successors in the same slot, recording ended sessions and recycling their
//! session slots and streams.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::session::{Session, State};
use super::Worker;
use crate::churn::Ending;
use crate::plan::{ClientPlan, Transport};

/// Pause before a failed session's successor starts.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long the streams of a torn-down session keep their keys, so that
/// packets the server sent before the TEARDOWN took effect are recognised.
const RETIRE_AFTER: Duration = Duration::from_secs(2);
/// Margin beyond the session timeout for a UDP session closed without
/// TEARDOWN: the server streams to it until it times the session out.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

impl Worker {
    /// Ends a playing session whose lifetime is over: stops counting, queues
    /// its successor, and tears it down or closes its connection.
    pub(super) fn end_lifetime(&mut self, sid: usize, now: Instant) {
        self.check_no_data(sid, now);
        self.stop_counting(sid, now);
        let ending = self.sessions[sid].ending;
        self.sessions[sid].ended = Some(ending);
        self.gauges().ended.fetch_add(1, Ordering::Relaxed);
        self.queue_successor(sid, now);
        match ending {
            Ending::Teardown => self.teardown(sid, now),
            Ending::Close => self.close(sid, State::Done),
        }
    }

    /// Queues the next session of `sid`'s slot to start at `due` (churn mode
    /// during the run; once per session).
    pub(super) fn queue_successor(&mut self, sid: usize, due: Instant) {
        if self.config.churn.is_none() || self.stopping || self.sessions[sid].succeeded {
            return;
        }
        self.sessions[sid].succeeded = true;
        let old = &self.sessions[sid].plan;
        let generation = old.generation + 1;
        let plan = ClientPlan {
            index: usize::try_from(generation)
                .unwrap_or(usize::MAX)
                .saturating_mul(self.config.clients_total)
                .saturating_add(old.slot),
            slot: old.slot,
            generation,
            url: old.url.clone(),
            server: old.server,
            transport: old.transport,
            start: old.start,
        };
        // Successors are queued at `now` or `now + RETRY_AFTER`; keep the
        // queue in due order.
        let at = self.successors.partition_point(|(d, _)| *d <= due);
        self.successors.insert(at, (due, plan));
    }

    /// Starts the successors that are due, each in a free session slot.
    pub(super) fn start_successors(&mut self, now: Instant) {
        while self.successors.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, plan)) = self.successors.pop_front() else {
                break;
            };
            let session = Session::new(plan, self.config.churn.as_ref());
            let sid = match self.free_sids.pop() {
                Some(sid) => {
                    self.sessions[sid] = session;
                    sid
                }
                None => {
                    self.sessions.push(session);
                    self.sessions.len() - 1
                }
            };
            self.start_session(sid, now);
        }
    }

    /// Churn mode during the run: takes the record of a session that just
    /// ended (Done or Failed, connection closed), schedules its streams'
    /// retirement and frees its slot. Its events can no longer arrive (its
    /// socket left epoll), and slots are reused only by
    /// [`Worker::start_successors`], between event batches.
    pub(super) fn finalize(&mut self, sid: usize) {
        if self.config.churn.is_none() || self.stopping {
            return;
        }
        let s = &self.sessions[sid];
        if s.recorded || !matches!(s.state, State::Done | State::Failed) {
            return;
        }
        let grace = if s.ended == Some(Ending::Close) && s.plan.transport == Transport::Udp {
            let timeout_s = s.client.as_ref().map_or(60, |c| c.timeout_s());
            Duration::from_secs(timeout_s) + TIMEOUT_MARGIN
        } else {
            RETIRE_AFTER
        };
        let record = self.session_record(sid);
        self.records.push(record);
        let now = Instant::now();
        let s = &mut self.sessions[sid];
        s.recorded = true;
        // The session's heavy parts are not needed any more.
        s.client = None;
        for r in std::mem::take(&mut s.streams) {
            self.retiring.push(Reverse((now + grace, r.stream)));
        }
        self.free_sids.push(sid);
    }

    /// Drops the demultiplexer keys of streams whose grace period is over
    /// and makes their ids reusable.
    pub(super) fn retire_due(&mut self, now: Instant) {
        while let Some(&Reverse((due, stream))) = self.retiring.peek() {
            if due > now {
                break;
            }
            self.retiring.pop();
            let m = self.meta[stream as usize];
            if let Some(pair) = m.pair {
                self.demux.remove(pair, m.ssrc, m.source_port, stream);
            }
            self.free_streams.push(stream);
        }
    }
}
