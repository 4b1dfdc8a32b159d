//! Trick play (RFC 2326 §12.34, Scale ≠ 1): the key frames of the video
//! track only, forwards or backwards, paced so that media time moves `scale`
//! times faster than play time, and play time `speed` times faster than the
//! wall clock.
//!
//! # RTP timestamps: the play timeline
//! Trick-play packets carry timestamps on the *play timeline*, not the media
//! timeline: the first key frame sent has its normal timestamp (the
//! `rtptime` of `RTP-Info`, for the npt that `Range` reports), and from there
//! the timestamp advances by the play time elapsed, in the track's clock:
//!
//! ```text
//! ts(k) = ts_base + rtp(k0) + |pres(k) − pres(k0)| / |scale|     (track clock ticks)
//! due(k) = wall_start + (|pres(k) − pres(k0)| / |scale|) / speed   (µs)
//! ```
//!
//! So timestamps always increase, for rewind too, and at Speed 1 they
//! advance exactly with the wall clock, like the arrival times; a client
//! maps them back to npt as `npt = range_start + scale × (ts − rtptime) /
//! clock`. The reasons:
//! - RFC 2326 §12.34 defines Scale as content delivered per second of wall
//!   clock, and Appendix B asks for monotonic timestamps, the client using
//!   `RTP-Info` to relate them to npt;
//! - gst-rtsp-server does the same at Scale 2 (its payloaders stamp the
//!   running time of the rate-changed segment, so its timestamps advance
//!   at 90,000 ticks per wall-clock second);
//! - jitter buffers (GStreamer's rtpjitterbuffer, live555's reordering
//!   buffer) order packets by sequence and timestamp and derive play-out
//!   times from the timestamps against arrival; media-time stamps (twice
//!   the wall clock at Scale 2, decreasing at Scale −2) would be held back,
//!   resynchronised or dropped. With ours, rtspsrc's PTS come out one second
//!   apart for key frames one second apart (engine/tests/trick_play.rs).
//!
//! The sender reports follow the same timeline (see
//! [`Trick::rtp_at`]); the paused audio tracks send no report.

use cadence_hinting::{FileSchedule, TrackSchedule};

use super::rate::{mul_div, PlayRate};
use super::track::TrackStream;

/// Trick-play state of a playing session.
#[derive(Debug, Clone)]
pub(crate) struct Trick {
    /// Index of the set-up video stream in the session's tracks.
    pub(crate) video: usize,
    rate: PlayRate,
    clock_rate: u32,
    /// Schedule RTP time (before the session base) of the first key frame:
    /// the origin of the play timeline.
    anchor_rtp: u32,
    /// Presentation npt (µs) of the first key frame.
    anchor_npt_us: u64,
    /// Shard clock (µs) at which the first key frame is due.
    wall_start_us: u64,
    /// Forward: packets before this index are in range; reverse: packets at
    /// or after it.
    bound: usize,
    /// The npt (µs) where the range ends: forward its end, reverse its
    /// lower end.
    npt_bound_us: u64,
    /// The key-frame sample being sent: packets `[sample_start, sample_end)`.
    sample_start: usize,
    sample_end: usize,
    /// When its packets are due (shard clock, µs).
    sample_due_us: u64,
    /// Their RTP time on the play timeline (before the session base).
    sample_rtp: u32,
    done: bool,
}

