//! Streaming sessions: the per-client state that the RTSP controller creates
//! and steers and that the pacer walks.
//!
//! A session is a cursor into each set-up track's compiled schedule, plus the
//! track's SSRC, sequence and RTP timestamp bases (RFC 3550 §5.1, random per
//! session and track), its transport, and its RTCP statistics. Its state
//! changes only through the transitions below (RFC 2326 Appendix A.2):
//! [`Session::play`], [`Session::pause`] and [`Session::finish_range`]; the
//! pacer only advances track cursors.
//!
//! A PLAY has a [`PlayRate`]: normal play (Scale 1, Speed 1, the pacer's
//! fast path), faster or slower delivery (Speed, [`rate`]), or trick play
//! (Scale ≠ 1: key frames only; `session/trick.rs` explains the RTP
//! timestamps).

mod id;
pub mod rate;
mod track;
pub(crate) mod trick;

use std::net::SocketAddr;
use std::sync::Arc;

use cadence_hinting::FileSchedule;

pub use id::{ConnId, SessionId};
pub use rate::{PlayRate, RateError, RateLimits, Scale, Speed};
pub use track::{ReceptionReport, TrackStream, TrackTransport};

use trick::Trick;

/// RTSP session state (RFC 2326 Appendix A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// At least one track set up; not playing.
    Ready,
    /// Playing: the pacer sends due packets.
    Playing,
}

impl SessionState {
    /// `"ready"` or `"playing"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Ready => "ready",
            SessionState::Playing => "playing",
        }
    }
}

/// Pacing state of a playing session: maps schedule send times to shard
/// clock time (at Speed 1; see [`Session::npt_us`] for the npt at any rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayClock {
    /// Schedule send time (µs) at which the PLAY started (npt of the first packet).
    pub npt_start_us: u64,
    /// Shard clock (µs) at which the packet of `npt_start_us` is due.
    pub wall_start_us: u64,
}

impl PlayClock {
    /// Shard clock time (µs) at which a packet with schedule send time
    /// `send_time_us` is due.
    pub fn due_us(&self, send_time_us: u64) -> u64 {
        self.wall_start_us
            .saturating_add(send_time_us.saturating_sub(self.npt_start_us))
    }

    /// The npt (µs) reached at shard clock `now_us`.
    pub fn npt_at(&self, now_us: u64) -> u64 {
        self.npt_start_us
            .saturating_add(now_us.saturating_sub(self.wall_start_us))
    }
}

/// Who a session belongs to and how it was asked for: what the access log
/// and the admin API report about it.
#[derive(Debug, Clone)]
pub struct SessionMeta {
    /// The client's address (after PROXY protocol, when used).
    pub peer: SocketAddr,
    /// Our address on the RTSP connection.
    pub local: SocketAddr,
    /// The request URL of the SETUP that created the session, without the
    /// query and the track part (`rtsp://host:port/<path>`); shared by the
    /// sessions of the shard that asked for the same URL.
    pub uri_stem: Arc<str>,
    /// The query of that URL, without `?`; `None` when there is none (or
    /// it is empty).
    pub uri_query: Option<Box<str>>,
    /// The client's `User-Agent`, when it sent one; shared by the sessions
    /// of the shard whose clients sent the same one.
    pub user_agent: Option<Arc<str>>,
    /// The authenticated user, when there is one.
    pub user: Option<Box<str>>,
    /// The authentication realm the user authenticated in.
    pub realm: Option<Box<str>>,
    /// Wall clock at creation, µs since the Unix epoch.
    pub started_unix_us: u64,
    /// Shard clock at creation, µs.
    pub started_us: u64,
}

/// Why a PLAY cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayError {
    /// No track is set up (455 Method Not Valid in This State).
    NoTracks,
    /// The range starts beyond the end or ends before it starts (after it,
    /// for a negative Scale) (457).
    InvalidRange,
}

