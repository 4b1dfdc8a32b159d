//! Microbenchmarks of Cadence's hot paths (divan):
//! - compiling a hinted file's schedules (bytes of file per second),
//! - parsing an RTSP request and producing its serialized reply,
//! - incremental framing of a 64 KiB request fed one byte per receive,
//! - building one packet's RTP header and iovecs from a schedule entry,
//! - timing-wheel insert and expiry,
//! - one pacer tick over many playing sessions,
//! - the operating pieces: lateness tally, per-tick metrics flush, one
//!   scrape, an access log record sent by a shard and formatted by the
//!   logger thread.
//!
//! `cargo bench -p cadence-benches --bench hot_paths -- --test` runs each once.

use std::hint::black_box;
use std::net::SocketAddr;

use cadence_benches::rig::{repo_media_dir, PacerRig, RtspRig};
use cadence_engine::pacer::header::{self, RtpFields, MAX_HEADER_LEN};
use cadence_engine::pacer::wheel::{Entry, Wheel};
use cadence_engine::rtsp::framing;
use cadence_engine::shard::slots::{segment_iovecs, SlotPool};
use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;

fn main() {
    divan::main();
}

/// Hinted files to compile: the bundled ffmpeg sample, and Apple's hinted
/// file when `../shared/media` is present.
fn hinted_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let sample = repo_media_dir().join("sample.mp4");
    match std::fs::read(&sample) {
        Ok(b) => files.push(("ffmpeg sample.mp4".to_string(), b)),
        Err(e) => eprintln!("hot_paths: cannot read {}: {e}", sample.display()),
    }
    let apple = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/media/apple/sample_h264_300kbit.mp4");
    match std::fs::read(&apple) {
        Ok(b) => files.push(("apple sample_h264_300kbit.mp4".to_string(), b)),
        Err(_) => eprintln!(
            "hot_paths: NOTICE: {} absent, Apple-hinted compile benchmark skipped",
            apple.display()
        ),
    }
    files
}

mod compile {
    use super::*;

    /// Schedule compilation of the bundled sample (20 s, ffmpeg-hinted).
    #[divan::bench]
    fn ffmpeg_sample(b: Bencher) {
        bench_file(b, "ffmpeg sample.mp4");
    }

    /// Schedule compilation of Apple's hinted 70 s H.264 file.
    #[divan::bench]
    fn apple_h264(b: Bencher) {
        bench_file(b, "apple sample_h264_300kbit.mp4");
    }

    fn bench_file(b: Bencher, name: &str) {
        let files = hinted_files();
        let Some((found, bytes)) = files.into_iter().find(|(n, _)| n == name) else {
            return;
        };
        // The schedule must compile before its speed means anything.
        let compiled = cadence_hinting::compile::compile_slice(&bytes)
            .unwrap_or_else(|e| panic!("{found}: {e}"));
        assert!(!compiled.tracks.is_empty());
        b.counter(BytesCount::new(bytes.len()))
            .bench_local(|| cadence_hinting::compile::compile_slice(black_box(&bytes)).is_ok());
    }
}

mod rtsp {
    use super::*;

    fn rig() -> RtspRig {
        RtspRig::new(&repo_media_dir(), "sample.mp4").expect("bundled media/sample.mp4")
    }

    /// Framing + parsing one SETUP request (rtsp-types), no handling.
    #[divan::bench]
    fn parse_setup(b: Bencher) {
        let mut r = rig();
        let bytes = r.setup_bytes(0, 5000, None);
        assert!(framing::next(&bytes).is_some());
        b.counter(BytesCount::new(bytes.len()))
            .bench_local(|| framing::next(black_box(&bytes)).map(|(_, n)| n));
    }

    /// A 64 KiB request of short header lines, fed to a connection's
    /// [`framing::Framer`] one byte per push with a `next` after each (a
    /// slow or hostile client): linear, so bytes/s stays high.
    #[divan::bench]
    fn framer_per_byte_64k(b: Bencher) {
        let limits = framing::Limits {
            max_header_bytes: 128 * 1024,
            max_headers: 100_000,
            ..framing::Limits::default()
        };
        let mut msg = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
        while msg.len() < 64 * 1024 - 2 {
            msg.extend_from_slice(b"X-A: b\r\n");
        }
        msg.extend_from_slice(b"\r\n");
        let feed = |msg: &[u8]| {
            let mut framer = framing::Framer::new(limits);
            let mut frames = 0usize;
            for byte in msg {
                framer.push(std::slice::from_ref(byte));
                while let Some(frame) = framer.next_frame() {
                    black_box(&frame);
                    frames += 1;
                }
            }
            frames
        };
        assert_eq!(feed(&msg), 1, "the request frames");
        b.counter(BytesCount::new(msg.len()))
            .bench_local(|| feed(black_box(&msg)));
    }

