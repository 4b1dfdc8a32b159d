//! Slow-drip requests (issue 14 §3). The old attack: "8 clients dripping one header byte per
//! 0.5 ms for 24 s, with 200 sessions playing, raised their max lateness to 5 ms", because
//! every received byte re-parsed the whole buffered request (quadratic) and nothing ended a
//! request that never completed.
//!
//! `drip_is_cut_off_cheaply_while_sessions_play` runs `cadence` (1 shard,
//! `--request-timeout 2`) with [`SESSIONS`] RTP/UDP sessions playing, measures the server's
//! CPU time (utime + stime, `/proc/<pid>/stat`) over a quiet baseline of [`BASELINE`], then
//! over [`DRIP`] with these clients, each reconnecting as soon as it is closed:
//! - slow drippers: a request line, then one header byte every 2 ms, never ending the line;
//! - heavy drippers: a request with 12 KiB of header fields at once (under the 16 KiB header
//!   limit), then one byte every millisecond: the buffer a re-parsing server would walk again
//!   on every byte is as large as it can be without hitting the limit;
//! - a long-header dripper: an endless header line, 256 bytes every 2 ms;
//! - a long-URI dripper: an endless request line, 256 bytes every 2 ms.
//!
//! Asserted:
//! - the slow and heavy drippers get `408` and are closed no earlier than 1.5 s and no later
//!   than request_timeout + 3 s after connecting; the long header gets `400` (RTSP/1.0 has no
//!   431), the long URI `414`, both closed by then too;
//! - the playing sessions lose nothing: every track's sequence numbers are continuous, and
//!   start at the RTP-Info seq of the PLAY reply, and no session stalled (each received,
//!   since its PLAY, at 90 % of the best session's packet rate or more);
//! - the drip's CPU cost (drip phase minus baseline, scaled to the same length) is under a
//!   budget of 40 µs per segment the drippers sent plus 0.5 s. Measured here: 10 to 17 µs
//!   per segment all included (a receive completion, the framer's scan of the new bytes, the
//!   accept, the 408 and the close of ~200 connections), so the budget leaves 2.5× or more
//!   for a noisy machine. What it does and does not separate: within the 16 KiB header limit a
//!   server that re-parses the buffered request with `rtsp-types` on every segment pays
//!   ~16 µs more per heavy segment (the test measures the parse of the heavy buffer in
//!   thread CPU time and prints the estimate, ~0.3 s for the whole drip): of the order of
//!   the per-segment overhead itself, too close to tell apart end to end on a shared
//!   machine. The limit is what keeps it that small; the linearity itself is asserted
//!   exactly by `framer_work_is_linear_in_the_bytes_received`. The budget catches a server
//!   whose per-segment work is several times the framer's: one re-parsing buffers the
//!   limits do not bound (the long-header dripper would then reach ~256 KiB per
//!   connection, ~0.15 s of re-parsing each), or one that spins on a parked connection;
//!   without the request timeout or the header limit the statuses above fail anyway;
//! - a fresh ffmpeg client plays afterwards.
//!
//! `framer_work_is_linear_in_the_bytes_received`: the engine's framer, fed an incomplete
//! request one byte at a time, examines each byte a bounded number of times (its
//! `scanned_bytes` counter): 64 KiB cost 4× what 16 KiB cost, not 16×.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cadence_engine::rtsp::framing::{Frame, Framer, Limits};
use common::media::{self, FIXTURE_H264};
use common::player::{of_track, Player};
use common::server::Server;
use common::tools::{ffmpeg_decode, Lower};

/// RTP/UDP sessions playing through the drip.
const SESSIONS: usize = 24;
/// Quiet measurement before the drip.
const BASELINE: Duration = Duration::from_secs(4);
/// Length of the drip.
const DRIP: Duration = Duration::from_secs(8);
/// `--request-timeout`, seconds.
const REQUEST_TIMEOUT_S: u64 = 2;
/// CPU budget per segment sent by the drippers, seconds.
const BUDGET_PER_SEGMENT_S: f64 = 40e-6;
/// Fixed CPU budget of the drip (connections, 408s, noise), seconds.
const BUDGET_FIXED_S: f64 = 0.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Slow,
    Heavy,
    LongHeader,
    LongUri,
}

