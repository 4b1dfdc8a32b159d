//! The pacer: on every tick, gathers the due packets of every playing session
//! and hands each one, as header bytes plus schedule segments, to a
//! [`PacketSink`] (the shard's io_uring batch in production, a recorder in
//! tests). Pure code: the caller passes the shard clock.

pub mod header;
mod scaled;
pub mod wheel;

use std::sync::Arc;

use cadence_hinting::{FileSchedule, ScheduledPacket, TrackSchedule};
use slab::Slab;

use crate::session::{Session, SessionState, TrackStream, TrackTransport};
use header::{RtpFields, MAX_HEADER_LEN};
use wheel::{Entry, Wheel};

/// One packet ready to go: where to, its header, and its payload segments.
pub struct OutPacket<'a> {
    /// Slab key of the session.
    pub session: usize,
    /// Destination.
    pub transport: &'a TrackTransport,
    /// Header bytes (`header[..header_len]`): interleaved framing + RTP header.
    pub header: &'a [u8],
    /// The file whose map backs the packet's file segments (an `Arc`, so a
    /// sink that keeps a reference past the call can pin the file).
    pub file: &'a Arc<FileSchedule>,
    /// The track schedule whose arena backs its arena segments.
    pub track: &'a TrackSchedule,
    /// Index of `track` in the file.
    pub track_index: usize,
    /// Index of `packet` in the track schedule.
    pub packet_index: usize,
    /// The schedule entry.
    pub packet: &'a ScheduledPacket,
}

/// Where the pacer puts packets.
pub trait PacketSink {
    /// Takes one packet. Returns false when the sink is full for this tick
    /// (the packet was not taken and is retried next tick).
    fn emit(&mut self, packet: &OutPacket<'_>) -> bool;
}

/// Counters of one tick.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickStats {
    /// Packets emitted.
    pub packets: u64,
    /// Payload + header bytes emitted.
    pub bytes: u64,
    /// Packets emitted after their due time plus the tolerance.
    pub late: u64,
    /// Largest lateness seen, µs.
    pub max_late_us: u64,
    /// Sessions that sent their last packet this tick.
    pub finished: u64,
    /// True when the sink filled up and due packets were left for later.
    pub sink_full: bool,
    /// Lateness of every packet emitted, bucketed (for the metrics
    /// histogram).
    pub lateness: crate::metrics::LatenessTally,
}

/// Pacer state of one shard: the wheel and reusable scratch space.
#[derive(Debug)]
pub struct Pacer {
    wheel: Wheel,
    due: Vec<Entry>,
    /// Sessions that reached their end this tick (slab keys), for the
    /// endpoint to end their range and queue their BYE; cleared by the next
    /// [`Pacer::tick`].
    pub finished: Vec<usize>,
    /// How far ahead of its due time a packet may be sent, µs.
    pub lead_us: u64,
    /// Lateness below this is not counted as late, µs.
    pub late_tolerance_us: u64,
    /// Bounded send-ahead, µs: a tick that carried less than the average work
    /// goes on with packets due up to this much beyond its normal horizon
    /// (0: none).
    pub send_ahead_us: u64,
    load: LoadMeter,
}

impl Pacer {
    /// A pacer with `tick_us` wheel slots over a 4096-slot horizon (4 s at
    /// 1 ms ticks; later wake-ups are parked and rescheduled), starting at
    /// `now_us`.
    pub fn new(now_us: u64, tick_us: u64) -> Self {
        Pacer {
            wheel: Wheel::new(4096, tick_us, now_us),
            due: Vec::with_capacity(1024),
            finished: Vec::with_capacity(64),
            // A wheel slot expires when the clock enters it, so packets may go
            // up to one slot early; never late because of the wheel.
            lead_us: tick_us,
            late_tolerance_us: 2_000,
            send_ahead_us: 0,
            load: LoadMeter::default(),
        }
    }

    /// Number of sessions waiting on the wheel.
    pub fn scheduled(&self) -> usize {
        self.wheel.len()
    }