/// Where a PLAY starts, as reported in its `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayRange {
    /// Presentation npt of the first packet (µs): the key frame at or before
    /// the requested start.
    pub start_us: u64,
    /// End npt (µs) when the request gave one; for a negative Scale, the
    /// lower end (0 when the request gave none).
    pub end_us: Option<u64>,
}

/// One client session.
#[derive(Debug)]
pub struct Session {
    id: SessionId,
    path: Arc<str>,
    file: Arc<FileSchedule>,
    tracks: Vec<TrackStream>,
    state: SessionState,
    clock: Option<PlayClock>,
    rate: PlayRate,
    /// Boxed: trick play is rare, and a `Trick` is 88 bytes.
    trick: Option<Box<Trick>>,
    resync: bool,
    paused_npt_us: Option<u64>,
    last_activity_us: u64,
    next_sr_us: u64,
    epoch: u32,
    conn: ConnId,
    bye_sent: bool,
    meta: SessionMeta,
}

impl Session {
    /// A new session in the Ready state with no tracks, created at shard
    /// clock `now_us` by a request on connection `conn`.
    pub fn new(
        id: SessionId,
        path: Arc<str>,
        file: Arc<FileSchedule>,
        conn: ConnId,
        meta: SessionMeta,
        now_us: u64,
    ) -> Self {
        Session {
            id,
            path,
            file,
            tracks: Vec::with_capacity(2),
            state: SessionState::Ready,
            clock: None,
            rate: PlayRate::NORMAL,
            trick: None,
            resync: false,
            paused_npt_us: None,
            last_activity_us: now_us,
            next_sr_us: now_us,
            epoch: 0,
            conn,
            bye_sent: false,
            meta,
        }
    }

    /// The public ID.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Catalog path of the file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The compiled schedules of the file.
    pub fn file(&self) -> &Arc<FileSchedule> {
        &self.file
    }

    /// Set-up tracks, in SETUP order.
    pub fn tracks(&self) -> &[TrackStream] {
        &self.tracks
    }

    /// State per RFC 2326 Appendix A.2.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The pacing clock, while playing.
    pub fn clock(&self) -> Option<PlayClock> {
        self.clock
    }

    /// The rate of the current (or last) PLAY.
    pub fn rate(&self) -> PlayRate {
        self.rate
    }

    /// True when set-up stream `index` is sending: false for the streams
    /// that trick play pauses (all but the video), and when not playing.
    pub fn is_sending(&self, index: usize) -> bool {
        self.state == SessionState::Playing && self.trick.as_ref().is_none_or(|t| t.video == index)
    }

    /// The largest |Scale| (thousandths) the set-up tracks support in trick
    /// play, from the video track's key-frame spacing; `None` when no set-up
    /// track has both key frames and other frames (see [`rate`]).
    pub fn max_trick_scale(&self) -> Option<u32> {
        let v = self.video_stream()?;
        trick::max_scale_milli(self.file.tracks.get(self.tracks[v].track())?)
    }

    /// Incremented on every PLAY, PAUSE and seek, so that stale pacer
    /// wake-ups are ignored.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The RTSP connection that created the session.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Shard clock (µs) of the last RTSP request or RTCP packet from the client.
    pub fn last_activity_us(&self) -> u64 {
        self.last_activity_us
    }

    /// Who asked for the session, and how.
    pub fn meta(&self) -> &SessionMeta {
        &self.meta
    }

    /// The npt (µs) the session is at, at shard clock `now_us`: the playing
    /// position, or where it paused or stopped.
    pub fn npt_us(&self, now_us: u64) -> u64 {
        if let Some(t) = &self.trick {
            return t.npt_at(now_us);
        }
        match self.clock {
            Some(c) if self.rate.speed == Speed::ONE => c.npt_at(now_us),
            Some(c) => c.npt_start_us.saturating_add(
                self.rate
                    .speed
                    .play_us(now_us.saturating_sub(c.wall_start_us)),
            ),
            None => self.paused_npt_us.unwrap_or(0),
        }
    }