    /// OPTIONS: parse, handle, serialize the reply.
    #[divan::bench]
    fn options_reply(b: Bencher) {
        let mut r = rig();
        let bytes = b"OPTIONS * RTSP/1.0\r\nCSeq: 2\r\nUser-Agent: cadence-bench\r\n\r\n".to_vec();
        assert_eq!(r.exchange(&bytes, 0, 4000).expect("exchange").status, 200);
        b.bench_local(|| {
            r.exchange(black_box(&bytes), 0, 4000)
                .map(|e| e.response_bytes)
                .ok()
        });
    }

    /// DESCRIBE: parse, handle (SDP from the compiled schedule), serialize.
    #[divan::bench]
    fn describe_reply(b: Bencher) {
        let mut r = rig();
        let bytes = r.describe_bytes();
        assert_eq!(r.exchange(&bytes, 0, 4000).expect("exchange").status, 200);
        b.bench_local(|| {
            r.exchange(black_box(&bytes), 0, 4000)
                .map(|e| e.response_bytes)
                .ok()
        });
    }

    /// One whole session setup and teardown as a player does it: DESCRIBE,
    /// SETUP ×2, PLAY, TEARDOWN (request formatting included). One item = one
    /// session; items/s bounds the setup rate of one shard's control path.
    #[divan::bench]
    fn session_cycle(b: Bencher) {
        let mut r = rig();
        let mut now = 0u64;
        b.counter(ItemsCount::new(1usize)).bench_local(|| {
            now += 10;
            let (id, _) = r.play_session(now, 5000).expect("session plays");
            let t = r.session_request_bytes("TEARDOWN", &id);
            r.exchange(&t, now, 5000).expect("teardown").status
        });
    }
}

mod packet {
    use super::*;

    /// RTP header (12 bytes) for one schedule entry.
    #[divan::bench]
    fn rtp_header(b: Bencher) {
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let mut seq = 0u16;
        b.bench_local(|| {
            seq = seq.wrapping_add(1);
            header::write(
                &RtpFields {
                    marker: seq & 7 == 0,
                    payload_type: 96,
                    seq,
                    timestamp: u32::from(seq) * 3600,
                    ssrc: 0x1234_5678,
                    toffset: None,
                },
                None,
                1200,
                black_box(&mut hdr),
            )
        });
    }

    /// The shard's per-packet work for UDP: header, then a send slot's
    /// msghdr + iovecs pointing at the mapped file (the schedule's packets in
    /// order, cycling), then the slot's release.
    #[divan::bench]
    fn slot_iovecs(b: Bencher) {
        let path = repo_media_dir().join("sample.mp4");
        let file = cadence_hinting::open(&path).expect("bundled sample compiles");
        let mut pool = SlotPool::new(64, false);
        let dest = SocketAddr::from(([127, 0, 0, 1], 5000));
        let all: Vec<(usize, usize)> = file
            .tracks
            .iter()
            .enumerate()
            .flat_map(|(t, s)| (0..s.packets.len()).map(move |p| (t, p)))
            .collect();
        let mut i = 0usize;
        let mut hdr = [0u8; MAX_HEADER_LEN];
        b.counter(ItemsCount::new(1usize)).bench_local(|| {
            let (t, p) = all[i % all.len()];
            i += 1;
            let track = &file.tracks[t];
            let packet = &track.packets[p];
            let n = header::write(
                &RtpFields {
                    marker: packet.flags.marker(),
                    payload_type: packet.payload_type,
                    seq: i as u16,
                    timestamp: packet.rtp_time,
                    ssrc: 7,
                    toffset: None,
                },
                None,
                packet.payload_len as usize,
                &mut hdr,
            )
            .unwrap_or(12);
            let segments = track.segments_of(packet);
            let (index, msg) = pool
                .fill(dest, &hdr[..n], |iov| {
                    segment_iovecs(&file, track, segments, iov, 0)
                })
                .expect("slot and segments fit");
            black_box(msg);
            pool.release(index);
        });
    }
}

mod wheel {
    use super::*;

    /// Inserting one entry 0-40 ms ahead.
    #[divan::bench]
    fn insert(b: Bencher) {
        let mut w = Wheel::new(4096, 1000, 0);
        let mut out = Vec::with_capacity(1 << 16);
        let mut i = 0u64;
        b.counter(ItemsCount::new(1usize)).bench_local(|| {
            i += 1;
            w.insert(
                (i * 7919) % 40_000,
                Entry {
                    key: i as u32,
                    epoch: 0,
                },
            );
            if w.len() >= 1 << 15 {
                // Keep memory bounded: drain everything (outside the usual path).
                w.expire(u64::MAX / 2, &mut out);
                out.clear();
                w = Wheel::new(4096, 1000, 0);
            }
        });
    }

