//! Outgoing RTCP of a shard (RFC 3550 §6.4.1, §6.6): a sender report per
//! track about every 5 s while playing, and BYE at the end of the stream, on
//! TEARDOWN, timeout and shutdown; plus admission control, which refuses new
//! sessions while the shard is behind. Scratch vectors live in the shard, so
//! this allocates nothing in the steady state.

use std::os::fd::AsRawFd;

use io_uring::{opcode, types};

use super::ops::Op;
use super::Shard;
use crate::rtcp::{self, SenderInfo};
use crate::session::{Session, TrackTransport};

/// What RTCP needs of one track, copied out of the session so the shard can
/// send while the session is borrowed or already removed.
pub struct TrackRtcp {
    ssrc: u32,
    rtp_time: u32,
    packets: u32,
    octets: u32,
    transport: TrackTransport,
}

/// Lateness (µs) above which a shard counts as behind and refuses new
/// sessions with 453 Not Enough Bandwidth until it catches up.
pub const OVERLOAD_LATE_US: u64 = 100_000;

fn unix_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Appends `s`'s tracks to `out`. With `now`, each RTP time is the one of the
/// session's npt at shard clock `now`: every track maps the same npt to wall
/// time (the pacing clock) and npt to RTP time by its presentation origin, so
/// receivers line tracks up exactly, B-frames included. Without `now` (BYE),
/// the last RTP time sent.
fn collect(s: &Session, now: Option<u64>, out: &mut Vec<TrackRtcp>) {
    let npt = now.and_then(|now| s.clock.map(|c| c.npt_at(now)));
    for t in &s.tracks {
        let rtp_time = match (npt, s.file.tracks.get(t.track)) {
            (Some(npt), Some(sched)) => t.ts_base.wrapping_add(sched.rtp_at(npt)),
            _ => t.last_rtp_time,
        };
        out.push(TrackRtcp {
            ssrc: t.ssrc,
            rtp_time,
            packets: t.packets_sent,
            octets: t.octets_sent,
            transport: t.transport,
        });
    }
}

impl Shard {
    /// Sends BYE for a session that was removed (a connection that is gone
    /// gets nothing).
    pub(super) fn bye(&mut self, s: &Session) {
        if s.bye_sent {
            return;
        }
        let mut scratch = std::mem::take(&mut self.rtcp_scratch);
        collect(s, None, &mut scratch);
        self.send_rtcp(&scratch, true);
        scratch.clear();
        self.rtcp_scratch = scratch;
    }

    /// Sends BYE for the session with slab key `key` (end of its PLAY range),
    /// once.
    pub(super) fn bye_key(&mut self, key: usize) {
        let mut scratch = std::mem::take(&mut self.rtcp_scratch);
        if let Some(s) = self.controller.sessions.get_mut(key) {
            if !s.bye_sent {
                collect(s, None, &mut scratch);
                s.bye_sent = true;
            }
        }
        self.send_rtcp(&scratch, true);
        scratch.clear();
        self.rtcp_scratch = scratch;
    }

    /// Sends a sender report on every track of every playing session whose
    /// report is due at shard clock `now`.
    pub(super) fn send_due_reports(&mut self, now: u64) {
        let mut keys = std::mem::take(&mut self.key_scratch);
        keys.extend(
            self.controller
                .sessions
                .iter()
                .filter(|(_, s)| s.clock.is_some() && now >= s.next_sr_us)
                .map(|(k, _)| k),
        );
        let mut scratch = std::mem::take(&mut self.rtcp_scratch);
        for &key in &keys {
            if let Some(s) = self.controller.sessions.get_mut(key) {
                s.next_sr_us = now + self.config.sr_interval_us;
                collect(s, Some(now), &mut scratch);
            }
            self.send_rtcp(&scratch, false);
            scratch.clear();
        }
        self.rtcp_scratch = scratch;
        keys.clear();
        self.key_scratch = keys;
    }

    fn send_rtcp(&mut self, tracks: &[TrackRtcp], bye: bool) {
        if tracks.is_empty() {
            return;
        }
        let ntp = rtcp::ntp_from_unix_us(unix_now_us());
        for t in tracks {
            let info = SenderInfo {
                ssrc: t.ssrc,
                ntp,
                rtp_time: t.rtp_time,
                packets: t.packets,
                octets: t.octets,
            };
            let mut buf = [0u8; 128];
            let written = if bye {
                rtcp::write_bye(&info, &mut buf[4..])
            } else {
                rtcp::write_sender_report(&info, &mut buf[4..])
            };
            let Some(n) = written else { continue };
            match t.transport {
                TrackTransport::Udp { rtcp: dest, .. } => {
                    let fd = self.sockets.udp.rtcp.as_raw_fd();
                    if let Some((index, msg)) = self.slots.fill(dest, &buf[4..4 + n], |_| Some(0)) {
                        let e = opcode::SendMsg::new(types::Fd(fd), msg)
                            .build()
                            .user_data(Op::Slot(index).encode());
                        self.push(e);
                    }
                }
                TrackTransport::Interleaved {
                    conn, rtcp_channel, ..
                } => {
                    buf[0] = b'$';
                    buf[1] = rtcp_channel;
                    buf[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                    self.write_to_conn(conn, buf[..4 + n].to_vec(), false);
                }
            }
        }
    }

    /// Refuses new sessions while the shard is behind: packets sent more than
    /// [`OVERLOAD_LATE_US`] late, or send slots exhausted, since the last
    /// housekeeping. Sessions already playing are not affected.
    pub(super) fn update_admission(&mut self) {
        let behind = self.window_max_late_us > OVERLOAD_LATE_US || self.window_slots_full;
        if behind == self.controller.admitting() {
            if behind {
                tracing::warn!(
                    shard = self.index,
                    late_ms = self.window_max_late_us / 1000,
                    "shard is behind: refusing new sessions (453) until it catches up"
                );
            } else {
                tracing::info!(
                    shard = self.index,
                    "shard caught up: accepting new sessions"
                );
            }
            self.controller.set_admitting(!behind);
        }
        self.window_max_late_us = 0;
        self.window_slots_full = false;
    }
}
