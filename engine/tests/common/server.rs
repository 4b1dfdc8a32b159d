//! Starting `cadence` for a test: a temporary media folder of symlinks, a free loopback port,
//! readiness by poll-connecting (10 s limit), and a guard that kills the server on drop and
//! prints its log when the test is failing.

use super::media::Source;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Shards the test server runs with (`--cores`); override with `CADENCE_TEST_CORES`.
fn cores() -> String {
    std::env::var("CADENCE_TEST_CORES").unwrap_or_else(|_| "2".to_string())
}

/// A private temporary folder, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/cadence-enginetests-<pid>-<n>-<tag>`.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "cadence-enginetests-{}-{n}-{tag}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running `cadence` process; killed on drop.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _media: TempDir,
}

impl Server {
    /// Serves `sources` (symlinked by name into a fresh media folder) on a free port of
    /// 127.0.0.1 and waits until the port accepts connections.
    pub fn start(sources: &[Source]) -> Server {
        let media = TempDir::new("media");
        for s in sources {
            let link = media.path().join(&s.name);
            std::os::unix::fs::symlink(&s.path, &link).expect("symlink media file");
        }
        Server::start_dir(media)
    }

    /// Serves an existing media folder (taken over: removed when the server is dropped).
    /// Retries on another port if the server exits at startup (port taken meanwhile).
    pub fn start_dir(media: TempDir) -> Server {
        Server::start_dir_with(media, &[])
    }

    /// Like [`Server::start`], with extra `cadence` flags.
    pub fn start_with(sources: &[Source], extra: &[&str]) -> Server {
        let media = TempDir::new("media");
        for s in sources {
            let link = media.path().join(&s.name);
            std::os::unix::fs::symlink(&s.path, &link).expect("symlink media file");
        }
        Server::start_dir_with(media, extra)
    }

    /// Like [`Server::start_dir`], with extra `cadence` flags.
    pub fn start_dir_with(media: TempDir, extra: &[&str]) -> Server {
        Server::start_program(Path::new(env!("CARGO_BIN_EXE_cadence")), media, extra)
    }

    /// Like [`Server::start_dir_with`], running `program` (a server built on
    /// the engine library, such as an example) instead of `cadence`.
    pub fn start_program(program: &Path, media: TempDir, extra: &[&str]) -> Server {
        Server::launch(program, media, extra, &["--log-level", "debug"])
    }

    /// Like [`Server::start_dir_with`], without the harness's `--log-level debug`, so that
    /// the log level comes from the configuration file in `extra` (reload tests).
    pub fn start_dir_with_config_log_level(media: TempDir, extra: &[&str]) -> Server {
        Server::launch(Path::new(env!("CARGO_BIN_EXE_cadence")), media, extra, &[])
    }

    fn launch(program: &Path, media: TempDir, extra: &[&str], level: &[&str]) -> Server {
        let log = media.path().with_extension("server.log");
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
            let log_file = fs::File::create(&log).expect("create server log");
            let mut child = Command::new(program)
                .args(if extra.contains(&"--cores") {
                    vec![]
                } else {
                    vec!["--cores".to_string(), cores()]
                })
                .arg("--media")
                .arg(media.path())
                .args(["--listen", &addr.to_string()])
                .args(level)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("dup log"))
                .stderr(log_file)
                .spawn()
                .expect("spawn cadence");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Server {
                        child,
                        addr,
                        log,
                        _media: media,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_log = fs::read_to_string(&log).unwrap_or_default();
                    eprintln!("cadence exited at startup ({status}); retrying on another port");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "cadence did not accept on {addr} within 10 s; log:\n{}",
                        fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("cadence exited at startup three times; last log:\n{last_log}");
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `rtsp://127.0.0.1:PORT/<rel>`.
    pub fn url(&self, rel: &str) -> String {
        format!("rtsp://{}/{}", self.addr, rel)
    }

    /// True while the process has not exited.
    /// Process ID of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `within` for the server to exit; its status, if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The server's stdout+stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- cadence log tail ({}) ----\n{}\n----",
                self.addr,
                self.log_tail(60)
            );
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").port()
}
