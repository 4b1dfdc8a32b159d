//! Per-second samples of a process from /proc: CPU time (user, system, and
//! the scheduler's ns-precise run time), resident memory (total, anonymous,
//! file-backed), open descriptors and context switches, summed over all its
//! threads (io_uring workers included).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t_s: f64,
    /// Cumulative user CPU, s (/proc/PID/stat utime).
    pub user_s: f64,
    /// Cumulative system CPU, s (/proc/PID/stat stime).
    pub sys_s: f64,
    /// Cumulative run time of all threads, s (/proc/PID/task/*/schedstat).
    pub run_s: f64,
    /// Cumulative time its threads were runnable but waiting for a CPU, s
    /// (schedstat's run-queue wait: other tasks held the CPU).
    pub wait_s: f64,
    /// Resident set, KiB (VmRSS).
    pub rss_kib: u64,
    /// Anonymous resident memory, KiB (RssAnon).
    pub rss_anon_kib: u64,
    /// File-backed resident memory (mapped media, binary), KiB (RssFile).
    pub rss_file_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Cumulative voluntary + involuntary context switches, all threads.
    pub ctx_switches: u64,
    /// Threads.
    pub threads: u64,
    /// Cumulative busy time (user, nice, system, irq, softirq) of the
    /// server's CPU set, all tasks, s (/proc/stat).
    pub server_cpus_busy_s: f64,
    /// Of which softirq, s.
    pub server_cpus_softirq_s: f64,
    /// Cumulative steal time of the server's CPU set (the hypervisor ran
    /// something else), s.
    pub server_cpus_steal_s: f64,
    /// Cumulative busy time of the load tool's CPU set, s.
    pub loadtool_cpus_busy_s: f64,
}

/// CPU numbers of a list such as `0-3,6`; empty on a malformed list.
pub fn parse_cpus(list: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => a
                .trim()
                .parse::<usize>()
                .ok()
                .zip(b.trim().parse::<usize>().ok()),
            None => part.parse::<usize>().ok().map(|a| (a, a)),
        };
        match range {
            Some((a, b)) if a <= b && b - a < 4096 => out.extend(a..=b),
            _ => return Vec::new(),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// (busy, softirq, steal) seconds of `cpus` from the text of /proc/stat.
fn cpu_set_times(stat: &str, cpus: &[usize], ticks: f64) -> (f64, f64, f64) {
    let mut busy = 0u64;
    let mut soft = 0u64;
    let mut steal = 0u64;
    for line in stat.lines() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        let Some(n) = name
            .strip_prefix("cpu")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&n) {
            continue;
        }
        // user nice system idle iowait irq softirq steal
        let v: Vec<u64> = f.take(8).filter_map(|x| x.parse().ok()).collect();
        if v.len() == 8 {
            busy += v[0] + v[1] + v[2] + v[5] + v[6];
            soft += v[6];
            steal += v[7];
        }
    }
    (
        busy as f64 / ticks,
        soft as f64 / ticks,
        steal as f64 / ticks,
    )
}

fn clock_ticks() -> f64 {
    // SAFETY: plain sysconf query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime and stime (s) from the text of /proc/PID/stat.
fn parse_stat(text: &str, ticks: f64) -> Option<(f64, f64)> {
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'. utime and stime are fields 14 and 15 (1-based), i.e. the
    // 12th and 13th after the state field.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime / ticks, stime / ticks))
}

fn status_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads one sample of `pid` and of the two CPU sets; `None` once the
/// process is gone.
pub fn sample(
    pid: u32,
    t_s: f64,
    server_cpus: &[usize],
    loadtool_cpus: &[usize],
) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (user_s, sys_s) = parse_stat(&stat, clock_ticks())?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let mut run_ns = 0u64;
    let mut wait_ns = 0u64;
    let mut ctx = 0u64;
    let mut threads = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            threads += 1;
            let dir = t.path();
            if let Ok(s) = std::fs::read_to_string(dir.join("schedstat")) {
                let mut f = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
                run_ns += f.next().unwrap_or(0);
                wait_ns += f.next().unwrap_or(0);
            }
            if let Ok(s) = std::fs::read_to_string(dir.join("status")) {
                ctx += status_kib(&s, "voluntary_ctxt_switches:")
                    + status_kib(&s, "nonvoluntary_ctxt_switches:");
            }
        }
    }
    let proc_stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let (server_cpus_busy_s, server_cpus_softirq_s, server_cpus_steal_s) =
        cpu_set_times(&proc_stat, server_cpus, clock_ticks());
    let (loadtool_cpus_busy_s, _, _) = cpu_set_times(&proc_stat, loadtool_cpus, clock_ticks());
    Some(Sample {
        t_s,
        user_s,
        sys_s,
        run_s: run_ns as f64 / 1e9,
        wait_s: wait_ns as f64 / 1e9,
        rss_kib: status_kib(&status, "VmRSS:"),
        rss_anon_kib: status_kib(&status, "RssAnon:"),
        rss_file_kib: status_kib(&status, "RssFile:"),
        fds,
        ctx_switches: ctx,
        threads,
        server_cpus_busy_s,
        server_cpus_softirq_s,
        server_cpus_steal_s,
        loadtool_cpus_busy_s,
    })
}

