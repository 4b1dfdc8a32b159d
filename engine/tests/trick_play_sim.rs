//! Trick play and delivery speed in simulated time (RFC 2326 §12.34 Scale,
//! §12.35 Speed), through the endpoint, on the bundled sample
//! (media/sample.mp4: ffmpeg-hinted H.264 + AAC, 20 s, 25 fps, a key frame
//! every 2 s). Every packet sent is matched to its schedule entry, so the
//! tests check exactly which packets go out, when, and with which sequence
//! numbers and timestamps, against the compiled schedule itself.

use std::sync::Arc;

use cadence_engine::catalog::{Catalog, MemoryCatalog};
use cadence_engine::endpoint::EndpointConfig;
use cadence_engine::pipeline::Pipeline;
use cadence_engine::session::{RateLimits, SessionId, SessionState};
use cadence_engine::sim::{header, session_of, SentRtp, Sim};
use cadence_hinting::FileSchedule;
use rtcp_types::{Compound, Packet};
use rtsp_types::{Response, StatusCode};

const SAMPLE: &[u8] = include_bytes!("../../media/sample.mp4");
const BASE: &str = "rtsp://127.0.0.1:8554/sample.mp4";
/// The pacer tick of the simulation, µs: packets go out up to one tick
/// early (and the first, due at the PLAY, at the next tick).
const TICK: u64 = 500;

struct Client {
    sim: Sim,
    id: String,
    file: Arc<FileSchedule>,
    /// Index of the video track in the file (and in the session: both are set up in order).
    video: usize,
    audio: usize,
    ssrc: Vec<u32>,
    cseq: u32,
}

impl Client {
    fn new() -> Client {
        Client::with_limits(RateLimits::default(), true)
    }

    /// A session on the sample with both tracks set up (or the audio track
    /// only), under `limits`.
    fn with_limits(limits: RateLimits, video_too: bool) -> Client {
        let mut catalog = MemoryCatalog::new();
        catalog.insert_bytes("sample.mp4", SAMPLE).expect("map");
        let catalog = Arc::new(catalog);
        let file = catalog.compile("sample.mp4").expect("compiles");
        let config = EndpointConfig {
            tick_us: TICK,
            rate_limits: limits,
            ..EndpointConfig::default()
        };
        let sim = Sim::with_pipeline(catalog, Pipeline::new(), config);
        let video = file
            .tracks
            .iter()
            .position(|t| t.sdp.contains("m=video"))
            .expect("video track");
        let audio = 1 - video;
        let mut c = Client {
            sim,
            id: String::new(),
            file,
            video,
            audio,
            ssrc: vec![0; 2],
            cseq: 1,
        };
        let tracks: Vec<usize> = if video_too { vec![0, 1] } else { vec![audio] };
        for i in tracks {
            let session = if c.id.is_empty() {
                String::new()
            } else {
                format!("Session: {}\r\n", c.id)
            };
            let r = c.request(&format!(
                "SETUP {BASE}/trackID={} RTSP/1.0\r\nCSeq: {{cseq}}\r\n{session}Transport: RTP/AVP;unicast;client_port={}-{}\r\n\r\n",
                c.file.tracks[i].track_id,
                5000 + 2 * i,
                5001 + 2 * i
            ));
            assert_eq!(r.status(), StatusCode::Ok);
            c.id = session_of(&r);
            let t = header(&r, "Transport");
            let ssrc = t.split("ssrc=").nth(1).expect("ssrc");
            c.ssrc[i] = u32::from_str_radix(ssrc, 16).expect("hex ssrc");
        }
        c
    }

    /// Sends `text` with `{cseq}` replaced by the next CSeq.
    fn request(&mut self, text: &str) -> Response<Vec<u8>> {
        self.cseq += 1;
        let text = text.replace("{cseq}", &self.cseq.to_string());
        self.sim.request(&text)
    }

    fn play(&mut self, headers: &str) -> Response<Vec<u8>> {
        let id = self.id.clone();
        self.request(&format!(
            "PLAY {BASE} RTSP/1.0\r\nCSeq: {{cseq}}\r\nSession: {id}\r\n{headers}\r\n"
        ))
    }

