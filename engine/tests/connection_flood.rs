//! Connection floods (issue "Hardening" §1): idle connections from a few
//! addresses must not keep a new client from playing, a request that never
//! completes is answered 408 and closed, an address is capped at
//! `max_connections_per_ip`, and running out of file descriptors (EMFILE)
//! neither spins the accept loop nor floods the log, sheds sessionless
//! connections first and never touches a playing session.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::media::{self, FIXTURE_H264};
use common::server::{Server, TempDir};
use common::tools::{ffmpeg_decode, Lower};
use socket2::{Domain, Socket, Type};

/// A TCP connection to `server` from source address `from` (any 127/8
/// address is local), that has sent `bytes`.
fn connect_from(from: [u8; 4], server: SocketAddr, bytes: &[u8]) -> Option<TcpStream> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    s.bind(&SocketAddr::from((from, 0)).into()).ok()?;
    s.connect_timeout(&server.into(), Duration::from_secs(2))
        .ok()?;
    let mut t: TcpStream = s.into();
    t.write_all(bytes).ok()?;
    Some(t)
}

/// True when the server closed `t` (EOF or reset) within `within`; what it
/// sent before closing is appended to `got`.
fn closed_within(t: &mut TcpStream, within: Duration, got: &mut Vec<u8>) -> bool {
    let deadline = Instant::now() + within;
    let _ = t.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        match t.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn idle_floods_are_capped_and_timed_out_while_clients_play() {
    let server = Server::start_with(
        &[media::fixture_source()],
        &[
            "--max-connections-per-ip",
            "50",
            "--request-timeout",
            "3",
            "--idle-timeout",
            "30",
        ],
    );
    let url = server.url(FIXTURE_H264);
    // Two addresses each open 60 connections and send 3 bytes (a request
    // that never completes).
    let mut held = Vec::new();
    for from in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        for _ in 0..60 {
            if let Some(t) = connect_from(from, server.addr(), b"OPT") {
                held.push(t);
            }
        }
    }
    assert_eq!(held.len(), 120, "the kernel accepted every handshake");
    // A client from another address plays meanwhile, for longer than the
    // request timeout.
    let d = ffmpeg_decode(&url, Lower::Tcp, None, 5.0);
    assert!(d.frames >= 120, "{} frames; {:?}", d.frames, d.errors);

    // Beyond 50 per address, connections are closed at once; the rest get
    // 408 once their request timeout passes (3 s, long gone by now).
    let mut refused = 0;
    let mut timed_out = 0;
    for t in held.iter_mut() {
        let mut got = Vec::new();
        assert!(
            closed_within(t, Duration::from_secs(5), &mut got),
            "a flood connection is still open; log:\n{}",
            server.log_tail(20)
        );
        if got.starts_with(b"RTSP/1.0 408") {
            timed_out += 1;
        } else if got.is_empty() {
            refused += 1;
        }
    }
    assert_eq!(refused, 20, "10 per address over the cap of 50");
    assert_eq!(timed_out, 100, "the others answered 408");
    let log = server.log_text();
    let refusal_lines = log
        .lines()
        .filter(|l| l.contains("max_connections_per_ip"))
        .count();
    assert!(
        (1..=4).contains(&refusal_lines),
        "refusals are logged once per interval, not per connection: {refusal_lines} lines"
    );
}

#[test]
fn out_of_descriptors_backs_off_sheds_idle_connections_and_keeps_sessions() {
    // Run the server with 160 file descriptors.
    let dir = TempDir::new("fdlimit");
    let wrapper = dir.path().join("cadence-160-fds");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nulimit -n 160 || exit 99\nexec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_cadence")
        ),
    )
    .expect("write wrapper");
    let mut perms = std::fs::metadata(&wrapper).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).expect("chmod");
    let media_dir = TempDir::new("fdlimit-media");
    let src = media::fixture_source();
    std::os::unix::fs::symlink(&src.path, media_dir.path().join(&src.name)).expect("symlink");
    let server = Server::start_program(
        &wrapper,
        media_dir,
        &[
            "--max-connections-per-ip",
            "0",
            "--request-timeout",
            "60",
            "--idle-timeout",
            "60",
        ],
    );
    let url = server.url(FIXTURE_H264);

    // A session plays over TCP through the whole flood.
    let playing_url = url.clone();
    let playing = std::thread::spawn(move || ffmpeg_decode(&playing_url, Lower::Tcp, None, 12.0));
    std::thread::sleep(Duration::from_secs(2));

    // 400 idle connections: far more than the server has descriptors.
    let mut held = Vec::new();
    for i in 0..400u32 {
        let from = [127, 0, 1, (i % 200) as u8 + 1];
        if let Some(t) = connect_from(
            from,
            server.addr(),
            b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        ) {
            held.push(t);
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    // A new client still gets a descriptor (idle ones are shed) and plays.
    let d = ffmpeg_decode(&url, Lower::Udp, None, 3.0);
    assert!(
        d.frames >= 70,
        "a new client could not play while out of descriptors: {} frames; {:?}; log:\n{}",
        d.frames,
        d.errors,
        server.log_tail(20)
    );
    let p = playing.join().expect("ffmpeg thread");
    assert!(
        p.frames >= 295,
        "the playing session lost frames during the flood: {} of 300; {:?}",
        p.frames,
        p.errors
    );
    drop(held);
    let log = server.log_text();
    let accept_lines = log.lines().filter(|l| l.contains("accept failed")).count();
    assert!(
        accept_lines >= 1,
        "EMFILE was never hit (the test did not test anything); log:\n{}",
        server.log_tail(20)
    );
    assert!(
        accept_lines <= 3,
        "accept failures are logged once per 10 s: {accept_lines} lines"
    );
    let above_debug = log.lines().filter(|l| !l.contains("DEBUG")).count();
    assert!(
        above_debug < 60,
        "the log stays small above debug level: {above_debug} lines"
    );
}
