//! When io_uring cannot be used (here: a seccomp filter makes io_uring_setup
//! fail with EPERM, as a container's default profile does), `cadence` exits
//! non-zero with a message naming the cause.
//!
//! Needs Debian's python3-seccomp (installed by scripts/test). Without it the
//! test prints a notice and passes, unless CI=true, where it fails.

use std::process::Command;

#[test]
fn exits_with_a_clear_message_when_io_uring_is_blocked() {
    let have = Command::new("/usr/bin/python3")
        .args(["-c", "import seccomp"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3-seccomp is missing (scripts/test installs it)"
        );
        eprintln!("SKIPPED: python3-seccomp not installed; cannot block io_uring_setup");
        return;
    }
    let script = r#"
import errno, os, sys, seccomp
f = seccomp.SyscallFilter(seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(errno.EPERM), "io_uring_setup")
f.load()
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let media = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../media");
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_cadence")])
        .args([
            "--cores",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--udp-port-base",
            "0",
            "--media",
        ])
        .arg(&media)
        .output()
        .expect("run cadence under seccomp");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "cadence should fail without io_uring; stderr: {stderr}"
    );
    assert!(
        stderr.contains("io_uring is unavailable"),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("EPERM") && stderr.contains("seccomp"),
        "stderr: {stderr}"
    );
}
