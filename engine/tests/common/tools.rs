//! Real clients and probes: ffmpeg (decode an RTSP URL to the null muxer), ffprobe (packet
//! timestamps of a file) and gst-launch-1.0, each with a wall-clock limit.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Output of a finished (or killed) child process.
#[derive(Debug)]
pub struct Run {
    /// Exit status; `None` when it was killed at the time limit.
    pub status: Option<ExitStatus>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// Wall time the process ran.
    pub elapsed: Duration,
}

/// Reader threads collecting a child's stdout and stderr.
type Captured = (
    std::process::Child,
    std::thread::JoinHandle<String>,
    std::thread::JoinHandle<String>,
);

/// Spawns `cmd` with stdin closed and stdout/stderr read to strings by two threads (so a
/// chatty child never blocks on a full pipe).
fn spawn_captured(cmd: &mut Command) -> Captured {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    (child, out_t, err_t)
}

/// Runs `cmd` to completion, killing it after `limit`; stdout and stderr are captured.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Run {
    let start = Instant::now();
    let (mut child, out_t, err_t) = spawn_captured(&mut cmd);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("wait: {e}"),
        }
    };
    Run {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

/// RTSP lower transport for real clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lower {
    /// RTP/AVP over UDP (`client_port=a-b`).
    Udp,
    /// RTP/AVP/TCP interleaved on the RTSP connection.
    Tcp,
    /// Interleaved, inside an RTSP-over-HTTP tunnel (ffmpeg only).
    Http,
}

impl Lower {
    /// `udp` / `tcp`, as ffmpeg's `-rtsp_transport` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lower::Udp => "udp",
            Lower::Tcp => "tcp",
            Lower::Http => "http",
        }
    }
}

/// True for the null muxer's "non monotonically increasing dts" complaint. It is not a
/// decoder error: with B-frames over RTP, ffmpeg 5.1 hands the null muxer decoded frames
/// whose guessed timestamps repeat (it does the same pulling from gst-rtsp-server, where
/// it is more frequent), although the RTP timestamps follow the file's presentation order
/// exactly (checked on Apple's H.264 sample).
fn is_null_muxer_dts_note(line: &str) -> bool {
    line.starts_with("[null @") && line.contains("non monotonically increasing dts")
}

/// Result of decoding an RTSP stream with ffmpeg to the null muxer.
#[derive(Debug)]
pub struct Decode {
    /// Video frames written to the null muxer (last `frame=` of `-progress`).
    pub frames: u64,
    /// Lines ffmpeg printed at `-loglevel error` (decoder / demuxer errors), without the
    /// null muxer's timestamp notes (see `is_null_muxer_dts_note`).
    pub errors: Vec<String>,
    /// The whole run.
    pub run: Run,
}

/// `ffmpeg -rtsp_transport T [-ss SS] -i URL -t SECS -map 0:v -f null -`, counting decoded
/// frames via `-progress pipe:1`. ffmpeg's own socket timeout is 5 s; the run is killed after
/// `secs + 30` s.
pub fn ffmpeg_decode(url: &str, lower: Lower, seek: Option<f64>, secs: f64) -> Decode {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
        .args(["-progress", "pipe:1"])
        .args(["-rtsp_transport", lower.as_str(), "-timeout", "5000000"]);
    if let Some(ss) = seek {
        cmd.args(["-ss", &format!("{ss:.3}")]);
    }
    cmd.args(["-i", url, "-t", &format!("{secs:.3}")]).args([
        "-map",
        "0:v",
        "-fps_mode",
        "passthrough",
        "-f",
        "null",
        "-",
    ]);
    let run = run_with_limit(cmd, Duration::from_secs_f64(secs + 30.0));
    let frames = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .next_back()
        .unwrap_or(0);
    let mut errors = Vec::new();
    let mut after_muxer_note = false;
    for line in run.stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if is_null_muxer_dts_note(line)
            || (after_muxer_note && line.starts_with("Last message repeated"))
        {
            after_muxer_note = true;
            continue;
        }
        after_muxer_note = false;
        errors.push(line.to_string());
    }
    Decode {
        frames,
        errors,
        run,
    }
}

