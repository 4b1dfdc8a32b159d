//! Bounded send-ahead in simulated time: 300 sessions of the sample file
//! started in one tick (their key frames due together) run twice, without
//! and with a 2 ms send-ahead. Every packet leaves no later than without it,
//! never more than send-ahead + one tick earlier, and the busiest tick after
//! the start carries fewer packets: the bursts spread into the lighter ticks
//! before them.

use std::collections::HashMap;
use std::sync::Arc;

use cadence_engine::catalog::{Catalog, MemoryCatalog};
use cadence_engine::endpoint::EndpointConfig;
use cadence_engine::pipeline::Pipeline;
use cadence_engine::sim::{session_of, Sim};
use rtsp_types::StatusCode;

const SAMPLE: &[u8] = include_bytes!("../../media/sample.mp4");
const BASE: &str = "rtsp://127.0.0.1:8554/sample.mp4";
const SESSIONS: usize = 300;
const TICK_US: u64 = 500;

/// Send time (µs) of every RTP packet by (SSRC, sequence number).
fn run(send_ahead_us: u64) -> (HashMap<(u32, u16), u64>, usize) {
    let mut catalog = MemoryCatalog::new();
    catalog.insert_bytes("sample.mp4", SAMPLE).expect("map");
    let catalog = Arc::new(catalog);
    let file = catalog.compile("sample.mp4").expect("compiles");
    let config = EndpointConfig {
        tick_us: TICK_US,
        send_ahead_us,
        ..EndpointConfig::default()
    };
    let mut sim = Sim::with_pipeline(catalog, Pipeline::new(), config);
    let mut cseq = 1;
    let mut ids = Vec::new();
    for n in 0..SESSIONS {
        let mut id = String::new();
        for (i, track) in file.tracks.iter().enumerate() {
            let session = if id.is_empty() {
                String::new()
            } else {
                format!("Session: {id}\r\n")
            };
            cseq += 1;
            let port = 10_000 + 4 * n + 2 * i;
            let r = sim.request(&format!(
                "SETUP {BASE}/trackID={} RTSP/1.0\r\nCSeq: {cseq}\r\n{session}Transport: RTP/AVP;unicast;client_port={}-{}\r\n\r\n",
                track.track_id,
                port,
                port + 1
            ));
            assert_eq!(r.status(), StatusCode::Ok);
            id = session_of(&r);
        }
        ids.push(id);
    }
    // Half of the sessions play for a second first, so that the pacer has an
    // average to fill the light ticks up to; the other half start together.
    for (n, id) in ids.iter().enumerate() {
        if n == SESSIONS / 2 {
            sim.advance(1_000_000);
        }
        cseq += 1;
        let r = sim.request(&format!(
            "PLAY {BASE} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {id}\r\nRange: npt=0-\r\n\r\n"
        ));
        assert_eq!(r.status(), StatusCode::Ok);
    }
    sim.advance(3_000_000);
    let mut per_tick: HashMap<u64, usize> = HashMap::new();
    let mut at = HashMap::new();
    for p in &sim.rtp.packets {
        // The PLAY tick itself sends what is due at once; send-ahead cannot
        // help there (that is phase spreading's job), so the peak is taken
        // after it.
        if p.at_us > 1_100_000 {
            *per_tick.entry(p.at_us).or_default() += 1;
        }
        assert!(at.insert((p.ssrc, p.seq), p.at_us).is_none(), "duplicate");
    }
    (at, per_tick.values().copied().max().unwrap_or(0))
}

#[test]
fn send_ahead_spreads_bursts_within_its_bound() {
    let (plain, plain_peak) = run(0);
    let (ahead, ahead_peak) = run(2_000);
    assert!(plain.len() > SESSIONS * 50, "{} packets", plain.len());
    assert_eq!(plain.len(), ahead.len(), "same packets sent");
    let mut earlier = 0;
    for (key, &t0) in &plain {
        let t1 = *ahead.get(key).expect("packet sent in both runs");
        assert!(t1 <= t0, "{key:?} sent later with send-ahead: {t1} > {t0}");
        assert!(
            t0 - t1 <= 2_000 + TICK_US,
            "{key:?} sent {} µs early (bound 2,500)",
            t0 - t1
        );
        earlier += usize::from(t1 < t0);
    }
    assert!(earlier > 0, "send-ahead never sent a packet early");
    assert!(
        ahead_peak < plain_peak,
        "busiest tick: {ahead_peak} packets with send-ahead, {plain_peak} without"
    );
    println!(
        "busiest tick {plain_peak} → {ahead_peak} packets; {earlier} of {} packets early",
        plain.len()
    );
}
