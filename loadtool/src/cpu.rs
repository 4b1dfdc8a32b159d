//! CPU time of this process (getrusage) and, optionally, of the server
//! process (/proc/PID/stat), to express both per packet.

use std::time::Duration;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time in user mode.
    pub user: Duration,
    /// Time in the kernel on the process's behalf.
    pub system: Duration,
}

impl CpuTimes {
    /// This process, all threads (RUSAGE_SELF).
    pub fn this_process() -> Self {
        // SAFETY: zeroed rusage is valid; getrusage fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
        Self {
            user: tv(ru.ru_utime),
            system: tv(ru.ru_stime),
        }
    }

    /// The calling thread (RUSAGE_THREAD).
    pub fn this_thread() -> Self {
        // SAFETY: zeroed rusage is valid; getrusage fills it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
        Self {
            user: tv(ru.ru_utime),
            system: tv(ru.ru_stime),
        }
    }

    /// Process `pid` (utime and stime of /proc/PID/stat); `None` if it is
    /// not readable.
    pub fn of_pid(pid: u32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&text, clock_ticks())
    }

    /// `self − before`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            user: self.user.saturating_sub(before.user),
            system: self.system.saturating_sub(before.system),
        }
    }

    /// User plus system.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// Scheduler times of all threads of a process, from
/// /proc/PID/task/TID/schedstat (ns, exact rather than clock-tick
/// granular like /proc/PID/stat). Threads that already exited are not
/// counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedTimes {
    /// Time on a CPU, summed over threads.
    pub run: Duration,
    /// Time runnable but waiting for a CPU (held by other tasks), summed
    /// over threads.
    pub wait: Duration,
}

/// The [`SchedTimes`] of process `pid`; `None` if it is not readable.
pub fn sched_times_of_pid(pid: u32) -> Option<SchedTimes> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut run, mut wait) = (0u64, 0u64);
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("schedstat")) {
            if let Some((r, w)) = parse_schedstat(&text) {
                run += r;
                wait += w;
            }
        }
    }
    Some(SchedTimes {
        run: Duration::from_nanos(run),
        wait: Duration::from_nanos(wait),
    })
}

/// Run time and run-queue wait (first two fields, ns) of a schedstat line.
pub fn parse_schedstat(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_whitespace().map(str::parse::<u64>);
    Some((f.next()?.ok()?, f.next()?.ok()?))
}

fn clock_ticks() -> u64 {
    // SAFETY: plain sysconf query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Parses utime and stime (fields 14 and 15, in clock ticks) of a
/// /proc/PID/stat line. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted after its last `)`.
pub fn parse_stat(text: &str, ticks_per_s: u64) -> Option<CpuTimes> {
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let to = |t: u64| Duration::from_nanos(t * 1_000_000_000 / ticks_per_s.max(1));
    Some(CpuTimes {
        user: to(utime),
        system: to(stime),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_name() {
        let line = "1234 (cad (ence) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 1000 50";
        let t = parse_stat(line, 100).unwrap();
        assert_eq!(t.user, Duration::from_millis(2500));
        assert_eq!(t.system, Duration::from_millis(750));
        assert!(parse_stat("garbage", 100).is_none());
    }

    #[test]
    fn parses_schedstat_and_reads_own_run_time() {
        assert_eq!(parse_schedstat("123456 789 10\n"), Some((123456, 789)));
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
        assert_eq!(parse_schedstat("5"), None);
        // Burn some CPU: the run time of this process must grow by at least
        // part of it (schedstat may be absent on kernels without
        // CONFIG_SCHEDSTATS; then both reads are 0 and nothing is asserted).
        let a = sched_times_of_pid(std::process::id()).unwrap().run;
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let b = sched_times_of_pid(std::process::id()).unwrap().run;
        if a > Duration::ZERO {
            assert!(b >= a + Duration::from_millis(10), "{a:?} -> {b:?}");
        }
    }

    #[test]
    fn own_process_is_readable() {
        let a = CpuTimes::of_pid(std::process::id()).unwrap();
        let b = CpuTimes::this_process();
        // Same process, two clocks: both small and plausible.
        assert!(a.total() <= b.total() + Duration::from_secs(1));
    }
}