/// One packet of a file's stream as ffprobe reports it.
#[derive(Clone, Debug)]
pub struct ProbePacket {
    /// Presentation time, seconds.
    pub pts: f64,
    /// Byte offset in the file.
    pub pos: u64,
    /// Size in bytes.
    pub size: usize,
    /// Keyframe flag.
    pub key: bool,
}

/// The packets of the first video stream of `path`, in file order.
pub fn video_packets(path: &Path) -> Vec<ProbePacket> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time,pos,size,flags", "-of", "csv=p=0"])
        .arg(path);
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert!(
        run.status.is_some_and(|s| s.success()),
        "ffprobe {} failed: {}",
        path.display(),
        run.stderr
    );
    let mut v = Vec::new();
    for line in run.stdout.lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 4 {
            continue;
        }
        let (Ok(pts), Ok(size), Ok(pos)) = (f[0].parse(), f[1].parse(), f[2].parse()) else {
            continue;
        };
        v.push(ProbePacket {
            pts,
            size,
            pos,
            key: f[3].contains('K'),
        });
    }
    assert!(
        !v.is_empty(),
        "ffprobe found no video packets in {}",
        path.display()
    );
    v
}

/// Number of video frames of `path` whose presentation time lies in
/// `[first_pts + start, first_pts + start + secs)`.
pub fn source_frames(path: &Path, start: f64, secs: f64) -> u64 {
    let pkts = video_packets(path);
    let first = pkts.iter().map(|p| p.pts).fold(f64::INFINITY, f64::min);
    pkts.iter()
        .filter(|p| {
            let t = p.pts - first;
            t >= start - 1e-6 && t < start + secs - 1e-6
        })
        .count() as u64
}

