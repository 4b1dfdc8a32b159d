//! Files that change while served (issue "Hardening" §4): a file rewritten
//! in place ends the sessions playing its old bytes (and new sessions get
//! the new version); a file replaced by a rename, or deleted, keeps its old
//! inode mapped and its sessions play on; a file truncated mid-play never
//! crashes the server. The media folder is watched, no SIGHUP needed.

mod common;

use std::time::{Duration, Instant};

use common::media;
use common::player::{of_track, Player};
use common::rtsp::RtspConn;
use common::server::{Server, TempDir};
use common::tools::{ffmpeg_decode, Lower};
use rtsp_types::Method;

fn wait_log(server: &Server, what: &str, n: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if server.log_text().matches(what).count() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn copy_fixture(dir: &std::path::Path, name: &str, fixture: &str) {
    std::fs::copy(media::fixture(fixture), dir.join(name)).expect("copy fixture");
}

fn no_loss(player: &Player, packets: &[common::player::Packet]) {
    for t in 0..player.tracks.len() {
        let p = of_track(packets, t);
        assert!(p.len() > 5, "track {t}: {} packets", p.len());
        for w in p.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "track {t} lost a packet"
            );
        }
    }
}

#[test]
fn in_place_rewrite_ends_old_sessions_and_serves_the_new_version() {
    let dir = TempDir::new("changes-media");
    copy_fixture(dir.path(), "a.mp4", media::FIXTURE_H264);
    let path = dir.path().join("a.mp4");
    let mut server = Server::start_dir(dir);
    let url = server.url("a.mp4");
    let mut c = RtspConn::connect(server.addr());
    let before = c.request(Method::Describe, &url, &[]).body_text();
    let mut player = Player::open(server.addr(), &url, Lower::Udp);
    player.play(None);
    player.collect_for(Duration::from_secs(1));
    // Rewrite in place (same inode) with another file's bytes.
    let other = std::fs::read(media::fixture("h264_aac_hinted.mov")).expect("mov fixture");
    std::fs::write(&path, &other).expect("rewrite in place");
    assert!(
        wait_log(
            &server,
            "file changed while served",
            1,
            Duration::from_secs(5)
        ),
        "{}",
        server.log_tail(20)
    );
    std::thread::sleep(Duration::from_millis(300));
    player.collect_for(Duration::from_millis(200));
    let after = player.collect_for(Duration::from_secs(1));
    assert!(
        after.is_empty(),
        "{} packets after the session ended",
        after.len()
    );
    let mut c = RtspConn::connect(server.addr());
    c.session = Some(player.session().to_string());
    assert_eq!(c.request(Method::GetParameter, &url, &[]).status, 454);
    // New sessions get the new version.
    let mut c = RtspConn::connect(server.addr());
    let r = c.request(Method::Describe, &url, &[]);
    assert_eq!(r.status, 200);
    assert_ne!(
        r.body_text(),
        before,
        "the description still describes the old file"
    );
    let d = ffmpeg_decode(&url, Lower::Tcp, None, 2.0);
    assert!(d.frames >= 45, "{} frames {:?}", d.frames, d.errors);
    assert!(server.is_alive());
}

#[test]
fn rename_and_delete_keep_playing_and_truncation_never_crashes() {
    let dir = TempDir::new("changes-media2");
    for name in ["r.mp4", "d.mp4", "t.mp4"] {
        copy_fixture(dir.path(), name, media::FIXTURE_H264);
    }
    let root = dir.path().to_path_buf();
    let mut server = Server::start_dir(dir);
    let mut renamed = Player::open(server.addr(), &server.url("r.mp4"), Lower::Udp);
    let mut deleted = Player::open(server.addr(), &server.url("d.mp4"), Lower::Tcp);
    let mut truncated = Player::open(server.addr(), &server.url("t.mp4"), Lower::Udp);
    for p in [&mut renamed, &mut deleted, &mut truncated] {
        p.play(None);
    }
    std::thread::sleep(Duration::from_millis(500));
    // Replace r.mp4 by a rename, delete d.mp4, truncate t.mp4 in place.
    std::fs::copy(media::fixture("h264_aac_hinted.mov"), root.join("r.tmp")).expect("copy");
    std::fs::rename(root.join("r.tmp"), root.join("r.mp4")).expect("rename");
    std::fs::remove_file(root.join("d.mp4")).expect("delete");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("t.mp4"))
        .expect("open");
    f.set_len(1000).expect("truncate");
    drop(f);
    let r = renamed.collect_for(Duration::from_secs(3));
    let d = deleted.collect_for(Duration::from_millis(100));
    no_loss(&renamed, &r);
    no_loss(&deleted, &d);
    truncated.collect_for(Duration::from_millis(100));
    assert!(
        wait_log(
            &server,
            "file changed while served",
            1,
            Duration::from_secs(3)
        ),
        "{}",
        server.log_tail(20)
    );
    assert!(
        server.is_alive(),
        "the server died:\n{}",
        server.log_tail(20)
    );
    // The deleted file is gone for new clients; the renamed one is the new file.
    let mut c = RtspConn::connect(server.addr());
    assert_eq!(
        c.request(Method::Describe, &server.url("d.mp4"), &[])
            .status,
        404
    );
    assert_eq!(
        c.request(Method::Describe, &server.url("t.mp4"), &[])
            .status,
        500
    );
    assert_eq!(
        c.request(Method::Describe, &server.url("r.mp4"), &[])
            .status,
        200
    );
    assert_eq!(renamed.teardown().status, 200);
    assert_eq!(deleted.teardown().status, 200);
    assert!(server.is_alive());
}