    /// Puts a session (slab key) on the wheel at its next due time; no-op when
    /// it is not playing or has nothing left.
    pub fn schedule(&mut self, key: usize, session: &Session) {
        if session.state() != SessionState::Playing {
            return;
        }
        if let Some(due) = session.next_due_us() {
            self.wheel.insert(
                due,
                Entry {
                    key: key as u32,
                    epoch: session.epoch(),
                },
            );
        }
    }

    /// Shard clock (µs) by which [`Pacer::tick`] must run next: the start of
    /// the next wheel slot after `now_us` while sessions are scheduled, `None`
    /// when none is.
    pub fn next_deadline(&self, now_us: u64) -> Option<u64> {
        if self.wheel.is_empty() {
            return None;
        }
        let tick = self.wheel.tick_us();
        Some((now_us / tick + 1) * tick)
    }

    /// Sets the bounded send-ahead, µs (0: none); see
    /// [`Pacer::send_ahead_us`].
    pub fn with_send_ahead(mut self, send_ahead_us: u64) -> Self {
        self.send_ahead_us = send_ahead_us;
        self
    }

    /// Runs one tick at shard clock `now_us`: emits every packet due by
    /// `now_us + lead_us` into `sink`, and reschedules the sessions. When the
    /// tick carried less than the shard's average work and send-ahead is on,
    /// it goes on, session by session, with those of the next wheel slots
    /// ending within `send_ahead_us` beyond the normal horizon, until the
    /// average is reached. Sessions that finished
    /// are listed in [`Pacer::finished`].
    pub fn tick(
        &mut self,
        now_us: u64,
        sessions: &mut Slab<Session>,
        sink: &mut impl PacketSink,
    ) -> TickStats {
        let mut stats = TickStats::default();
        self.finished.clear();
        self.wheel.expire(now_us, &mut self.due);
        // Packets due before the next slot still on the wheel go now: their
        // slot was taken ahead of time by an earlier light tick.
        let horizon = (now_us + self.lead_us).max(self.wheel.next_slot_us());
        let mut full = self.run_due(now_us, horizon, sessions, sink, &mut stats);
        if self.send_ahead_us > 0 && !full {
            let budget = self.load.budget(now_us);
            let limit = now_us + self.lead_us + self.send_ahead_us;
            while stats.packets < budget {
                let Some((entry, slot_end)) = self.wheel.take_ahead(limit) else {
                    break;
                };
                self.due.push(entry);
                // The session sends what its slot holds (up to the slot's
                // end, as a normal tick sends up to one slot ahead).
                let h = horizon.max(slot_end);
                if self.run_due(now_us, h, sessions, sink, &mut stats) {
                    full = true;
                    break;
                }
            }
        }
        self.load.add(now_us, stats.packets);
        stats.sink_full = full;
        stats
    }

    /// Emits the packets of the sessions in `self.due` up to `horizon`,
    /// reschedules them and empties `self.due`. Returns true when the sink
    /// filled up.
    fn run_due(
        &mut self,
        now_us: u64,
        horizon: u64,
        sessions: &mut Slab<Session>,
        sink: &mut impl PacketSink,
        stats: &mut TickStats,
    ) -> bool {
        let mut full = false;
        for i in 0..self.due.len() {
            let entry = self.due[i];
            let key = entry.key as usize;
            let Some(s) = sessions.get_mut(key) else {
                continue;
            };
            if s.epoch() != entry.epoch || s.state() != SessionState::Playing {
                continue;
            }
            if !full {
                full = !emit_session(key, s, now_us, horizon, self.late_tolerance_us, sink, stats);
            }
            match s.next_due_us() {
                // A full sink leaves due packets for the next tick.
                Some(due) => self.wheel.insert(if full { now_us } else { due }, entry),
                None => {
                    stats.finished += 1;
                    self.finished.push(key);
                }
            }
        }
        self.due.clear();
        full
    }
}

/// The shard's average sending rate, measured over windows of
/// [`LoadMeter::WINDOW_US`], which sets the work budget of a tick for the
/// send-ahead.
#[derive(Debug, Default)]
struct LoadMeter {
    /// Packets per µs over the last complete window.
    rate: f64,
    window_start_us: u64,
    window_packets: u64,
    last_tick_us: u64,
}

