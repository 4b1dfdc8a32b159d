//! RTCP BYE at the end of a PLAY range, in simulated time, with the exact
//! requests live555's openRTSP (2026.06.24) sends for `openRTSP -z 2 -s 10
//! -d 10 URL` and `openRTSP -d 4 URL`.
//!
//! The interoperability bug this guards: the BYE went out in the same tick
//! as the last RTP packets. openRTSP reads one socket per event-loop turn
//! and ends the session on the BYE of every track, so over UDP it dropped
//! the last key frame of a Scale 2 range (4 of 5 key frames in the file it
//! wrote; 5 of 5 over TCP, where the BYE follows the RTP in order). Now the
//! BYE follows `BYE_GRACE_US` after the last packet, and in trick play
//! comes at the range's end on the wall clock.

use std::sync::Arc;

use cadence_engine::catalog::{Catalog, MemoryCatalog};
use cadence_engine::endpoint::{EndpointConfig, BYE_GRACE_US};
use cadence_engine::pipeline::Pipeline;
use cadence_engine::sim::{header, session_of, Sim};
use cadence_hinting::FileSchedule;
use rtcp_types::{Compound, Packet};
use rtsp_types::StatusCode;

const SAMPLE: &[u8] = include_bytes!("../../media/sample.mp4");
const BASE: &str = "rtsp://127.0.0.1:8554/sample.mp4";
const UA: &str = "User-Agent: openRTSP (LIVE555 Streaming Media v2026.06.24)";
const TICK: u64 = 500;

struct Player {
    sim: Sim,
    file: Arc<FileSchedule>,
    id: String,
    ssrcs: Vec<u32>,
}

impl Player {
    /// DESCRIBE and the two SETUPs as openRTSP sends them over UDP.
    fn new() -> Player {
        let mut catalog = MemoryCatalog::new();
        catalog.insert_bytes("sample.mp4", SAMPLE).expect("map");
        let catalog = Arc::new(catalog);
        let file = catalog.compile("sample.mp4").expect("compiles");
        let config = EndpointConfig {
            tick_us: TICK,
            ..EndpointConfig::default()
        };
        let mut sim = Sim::with_pipeline(catalog, Pipeline::new(), config);
        let r = sim.request(&format!(
            "DESCRIBE {BASE} RTSP/1.0\r\nCSeq: 3\r\n{UA}\r\nAccept: application/sdp\r\n\r\n"
        ));
        assert_eq!(r.status(), StatusCode::Ok);
        assert_eq!(header(&r, "Content-Base"), format!("{BASE}/"));
        let mut id = String::new();
        let mut ssrcs = Vec::new();
        for (n, t) in file.tracks.iter().enumerate() {
            let session = if id.is_empty() {
                String::new()
            } else {
                format!("Session: {id}\r\n")
            };
            let r = sim.request(&format!(
                "SETUP {BASE}/trackID={} RTSP/1.0\r\nCSeq: {}\r\n{UA}\r\nTransport: RTP/AVP;unicast;client_port={}-{}\r\n{session}\r\n",
                t.track_id,
                4 + n,
                53072 + 2 * n,
                53073 + 2 * n
            ));
            assert_eq!(r.status(), StatusCode::Ok, "SETUP track {}", t.track_id);
            id = session_of(&r);
            let transport = header(&r, "Transport");
            let ssrc = transport.split("ssrc=").nth(1).expect("ssrc");
            ssrcs.push(u32::from_str_radix(ssrc, 16).expect("hex ssrc"));
        }
        Player {
            sim,
            file,
            id,
            ssrcs,
        }
    }

    /// openRTSP's aggregate PLAY (on the Content-Base) with `headers`.
    fn play(&mut self, cseq: u32, headers: &str) {
        let id = self.id.clone();
        let r = self.sim.request(&format!(
            "PLAY {BASE}/ RTSP/1.0\r\nCSeq: {cseq}\r\n{UA}\r\nSession: {id}\r\n{headers}\r\n"
        ));
        assert_eq!(r.status(), StatusCode::Ok, "PLAY {headers:?}");
    }

    /// BYEs sent from RTCP record index `from` on: (time µs, SSRC).
    fn byes(&self, from: usize) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for p in &self.sim.rtcp[from..] {
            for packet in Compound::parse(&p.bytes).expect("valid compound") {
                if let Packet::Bye(b) = packet.expect("valid packet") {
                    out.extend(b.ssrcs().map(|s| (p.at_us, s)));
                }
            }
        }
        out
    }

    fn video(&self) -> usize {
        self.file
            .tracks
            .iter()
            .position(|t| t.sdp.contains("m=video"))
            .expect("video track")
    }

    fn sorted_ssrcs(&self) -> Vec<u32> {
        let mut v = self.ssrcs.clone();
        v.sort_unstable();
        v
    }
}