/// True when a program answers `--version` (ffmpeg, gst-launch-1.0, ...).
pub fn have(program: &str) -> bool {
    let flag = if program.starts_with("ff") {
        "-version"
    } else {
        "--version"
    };
    Command::new(program)
        .arg(flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True for the line `fakesink silent=false` prints per buffer it receives
/// (`/GstPipeline:pipeline0/GstFakeSink:fakesink0: last-message = chain   ******* ...`).
fn is_sink_buffer(line: &str) -> bool {
    line.contains("chain   ")
}

/// Result of a GStreamer `rtspsrc` pull.
#[derive(Debug)]
pub struct GstPull {
    /// H.264 buffers that reached the sink (`chain` lines of `fakesink silent=false`).
    pub buffers: usize,
    /// Error lines GStreamer printed, each with its debug detail, except the
    /// PAUSE that GStreamer cancelled itself while stopping (see
    /// [`GstPull::own_pause_cancelled`]).
    pub errors: Vec<String>,
    /// GStreamer reported its stop-time PAUSE as failed with "Received end-of-file"
    /// (gst_rtspsrc_pause, and the same failure again from gst_rtspsrc_try_send).
    /// On SIGINT, rtspsrc's PLAYING→PAUSED queues a PAUSE and its PAUSED→READY at once
    /// flushes the connection to send TEARDOWN; a PAUSE whose write is cancelled
    /// before a byte leaves is reported by gstrtspconnection.c's writev_bytes as EOF
    /// (it maps any error with nothing written to GST_RTSP_EEOF). The server never
    /// sees that PAUSE; the TEARDOWN that follows goes out on the same connection,
    /// so callers check the server's log for it.
    pub own_pause_cancelled: bool,
    /// The whole run.
    pub run: Run,
}

/// Time GStreamer may take from spawn to its first buffer at the sink (RTSP setup,
/// jitter-buffer latency, preroll) before [`gst_pull`]'s play time starts anyway. On
/// a loaded CI host, setup alone has taken over a second.
const GST_STARTUP_LIMIT: Duration = Duration::from_secs(15);

/// `gst-launch-1.0 -e -v rtspsrc location=URL <props> ! rtph264depay ! h264parse !
/// fakesink silent=false` for `secs` seconds of play, counted from the first buffer
/// at the sink (or from [`GST_STARTUP_LIMIT`] after spawn if none arrives), then
/// SIGINT; counts the buffers that reached the sink. A client that exits by itself
/// (an error, a refusal) ends the pull at once. Fails the test when gst-launch-1.0
/// is missing.
pub fn gst_pull(url: &str, props: &[&str], secs: f64) -> GstPull {
    assert!(
        have("gst-launch-1.0"),
        "gst-launch-1.0 is not installed (scripts/install-peers installs it)"
    );
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.args(["-e", "-v", "rtspsrc"])
        .arg(format!("location={url}"))
        .args(props)
        .args([
            "!",
            "rtph264depay",
            "!",
            "h264parse",
            "!",
            "fakesink",
            "silent=false",
        ]);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = child.stdout.take().expect("stdout pipe");
    let mut err = child.stderr.take().expect("stderr pipe");
    let (first_tx, first_rx) = std::sync::mpsc::channel::<Instant>();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let mut first = Some(first_tx);
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)) {
            let Ok(line) = line else { break };
            if is_sink_buffer(&line) {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Instant::now());
                }
            }
            s.push_str(&line);
            s.push('\n');
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut deadline = start + GST_STARTUP_LIMIT + Duration::from_secs_f64(secs);
    let mut playing = false;
    loop {
        if !playing {
            if let Ok(at) = first_rx.try_recv() {
                playing = true;
                deadline = at + Duration::from_secs_f64(secs);
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut status = None;
    for _ in 0..100 {
        if let Ok(Some(st)) = child.try_wait() {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    let buffers = stdout.lines().filter(|l| is_sink_buffer(l)).count();
    let mut errors: Vec<String> = error_lines(&stdout)
        .into_iter()
        .chain(error_lines(&stderr))
        .collect();
    let own_pause_cancelled = drop_own_cancelled_pause(&mut errors);
    GstPull {
        buffers,
        errors,
        own_pause_cancelled,
        run: Run {
            status,
            stdout,
            stderr,
            elapsed: start.elapsed(),
        },
    }
}

/// GStreamer's error lines in `text`, each with the "Additional debug info" that
/// follows it (the element's own reason, such as the failed request and errno).
fn error_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !(l.starts_with("ERROR") || l.contains("error:")) {
            continue;
        }
        let mut e = l.to_string();
        if lines
            .get(i + 1)
            .is_some_and(|n| n.starts_with("Additional debug info"))
        {
            for detail in lines.iter().skip(i + 1).take(3) {
                e.push_str(" | ");
                e.push_str(detail);
            }
        }
        out.push(e);
    }
    out
}

/// Removes the two reports of a stop-time PAUSE that GStreamer cancelled itself
/// ([`GstPull::own_pause_cancelled`]): the one from gst_rtspsrc_pause, and one
/// from gst_rtspsrc_try_send with the same "Received end-of-file". True when found.
fn drop_own_cancelled_pause(errors: &mut Vec<String>) -> bool {
    const EOF: &str = "Could not send message. (Received end-of-file)";
    let is = |e: &String, func: &str| e.contains(func) && e.contains(EOF);
    let Some(pause) = errors.iter().position(|e| is(e, "gst_rtspsrc_pause ()")) else {
        return false;
    };
    errors.remove(pause);
    if let Some(send) = errors.iter().position(|e| is(e, "gst_rtspsrc_try_send ()")) {
        errors.remove(send);
    }
    true
}

/// Runs `program args` with `input` on stdin and returns its output; a missing program
/// fails the test.
pub fn with_stdin(program: &str, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}