    /// Steady state of 6,000 sessions each due every ~30 ms: per 1 ms tick,
    /// expire the due entries and reinsert each one 30 ms later. One item =
    /// one entry expired and reinserted.
    #[divan::bench]
    fn expire_reinsert_6000(b: Bencher) {
        const N: u64 = 6000;
        let mut w = Wheel::new(4096, 1000, 0);
        for k in 0..N {
            w.insert(
                k * 30_000 / N,
                Entry {
                    key: k as u32,
                    epoch: 0,
                },
            );
        }
        let mut out = Vec::with_capacity(4096);
        let mut now = 0u64;
        b.counter(ItemsCount::new((N / 30) as usize))
            .bench_local(|| {
                now += 1000;
                out.clear();
                w.expire(now, &mut out);
                for e in &out {
                    w.insert(now + 30_000, *e);
                }
                out.len()
            });
    }
}

mod pacer {
    use super::*;

    /// One 1 ms pacer tick over 6,000 playing UDP sessions of the bundled
    /// sample (about 200 packets per tick), packets built into send slots as
    /// the shard does; time per tick.
    #[divan::bench(sample_count = 50, sample_size = 20)]
    fn tick_6000_sessions(b: Bencher) {
        let mut rig =
            PacerRig::new(&repo_media_dir(), "sample.mp4", 6000, 1000).expect("sessions play");
        // Warm up past the ramp so every session is in steady state.
        for _ in 0..2000 {
            rig.tick();
        }
        b.bench_local(|| {
            let n = rig.tick();
            rig.replay_finished().expect("replay");
            n
        });
    }
}

mod ops {
    //! The operating pieces' costs on a shard: per packet, per tick, per
    //! closed session; and off the shards: one scrape (admin thread), one
    //! access log line formatted (logger thread).
    use super::*;
    use cadence_engine::access_log::{
        json_line, w3c_line, AccessLog, AccessLogConfig, AccessRecord,
    };
    use cadence_engine::metrics::{LatenessTally, ServerMetrics, ShardMetrics, Transport};
    use cadence_engine::pacer::TickStats;
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    /// Recording one packet's lateness in the shard-local tally.
    #[divan::bench]
    fn lateness_observe(b: Bencher) {
        let mut t = LatenessTally::default();
        let mut late = 0u64;
        b.counter(ItemsCount::new(1usize)).bench_local(|| {
            late = (late + 37) % 400;
            t.observe(black_box(late));
        });
        assert!(t.count() > 0);
    }

    /// Folding one tick's totals and lateness tally into the shard block.
    #[divan::bench]
    fn tick_flush(b: Bencher) {
        let m = ShardMetrics::new(0);
        let mut tally = LatenessTally::default();
        for us in [0, 50, 120, 900, 2_500] {
            tally.observe(us);
        }
        let stats = TickStats {
            packets: 120,
            bytes: 150_000,
            late: 1,
            max_late_us: 2_500,
            finished: 0,
            sink_full: false,
            lateness: tally,
        };
        b.bench_local(|| {
            m.add_tick(black_box(&stats));
            m.add_lateness(black_box(&tally));
        });
    }

    /// One scrape of a 2-shard server: the full text exposition.
    #[divan::bench]
    fn scrape_2_shards(b: Bencher) {
        let shards: Vec<_> = (0..2).map(|i| Arc::new(ShardMetrics::new(i))).collect();
        let m = ServerMetrics::new(shards);
        b.bench_local(|| m.encode().map(|s| s.len()).unwrap_or(0));
    }

    /// A closed session's access log record as a shard has it.
    fn record() -> AccessRecord {
        AccessRecord {
            started: SystemTime::now() - Duration::from_secs(125),
            start_npt_s: Some(0),
            user_agent: Some("LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)".into()),
            file_length_s: Some(596.0),
            file_size_bytes: Some(62_000_000),
            avg_bandwidth_bps: Some(800_000),
            transport: Some(Transport::Udp),
            audio_codec: Some("mpeg4-generic".into()),
            video_codec: Some("H264".into()),
            sc_bytes: 12_500_000,
            packets_sent: 10_000,
            client_packets_received: Some(9_990),
            client_packets_lost: Some(10),
            server_total_clients: 1200,
            ..AccessRecord::new(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
                "/movies/trailer.mp4".into(),
                200,
                SystemTime::now(),
            )
        }
    }

    /// The shard's cost of one access log line: building the record (its
    /// strings) and the never-blocking send. The logger thread writes to
    /// /dev/null meanwhile; a full queue counts as a drop, which costs less.
    #[divan::bench]
    fn access_log_send(b: Bencher) {
        let log = AccessLog::start(AccessLogConfig::new(PathBuf::from("/dev/null")))
            .expect("open /dev/null");
        let tx = log.sender();
        b.counter(ItemsCount::new(1usize))
            .bench_local(|| tx.log(black_box(record())));
        let _ = log.shutdown(Duration::from_secs(10));
    }

    /// The logger thread's cost of one line: W3C and JSON formatting.
    #[divan::bench(args = ["w3c", "json"])]
    fn access_log_format(b: Bencher, format: &str) {
        let r = record();
        let json = format == "json";
        b.counter(ItemsCount::new(1usize)).bench_local(|| {
            if json {
                json_line(black_box(&r)).len()
            } else {
                w3c_line(black_box(&r)).len()
            }
        });
    }
}
