//! The two line formats of the access log: W3C Extended Log File Format
//! with DSS's field list (`QTSSAccessLogModule.cpp`, W3C WD-logfile), and
//! JSON lines with the same fields, keyed by the W3C field names.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::record::AccessRecord;
use super::time::UtcTime;
use super::user_agent::player_fields;

/// Line format of the access log (`access_log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// W3C Extended Log File Format, DSS's fields, `#` header lines.
    #[default]
    W3c,
    /// One JSON object per line, keys = the W3C field names, `null` for
    /// unknown fields; no header.
    Json,
}

/// DSS's field list, in order (the `#Fields:` directive).
pub const FIELDS: [&str; 39] = [
    "c-ip",
    "date",
    "time",
    "c-dns",
    "cs-uri-stem",
    "c-starttime",
    "x-duration",
    "c-rate",
    "c-status",
    "c-playerid",
    "c-playerversion",
    "c-playerlanguage",
    "cs(User-Agent)",
    "c-os",
    "c-osversion",
    "c-cpu",
    "filelength",
    "filesize",
    "avgbandwidth",
    "protocol",
    "transport",
    "audiocodec",
    "videocodec",
    "sc-bytes",
    "cs-bytes",
    "c-bytes",
    "s-pkts-sent",
    "c-pkts-received",
    "c-pkts-lost-client",
    "c-buffercount",
    "c-totalbuffertime",
    "c-quality",
    "s-ip",
    "s-dns",
    "s-totalclients",
    "s-cpu-util",
    "cs-uri-query",
    "c-username",
    "sc(Realm)",
];

/// The header that starts every W3C log file: `#Software`, `#Version`
/// (of the format), `#Date` (UTC, `yyyy-mm-dd hh:mm:ss`, when the file was
/// opened), DSS's `#Remark` on the time zone, then `#Fields`.
pub fn w3c_header(opened: SystemTime) -> String {
    let t = UtcTime::from_system(opened);
    format!(
        "#Software: Cadence/{}\n#Version: 1.0\n#Date: {} {}\n#Remark: all time values are in GMT.\n#Fields: {}\n",
        env!("CARGO_PKG_VERSION"),
        t.date(),
        t.time(),
        FIELDS.join(" ")
    )
}

/// A field's value before it is rendered.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    /// Unknown: `-` / `null`.
    None,
    /// A whole number.
    Int(u64),
    /// Text (escaped in W3C, raw in JSON).
    Text(Cow<'a, str>),
}

fn text<'a>(s: &'a Option<String>) -> Value<'a> {
    match s.as_deref() {
        Some(v) if !v.is_empty() => Value::Text(Cow::Borrowed(v)),
        _ => Value::None,
    }
}

fn opt_str<'a>(s: Option<&'a str>) -> Value<'a> {
    s.map_or(Value::None, |v| Value::Text(Cow::Borrowed(v)))
}

fn int(v: Option<u64>) -> Value<'static> {
    v.map_or(Value::None, Value::Int)
}

fn ip(a: IpAddr) -> Value<'static> {
    Value::Text(Cow::Owned(a.to_canonical().to_string()))
}

/// `c-quality`, DSS's formula: percent of packets the client received,
/// rounded (DSS adds 0.5 % and truncates); 0 when nothing was sent. Where
/// DSS assumes 100 without receiver reports, this is unknown (`-`).
fn quality(r: &AccessRecord) -> Option<u64> {
    if r.packets_sent == 0 {
        return Some(0);
    }
    let (rx, lost) = (r.client_packets_received?, r.client_packets_lost?);
    let total = rx.checked_add(lost)?;
    if total == 0 {
        return None;
    }
    Some(((rx as f64 / total as f64 + 0.005) * 100.0) as u64)
}

