//! UTC calendar date and time of a `SystemTime`, as the W3C Extended Log
//! File Format writes them (`date` = `yyyy-mm-dd`, `time` = `hh:mm:ss`,
//! both UTC; DSS's `QTSSRollingLog::FormatDate` uses the same
//! `%Y-%m-%d %H:%M:%S`).

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar instant, whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Year, e.g. 2024.
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day of month 1..=31.
    pub day: u32,
    /// Hour 0..=23.
    pub hour: u32,
    /// Minute 0..=59.
    pub minute: u32,
    /// Second 0..=59.
    pub second: u32,
}

impl UtcTime {
    /// The UTC time of `t`, truncated to the second; times before 1970
    /// read as the epoch.
    pub fn from_system(t: SystemTime) -> UtcTime {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UtcTime::from_unix(secs)
    }

    /// The UTC time `secs` seconds after 1970-01-01 00:00:00.
    pub fn from_unix(secs: u64) -> UtcTime {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        UtcTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// `yyyy-mm-dd`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `hh:mm:ss`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn matches_gnu_date() {
        // Oracle: coreutils `date -u`, over leap days, century rules and
        // year ends.
        for secs in [
            0u64,
            951_782_400,   // 2000-02-29
            1_709_210_096, // 2024-02-29 12:34:56
            1_735_689_599, // 2024-12-31 23:59:59
            4_107_542_400, // 2100-03-01
            253_402_300_799,
        ] {
            let out = Command::new("date")
                .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d %H:%M:%S"])
                .output()
                .expect("run date");
            let want = String::from_utf8(out.stdout).expect("utf8");
            let t = UtcTime::from_unix(secs);
            assert_eq!(format!("{} {}\n", t.date(), t.time()), want, "{secs}");
        }
    }
}