    fn state(&self) -> SessionState {
        let key = self
            .sim
            .endpoint
            .controller()
            .key_of(SessionId::parse(&self.id).expect("id"))
            .expect("session");
        self.sim
            .endpoint
            .controller()
            .session(key)
            .expect("session")
            .state()
    }

    /// Packets of file track `track` sent from index `from` of the record on.
    fn sent(&self, track: usize, from: usize) -> Vec<SentRtp> {
        self.sim.rtp.packets[from..]
            .iter()
            .filter(|p| p.track_index == track)
            .cloned()
            .collect()
    }

    /// The key-frame sample (index of its first packet) that packet `i` of
    /// track `track` belongs to, or `None` when it belongs to another frame.
    fn key_frame_of(&self, track: usize, i: usize) -> Option<usize> {
        let packets = &self.file.tracks[track].packets;
        let start = (0..=i).rev().find(|&j| packets[j].flags.sample_start())?;
        packets[start].flags.sync().then_some(start)
    }

    /// Presentation npt (µs) of packet `i` of track `track`.
    fn npt_of(&self, track: usize, i: usize) -> u64 {
        let t = &self.file.tracks[track];
        t.presentation_us(&t.packets[i])
    }

    /// The key frames of the video track sent in `pkts`, in order: (first
    /// packet index, first send time µs), each asserted complete and
    /// contiguous, with one sequence number per packet.
    fn key_frames(&self, pkts: &[SentRtp]) -> Vec<(usize, u64, u32)> {
        let mut out: Vec<(usize, u64, u32)> = Vec::new();
        for (n, p) in pkts.iter().enumerate() {
            let key = self
                .key_frame_of(self.video, p.packet_index)
                .unwrap_or_else(|| panic!("packet {} is not part of a key frame", p.packet_index));
            if n > 0 {
                assert_eq!(
                    p.seq,
                    pkts[n - 1].seq.wrapping_add(1),
                    "sequence numbers are continuous"
                );
            }
            match out.last() {
                Some(&(k, at, ts)) if k == key => {
                    assert_eq!(p.timestamp, ts, "one timestamp per key frame");
                    assert_eq!(p.at_us, at, "a key frame's packets go out together");
                    assert_eq!(p.packet_index, pkts[n - 1].packet_index + 1);
                }
                _ => {
                    assert_eq!(
                        p.packet_index, key,
                        "a key frame starts with its first packet"
                    );
                    out.push((key, p.at_us, p.timestamp));
                }
            }
        }
        out
    }

    /// Sender reports sent from record index `from` on: (time µs, SSRC, RTP time).
    fn sender_reports(&self, from: usize) -> Vec<(u64, u32, u32)> {
        let mut out = Vec::new();
        for p in &self.sim.rtcp[from..] {
            let mut bye = false;
            let mut srs = Vec::new();
            for packet in Compound::parse(&p.bytes).expect("valid compound") {
                match packet.expect("valid packet") {
                    Packet::Sr(s) => srs.push((p.at_us, s.ssrc(), s.rtp_timestamp())),
                    Packet::Bye(_) => bye = true,
                    _ => {}
                }
            }
            if !bye {
                out.extend(srs);
            }
        }
        out
    }
}

/// `seq=` and `rtptime=` of the RTP-Info entry of `track_id`.
fn rtp_info(r: &Response<Vec<u8>>, track_id: u32) -> (u16, u32) {
    let info = header(r, "RTP-Info");
    let entry = info
        .split(',')
        .find(|e| e.contains(&format!("/trackID={track_id};")))
        .unwrap_or_else(|| panic!("no RTP-Info for track {track_id}: {info}"));
    let field = |name: &str| {
        entry
            .split(';')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {entry}"))
            .to_string()
    };
    (
        field("seq=").parse().expect("seq"),
        field("rtptime=").parse().expect("rtptime"),
    )
}

