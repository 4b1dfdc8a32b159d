//! PAUSE and resume: PLAY, receive 2 s, PAUSE, wait 1 s, PLAY without Range, receive 2 s.
//!
//! Per track:
//! - the sequence numbers of all packets received (before and after the pause) are
//!   consecutive, with no gap and no repeat;
//! - the resume PLAY's RTP-Info `seq` is the one after the last packet sent before the pause,
//!   and the first packet after the resume carries it (and RTP-Info `rtptime` as timestamp);
//! - media resumes where it paused: the first timestamp after the resume differs from the
//!   last one before the pause by at most 200 ms of media (or by the largest step between
//!   consecutive packets outside the pause, for sparse tracks and B-frames): nothing skipped;
//! - no packet arrives between the PAUSE reply (+100 ms for packets already in flight) and
//!   the resume PLAY.

mod common;

use common::media::{self, Source};
use common::player::{media_secs, of_track, Player};
use common::server::Server;
use common::tools::Lower;
use std::sync::Arc;
use std::time::Duration;

fn pause_resume(server: &Server, src: &Source, lower: Lower) {
    let url = server.url(&src.name);
    let mut p = Player::open(server.addr(), &url, lower);
    p.play(Some("npt=0-"));
    let mut before = p.collect_for(Duration::from_secs(2));
    p.pause();
    // Packets already on the wire when PAUSE was answered.
    before.extend(p.collect_for(Duration::from_millis(100)));
    let during = p.collect_for(Duration::from_millis(900));
    let resume = p.play(None);
    let after = p.collect_for(Duration::from_secs(2));
    p.teardown();
    assert!(
        p.bad.is_empty(),
        "{url} {lower:?}: malformed RTP: {:?}",
        p.bad
    );
    assert!(
        during.is_empty(),
        "{url} {lower:?}: {} packet(s) arrived while paused (first seq {})",
        during.len(),
        during[0].seq
    );
    for (t, track) in p.tracks.iter().enumerate() {
        let b = of_track(&before, t);
        let a = of_track(&after, t);
        let name = format!("{} {lower:?} {}", src.name, track.kind);
        assert!(!b.is_empty(), "{name}: nothing received before PAUSE");
        assert!(!a.is_empty(), "{name}: nothing received after resume");
        let all: Vec<u16> = b.iter().chain(a.iter()).map(|k| k.seq).collect();
        let gaps: Vec<(u16, u16)> = all
            .windows(2)
            .filter(|w| w[1] != w[0].wrapping_add(1))
            .map(|w| (w[0], w[1]))
            .collect();
        let last = b[b.len() - 1];
        let next = a[0];
        eprintln!(
            "{name}: {} packets before, {} after; last before pause seq={} ts={}, first after seq={} ts={}, RTP-Info {:?}",
            b.len(),
            a.len(),
            last.seq,
            last.ts,
            next.seq,
            next.ts,
            resume.rtp_info[t]
        );
        assert!(
            gaps.is_empty(),
            "{name}: sequence jumps (from, to): {gaps:?}"
        );
        let info = resume.rtp_info[t].as_ref().unwrap_or_else(|| {
            panic!(
                "{name}: resume PLAY has no RTP-Info for the track: {}",
                resume.reply.summary()
            )
        });
        assert_eq!(
            info.seq,
            Some(last.seq.wrapping_add(1)),
            "{name}: resume RTP-Info seq is not the one after the last packet before PAUSE"
        );
        assert_eq!(
            info.seq,
            Some(next.seq),
            "{name}: resume RTP-Info seq vs first packet"
        );
        assert_eq!(
            info.rtptime,
            Some(next.ts),
            "{name}: resume RTP-Info rtptime vs first packet's timestamp"
        );
        // The largest timestamp step between consecutive packets outside the pause: sparse
        // audio tracks (one packet per second or so) legitimately step further than 200 ms,
        // and B-frames (Apple's H.264 sample) step backwards.
        let step = |v: &[&common::player::Packet]| {
            v.windows(2)
                .map(|w| media_secs(w[1].ts, w[0].ts, track.clock_rate).abs())
                .fold(0.0f64, f64::max)
        };
        let allowed = step(&b).max(step(&a)).max(0.2);
        let jump = media_secs(next.ts, last.ts, track.clock_rate);
        assert!(
            jump.abs() <= allowed + 1e-9,
            "{name}: media jumps by {jump:.3} s across the pause (largest step outside it {allowed:.3} s)"
        );
    }
}

#[test]
fn pause_resume_has_no_sequence_gap() {
    let fixture = media::fixture_source();
    let apple = media::apple_sources();
    let mut files = vec![fixture.clone()];
    files.extend(apple.iter().cloned());
    let server = Arc::new(Server::start(&files));
    let mut sources = vec![(fixture.clone(), Lower::Udp), (fixture, Lower::Tcp)];
    sources.extend(apple.into_iter().map(|s| (s, Lower::Tcp)));
    let mut threads = Vec::new();
    for (src, lower) in sources {
        let server = server.clone();
        threads.push(common::spawn_named(
            &format!("{} {lower:?}", src.name),
            move || pause_resume(&server, &src, lower),
        ));
    }
    common::join_all(threads);
}
