//! Serving a schedule the fuzzer produced: whatever compiles must also
//! stream. The schedule goes into a one-file catalog and a simulated shard
//! runs a client through it (DESCRIBE, SETUP of every track over TCP
//! interleaved, PLAY, a seek, trick play, PAUSE, TEARDOWN) with the pacer
//! sending and RTCP sender reports going out.

use std::sync::Arc;

use cadence_engine::catalog::MemoryCatalog;
use cadence_engine::endpoint::Dispatch;
use cadence_engine::sim::{parse_request, session_of, Sim};
use cadence_hinting::FileSchedule;

/// Most tracks set up (interleaved channels are two per track).
const MAX_TRACKS: usize = 8;
/// Clock steps per playing phase.
const STEPS: u64 = 400;

/// Streams `schedule` to one simulated client; panics on any panic of the
/// server code.
pub fn serve(schedule: FileSchedule) {
    let duration_us = schedule.duration_us;
    let track_ids: Vec<u32> = schedule
        .tracks
        .iter()
        .take(MAX_TRACKS)
        .map(|t| t.track_id)
        .collect();
    let mut catalog = MemoryCatalog::new();
    catalog.insert("f.mp4", Arc::new(schedule));
    let mut c = Client {
        sim: Sim::new(Arc::new(catalog)),
        cseq: 0,
    };
    if c.send("DESCRIBE", "", "Accept: application/sdp\r\n").0 != 200 {
        // Files the engine refuses (no track, SDP it cannot build) end here.
        return;
    }
    let mut session = String::new();
    for (i, id) in track_ids.iter().enumerate() {
        let header = if session.is_empty() {
            String::new()
        } else {
            format!("Session: {session}\r\n")
        };
        let transport = format!(
            "{header}Transport: RTP/AVP/TCP;unicast;interleaved={}-{}\r\n",
            2 * i,
            2 * i + 1
        );
        let (status, s) = c.send("SETUP", &format!("/trackID={id}"), &transport);
        if status == 200 && session.is_empty() {
            session = s;
        }
    }
    if session.is_empty() {
        return;
    }
    let with = |extra: &str| format!("Session: {session}\r\n{extra}");
    let mid = duration_us / 2_000_000;
    for extra in [
        "Range: npt=0-\r\n".to_string(),
        format!("Range: npt={mid}-\r\n"),
        "Scale: 4\r\nRange: npt=0-\r\n".to_string(),
        "Scale: -2\r\n".to_string(),
    ] {
        c.send("PLAY", "", &with(&extra));
        c.run(duration_us);
    }
    c.send("PAUSE", "", &with(""));
    c.send("TEARDOWN", "", &with(""));
    c.run(0);
}

/// The simulated client of [`serve`].
struct Client {
    sim: Sim,
    cseq: u32,
}

impl Client {
    /// Sends `METHOD <base><suffix>` with `headers` (CRLF-terminated
    /// lines); returns the status (0 when not answered) and session ID.
    fn send(&mut self, method: &str, suffix: &str, headers: &str) -> (u16, String) {
        self.cseq += 1;
        let text = format!(
            "{method} rtsp://127.0.0.1:8554/f.mp4{suffix} RTSP/1.0\r\nCSeq: {}\r\n{headers}\r\n",
            self.cseq
        );
        match self.sim.dispatch(parse_request(text.as_bytes())) {
            Dispatch::Respond { response, .. } => {
                let _ = cadence_engine::rtsp::response::serialize(&response);
                (response.status().into(), session_of(&response))
            }
            _ => (0, String::new()),
        }
    }

    /// Runs the clock for the file's duration (at least a second, at most
    /// a minute) in [`STEPS`] steps, dropping what was sent.
    fn run(&mut self, duration_us: u64) {
        let span = duration_us.clamp(1_000_000, 60_000_000);
        let step = span / STEPS;
        for _ in 0..STEPS {
            self.sim.now_us += step;
            self.sim.step();
            self.sim.rtp.packets.clear();
            self.sim.rtcp.clear();
        }
    }
}