impl Kind {
    /// (bytes sent at once, bytes per later segment, pause between segments).
    fn plan(self) -> (Vec<u8>, Vec<u8>, Duration) {
        let ms = Duration::from_millis;
        match self {
            Kind::Slow => (
                b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nX-Drip: ".to_vec(),
                b"a".to_vec(),
                ms(2),
            ),
            Kind::Heavy => {
                let mut p = b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n".to_vec();
                let mut i = 0;
                while p.len() < 12 * 1024 {
                    p.extend_from_slice(
                        format!("X-Pad-{i:02}: {}\r\n", "p".repeat(240)).as_bytes(),
                    );
                    i += 1;
                }
                p.extend_from_slice(b"X-Drip: ");
                (p, b"a".to_vec(), ms(1))
            }
            Kind::LongHeader => (
                b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\nX-Long: ".to_vec(),
                vec![b'a'; 256],
                ms(2),
            ),
            Kind::LongUri => (
                b"DESCRIBE rtsp://127.0.0.1/".to_vec(),
                vec![b'a'; 256],
                ms(2),
            ),
        }
    }

    /// Statuses this dripper may get.
    fn statuses(self) -> &'static [u16] {
        match self {
            Kind::Slow | Kind::Heavy => &[408],
            Kind::LongHeader => &[400, 431],
            Kind::LongUri => &[414],
        }
    }
}

/// One dripping connection, from connect to close.
#[derive(Debug)]
struct Outcome {
    kind: Kind,
    /// Status of the server's reply, if any.
    status: Option<u16>,
    /// Connect to close (EOF or reset); `None` when still open at the limit.
    closed_after: Option<Duration>,
    /// Segments written (the prefix counts as one).
    segments: u64,
    /// Bytes a re-parsing server would have walked: the buffered length after each segment.
    reparse_bytes: u64,
}