#[test]
fn scale_2_sends_only_key_frames_forward_one_per_second() {
    let mut c = Client::new();
    let r = c.request(&format!(
        "DESCRIBE {BASE} RTSP/1.0\r\nCSeq: {{cseq}}\r\n\r\n"
    ));
    let sdp = String::from_utf8(r.body().clone()).expect("utf8");
    assert!(
        sdp.contains(
            "a=x-media-properties:Random-Access, Immutable, Unlimited, Scales=\"-8:-1, 1:8\"\r\n"
        ),
        "{sdp}"
    );
    c.sim.advance(10_000);
    let t0 = c.sim.now_us;
    let r = c.play("Range: npt=3-\r\nScale: 2\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(header(&r, "Scale"), "2.000");
    assert_eq!(header(&r, "Speed"), "1.000", "trick play states its Speed");
    assert!(
        header(&r, "Range").starts_with("npt=2.000-20."),
        "{}",
        header(&r, "Range")
    );
    let video_id = c.file.tracks[c.video].track_id;
    let (seq0, rtptime0) = rtp_info(&r, video_id);
    let sr_from = c.sim.rtcp.len();
    c.sim.advance(12_000_000);

    assert!(c.sent(c.audio, 0).is_empty(), "audio pauses in trick play");
    let pkts = c.sent(c.video, 0);
    assert_eq!(pkts[0].seq, seq0, "RTP-Info names the first packet");
    assert_eq!(pkts[0].timestamp, rtptime0);
    let keys = c.key_frames(&pkts);
    // Key frames at 2, 4, ..., 18 s, in order; a 2 s GOP at Scale 2 is one
    // per second of wall time, and one second of play time (90,000 ticks)
    // per key frame on the RTP timeline.
    let npts: Vec<u64> = keys.iter().map(|k| c.npt_of(c.video, k.0)).collect();
    assert_eq!(
        npts,
        (1..10).map(|s| s * 2_000_000).collect::<Vec<_>>(),
        "every key frame from 2 s on, in order"
    );
    for (n, &(_, at, ts)) in keys.iter().enumerate() {
        let due = t0 + n as u64 * 1_000_000;
        assert!(
            at.abs_diff(due) <= TICK,
            "key frame {n} sent at {at} µs, due at {due} µs"
        );
        assert_eq!(
            ts,
            rtptime0.wrapping_add(n as u32 * 90_000),
            "key frame {n}"
        );
    }
    // The range ended with the last key frame: back to Ready, BYE sent.
    assert_eq!(c.state(), SessionState::Ready);
    // Sender reports map the wall clock to the timestamps sent: the play
    // timeline, 90 kHz from the first key frame; none for the paused audio.
    let srs = c.sender_reports(sr_from);
    assert!(srs.iter().any(|s| s.1 == c.ssrc[c.video]), "{srs:?}");
    for &(at, ssrc, rtp) in &srs {
        assert_eq!(ssrc, c.ssrc[c.video], "no report for the paused audio");
        let expected = rtptime0.wrapping_add(((at - t0) * 9 / 100) as u32);
        assert!(
            rtp.wrapping_sub(expected) as i32 <= 1 && expected.wrapping_sub(rtp) as i32 <= 1,
            "SR at {at}: {rtp}, expected {expected}"
        );
    }
}

#[test]
fn scale_minus_2_sends_key_frames_backwards() {
    let mut c = Client::new();
    let t0 = c.sim.now_us;
    // GStreamer's form: start above end.
    let r = c.play("Range: npt=17-0\r\nScale: -2\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(header(&r, "Scale"), "-2.000");
    assert_eq!(header(&r, "Range"), "npt=16.000-0.000");
    let (seq0, rtptime0) = rtp_info(&r, c.file.tracks[c.video].track_id);
    c.sim.advance(10_000_000);
    assert!(c.sent(c.audio, 0).is_empty());
    let pkts = c.sent(c.video, 0);
    assert_eq!((pkts[0].seq, pkts[0].timestamp), (seq0, rtptime0));
    let keys = c.key_frames(&pkts);
    let npts: Vec<u64> = keys.iter().map(|k| c.npt_of(c.video, k.0)).collect();
    assert_eq!(
        npts,
        (0..9).rev().map(|s| s * 2_000_000).collect::<Vec<_>>(),
        "every key frame from 16 s down to 0, in order"
    );
    for (n, &(_, at, ts)) in keys.iter().enumerate() {
        let due = t0 + n as u64 * 1_000_000;
        assert!(at.abs_diff(due) <= TICK, "key frame {n} at {at}, due {due}");
        // Timestamps still increase: the play timeline.
        assert_eq!(ts, rtptime0.wrapping_add(n as u32 * 90_000));
    }
    assert_eq!(c.state(), SessionState::Ready);

    // Without Range, a first reverse PLAY starts at the end; a range
    // running forwards is refused.
    let mut c = Client::new();
    let r = c.play("Range: npt=4-10\r\nScale: -2\r\n");
    assert_eq!(r.status(), StatusCode::InvalidRange);
    let r = c.play("Scale: -4\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(
        header(&r, "Range").starts_with("npt=18.000-0.000"),
        "{}",
        header(&r, "Range")
    );
    c.sim.advance(1_000_000);
    let keys = c.key_frames(&c.sent(c.video, 0));
    // Scale 4: 18, 16, 14 s in the first second (0, 0.5, 1.0 s).
    let npts: Vec<u64> = keys.iter().map(|k| c.npt_of(c.video, k.0)).collect();
    assert_eq!(npts, vec![18_000_000, 16_000_000, 14_000_000]);
}

#[test]
fn scale_1_resumes_normal_play_at_the_key_frame_reached() {
    let mut c = Client::new();
    let r = c.play("Range: npt=0-\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    c.sim.advance(1_000_000);
    let last_audio = c.sent(c.audio, 0).last().expect("audio").seq;
    let from = c.sim.rtp.packets.len();
    // Fast forward from npt 1 s (key frame 0) ...
    let r = c.play("Scale: 2\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    assert!(
        header(&r, "Range").starts_with("npt=0.000-"),
        "{}",
        header(&r, "Range")
    );
    let last_normal_video = c.sent(c.video, 0).last().expect("video").seq;
    let (seq, _) = rtp_info(&r, c.file.tracks[c.video].track_id);
    assert_eq!(seq, last_normal_video.wrapping_add(1));
    // ... for 3.2 s: npt 0 + 2 × 3.2 = 6.4 s.
    c.sim.advance(3_200_000);
    let trick = c.sent(c.video, from);
    let keys = c.key_frames(&trick);
    assert_eq!(keys.len(), 4, "key frames at 0, 2, 4 and 6 s");
    assert!(c.sent(c.audio, from).is_empty());
    let from = c.sim.rtp.packets.len();
    let r = c.play("Scale: 1\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(header(&r, "Scale"), "1.000");
    assert!(
        header(&r, "Range").starts_with("npt=6.000-"),
        "the key frame at or before 6.4 s: {}",
        header(&r, "Range")
    );
    let video_id = c.file.tracks[c.video].track_id;
    let audio_id = c.file.tracks[c.audio].track_id;
    let (vseq, vts) = rtp_info(&r, video_id);
    let (aseq, _) = rtp_info(&r, audio_id);
    assert_eq!(vseq, trick.last().expect("trick").seq.wrapping_add(1));
    assert_eq!(
        aseq,
        last_audio.wrapping_add(1),
        "audio numbering continues"
    );
    c.sim.advance(2_000_000);
    let video = c.sent(c.video, from);
    let audio = c.sent(c.audio, from);
    assert_eq!((video[0].seq, video[0].timestamp), (vseq, vts));
    assert_eq!(audio[0].seq, aseq);
    // Normal play again: every packet from the key frame on, in schedule
    // order, with its normal timestamp.
    let sched = &c.file.tracks[c.video];
    let first = video[0].packet_index;
    assert_eq!(c.npt_of(c.video, first), 6_000_000);
    for (n, p) in video.iter().enumerate() {
        assert_eq!(p.packet_index, first + n);
        assert_eq!(p.seq, vseq.wrapping_add(n as u16));
        assert_eq!(
            p.timestamp.wrapping_sub(vts),
            sched.packets[p.packet_index]
                .rtp_time
                .wrapping_sub(sched.packets[first].rtp_time)
        );
    }
    assert!(video.len() > 50, "{} packets in 2 s", video.len());
}

#[test]
fn pause_in_trick_play_and_resume_normally() {
    let mut c = Client::new();
    let r = c.play("Range: npt=0-\r\nScale: 4\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    c.sim.advance(1_300_000);
    // Scale 4: npt 5.2 s after 1.3 s.
    let r = c.request(&format!(
        "PAUSE {BASE} RTSP/1.0\r\nCSeq: {{cseq}}\r\nSession: {}\r\n\r\n",
        c.id
    ));
    assert_eq!(r.status(), StatusCode::Ok);
    let sent = c.sim.rtp.packets.len();
    c.sim.advance(1_000_000);
    assert_eq!(c.sim.rtp.packets.len(), sent, "nothing while paused");
    let r = c.play("");
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(header(&r, "Scale"), "", "normal play, not asked for");
    assert!(
        header(&r, "Range").starts_with("npt=4.000-"),
        "{}",
        header(&r, "Range")
    );
    c.sim.advance(500_000);
    assert!(!c.sent(c.audio, sent).is_empty(), "audio plays again");
}

#[test]
fn speed_2_sends_every_packet_twice_as_fast_with_normal_timestamps() {
    let mut c = Client::new();
    c.sim.advance(5_000);
    let t0 = c.sim.now_us;
    let r = c.play("Range: npt=0-\r\nSpeed: 2\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(header(&r, "Speed"), "2.000");
    assert_eq!(header(&r, "Scale"), "");
    let sr_from = c.sim.rtcp.len();
    c.sim.advance(3_000_000);
    // The pacing clock starts at the earliest first packet of the tracks.
    let s0 = c
        .file
        .tracks
        .iter()
        .map(|t| t.packets[0].send_time_us)
        .min()
        .expect("tracks");
    let due_of = |send: u64| t0 + (send - s0) / 2;
    for track in [c.video, c.audio] {
        let pkts = c.sent(track, 0);
        let sched = &c.file.tracks[track];
        let (_, rtptime0) = rtp_info(&r, sched.track_id);
        // 3 s at Speed 2: the first 6 s of the schedule, every packet.
        let expected = sched
            .packets
            .iter()
            .filter(|q| due_of(q.send_time_us) <= c.sim.now_us + TICK)
            .count();
        assert!(expected > 30, "{expected}");
        assert_eq!(pkts.len(), expected, "track {track}: every packet of 6 s");
        let first_ts = pkts[0].timestamp;
        assert_eq!(first_ts, rtptime0);
        for (n, p) in pkts.iter().enumerate() {
            let q = &sched.packets[n];
            assert_eq!(p.packet_index, n);
            assert_eq!(p.seq, pkts[0].seq.wrapping_add(n as u16));
            assert_eq!(
                p.timestamp.wrapping_sub(first_ts),
                q.rtp_time.wrapping_sub(sched.packets[0].rtp_time),
                "timestamps unchanged"
            );
            let due = due_of(q.send_time_us);
            assert!(
                p.at_us.abs_diff(due) <= TICK,
                "packet {n} of track {track} at {}, due {due}",
                p.at_us
            );
        }
    }
    // Sender reports follow the npt, which moves twice as fast: RTP time of
    // npt 2 × (now − t0).
    let srs = c.sender_reports(sr_from);
    assert!(srs.len() >= 2, "{srs:?}");
    for &(at, ssrc, rtp) in &srs {
        let track = c.ssrc.iter().position(|s| *s == ssrc).expect("our ssrc");
        let sched = &c.file.tracks[track];
        let (_, rtptime0) = rtp_info(&r, sched.track_id);
        let npt = 2 * (at - t0);
        let expected = rtptime0
            .wrapping_sub(sched.packets[0].rtp_time)
            .wrapping_add(sched.rtp_at(npt));
        assert!(
            (rtp.wrapping_sub(expected) as i32).abs() <= 1,
            "SR of track {track} at {at}: {rtp}, expected {expected}"
        );
    }
}

#[test]
fn rates_are_clamped_to_the_nearest_supported_value() {
    let cases = [
        ("Scale: 100\r\n", "8.000", "1.000"),
        ("Scale: -100\r\n", "-8.000", "1.000"),
        ("Scale: 0.5\r\n", "1.000", ""),
        ("Scale: -0.25\r\n", "-1.000", "1.000"),
        ("Speed: 10\r\n", "", "4.000"),
        ("Speed: 0.1\r\n", "", "0.250"),
        ("Scale: 1.5\r\nSpeed: 1.5\r\n", "1.500", "1.500"),
    ];
    for (headers, scale, speed) in cases {
        let mut c = Client::new();
        let r = c.play(&format!("Range: npt=10-\r\n{headers}"));
        assert_eq!(r.status(), StatusCode::Ok, "{headers}");
        assert_eq!(header(&r, "Scale"), scale, "{headers}");
        assert_eq!(header(&r, "Speed"), speed, "{headers}");
    }
    // Slow motion falls back to normal play: every packet.
    let mut c = Client::new();
    c.play("Range: npt=0-\r\nScale: 0.5\r\n");
    c.sim.advance(1_000_000);
    assert!(!c.sent(c.audio, 0).is_empty());
    // A configured maximum.
    let mut c = Client::with_limits(
        RateLimits {
            max_scale_milli: 3_000,
            max_speed_milli: 2_000,
        },
        true,
    );
    let r = c.request(&format!(
        "DESCRIBE {BASE} RTSP/1.0\r\nCSeq: {{cseq}}\r\n\r\n"
    ));
    let sdp = String::from_utf8(r.body().clone()).expect("utf8");
    assert!(sdp.contains("Scales=\"-3:-1, 1:3\""), "{sdp}");
    let r = c.play("Range: npt=0-\r\nScale: 5\r\nSpeed: 3\r\n");
    assert_eq!(header(&r, "Scale"), "3.000");
    assert_eq!(header(&r, "Speed"), "2.000");
    // Scale 3 at Speed 2: six seconds of media per second, so key frames at
    // 0, 2 and 4 s go out at 0, 1/3 and 2/3 s.
    c.sim.advance(700_000);
    let keys = c.key_frames(&c.sent(c.video, 0));
    assert_eq!(keys.len(), 3, "{keys:?}");
    // Without a video track (audio only set up), there is no trick play:
    // Scale 1, and every audio packet.
    let mut c = Client::with_limits(RateLimits::default(), false);
    let r = c.play("Range: npt=0-\r\nScale: 2\r\n");
    assert_eq!(r.status(), StatusCode::Ok);
    assert_eq!(header(&r, "Scale"), "1.000");
    c.sim.advance(1_000_000);
    let audio = c.sent(c.audio, 0);
    let sched = &c.file.tracks[c.audio];
    let s0 = sched.packets[0].send_time_us;
    let expected = sched
        .packets
        .iter()
        .filter(|q| q.send_time_us - s0 <= c.sim.now_us + TICK)
        .count();
    assert!(expected > 3, "{expected}");
    assert_eq!(audio.len(), expected, "normal play of the audio");
}

#[test]
fn malformed_rates_are_refused_and_the_session_is_untouched() {
    for headers in [
        "Scale: 0\r\n",
        "Scale: -0.0\r\n",
        "Scale: NaN\r\n",
        "Scale: abc\r\n",
        "Scale: 1e3\r\n",
        "Speed: 0\r\n",
        "Speed: -2\r\n",
        "Speed: inf\r\n",
        "Speed: 2,5\r\n",
    ] {
        let mut c = Client::new();
        let r = c.play(&format!("Range: npt=0-\r\n{headers}"));
        assert_eq!(r.status(), StatusCode::BadRequest, "{headers}");
        assert_eq!(c.state(), SessionState::Ready, "{headers}");
        c.sim.advance(100_000);
        assert!(c.sim.rtp.packets.is_empty(), "{headers}");
    }
}
