//! The simulated-time harness: one shard's endpoint (pipeline, controller,
//! pacer, RTCP, timers) over an in-memory catalog and a simulated clock, as
//! quinn-proto's `Pair`. A full client life is driven through it: DESCRIBE,
//! SETUP ×2, PLAY, PAUSE, PLAY, TEARDOWN, with a receiver report on the way,
//! and three things are checked against the compiled schedule itself: the
//! packets sent per track, the sender reports and their timing, and the
//! closed event with its counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cadence_engine::catalog::{Catalog, MemoryCatalog};
use cadence_engine::endpoint::EndpointConfig;
use cadence_engine::pipeline::{CloseReason, Extension, Pipeline, SessionEvent, SessionSummary};
use cadence_engine::sim::{header, session_of, SentRtp, Sim};
use rtcp_types::{
    Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriter, RtcpPacketWriterExt,
};
use rtsp_types::StatusCode;

const SAMPLE: &[u8] = include_bytes!("../../media/sample.mp4");
const BASE: &str = "rtsp://127.0.0.1:8554/sample.mp4";

/// Records every session event it sees.
#[derive(Clone, Default)]
struct Events {
    log: Arc<Mutex<Vec<String>>>,
    closed: Arc<Mutex<Vec<SessionSummary>>>,
}

impl Extension for Events {
    fn name(&self) -> &str {
        "events"
    }

    fn session_event(&mut self, event: &SessionEvent<'_>) {
        let name = match event {
            SessionEvent::Opened(_) => "opened",
            SessionEvent::Playing(_) => "playing",
            SessionEvent::Paused(_) => "paused",
            SessionEvent::Closed(s) => {
                if let Ok(mut c) = self.closed.lock() {
                    c.push((*s).clone());
                }
                "closed"
            }
        };
        if let Ok(mut l) = self.log.lock() {
            l.push(name.to_string());
        }
    }
}

/// Sender reports in the RTCP sent so far: (time µs, SSRC, packet count,
/// RTP timestamp), and BYEs: (time µs, SSRC). The SR that leads a BYE
/// compound (RFC 3550 §6.1) counts as part of the BYE.
type SenderReport = (u64, u32, u32, u32);

fn reports(sim: &Sim) -> (Vec<SenderReport>, Vec<(u64, u32)>) {
    let mut srs = Vec::new();
    let mut byes = Vec::new();
    for p in &sim.rtcp {
        let mut sr = Vec::new();
        let mut bye = Vec::new();
        for packet in Compound::parse(&p.bytes).expect("valid compound") {
            match packet.expect("valid packet") {
                Packet::Sr(s) => sr.push((p.at_us, s.ssrc(), s.packet_count(), s.rtp_timestamp())),
                Packet::Bye(b) => bye.extend(b.ssrcs().map(|s| (p.at_us, s))),
                _ => {}
            }
        }
        if bye.is_empty() {
            srs.extend(sr);
        } else {
            byes.extend(bye);
        }
    }
    (srs, byes)
}