/// The 39 values of `r` in [`FIELDS`] order.
fn values(r: &AccessRecord) -> [Value<'_>; 39] {
    let end = UtcTime::from_system(r.ended);
    let duration = r
        .ended
        .duration_since(r.started)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let player = r
        .user_agent
        .as_deref()
        .map(player_fields)
        .unwrap_or_default();
    [
        ip(r.client_ip),
        Value::Text(Cow::Owned(end.date())),
        Value::Text(Cow::Owned(end.time())),
        Value::None,
        Value::Text(Cow::Borrowed(&r.uri_stem)),
        int(r.start_npt_s),
        Value::Int(duration),
        Value::Int(1),
        Value::Int(u64::from(r.status)),
        Value::None,
        opt_str(player.version),
        opt_str(player.language),
        text(&r.user_agent),
        opt_str(player.os),
        opt_str(player.os_version),
        opt_str(player.cpu),
        match r.file_length_s {
            Some(s) if s.is_finite() && s >= 0.0 => Value::Int(s.round() as u64),
            _ => Value::None,
        },
        int(r.file_size_bytes),
        int(r.avg_bandwidth_bps),
        Value::Text(Cow::Borrowed("RTP")),
        r.transport
            .map_or(Value::None, |t| Value::Text(Cow::Borrowed(t.w3c()))),
        text(&r.audio_codec),
        text(&r.video_codec),
        Value::Int(r.sc_bytes),
        int(r.cs_bytes),
        Value::None,
        Value::Int(r.packets_sent),
        int(r.client_packets_received),
        int(r.client_packets_lost),
        Value::None,
        Value::None,
        int(quality(r)),
        r.server_ip.map_or(Value::None, ip),
        Value::None,
        Value::Int(r.server_total_clients),
        int(r.server_cpu_percent.map(u64::from)),
        text(&r.uri_query),
        text(&r.username),
        text(&r.realm),
    ]
}

/// Escapes a W3C field so that it holds no separator: a space becomes
/// `%20` as in DSS (`ReplaceSpaces`), and every other control byte, DEL
/// and non-ASCII byte becomes `%XX` (upper-case hex of the UTF-8 bytes).
/// `%` itself is kept, so already percent-encoded URLs stay as received.
/// An empty value is `-`.
pub fn w3c_escape(s: &str) -> Cow<'_, str> {
    if s.is_empty() {
        return Cow::Borrowed("-");
    }
    if s.bytes().all(|b| b > b' ' && b < 0x7f) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        if b > b' ' && b < 0x7f {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Cow::Owned(out)
}

/// One W3C line for `r`, newline-terminated: the 39 fields separated by
/// single spaces, `-` for unknown ones.
pub fn w3c_line(r: &AccessRecord) -> String {
    let mut line = String::with_capacity(320);
    for (i, v) in values(r).iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        match v {
            Value::None => line.push('-'),
            Value::Int(n) => {
                let _ = write!(line, "{n}");
            }
            Value::Text(t) => line.push_str(&w3c_escape(t)),
        }
    }
    line.push('\n');
    line
}

/// One JSON line for `r`, newline-terminated: an object with the
/// [`FIELDS`] as keys in order, numbers as JSON numbers, text unescaped,
/// `null` for unknown fields.
pub fn json_line(r: &AccessRecord) -> String {
    let mut line = String::with_capacity(640);
    line.push('{');
    for (i, (k, v)) in FIELDS.iter().zip(values(r)).enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_json_str(&mut line, k);
        line.push(':');
        match v {
            Value::None => line.push_str("null"),
            Value::Int(n) => {
                let _ = write!(line, "{n}");
            }
            Value::Text(t) => push_json_str(&mut line, &t),
        }
    }
    line.push_str("}\n");
    line
}

/// Appends `s` as a JSON string literal (RFC 8259 §7 escaping, by
/// serde_json).
fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        // Serializing a &str cannot fail; keep the line valid regardless.
        Err(_) => out.push_str("null"),
    }
}

/// One line of `format` for `r`.
pub fn line(format: LogFormat, r: &AccessRecord) -> String {
    match format {
        LogFormat::W3c => w3c_line(r),
        LogFormat::Json => json_line(r),
    }
}

/// A `#Remark:` directive (W3C only; JSON files get none), e.g. for lines
/// dropped because the queue was full.
pub fn w3c_remark(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("#Remark: {clean}\n")
}
