//! The access log (issue 10): one line per client session when it ends,
//! and one per request refused with 401, 403, 404 or 453.
//!
//! Format: W3C Extended Log File Format with DSS's header and 39 fields
//! (`APIModules/QTSSAccessLogModule`), so DSS log analysers read it, or the
//! same fields as JSON lines. A shard builds an [`AccessRecord`] and hands
//! it to [`AccessLogSender::log`], which never blocks; the `access-log`
//! thread formats and writes, rotates by size (`FILE.1` … `FILE.N`),
//! reopens on request (SIGHUP) and reports trouble at most once per
//! interval.

mod config;
mod format;
mod metrics;
mod record;
mod report;
mod time;
mod user_agent;
mod writer;

pub use config::{
    AccessLogArgs, AccessLogConfig, AccessLogKeys, DEFAULT_KEEP, DEFAULT_QUEUE, MAX_KEEP, MAX_QUEUE,
};
pub use format::{json_line, w3c_escape, w3c_header, w3c_line, LogFormat, FIELDS};
pub use metrics::AccessLogCollector;
pub use record::{close_status, AccessRecord};
pub use time::UtcTime;
pub use user_agent::{player_fields, PlayerFields};
pub use writer::{numbered, AccessLog, AccessLogCounters, AccessLogSender, AccessLogStats};

#[cfg(test)]
mod tests;