#[test]
fn describe_setup_play_pause_play_teardown_in_simulated_time() {
    let mut catalog = MemoryCatalog::new();
    catalog.insert_bytes("sample.mp4", SAMPLE).expect("map");
    let catalog = Arc::new(catalog);
    let file = catalog.compile("sample.mp4").expect("compiles");
    let events = Events::default();
    let mut pipeline = Pipeline::new();
    pipeline.push(Box::new(events.clone()));
    let mut sim = Sim::with_pipeline(catalog, pipeline, EndpointConfig::default());

    // DESCRIBE and SETUP of both tracks.
    let r = sim.request(&format!("DESCRIBE {BASE} RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
    assert_eq!(r.status(), StatusCode::Ok);
    let mut ssrc_of_track = HashMap::new();
    let mut id = String::new();
    for (i, track) in file.tracks.iter().enumerate() {
        let session = if id.is_empty() {
            String::new()
        } else {
            format!("Session: {id}\r\n")
        };
        let r = sim.request(&format!(
            "SETUP {BASE}/trackID={} RTSP/1.0\r\nCSeq: {}\r\n{session}Transport: RTP/AVP;unicast;client_port={}-{}\r\n\r\n",
            track.track_id,
            2 + i,
            5000 + 2 * i,
            5001 + 2 * i
        ));
        assert_eq!(r.status(), StatusCode::Ok);
        id = session_of(&r);
        let t = header(&r, "Transport");
        let ssrc = t.split("ssrc=").nth(1).expect("ssrc");
        ssrc_of_track.insert(i, u32::from_str_radix(ssrc, 16).expect("hex ssrc"));
    }

    // PLAY at 0 for 6 s.
    let r = sim.request(&format!(
        "PLAY {BASE} RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nRange: npt=0-\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    sim.advance(2_000_000);
    // A receiver report about the video track at 2 s.
    let video_ssrc = ssrc_of_track[&0];
    // The client has seen every video packet so far: its extended highest
    // sequence number is the first one plus the count minus one (with the
    // cycle in the high bits if the 16-bit number wrapped).
    let video_sent: Vec<&SentRtp> = sim
        .rtp
        .packets
        .iter()
        .filter(|p| p.ssrc == video_ssrc)
        .collect();
    assert!(
        video_sent.len() > 10,
        "video packets in 2 s: {}",
        video_sent.len()
    );
    let video_expected = video_sent.len() as u32;
    let extended = u32::from(video_sent[0].seq) + video_expected - 1;
    let rr = ReceiverReport::builder(0x5eed).add_report_block(
        ReportBlock::builder(video_ssrc)
            .fraction_lost(64)
            .cumulative_lost(3)
            .extended_sequence_number(extended)
            .interarrival_jitter(900),
    );
    let mut buf = vec![0u8; rr.calculate_size().expect("size")];
    rr.write_into(&mut buf).expect("writes");
    assert!(sim.endpoint.on_rtcp(&buf, sim.now_us));
    sim.advance(4_000_000);
    let r = sim.request(&format!(
        "PAUSE {BASE} RTSP/1.0\r\nCSeq: 6\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    let sent_at_pause = sim.rtp.packets.len();
    // 4 s paused: nothing is sent.
    sim.advance(4_000_000);
    assert_eq!(sim.rtp.packets.len(), sent_at_pause);
    // PLAY again for 3 s, from where it paused.
    let r = sim.request(&format!(
        "PLAY {BASE} RTSP/1.0\r\nCSeq: 7\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(
        header(&r, "Range").starts_with("npt=6.000-"),
        "{}",
        header(&r, "Range")
    );
    sim.advance(3_000_000);
    let r = sim.request(&format!(
        "TEARDOWN {BASE} RTSP/1.0\r\nCSeq: 8\r\nSession: {id}\r\n\r\n"
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(sim.now_us, 13_000_000);

    // 1. Packets per track: exactly the schedule's packets of npt 0-9 s (sent
    // up to one 500 µs tick early), in order, with consecutive sequence numbers.
    let lead = sim.endpoint.config().tick_us;
    for (i, track) in file.tracks.iter().enumerate() {
        let expected: Vec<_> = track
            .packets
            .iter()
            .filter(|p| p.send_time_us <= 9_000_000 + lead)
            .collect();
        let sent: Vec<_> = sim
            .rtp
            .packets
            .iter()
            .filter(|p| p.track_index == i)
            .collect();
        assert_eq!(sent.len(), expected.len(), "track {i}: packets sent");
        assert!(sent.len() > 50, "track {i} sent {}", sent.len());
        for (k, (s, e)) in sent.iter().zip(&expected).enumerate() {
            assert_eq!(s.payload_len, e.payload_len, "track {i} packet {k}");
            assert_eq!(s.ssrc, ssrc_of_track[&i]);
            assert_eq!(s.seq, sent[0].seq.wrapping_add(k as u16), "track {i} seq");
            // Never late in simulated time: due = send time (before the
            // pause) or send time + 4 s (after it).
            let due = if e.send_time_us <= 6_000_000 + lead {
                e.send_time_us
            } else {
                e.send_time_us + 4_000_000
            };
            assert!(
                s.at_us + lead >= due && s.at_us <= due.max(lead) + lead,
                "{s:?} due {due}"
            );
        }
    }

    // 2. Sender reports: one per track at the first housekeeping after PLAY,
    // then 5 s later, none while paused, one at the resume; then BYE.
    let (srs, byes) = reports(&sim);
    for (i, ssrc) in &ssrc_of_track {
        let times: Vec<u64> = srs.iter().filter(|r| r.1 == *ssrc).map(|r| r.0).collect();
        assert_eq!(
            times,
            vec![500, 5_000_500, 10_000_500],
            "track {i} SR times"
        );
        // Each SR's packet count is what had been sent by then.
        for r in srs.iter().filter(|r| r.1 == *ssrc) {
            let sent = sim
                .rtp
                .packets
                .iter()
                .filter(|p| p.ssrc == *ssrc && p.at_us <= r.0)
                .count();
            assert_eq!(r.2 as usize, sent, "SR packet count at {} µs", r.0);
        }
        assert_eq!(
            byes.iter()
                .filter(|b| b.1 == *ssrc)
                .map(|b| b.0)
                .collect::<Vec<_>>(),
            vec![13_000_000],
            "one BYE per track, at TEARDOWN"
        );
    }
    // The SR's RTP timestamp maps npt on the track clock: the video SRs at
    // 5.0005 s and at the resume (npt 6.0005 s) are 1.0 s apart in RTP time.
    let video: Vec<_> = srs.iter().filter(|r| r.1 == video_ssrc).collect();
    let clock = file.tracks[0].clock_rate;
    assert_eq!(
        video[2].3.wrapping_sub(video[1].3),
        clock,
        "1 s of RTP ticks"
    );

    // 3. The lifecycle events, and the closed event's counters.
    let log = events.log.lock().expect("log").clone();
    assert_eq!(log, ["opened", "playing", "paused", "playing", "closed"]);
    let closed = events.closed.lock().expect("closed").clone();
    assert_eq!(closed.len(), 1);
    let c = &closed[0];
    assert_eq!(c.reason, CloseReason::Teardown);
    assert_eq!(c.duration_us, 13_000_000);
    assert_eq!(c.transport, "UDP");
    assert_eq!(c.packets_sent as usize, sim.rtp.packets.len());
    let bytes: u64 = sim
        .rtp
        .packets
        .iter()
        .map(|p| 12 + u64::from(p.payload_len))
        .sum();
    assert_eq!(c.bytes_sent, bytes);
    let v = &c.tracks[0];
    assert_eq!(v.ssrc, video_ssrc);
    assert_eq!(v.cumulative_lost, 3);
    assert_eq!(v.packets_expected, Some(u64::from(video_expected)));
    assert_eq!(
        c.packets_received(),
        Some(u64::from(video_expected) - 3),
        "expected minus lost, over the one reported track"
    );
    assert_eq!(v.fraction_lost, 0.25);
    assert_eq!(v.jitter_ticks, 900);
    assert_eq!(v.jitter_us(), 10_000, "900 ticks at 90 kHz");
    assert_eq!(v.reports, 1);
    assert_eq!((v.media.as_str(), v.codec.as_str()), ("video", "H264"));
    assert_eq!(c.tracks[1].reports, 0);
    assert_eq!(c.file_size, SAMPLE.len() as u64);
    assert!(sim.endpoint.controller().is_empty());
}