fn ssrcs_of(byes: &[(u64, u32)]) -> Vec<u32> {
    let mut v: Vec<u32> = byes.iter().map(|b| b.1).collect();
    v.sort_unstable();
    v
}

#[test]
fn trick_play_bye_comes_at_the_range_end_after_the_last_key_frame() {
    let mut p = Player::new();
    let t0 = p.sim.now_us;
    p.play(6, "Scale: 2.000000\r\nRange: npt=10.000-20.000\r\n");
    p.sim.advance(8_000_000);
    let video = p.video();
    let keys: Vec<u64> = p
        .sim
        .rtp
        .packets
        .iter()
        .filter(|s| s.track_index == video)
        .map(|s| s.at_us)
        .collect();
    let last_packet = *keys.last().expect("video sent");
    let mut starts = keys.clone();
    starts.dedup();
    // Key frames at 10, 12, 14, 16, 18 s, one per wall-clock second.
    assert_eq!(starts.len(), 5, "five key frames: {starts:?}");
    let byes = p.byes(0);
    assert_eq!(ssrcs_of(&byes), p.sorted_ssrcs(), "one BYE per track");
    for &(at, ssrc) in &byes {
        // The range (10 s of media at Scale 2) ends 5 s after the PLAY,
        // a second after the last key frame: the BYE waits for it.
        assert!(
            at >= t0 + 5_000_000 && at <= t0 + 5_000_000 + 2 * TICK,
            "BYE of {ssrc:08X} at {} µs after PLAY, expected 5 s",
            at - t0
        );
        assert!(at >= last_packet + BYE_GRACE_US);
    }
}

#[test]
fn normal_play_bye_follows_the_last_packet_after_the_grace() {
    let mut p = Player::new();
    p.play(6, "Range: npt=0.000-4.000\r\n");
    p.sim.advance(6_000_000);
    let last = p
        .sim
        .rtp
        .packets
        .iter()
        .map(|s| s.at_us)
        .max()
        .expect("sent");
    let byes = p.byes(0);
    assert_eq!(ssrcs_of(&byes), p.sorted_ssrcs(), "one BYE per track");
    for &(at, _) in &byes {
        assert!(
            at >= last + BYE_GRACE_US && at <= last + BYE_GRACE_US + 2 * TICK,
            "BYE at {at}, last RTP packet at {last}"
        );
    }
    // Nothing is sent twice, and nothing after the BYE.
    p.sim.advance(3_000_000);
    assert_eq!(p.byes(0).len(), byes.len());
    assert_eq!(
        p.sim.rtp.packets.iter().map(|s| s.at_us).max(),
        Some(last),
        "no RTP after the end of the range"
    );
}

#[test]
fn a_play_before_the_pending_bye_cancels_it_and_a_teardown_sends_it_at_once() {
    let mut p = Player::new();
    p.play(6, "Range: npt=0.000-2.000\r\n");
    p.sim.advance(2_000_000);
    let last = p
        .sim
        .rtp
        .packets
        .iter()
        .map(|s| s.at_us)
        .max()
        .expect("sent");
    // Within the grace: no BYE yet; then the next range.
    assert!(p.sim.now_us < last + BYE_GRACE_US, "still within the grace");
    assert!(p.byes(0).is_empty(), "no BYE with the last packets");
    p.play(7, "Range: npt=2.000-4.000\r\n");
    let from_rtcp = p.sim.rtcp.len();
    p.sim.advance(1_000_000);
    assert!(p.byes(0).is_empty(), "the first range's BYE was dropped");
    // The second range ends at 4 s; TEARDOWN before its BYE is due sends
    // one BYE per track at once, and none follows.
    p.sim.advance(1_050_000);
    assert!(p.byes(from_rtcp).is_empty());
    let id = p.id.clone();
    let at = p.sim.now_us;
    let r = p.sim.request(&format!(
        "TEARDOWN {BASE}/ RTSP/1.0\r\nCSeq: 8\r\n{UA}\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    p.sim.advance(1_000_000);
    let byes = p.byes(0);
    assert_eq!(ssrcs_of(&byes), p.sorted_ssrcs(), "one BYE per track");
    assert!(byes.iter().all(|b| b.0 == at), "at the TEARDOWN: {byes:?}");
}
