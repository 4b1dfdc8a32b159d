//! The pacer's slow path: sessions playing at a rate other than normal play
//! (RFC 2326 §12.34 Scale, §12.35 Speed). At Scale 1 and Speed `x`, every
//! packet goes out `1/x` as far apart with its normal timestamp; in trick
//! play only the video stream's key frames go out, stamped on the play
//! timeline (`crate::session::trick`). Normal play never comes here, so its
//! per-packet cost is unchanged; this path allocates nothing either.

use std::sync::Arc;

use cadence_hinting::{FileSchedule, ScheduledPacket, TrackSchedule};

use super::header::MAX_HEADER_LEN;
use super::{write_header_at, OutPacket, PacketSink, TickStats};
use crate::session::{RatePacing, Session, TrackStream};

/// Emits the due packets of a session playing at another rate. Returns false
/// when the sink filled up.
pub(super) fn emit_session(
    key: usize,
    s: &mut Session,
    now_us: u64,
    horizon: u64,
    tolerance: u64,
    sink: &mut impl PacketSink,
    stats: &mut TickStats,
) -> bool {
    let mut out = Emitter {
        key,
        now_us,
        tolerance,
        sink,
        stats,
        hdr: [0u8; MAX_HEADER_LEN],
    };
    match s.rate_pacing() {
        None => true,
        Some(RatePacing::Speed {
            clock,
            speed,
            file,
            tracks,
        }) => {
            for t in tracks.iter_mut() {
                let Some(sched) = file.tracks.get(t.track()) else {
                    continue;
                };
                while !t.done() {
                    let Some(p) = sched.packets.get(t.cursor()) else {
                        break;
                    };
                    let due = clock.wall_start_us.saturating_add(
                        speed.wall_us(p.send_time_us.saturating_sub(clock.npt_start_us)),
                    );
                    if due > horizon {
                        break;
                    }
                    let ts = t.rtp_timestamp(p);
                    if !out.emit(file, sched, t, p, due, ts) {
                        return false;
                    }
                }
            }
            true
        }
        Some(RatePacing::Trick {
            trick,
            file,
            tracks,
        }) => {
            let Some(t) = tracks.get_mut(trick.video) else {
                return true;
            };
            let Some(sched) = file.tracks.get(t.track()) else {
                return true;
            };
            while let Some(due) = trick.due_us() {
                if due > horizon {
                    break;
                }
                let Some(p) = sched
                    .packets
                    .get(t.cursor())
                    .filter(|_| t.cursor() < trick.sample_end())
                else {
                    trick.advance(sched, t);
                    continue;
                };
                let ts = t.ts_base().wrapping_add(trick.sample_rtp());
                if !out.emit(file, sched, t, p, due, ts) {
                    return false;
                }
                if t.cursor() >= trick.sample_end() {
                    trick.advance(sched, t);
                }
            }
            true
        }
    }
}

/// The sink, the counters and the header scratch of one session's visit.
struct Emitter<'a, S: PacketSink> {
    key: usize,
    now_us: u64,
    tolerance: u64,
    sink: &'a mut S,
    stats: &'a mut TickStats,
    hdr: [u8; MAX_HEADER_LEN],
}

impl<S: PacketSink> Emitter<'_, S> {
    /// Emits packet `p` (the one at `t`'s cursor, due at `due`) with RTP
    /// timestamp `ts`, and moves the cursor past it. False when the sink is
    /// full (the packet stays for the next tick).
    fn emit(
        &mut self,
        file: &Arc<FileSchedule>,
        sched: &TrackSchedule,
        t: &mut TrackStream,
        p: &ScheduledPacket,
        due: u64,
        ts: u32,
    ) -> bool {
        let Some(len) = write_header_at(t, p, ts, None, &mut self.hdr) else {
            // A packet too large for interleaved framing is skipped.
            t.skip();
            return true;
        };
        let out = OutPacket {
            session: self.key,
            transport: t.transport(),
            header: &self.hdr[..len],
            file,
            track: sched,
            track_index: t.track(),
            packet_index: t.cursor(),
            packet: p,
        };
        if !self.sink.emit(&out) {
            return false;
        }
        let late = self.now_us.saturating_sub(due);
        if late > self.tolerance {
            self.stats.late += 1;
        }
        self.stats.max_late_us = self.stats.max_late_us.max(late);
        self.stats.lateness.observe(late);
        self.stats.packets += 1;
        self.stats.bytes += (len + p.payload_len as usize) as u64;
        t.sent_at(p, len, ts);
        true
    }
}
