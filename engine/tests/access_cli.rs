//! `cadence passwd` and `cadence sign-url`, run as the binary.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use cadence_engine::access::digest::Ha1;
use cadence_engine::access::signed_url::{find_params, split_query, verify, SignedUrlError};
use cadence_engine::access::users::parse_users;
use cadence_engine::access::Secret;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cadence-access-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

fn cadence(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cadence"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cadence");
    // The child may exit (refusing its arguments) before reading stdin.
    match child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
        _ => {}
    }
    child.wait_with_output().expect("wait")
}

fn passwd(file: &Path, user: &str, stdin: &str, extra: &[&str]) -> Output {
    let f = file.to_str().expect("utf8 path");
    let mut args = vec!["passwd", f, user];
    args.extend_from_slice(extra);
    cadence(&args, stdin)
}

/// `openssl passwd -6 -salt SALT PASSWORD`: an independent SHA-512 crypt.
fn openssl_sha512_crypt(salt: &str, password: &str) -> String {
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, password])
        .output()
        .expect("openssl is needed for this test");
    assert!(out.status.success(), "openssl: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

#[test]
fn passwd_creates_appends_and_changes() {
    let dir = tmp("passwd");
    let file = dir.join("qtusers");

    let out = passwd(&file, "alice", "s3cret\n", &[]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"alice\" added"), "{stderr}");
    assert!(!stderr.contains("s3cret"));
    let text = std::fs::read_to_string(&file).expect("created");
    assert!(
        text.starts_with("realm Streaming Server\nalice:$6$"),
        "{text}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The crypt field is SHA-512 crypt as glibc and openssl compute it.
    let crypt = text
        .lines()
        .nth(1)
        .expect("line")
        .split(':')
        .nth(1)
        .expect("crypt");
    let salt = crypt.split('$').nth(2).expect("salt");
    assert_eq!(openssl_sha512_crypt(salt, "s3cret"), crypt);

    // An admin's comment, then a second user (CRLF password line).
    std::fs::write(&file, format!("{text}# admins below\n")).expect("comment");
    let out = passwd(&file, "bob", "builder\r\n", &[]);
    assert!(out.status.success(), "{out:?}");
    // Change alice; --realm equal to the file's is accepted.
    let out = passwd(
        &file,
        "alice",
        "changed\n",
        &["--realm", "Streaming Server"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"alice\" changed"));

    let text = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "realm Streaming Server");
    assert!(lines[1].starts_with("alice:"));
    assert_eq!(lines[2], "# admins below");
    assert!(lines[3].starts_with("bob:"));
    let (users, problems) = parse_users(&text).expect("parses");
    assert!(problems.is_empty(), "{problems:?}");
    let ha1 = |u: &str, p: &str| Ha1::compute(u, "Streaming Server", p.as_bytes());
    assert!(users
        .ha1("alice")
        .expect("alice")
        .ct_eq(&ha1("alice", "changed")));
    assert!(users.ha1("bob").expect("bob").ct_eq(&ha1("bob", "builder")));

    // Refusals leave the file as it was.
    for (user, stdin, extra) in [
        ("carol", "pw\n", vec!["--realm", "Other"]),
        ("bad:name", "pw\n", vec![]),
        ("carol", "\n", vec![]),
    ] {
        let out = passwd(&file, user, stdin, &extra);
        assert!(!out.status.success(), "{user} {extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("cadence passwd: "));
    }
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);

    // A new file with another realm.
    let other = dir.join("club");
    let out = passwd(&other, "dave", "pw\n", &["--realm", "Club Realm"]);
    assert!(out.status.success(), "{out:?}");
    let (users, _) = parse_users(&std::fs::read_to_string(&other).expect("read")).expect("parse");
    assert_eq!(users.realm, "Club Realm");
    assert!(users
        .ha1("dave")
        .expect("dave")
        .ct_eq(&Ha1::compute("dave", "Club Realm", b"pw")));
    let _ = std::fs::remove_dir_all(dir);
}