    /// The RTP timestamp that set-up stream `index` is at, at shard clock
    /// `now_us`, for its sender report (RFC 3550 §6.4.1): the timeline of
    /// the packets it sends (media RTP time of the npt reached, or the play
    /// timeline in trick play). `None` when it is not sending.
    pub fn rtp_time_at(&self, index: usize, now_us: u64) -> Option<u32> {
        if !self.is_sending(index) {
            return None;
        }
        let t = self.tracks.get(index)?;
        if let Some(trick) = &self.trick {
            return Some(t.ts_base().wrapping_add(trick.rtp_at(now_us)));
        }
        let sched = self.file.tracks.get(t.track())?;
        Some(t.ts_base().wrapping_add(sched.rtp_at(self.npt_us(now_us))))
    }

    /// Bytes put on the wire, all tracks (RTP headers, payloads, framing).
    pub fn bytes_sent(&self) -> u64 {
        self.tracks.iter().map(|t| t.bytes_sent()).sum()
    }

    /// RTP packets sent, all tracks.
    pub fn packets_sent(&self) -> u64 {
        self.tracks
            .iter()
            .map(|t| u64::from(t.packets_sent()))
            .sum()
    }

    /// True when any track uses TCP interleaved transport.
    pub fn is_interleaved(&self) -> bool {
        self.tracks
            .iter()
            .any(|t| matches!(t.transport(), TrackTransport::Interleaved { .. }))
    }

    /// True when every track has sent its whole PLAY range.
    pub fn finished(&self) -> bool {
        self.tracks.iter().all(|t| t.done())
    }

    /// Shard clock time (µs) at which the next packet of any track is due;
    /// `None` when not playing or finished.
    pub fn next_due_us(&self) -> Option<u64> {
        let clock = self.clock?;
        if !self.rate.is_normal() {
            return self.next_due_at_rate(clock);
        }
        self.tracks
            .iter()
            .filter(|t| !t.done())
            .filter_map(|t| self.file.tracks.get(t.track())?.packets.get(t.cursor()))
            .map(|p| clock.due_us(p.send_time_us))
            .min()
    }

    /// [`Session::next_due_us`] at a rate other than normal play.
    fn next_due_at_rate(&self, clock: PlayClock) -> Option<u64> {
        if let Some(t) = &self.trick {
            return t.due_us();
        }
        let speed = self.rate.speed;
        self.tracks
            .iter()
            .filter(|t| !t.done())
            .filter_map(|t| self.file.tracks.get(t.track())?.packets.get(t.cursor()))
            .map(|p| {
                clock.wall_start_us.saturating_add(
                    speed.wall_us(p.send_time_us.saturating_sub(clock.npt_start_us)),
                )
            })
            .min()
    }

    /// What the pacer needs of a session playing at normal rate: its clock,
    /// its file and its tracks. `None` when not playing, or playing at
    /// another rate ([`Session::rate_pacing`]).
    pub(crate) fn pacing(&mut self) -> Option<(PlayClock, &Arc<FileSchedule>, &mut [TrackStream])> {
        if self.state != SessionState::Playing || !self.rate.is_normal() {
            return None;
        }
        Some((self.clock?, &self.file, &mut self.tracks))
    }