/// Drips one request on a fresh connection until the server closes it (or 10 s pass).
fn drip_once(addr: SocketAddr, kind: Kind) -> Outcome {
    let (prefix, chunk, pause) = kind.plan();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    let connected = Instant::now();
    s.set_nodelay(true).expect("nodelay");
    let mut reader = s.try_clone().expect("clone");
    let closed_at = Arc::new(AtomicU64::new(0));
    let closed = closed_at.clone();
    let read = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let _ = reader.set_read_timeout(Some(Duration::from_secs(12)));
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        closed.store(connected.elapsed().as_micros() as u64 + 1, Ordering::SeqCst);
        got
    });
    let mut segments = 0u64;
    let mut buffered = 0u64;
    let mut reparse_bytes = 0u64;
    let mut send = |s: &mut TcpStream, bytes: &[u8]| -> bool {
        if s.write_all(bytes).is_err() {
            return false;
        }
        segments += 1;
        buffered += bytes.len() as u64;
        reparse_bytes += buffered;
        true
    };
    let limit = connected + Duration::from_secs(10);
    if send(&mut s, &prefix) {
        while closed_at.load(Ordering::SeqCst) == 0 && Instant::now() < limit {
            std::thread::sleep(pause);
            if !send(&mut s, &chunk) {
                break;
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
    let got = read.join().expect("reader");
    let at = closed_at.load(Ordering::SeqCst);
    let status = std::str::from_utf8(&got)
        .ok()
        .and_then(|t| t.strip_prefix("RTSP/1.0 "))
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok());
    Outcome {
        kind,
        status,
        closed_after: (at > 0 && at - 1 < 10_000_000).then(|| Duration::from_micros(at - 1)),
        segments,
        reparse_bytes,
    }
}

/// utime + stime of `pid`, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

#[test]
fn drip_is_cut_off_cheaply_while_sessions_play() {
    let timeout = REQUEST_TIMEOUT_S.to_string();
    let server = Server::start_with(
        &[media::fixture_source()],
        &[
            "--cores",
            "1",
            "--request-timeout",
            &timeout,
            "--max-connections-per-ip",
            "0",
        ],
    );
    let url = server.url(FIXTURE_H264);
    // Each player with the time of its PLAY and the RTP-Info seq of each track.
    let mut players: Vec<(Player, Instant, Vec<Option<u16>>)> = (0..SESSIONS)
        .map(|_| {
            let mut p = Player::open(server.addr(), &url, Lower::Udp);
            let r = p.play(None);
            let at = Instant::now();
            let seqs = r
                .rtp_info
                .iter()
                .map(|i| i.as_ref().and_then(|i| i.seq))
                .collect();
            (p, at, seqs)
        })
        .collect();
    let started = Instant::now();

    std::thread::sleep(Duration::from_secs(1));
    let c0 = cpu_seconds(server.pid());
    std::thread::sleep(BASELINE);
    let c1 = cpu_seconds(server.pid());

    let drip_start = Instant::now();
    let kinds = [
        Kind::Slow,
        Kind::Slow,
        Kind::Slow,
        Kind::Slow,
        Kind::Heavy,
        Kind::Heavy,
        Kind::LongHeader,
        Kind::LongUri,
    ];
    let addr = server.addr();
    let drippers: Vec<_> = kinds
        .iter()
        .map(|&kind| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                while drip_start.elapsed() < DRIP {
                    out.push(drip_once(addr, kind));
                }
                out
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = drippers
        .into_iter()
        .flat_map(|d| d.join().expect("dripper"))
        .collect();
    let drip_len = drip_start.elapsed();
    let c2 = cpu_seconds(server.pid());

    // Collect what the players received, then stop them.
    let played = started.elapsed();
    let mut failures = Vec::new();
    let mut rates: Vec<Vec<f64>> = Vec::new();
    for (i, (p, play_at, first)) in players.iter_mut().enumerate() {
        let pkts = p.collect_for(Duration::from_millis(300));
        let secs = play_at.elapsed().as_secs_f64();
        let mut per_track = Vec::new();
        for t in 0..p.tracks.len() {
            let seqs: Vec<u16> = of_track(&pkts, t).iter().map(|x| x.seq).collect();
            let gaps = seqs
                .windows(2)
                .filter(|w| w[1] != w[0].wrapping_add(1))
                .count();
            let starts_right = first
                .get(t)
                .copied()
                .flatten()
                .is_none_or(|f| seqs.first() == Some(&f));
            if gaps > 0 || seqs.len() < 50 || !starts_right {
                failures.push(format!(
                    "session {i} track {t}: {} packets, {gaps} sequence gaps, first {:?} \
                     (RTP-Info seq {:?})",
                    seqs.len(),
                    seqs.first(),
                    first.get(t)
                ));
            }
            per_track.push(seqs.len() as f64 / secs);
        }
        rates.push(per_track);
        if !p.bad.is_empty() {
            failures.push(format!("session {i}: malformed RTP {:?}", p.bad));
        }
    }
    // No session stalled: each got packets, since its PLAY, at 90 % of the best session's
    // rate or more (they play the same file from the start).
    for t in 0..rates.first().map_or(0, Vec::len) {
        let best = rates
            .iter()
            .filter_map(|r| r.get(t))
            .copied()
            .fold(0.0, f64::max);
        for (i, r) in rates.iter().enumerate() {
            let rate = r.get(t).copied().unwrap_or(0.0);
            if rate < 0.9 * best {
                failures.push(format!(
                    "session {i} track {t}: {rate:.1} packets/s, the best session {best:.1}"
                ));
            }
        }
    }
    drop(players);

    // Every dripping connection was answered as expected and closed in time.
    let slack = Duration::from_secs(REQUEST_TIMEOUT_S + 3);
    for kind in kinds {
        let n = outcomes.iter().filter(|o| o.kind == kind).count();
        if n == 0 {
            failures.push(format!("{kind:?}: no connection completed"));
        }
    }
    for o in &outcomes {
        let ok_status = o.status.is_some_and(|s| o.kind.statuses().contains(&s));
        let ok_time = o.closed_after.is_some_and(|d| {
            d <= slack
                && (!matches!(o.kind, Kind::Slow | Kind::Heavy) || d >= Duration::from_millis(1500))
        });
        if !ok_status || !ok_time {
            failures.push(format!(
                "{:?}: status {:?} (want {:?}), closed after {:?} (want ≤ {slack:?}{}), {} segments",
                o.kind,
                o.status,
                o.kind.statuses(),
                o.closed_after,
                if matches!(o.kind, Kind::Slow | Kind::Heavy) { ", ≥ 1.5 s" } else { "" },
                o.segments
            ));
        }
    }

    // CPU: the drip's share over the baseline, scaled to the same length.
    let baseline_rate = (c1 - c0) / BASELINE.as_secs_f64();
    let drip_cpu = (c2 - c1) - baseline_rate * drip_len.as_secs_f64();
    let segments: u64 = outcomes.iter().map(|o| o.segments).sum();
    let reparse: u64 = outcomes.iter().map(|o| o.reparse_bytes).sum();
    let heavy_segments: u64 = outcomes
        .iter()
        .filter(|o| o.kind == Kind::Heavy)
        .map(|o| o.segments)
        .sum();
    let budget = BUDGET_FIXED_S + BUDGET_PER_SEGMENT_S * segments as f64;
    let per_byte = reparse_cost_per_byte();
    eprintln!(
        "baseline {:.3} s CPU per s with {SESSIONS} sessions; drip {:.3} s CPU over the baseline \
         in {:.1} s; {} connections, {segments} segments ({heavy_segments} heavy), {:.1} µs per \
         segment, budget {budget:.3} s; a re-parsing server would walk {:.1} MB, ~{:.3} s more \
         at the {:.2} ns per byte measured for rtsp-types",
        baseline_rate,
        drip_cpu,
        drip_len.as_secs_f64(),
        outcomes.len(),
        1e6 * drip_cpu / segments.max(1) as f64,
        reparse as f64 / 1e6,
        reparse as f64 * per_byte,
        per_byte * 1e9
    );
    if drip_cpu > budget {
        failures.push(format!(
            "the drip cost the server {drip_cpu:.3} s of CPU over the baseline, more than the \
             budget of {budget:.3} s ({segments} segments)"
        ));
    }

    // A fresh client plays.
    let d = ffmpeg_decode(&url, Lower::Udp, None, 3.0);
    if d.frames < 60 {
        failures.push(format!(
            "a fresh client decoded {} frames in 3 s after the drip; {:?}",
            d.frames, d.errors
        ));
    }
    assert!(
        failures.is_empty(),
        "after {played:?}:\n{}\nserver log:\n{}",
        failures.join("\n"),
        server.log_tail(15)
    );
}

/// Feeds `msg` to a fresh framer one byte at a time (nothing completes); its scan count.
fn scanned_byte_at_a_time(msg: &[u8], limits: Limits) -> u64 {
    let mut framer = Framer::new(limits);
    for b in msg {
        framer.push(std::slice::from_ref(b));
        assert!(framer.next_frame().is_none(), "incomplete request");
    }
    framer.scanned_bytes()
}

/// An incomplete request of `n` bytes: short header lines, continuation lines (not counted
/// against the field limit) and one endless last line.
fn incomplete_request(n: usize) -> Vec<u8> {
    let mut msg = b"OPTIONS rtsp://h/x RTSP/1.0\r\nCSeq: 1\r\nX-A: b\r\n".to_vec();
    while msg.len() < n / 2 {
        msg.extend_from_slice(b" more\r\n");
    }
    msg.extend_from_slice(b"X-Long: ");
    msg.resize(n, b'z');
    msg
}

#[test]
fn framer_work_is_linear_in_the_bytes_received() {
    let limits = Limits {
        max_header_bytes: 1 << 20,
        ..Limits::default()
    };
    let small = scanned_byte_at_a_time(&incomplete_request(16 * 1024), limits);
    let large = scanned_byte_at_a_time(&incomplete_request(64 * 1024), limits);
    // Each byte is examined once by the scan while the request is incomplete.
    assert!(small <= 2 * 16 * 1024, "16 KiB: {small} bytes examined");
    assert!(large <= 2 * 64 * 1024, "64 KiB: {large} bytes examined");
    // 4× the input, 4× the work (a re-scan per byte would be 16×).
    let growth = large as f64 / small as f64;
    assert!(
        (3.5..=4.5).contains(&growth),
        "work grew {growth:.2}× for 4× the bytes ({small} → {large})"
    );
    // And it ends: the 16 KiB default limit answers 400 as soon as it is passed.
    let mut framer = Framer::new(Limits::default());
    let msg = incomplete_request(20 * 1024);
    let mut rejected_at = None;
    for (i, b) in msg.iter().enumerate() {
        framer.push(std::slice::from_ref(b));
        if let Some(Frame::Malformed(r)) = framer.next_frame() {
            assert_eq!(r.status(), 400);
            rejected_at = Some(i + 1);
            break;
        }
    }
    assert_eq!(
        rejected_at,
        Some(16 * 1024 + 1),
        "rejected past the header limit"
    );
    assert!(framer.scanned_bytes() <= 2 * 16 * 1024 + 2);
}

/// CPU time of the calling thread, seconds.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Thread CPU seconds per byte of a full `rtsp-types` parse of the heavy dripper's buffer
/// (incomplete), as a re-parsing server does on every segment: the median of 15 runs of 20
/// parses. For the printed estimate only.
fn reparse_cost_per_byte() -> f64 {
    let (mut buf, _, _) = Kind::Heavy.plan();
    buf.extend_from_slice(&[b'a'; 1000]);
    let mut runs: Vec<f64> = (0..15)
        .map(|_| {
            let t = thread_cpu();
            for _ in 0..20 {
                let r = rtsp_types::Message::<Vec<u8>>::parse(std::hint::black_box(&buf));
                assert!(r.is_err(), "the buffer is an incomplete request");
            }
            (thread_cpu() - t) / 20.0
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2] / buf.len() as f64
}
