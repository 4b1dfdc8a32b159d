//! Rate-limited reporting of access log trouble: write errors, lines lost
//! and records dropped are counted, and at most one log line per interval
//! says how many since the last one. Sans-IO: it takes `Instant`s and
//! returns what to log.

use std::time::{Duration, Instant};

/// What happened since the last report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Failed writes, opens, renames.
    pub errors: u64,
    /// Lines that could not be written.
    pub lost: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// The most recent error, as text.
    pub last_error: Option<String>,
}

/// Accumulates trouble and releases it at most once per `interval`.
#[derive(Debug)]
pub struct Reporter {
    interval: Duration,
    last: Option<Instant>,
    pending: Report,
}

impl Reporter {
    /// A reporter that emits at most one report per `interval`.
    pub fn new(interval: Duration) -> Reporter {
        Reporter {
            interval,
            last: None,
            pending: Report::default(),
        }
    }

    /// Notes a failed operation that lost `lost` lines.
    pub fn error(&mut self, what: String, lost: u64) {
        self.pending.errors += 1;
        self.pending.lost += lost;
        self.pending.last_error = Some(what);
    }

    /// Notes lines lost without a new error (no file open).
    pub fn lost(&mut self, lost: u64) {
        self.pending.lost += lost;
    }

    /// Notes `n` records dropped at the queue.
    pub fn dropped(&mut self, n: u64) {
        self.pending.dropped += n;
    }

    /// The pending report when there is one and the last report is at
    /// least `interval` old (the first one goes out at once).
    pub fn poll(&mut self, now: Instant) -> Option<Report> {
        let empty = self.pending.errors == 0 && self.pending.lost == 0 && self.pending.dropped == 0;
        if empty {
            return None;
        }
        if let Some(last) = self.last {
            if now.saturating_duration_since(last) < self.interval {
                return None;
            }
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }

    /// The pending report regardless of the interval (at shutdown, so no
    /// count goes unreported).
    pub fn take(&mut self) -> Option<Report> {
        let empty = self.pending.errors == 0 && self.pending.lost == 0 && self.pending.dropped == 0;
        if empty {
            None
        } else {
            Some(std::mem::take(&mut self.pending))
        }
    }

    /// Logs a report with `tracing` (one warning line).
    pub fn emit(r: &Report, path: &std::path::Path) {
        tracing::warn!(
            path = %path.display(),
            errors = r.errors,
            lines_lost = r.lost,
            records_dropped = r.dropped,
            last_error = r.last_error.as_deref().unwrap_or("-"),
            "access log trouble since the last report"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_one_report_per_interval() {
        let t0 = Instant::now();
        let mut r = Reporter::new(Duration::from_secs(10));
        assert_eq!(r.poll(t0), None);
        r.error("ENOSPC".into(), 3);
        let first = r.poll(t0).expect("first report is immediate");
        assert_eq!((first.errors, first.lost), (1, 3));
        for i in 0..1000 {
            r.error(format!("e{i}"), 1);
            r.dropped(2);
            assert_eq!(r.poll(t0 + Duration::from_millis(i)), None);
        }
        let second = r
            .poll(t0 + Duration::from_secs(10))
            .expect("after interval");
        assert_eq!(second.errors, 1000);
        assert_eq!(second.lost, 1000);
        assert_eq!(second.dropped, 2000);
        assert_eq!(second.last_error.as_deref(), Some("e999"));
        assert_eq!(r.poll(t0 + Duration::from_secs(100)), None);
    }
}
