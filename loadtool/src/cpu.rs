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
    fn own_process_is_readable() {
        let a = CpuTimes::of_pid(std::process::id()).unwrap();
        let b = CpuTimes::this_process();
        // Same process, two clocks: both small and plausible.
        assert!(a.total() <= b.total() + Duration::from_secs(1));
    }
}