impl Trick {
    /// Starts trick play at rate `rate` on set-up stream `video` (`t`, over
    /// `sched`) from the key frame whose first packet is `key`, due at shard
    /// clock `wall_start_us`. The range ends at npt `npt_bound_us`: forward
    /// at its end (packet index `bound`, exclusive), reverse at its lower end
    /// (packets from index `bound` on).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        video: usize,
        t: &mut TrackStream,
        sched: &TrackSchedule,
        key: usize,
        rate: PlayRate,
        wall_start_us: u64,
        bound: usize,
        npt_bound_us: u64,
    ) -> Trick {
        let anchor = sched.packets.get(key);
        let mut trick = Trick {
            video,
            rate,
            clock_rate: sched.clock_rate.max(1),
            anchor_rtp: anchor.map_or(0, |p| p.rtp_time),
            anchor_npt_us: anchor.map_or(0, |p| sched.presentation_us(p)),
            wall_start_us,
            bound,
            npt_bound_us,
            sample_start: key,
            sample_end: key,
            sample_due_us: wall_start_us,
            sample_rtp: 0,
            done: false,
        };
        trick.enter(sched, t, Some(key));
        trick
    }

    /// When the next packet is due (shard clock, µs); `None` once the range
    /// is done.
    pub(crate) fn due_us(&self) -> Option<u64> {
        (!self.done).then_some(self.sample_due_us)
    }

    /// The RTP time (before the session base) of the current key frame's
    /// packets.
    pub(crate) fn sample_rtp(&self) -> u32 {
        self.sample_rtp
    }

    /// One past the last packet of the current key frame.
    pub(crate) fn sample_end(&self) -> usize {
        self.sample_end
    }

    /// The npt (µs) reached at shard clock `now_us`: media time moves
    /// `scale × speed` times as fast as the wall clock from the first key
    /// frame, within the range.
    pub(crate) fn npt_at(&self, now_us: u64) -> u64 {
        let play_us = self
            .rate
            .speed
            .play_us(now_us.saturating_sub(self.wall_start_us));
        let media_us = mul_div(play_us, self.rate.scale.magnitude_milli(), 1000);
        if self.rate.scale.is_reverse() {
            self.anchor_npt_us
                .saturating_sub(media_us)
                .max(self.npt_bound_us.min(self.anchor_npt_us))
        } else {
            self.anchor_npt_us
                .saturating_add(media_us)
                .min(self.npt_bound_us.max(self.anchor_npt_us))
        }
    }

    /// Shard clock (µs) at which the npt reaches the range's bound: the
    /// range's end on the wall clock. At Scale 2 over `npt=10-20` with key
    /// frames every 2 s, the last one (18 s) goes out 4 s after the start
    /// and the range ends 5 s after it.
    pub(crate) fn end_wall_us(&self) -> u64 {
        let media_us = self.npt_bound_us.abs_diff(self.anchor_npt_us);
        let play_us = mul_div(media_us, 1000, self.rate.scale.magnitude_milli());
        self.wall_start_us
            .saturating_add(self.rate.speed.wall_us(play_us))
    }

    /// The RTP time (before the session base) of the play timeline at shard
    /// clock `now_us`, for sender reports: it maps the wall clock to the
    /// timestamps sent exactly as the pacing does.
    pub(crate) fn rtp_at(&self, now_us: u64) -> u32 {
        let play_us = self
            .rate
            .speed
            .play_us(now_us.saturating_sub(self.wall_start_us));
        let ticks = mul_div(play_us, u64::from(self.clock_rate), 1_000_000);
        self.anchor_rtp.wrapping_add(ticks as u32)
    }

    /// The current key frame was sent: moves `t` to the next one in the
    /// direction of play, or ends the range (and empties `t`'s range).
    pub(crate) fn advance(&mut self, sched: &TrackSchedule, t: &mut TrackStream) {
        let next = if self.rate.scale.is_reverse() {
            let low = self.bound;
            (low..self.sample_start)
                .rev()
                .find(|&i| sched.packets[i].flags.sync())
        } else {
            let high = self.bound.min(sched.packets.len());
            (self.sample_end.min(high)..high).find(|&i| sched.packets[i].flags.sync())
        };
        self.enter(sched, t, next);
    }

    /// Makes key frame `key` (its first packet index) the current one, or
    /// ends the range when there is none.
    fn enter(&mut self, sched: &TrackSchedule, t: &mut TrackStream, key: Option<usize>) {
        let in_range = |k: usize| {
            if self.rate.scale.is_reverse() {
                k >= self.bound
            } else {
                k < self.bound
            }
        };
        let Some((k, p)) = key
            .filter(|&k| in_range(k))
            .and_then(|k| Some((k, sched.packets.get(k)?)))
        else {
            self.done = true;
            t.set_range(t.cursor(), t.cursor());
            return;
        };
        let end = sched.packets[k + 1..]
            .iter()
            .position(|q| q.flags.sample_start())
            .map_or(sched.packets.len(), |n| k + 1 + n);
        let media_ticks =
            u64::from((p.rtp_time.wrapping_sub(self.anchor_rtp) as i32).unsigned_abs());
        let play_ticks = mul_div(media_ticks, 1000, self.rate.scale.magnitude_milli());
        let play_us = mul_div(play_ticks, 1_000_000, u64::from(self.clock_rate));
        self.sample_start = k;
        self.sample_end = end;
        self.sample_rtp = self.anchor_rtp.wrapping_add(play_ticks as u32);
        self.sample_due_us = self
            .wall_start_us
            .saturating_add(self.rate.speed.wall_us(play_us));
        t.set_range(k, sched.packets.len().max(end));
    }
}

/// The largest |Scale| (thousandths) that track `sched` supports in trick
/// play: its key-frame spacing in frames, measured from its first key frame
/// to the next (so key frames go out no faster than the track's own frame
/// rate). `None` when it has no key frame or nothing but key frames.
pub(crate) fn max_scale_milli(sched: &TrackSchedule) -> Option<u32> {
    let first = sched.packets.iter().position(|p| p.flags.sync())?;
    let mut frames: u32 = 0;
    for p in &sched.packets[first + 1..] {
        if p.flags.sync() {
            break;
        }
        if p.flags.sample_start() {
            frames = frames.saturating_add(1);
        }
    }
    // `frames` non-key frames follow the key frame: a spacing of frames + 1.
    (frames > 0).then(|| frames.saturating_add(1).saturating_mul(1000))
}

/// [`max_scale_milli`] of the file's video track (the first whose samples
/// are not all sync samples), for the description.
pub(crate) fn file_max_scale_milli(file: &FileSchedule) -> Option<u32> {
    let video = file.tracks.iter().find(|s| {
        s.packets
            .iter()
            .any(|p| p.flags.sample_start() && !p.flags.sync())
    })?;
    max_scale_milli(video)
}