impl LoadMeter {
    /// Length of one measurement window, µs.
    const WINDOW_US: u64 = 100_000;

    /// Packets a tick at `now_us` should carry: the average rate times the
    /// time since the last tick (0 before the first full window).
    fn budget(&self, now_us: u64) -> u64 {
        let elapsed = now_us.saturating_sub(self.last_tick_us);
        (self.rate * elapsed as f64) as u64
    }

    /// Counts a tick at `now_us` that emitted `packets`.
    fn add(&mut self, now_us: u64, packets: u64) {
        self.last_tick_us = now_us;
        self.window_packets += packets;
        let span = now_us.saturating_sub(self.window_start_us);
        if span >= Self::WINDOW_US {
            self.rate = self.window_packets as f64 / span as f64;
            self.window_start_us = now_us;
            self.window_packets = 0;
        }
    }
}

/// Emits the due packets of one session, track by track. Returns false when
/// the sink filled up.
fn emit_session(
    key: usize,
    s: &mut Session,
    now_us: u64,
    horizon: u64,
    tolerance: u64,
    sink: &mut impl PacketSink,
    stats: &mut TickStats,
) -> bool {
    if !s.rate().is_normal() {
        // Trick play or another Speed: the slow path.
        return scaled::emit_session(key, s, now_us, horizon, tolerance, sink, stats);
    }
    let Some((clock, file, tracks)) = s.pacing() else {
        return true;
    };
    let mut hdr = [0u8; MAX_HEADER_LEN];
    for t in tracks.iter_mut() {
        let Some(sched) = file.tracks.get(t.track()) else {
            continue;
        };
        while !t.done() {
            let Some(p) = sched.packets.get(t.cursor()) else {
                break;
            };
            let due = clock.due_us(p.send_time_us);
            if due > horizon {
                break;
            }
            let Some(len) = write_header(t, sched, p, &mut hdr) else {
                // A packet too large for interleaved framing is skipped.
                t.skip();
                continue;
            };
            let out = OutPacket {
                session: key,
                transport: t.transport(),
                header: &hdr[..len],
                file,
                track: sched,
                track_index: t.track(),
                packet_index: t.cursor(),
                packet: p,
            };
            if !sink.emit(&out) {
                return false;
            }
            let late = now_us.saturating_sub(due);
            if late > tolerance {
                stats.late += 1;
            }
            stats.max_late_us = stats.max_late_us.max(late);
            stats.lateness.observe(late);
            stats.packets += 1;
            stats.bytes += (len + p.payload_len as usize) as u64;
            t.sent(p, len);
        }
    }
    true
}

fn write_header(
    t: &TrackStream,
    sched: &TrackSchedule,
    p: &ScheduledPacket,
    hdr: &mut [u8; MAX_HEADER_LEN],
) -> Option<usize> {
    let toffset = t.toffset().then(|| {
        header::transmission_offset(
            p.send_time_us,
            p.rtp_time,
            sched.rtp_origin,
            sched.clock_rate,
        )
    });
    write_header_at(t, p, t.rtp_timestamp(p), toffset, hdr)
}

/// [`write_header`] with RTP timestamp `timestamp`.
#[inline]
fn write_header_at(
    t: &TrackStream,
    p: &ScheduledPacket,
    timestamp: u32,
    toffset: Option<i32>,
    hdr: &mut [u8; MAX_HEADER_LEN],
) -> Option<usize> {
    let channel = match *t.transport() {
        TrackTransport::Interleaved { rtp_channel, .. } => Some(rtp_channel),
        TrackTransport::Udp { .. } => None,
    };
    header::write(
        &RtpFields {
            marker: p.flags.marker(),
            payload_type: p.payload_type,
            seq: t.next_seq(),
            timestamp,
            ssrc: t.ssrc(),
            toffset,
        },
        channel,
        p.payload_len as usize,
        hdr,
    )
}