fn sign(key_file: &Path, extra: &[&str], url: &str) -> Output {
    let mut args = vec![
        "sign-url",
        "--secret-file",
        key_file.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    args.push(url);
    cadence(&args, "")
}

fn check(key: &Secret, url: &str, peer: &str, now: u64) -> Result<u64, SignedUrlError> {
    let after = url.strip_prefix("rtsp://203.0.113.5:8554").expect("prefix");
    let (path, query) = split_query(after);
    let target = cadence_engine::rtsp::url::parse_target(&path).expect("target");
    let params = find_params(&query)?.ok_or(SignedUrlError::Missing)?;
    let peer: IpAddr = peer.parse().expect("ip");
    verify(key, &target.path, params, peer, now).map(|g| g.expires_at)
}

#[test]
fn sign_url_prints_a_url_that_verifies() {
    let dir = tmp("sign");
    let key_file = dir.join("url-secret");
    std::fs::write(&key_file, "c2lnbmluZyBrZXkgZm9yIHRlc3Rz\n").expect("key");
    let key = Secret::read_file(&key_file).expect("key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();

    let out = sign(
        &key_file,
        &["--expires-in", "3600"],
        "rtsp://203.0.113.5:8554/dir/a%20b.mp4",
    );
    assert!(out.status.success(), "{out:?}");
    let url = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    let exp = check(&key, &url, "192.0.2.1", now).expect("verifies");
    assert!((now + 3600..now + 3700).contains(&exp), "{exp} vs {now}");

    // Independently: Python's hmac over "dir/a b.mp4?exp=<exp>".
    let sig = url.rsplit_once("&sig=").expect("sig").1;
    let py = Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,base64,sys;print(base64.urlsafe_b64encode(hmac.new(sys.argv[1].encode(),sys.argv[2].encode(),hashlib.sha256).digest()).rstrip(b'=').decode())",
            "c2lnbmluZyBrZXkgZm9yIHRlc3Rz",
            &format!("dir/a b.mp4?exp={exp}"),
        ])
        .output()
        .expect("python3 is needed for this test");
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), sig);

    // Tampered URLs do not verify.
    let later = url.replace(&format!("exp={exp}"), &format!("exp={}", exp + 1));
    assert_eq!(
        check(&key, &later, "192.0.2.1", now),
        Err(SignedUrlError::Forged)
    );
    let moved = url.replace("a%20b.mp4", "c.mp4");
    assert_eq!(
        check(&key, &moved, "192.0.2.1", now),
        Err(SignedUrlError::Forged)
    );
    assert!(matches!(
        check(&key, &url, "192.0.2.1", exp + 1),
        Err(SignedUrlError::Expired { .. })
    ));

    // Bound to a subnet.
    let out = sign(
        &key_file,
        &["--expires-in", "60", "--client-subnet", "198.51.100.0/24"],
        "rtsp://203.0.113.5:8554/b.mp4",
    );
    assert!(out.status.success(), "{out:?}");
    let url = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert!(url.contains("&ip=198.51.100.0/24&sig="), "{url}");
    assert!(check(&key, &url, "::ffff:198.51.100.7", now).is_ok());
    assert!(matches!(
        check(&key, &url, "192.0.2.1", now),
        Err(SignedUrlError::WrongSubnet { .. })
    ));
    let widened = url.replace("198.51.100.0/24", "0.0.0.0/0");
    assert_eq!(
        check(&key, &widened, "192.0.2.1", now),
        Err(SignedUrlError::Forged)
    );

    // Errors: short key, bad subnet, URL with a query.
    std::fs::write(dir.join("short"), "short\n").expect("key");
    for (kf, extra, url) in [
        (
            dir.join("short"),
            vec!["--expires-in", "1"],
            "rtsp://h/a.mp4",
        ),
        (
            key_file.clone(),
            vec!["--expires-in", "1", "--client-subnet", "10.0.0.1/8"],
            "rtsp://h/a.mp4",
        ),
        (
            key_file.clone(),
            vec!["--expires-in", "1"],
            "rtsp://h/a.mp4?x=1",
        ),
    ] {
        let out = sign(&kf, &extra, url);
        assert!(!out.status.success(), "{extra:?} {url}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("cadence sign-url: "));
    }
    let _ = std::fs::remove_dir_all(dir);
}