/// A thread sampling one process every `period` until stopped or the process
/// exits.
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    cpus: (Vec<usize>, Vec<usize>),
    thread: Option<JoinHandle<()>>,
    /// When sampling started (t_s = 0).
    pub started: Instant,
}

impl Sampler {
    /// Starts sampling `pid` and the CPU sets of the server and the load tool.
    pub fn start(
        pid: u32,
        period: Duration,
        server_cpus: Vec<usize>,
        loadtool_cpus: Vec<usize>,
    ) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let (s, st) = (samples.clone(), stop.clone());
        let cpus = (server_cpus.clone(), loadtool_cpus.clone());
        let thread = std::thread::spawn(move || {
            let mut next = started;
            while !st.load(Ordering::Relaxed) {
                let t = started.elapsed().as_secs_f64();
                match sample(pid, t, &server_cpus, &loadtool_cpus) {
                    Some(x) => {
                        if let Ok(mut v) = s.lock() {
                            v.push(x);
                        }
                    }
                    None => break,
                }
                next += period;
                // Sleep in short steps so stop() returns quickly.
                while Instant::now() < next && !st.load(Ordering::Relaxed) {
                    std::thread::sleep(
                        next.saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(20)),
                    );
                }
            }
        });
        Sampler {
            samples,
            stop,
            cpus,
            thread: Some(thread),
            started,
        }
    }

    /// Takes one extra sample now (e.g. at a phase boundary).
    pub fn mark(&self, pid: u32) -> Option<Sample> {
        let x = sample(
            pid,
            self.started.elapsed().as_secs_f64(),
            &self.cpus.0,
            &self.cpus.1,
        )?;
        if let Ok(mut v) = self.samples.lock() {
            v.push(x);
            v.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        }
        Some(x)
    }

    /// Stops and returns the samples in time order.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut v = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        v.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        v
    }
}

/// Cumulative counters linearly interpolated at time `t_s` (clamped to the
/// sampled range).
pub fn at(samples: &[Sample], t_s: f64) -> Option<Sample> {
    let first = samples.first()?;
    if t_s <= first.t_s {
        return Some(*first);
    }
    let last = samples.last()?;
    if t_s >= last.t_s {
        return Some(*last);
    }
    let i = samples.partition_point(|s| s.t_s <= t_s);
    let (a, b) = (samples[i - 1], samples[i]);
    let span = b.t_s - a.t_s;
    let w = if span > 0.0 {
        (t_s - a.t_s) / span
    } else {
        0.0
    };
    let lerp = |x: f64, y: f64| x + (y - x) * w;
    Some(Sample {
        t_s,
        user_s: lerp(a.user_s, b.user_s),
        sys_s: lerp(a.sys_s, b.sys_s),
        run_s: lerp(a.run_s, b.run_s),
        wait_s: lerp(a.wait_s, b.wait_s),
        ctx_switches: lerp(a.ctx_switches as f64, b.ctx_switches as f64) as u64,
        server_cpus_busy_s: lerp(a.server_cpus_busy_s, b.server_cpus_busy_s),
        server_cpus_softirq_s: lerp(a.server_cpus_softirq_s, b.server_cpus_softirq_s),
        server_cpus_steal_s: lerp(a.server_cpus_steal_s, b.server_cpus_steal_s),
        loadtool_cpus_busy_s: lerp(a.loadtool_cpus_busy_s, b.loadtool_cpus_busy_s),
        ..a
    })
}

/// Largest value of `f` over samples within `[from, to]` seconds.
pub fn peak(samples: &[Sample], from: f64, to: f64, f: impl Fn(&Sample) -> u64) -> u64 {
    samples
        .iter()
        .filter(|s| s.t_s >= from && s.t_s <= to)
        .map(f)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_proc_stat() {
        assert_eq!(parse_cpus("0-2,5,1"), vec![0, 1, 2, 5]);
        assert!(parse_cpus("2-1").is_empty());
        let stat =
            "cpu  1 1 1 1 1 1 1 1 0 0\ncpu0 100 0 50 900 0 10 40 5 0 0\ncpu1 7 0 0 0 0 0 0 0 0 0\n";
        let (busy, soft, steal) = cpu_set_times(stat, &[0], 100.0);
        assert!(
            (busy - 2.0).abs() < 1e-9 && (soft - 0.4).abs() < 1e-9 && (steal - 0.05).abs() < 1e-9
        );
        assert!((cpu_set_times(stat, &[0, 1], 100.0).0 - 2.07).abs() < 1e-9);
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "123 (a) b (c)) S 1 123 123 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        let (u, s) = parse_stat(line, 100.0).expect("parses");
        assert!((u - 2.5).abs() < 1e-9 && (s - 0.75).abs() < 1e-9);
    }

    #[test]
    fn samples_this_process_and_interpolates() {
        let me = std::process::id();
        let a = sample(me, 0.0, &[0], &[0]).expect("own /proc entry");
        assert!(a.rss_kib > 0 && a.fds > 0 && a.threads >= 1);
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let b = sample(me, 1.0, &[0], &[0]).expect("own /proc entry");
        assert!(b.server_cpus_busy_s >= a.server_cpus_busy_s && a.server_cpus_busy_s > 0.0);
        assert!(b.run_s >= a.run_s);
        let mid = at(&[a, b], 0.5).expect("interpolates");
        assert!(mid.run_s >= a.run_s && mid.run_s <= b.run_s);
    }
}