    /// What the pacer needs of a session playing at a rate other than
    /// normal play. `None` when not playing, or playing at normal rate.
    pub(crate) fn rate_pacing(&mut self) -> Option<RatePacing<'_>> {
        if self.state != SessionState::Playing || self.rate.is_normal() {
            return None;
        }
        let clock = self.clock?;
        Some(match &mut self.trick {
            Some(trick) => RatePacing::Trick {
                trick,
                file: &self.file,
                tracks: &mut self.tracks,
            },
            None => RatePacing::Speed {
                clock,
                speed: self.rate.speed,
                file: &self.file,
                tracks: &mut self.tracks,
            },
        })
    }

    /// Counts a request or an RTCP packet from the client at `now_us`.
    pub(crate) fn touch(&mut self, now_us: u64) {
        self.last_activity_us = now_us;
    }

    /// Index of the set-up stream of file track `track`, if set up.
    pub(crate) fn stream_of(&self, track: usize) -> Option<usize> {
        self.tracks.iter().position(|t| t.track() == track)
    }

    /// Adds a set-up track (SETUP, RFC 2326 §10.4).
    pub(crate) fn add_track(&mut self, stream: TrackStream) -> usize {
        self.tracks.push(stream);
        self.tracks.len() - 1
    }

    /// Replaces the transport of set-up stream `index` (a re-SETUP).
    pub(crate) fn set_transport(&mut self, index: usize, transport: TrackTransport) {
        if let Some(t) = self.tracks.get_mut(index) {
            t.set_transport(transport);
        }
    }

    /// Records a client reception report block about set-up stream `index`.
    pub(crate) fn record_reception(
        &mut self,
        index: usize,
        block: &crate::rtcp::ReportBlockInfo,
        now_us: u64,
    ) {
        self.last_activity_us = now_us;
        if let Some(t) = self.tracks.get_mut(index) {
            t.set_reception(block);
        }
    }

    /// PLAY (RFC 2326 §10.5) at shard clock `now_us`, from npt `start_us`
    /// (µs; `None`: resume where it paused, keep going when playing, or
    /// start at 0) to `end_us`, at `rate` (already negotiated:
    /// [`rate::negotiate`]). Seeks snap to the key frame at or before the
    /// start. A PLAY without range while playing keeps going at the same
    /// rate, or changes to the new rate at the current npt (leaving trick
    /// play resumes normal play at the key frame at or before it). With a
    /// negative Scale the range runs backwards: `end_us`, when given, is
    /// below `start_us`; the first PLAY without range starts at the end.
    /// Errors: [`PlayError`].
    pub fn play(
        &mut self,
        now_us: u64,
        start_us: Option<u64>,
        end_us: Option<u64>,
        rate: PlayRate,
    ) -> Result<PlayRange, PlayError> {
        if self.tracks.is_empty() {
            return Err(PlayError::NoTracks);
        }
        let duration = self.file.duration_us;
        let reverse = rate.scale.is_reverse();
        if let Some(start) = start_us {
            let backwards = end_us.is_some_and(|e| if reverse { e >= start } else { e <= start });
            if start > duration || backwards {
                return Err(PlayError::InvalidRange);
            }
        }
        let (start, pacing_start) = match (start_us, self.state, self.paused_npt_us) {
            // Seek, or first PLAY: start at the sync sample at or before the
            // requested npt.
            (Some(t), _, _) => self.seek(t, end_us),
            // Already playing, same rate, no Range: keep going (RFC 2326 §10.5).
            (None, SessionState::Playing, _) if rate == self.rate => {
                let npt = self.npt_us(now_us);
                return Ok(PlayRange {
                    start_us: npt,
                    end_us: None,
                });
            }
            // A new Speed while playing at Scale 1: on from where it is now.
            (None, SessionState::Playing, _) if !rate.is_trick() && self.trick.is_none() => {
                let npt = self.npt_us(now_us);
                (npt, npt)
            }
            // Into or out of trick play: from the key frame at or before
            // the npt reached.
            (None, SessionState::Playing, _) => self.seek(self.npt_us(now_us), end_us),
            // Resume after PAUSE (or the end of a range) where the cursors
            // stopped; after trick play (or into it), from the key frame at
            // or before the npt reached.
            (None, SessionState::Ready, Some(p)) if self.resync || rate.is_trick() => {
                self.seek(p, end_us)
            }
            (None, SessionState::Ready, Some(p)) => (p, p),
            (None, SessionState::Ready, None) => {
                self.seek(if reverse { duration } else { 0 }, end_us)
            }
        };
        self.trick = None;
        self.resync = false;
        self.rate = rate;
        let mut range_end = end_us;
        if rate.is_trick() {
            range_end = self.start_trick(now_us, rate, end_us);
        }
        self.clock = Some(PlayClock {
            npt_start_us: pacing_start,
            wall_start_us: now_us,
        });
        self.state = SessionState::Playing;
        self.paused_npt_us = None;
        self.epoch = self.epoch.wrapping_add(1);
        self.bye_sent = false;
        Ok(PlayRange {
            start_us: start,
            end_us: range_end,
        })
    }

    /// Turns the cursors that [`Session::seek`] placed into trick play at
    /// shard clock `now_us`: the video stream from its key frame, in the
    /// direction of `rate`, to npt `end_us`; the other streams pause (their
    /// sequence numbers stay where they are). Returns the range end to
    /// report. Without a video stream (never the case after
    /// [`rate::negotiate`]) nothing is sent.
    fn start_trick(&mut self, now_us: u64, rate: PlayRate, end_us: Option<u64>) -> Option<u64> {
        let reverse = rate.scale.is_reverse();
        let video = self.video_stream();
        for (i, t) in self.tracks.iter_mut().enumerate() {
            if Some(i) != video {
                t.set_range(t.cursor(), t.cursor());
            }
        }
        let duration = self.file.duration_us;
        let npt_bound = match (reverse, end_us) {
            (true, e) => e.unwrap_or(0),
            (false, e) => e.unwrap_or(duration),
        };
        let v = video?;
        let t = &mut self.tracks[v];
        let sched = self.file.tracks.get(t.track())?;
        let key = t.cursor();
        // Forward: the packets before the range end; reverse: those at or
        // after its lower end.
        let bound = match (reverse, end_us) {
            (false, None) => sched.packets.len(),
            (_, _) => sched.first_at_or_after(npt_bound),
        };
        self.trick = Some(Box::new(Trick::start(
            v, t, sched, key, rate, now_us, bound, npt_bound,
        )));
        if reverse {
            Some(npt_bound)
        } else {
            end_us
        }
    }

    /// PAUSE (RFC 2326 §10.6) at shard clock `now_us`: stops pacing and
    /// remembers the npt reached, for the next PLAY. Returns true when the
    /// session was playing.
    pub fn pause(&mut self, now_us: u64) -> bool {
        self.stop_at(now_us)
    }

    /// Shard clock (µs) at which the PLAY range ends on the wall clock, when
    /// that differs from when its last packet is sent: in trick play, the
    /// time the npt reaches the range's bound, up to one key-frame interval
    /// (divided by the Scale) after the last key frame. `None` in normal
    /// play and when not playing.
    pub(crate) fn range_end_wall_us(&self) -> Option<u64> {
        self.trick.as_deref().map(Trick::end_wall_us)
    }

    /// The end of the PLAY range was sent at shard clock `now_us`: back to
    /// Ready, positioned at the end (as after a PAUSE). Returns true when the
    /// session was playing.
    pub fn finish_range(&mut self, now_us: u64) -> bool {
        self.stop_at(now_us)
    }

    fn stop_at(&mut self, now_us: u64) -> bool {
        if self.state != SessionState::Playing {
            return false;
        }
        self.paused_npt_us = Some(self.npt_us(now_us));
        // Trick play leaves the cursors off the npt reached: the next PLAY
        // seeks.
        self.resync |= self.trick.take().is_some();
        self.clock = None;
        self.state = SessionState::Ready;
        self.epoch = self.epoch.wrapping_add(1);
        true
    }

    /// True, once, when RTCP BYE is to be sent (the end of the stream or the
    /// end of the session); false when it was sent already.
    pub(crate) fn take_bye(&mut self) -> bool {
        !std::mem::replace(&mut self.bye_sent, true)
    }

    /// True when a sender report is due at `now_us`; then the next one is
    /// scheduled `interval_us` later.
    pub(crate) fn take_report_due(&mut self, now_us: u64, interval_us: u64) -> bool {
        if self.clock.is_none() || now_us < self.next_sr_us {
            return false;
        }
        self.next_sr_us = now_us.saturating_add(interval_us);
        true
    }

    /// Shard clock (µs) at which the next sender report is due while playing.
    pub fn next_report_us(&self) -> Option<u64> {
        self.clock.map(|_| self.next_sr_us)
    }

    /// Positions every track's cursor for a PLAY from npt `t_us` (to
    /// `end_us`). Decoding must start on a key frame: in the first track
    /// whose samples are not all sync samples (the video track), playback
    /// starts at the last sync sample presented at or before `t_us`; the other
    /// tracks start at that sample's presentation time. Returns `(range_start,
    /// pacing_start)`: the presentation npt reported in `Range` (µs), and the
    /// send time (µs) that the pacing clock starts from (earlier with
    /// B-frames, where a key frame is sent ahead of its presentation).
    fn seek(&mut self, t_us: u64, end_us: Option<u64>) -> (u64, u64) {
        let mut range_start = t_us;
        let mut video_cursor = None;
        let video = self.video_stream();
        let file = &self.file;
        if let Some(v) = video {
            let sched = &file.tracks[self.tracks[v].track()];
            let key = sched
                .packets
                .iter()
                .enumerate()
                .filter(|(_, p)| p.flags.sync())
                .take_while(|(_, p)| p.send_time_us <= t_us)
                .filter(|(_, p)| sched.presentation_us(p) <= t_us)
                .last()
                .or_else(|| {
                    sched
                        .packets
                        .iter()
                        .enumerate()
                        .find(|(_, p)| p.flags.sync())
                });
            if let Some((i, p)) = key {
                range_start = sched.presentation_us(p);
                video_cursor = Some((v, i));
            }
        }
        let mut pacing_start = u64::MAX;
        for (k, t) in self.tracks.iter_mut().enumerate() {
            let sched = &file.tracks[t.track()];
            let cursor = match video_cursor {
                Some((v, i)) if v == k => i,
                _ => sched.first_at_or_after(range_start),
            };
            let end = match end_us {
                // A reverse range's end lies before its start: trick play
                // bounds it.
                Some(e) if e > range_start => sched.first_at_or_after(e),
                _ => sched.packets.len(),
            };
            t.set_range(cursor, end);
            if let Some(p) = sched.packets.get(cursor) {
                pacing_start = pacing_start.min(p.send_time_us);
            }
        }
        if pacing_start == u64::MAX {
            pacing_start = range_start;
        }
        (range_start, pacing_start)
    }

    /// The first set-up stream whose samples are not all sync samples (the
    /// video track): seeks start on its key frames, and trick play sends
    /// only those.
    fn video_stream(&self) -> Option<usize> {
        let file = &self.file;
        self.tracks.iter().position(|t| {
            file.tracks.get(t.track()).is_some_and(|s| {
                s.packets
                    .iter()
                    .any(|p| p.flags.sample_start() && !p.flags.sync())
            })
        })
    }
}

/// What the pacer needs of a session playing at a rate other than normal
/// play ([`Session::rate_pacing`]).
pub(crate) enum RatePacing<'a> {
    /// Scale 1 at Speed `speed`: every packet, due `1/speed` as far apart.
    Speed {
        /// The pacing clock (send times to shard clock at Speed 1).
        clock: PlayClock,
        /// The speed.
        speed: Speed,
        /// The file.
        file: &'a Arc<FileSchedule>,
        /// The set-up streams.
        tracks: &'a mut [TrackStream],
    },
    /// Trick play: the video stream's key frames.
    Trick {
        /// The trick-play state.
        trick: &'a mut Trick,
        /// The file.
        file: &'a Arc<FileSchedule>,
        /// The set-up streams.
        tracks: &'a mut [TrackStream],
    },
}
