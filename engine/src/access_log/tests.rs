//! Format tests: every expected line below is written out by hand from the
//! record's values, not produced by the formatter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::metrics::Transport;

/// 2024-02-29 12:34:56 UTC (checked against `date -u` in `time::tests`).
fn leap_day() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_709_210_096)
}

fn session_record() -> AccessRecord {
    AccessRecord {
        started: leap_day() - Duration::from_millis(125_900),
        uri_query: Some("token=abc&exp=1".into()),
        start_npt_s: Some(30),
        user_agent: Some("QTS (qtver=7.6.6;cpu=IA32;os=Mac 10.6.8)".into()),
        file_length_s: Some(599.6),
        file_size_bytes: Some(123_456_789),
        avg_bandwidth_bps: Some(1_500_000),
        transport: Some(Transport::Tcp),
        audio_codec: Some("mpeg4-generic".into()),
        video_codec: Some("H264".into()),
        sc_bytes: 9_876_543,
        cs_bytes: Some(4321),
        packets_sent: 8000,
        client_packets_received: Some(7990),
        client_packets_lost: Some(10),
        server_ip: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
        server_total_clients: 42,
        server_cpu_percent: Some(7),
        username: Some("jo smith".into()),
        realm: Some("Cadence Streaming".into()),
        ..AccessRecord::new(
            // IPv4-mapped: logged in dotted form.
            IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped()),
            "/movies/trailer%20one.mp4".into(),
            200,
            leap_day(),
        )
    }
}

#[test]
fn header_is_byte_exact() {
    let want = format!(
        "#Software: Cadence/{}\n\
         #Version: 1.0\n\
         #Date: 2024-02-29 12:34:56\n\
         #Remark: all time values are in GMT.\n\
         #Fields: c-ip date time c-dns cs-uri-stem c-starttime x-duration c-rate c-status c-playerid c-playerversion c-playerlanguage cs(User-Agent) c-os c-osversion c-cpu filelength filesize avgbandwidth protocol transport audiocodec videocodec sc-bytes cs-bytes c-bytes s-pkts-sent c-pkts-received c-pkts-lost-client c-buffercount c-totalbuffertime c-quality s-ip s-dns s-totalclients s-cpu-util cs-uri-query c-username sc(Realm)\n",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(w3c_header(leap_day()), want);
}

#[test]
fn session_line_is_exact() {
    // x-duration: 125.9 s → 125; filelength 599.6 → 600; c-quality:
    // 7990 / (7990 + 10) = 99.875 % → 100 (DSS adds 0.5 % and truncates).
    let want = "192.0.2.7 2024-02-29 12:34:56 - /movies/trailer%20one.mp4 30 125 1 200 - 7.6.6 - \
                QTS%20(qtver=7.6.6;cpu=IA32;os=Mac%2010.6.8) Mac 10.6.8 IA32 600 123456789 1500000 \
                RTP TCP mpeg4-generic H264 9876543 4321 - 8000 7990 10 - - 100 198.51.100.1 - 42 7 \
                token=abc&exp=1 jo%20smith Cadence%20Streaming\n";
    assert_eq!(w3c_line(&session_record()), want);
    assert_eq!(want.trim_end().split(' ').count(), 39);
}

#[test]
fn refusal_line_is_exact() {
    let r = AccessRecord {
        user_agent: Some("Lavf60.16.100".into()),
        realm: Some("Cadence".into()),
        ..AccessRecord::new(
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            "/secret.mp4".into(),
            401,
            leap_day(),
        )
    };
    let want = "203.0.113.9 2024-02-29 12:34:56 - /secret.mp4 - 0 1 401 - - - Lavf60.16.100 - - - \
                - - - RTP - - - 0 - - 0 - - - - 0 - - 0 - - - Cadence\n";
    assert_eq!(w3c_line(&r), want);
    let v6 = AccessRecord::new(
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        "/a.mp4".into(),
        404,
        leap_day(),
    );
    assert!(w3c_line(&v6).starts_with("2001:db8::1 2024-02-29 12:34:56 - /a.mp4 - 0 1 404 "));
}

#[test]
fn escaping_keeps_one_token_per_field() {
    assert_eq!(w3c_escape("a b"), "a%20b");
    assert_eq!(w3c_escape("tab\there\nnl\r"), "tab%09here%0Anl%0D");
    assert_eq!(w3c_escape("caf\u{e9}"), "caf%C3%A9");
    assert_eq!(w3c_escape("100%25"), "100%25");
    assert_eq!(w3c_escape("del\x7f"), "del%7F");
    assert_eq!(w3c_escape(""), "-");
    // A hostile User-Agent cannot add fields or lines.
    let r = AccessRecord {
        user_agent: Some("evil\n1.2.3.4 x y".into()),
        ..session_record()
    };
    let l = w3c_line(&r);
    assert_eq!(l.matches('\n').count(), 1);
    assert_eq!(l.trim_end().split(' ').count(), 39);
}

#[test]
fn json_line_has_the_same_fields() {
    let line = json_line(&session_record());
    assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    let obj = v.as_object().expect("object");
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = FIELDS.to_vec();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(FIELDS.len(), 39);
    use serde_json::json;
    assert_eq!(obj["c-ip"], json!("192.0.2.7"));
    assert_eq!(obj["date"], json!("2024-02-29"));
    assert_eq!(obj["time"], json!("12:34:56"));
    assert_eq!(obj["c-dns"], json!(null));
    assert_eq!(obj["cs-uri-stem"], json!("/movies/trailer%20one.mp4"));
    assert_eq!(obj["c-starttime"], json!(30));
    assert_eq!(obj["x-duration"], json!(125));
    assert_eq!(obj["c-status"], json!(200));
    assert_eq!(
        obj["cs(User-Agent)"],
        json!("QTS (qtver=7.6.6;cpu=IA32;os=Mac 10.6.8)")
    );
    assert_eq!(obj["c-os"], json!("Mac"));
    assert_eq!(obj["filelength"], json!(600));
    assert_eq!(obj["filesize"], json!(123_456_789));
    assert_eq!(obj["avgbandwidth"], json!(1_500_000));
    assert_eq!(obj["protocol"], json!("RTP"));
    assert_eq!(obj["transport"], json!("TCP"));
    assert_eq!(obj["videocodec"], json!("H264"));
    assert_eq!(obj["sc-bytes"], json!(9_876_543));
    assert_eq!(obj["s-pkts-sent"], json!(8000));
    assert_eq!(obj["c-pkts-lost-client"], json!(10));
    assert_eq!(obj["s-ip"], json!("198.51.100.1"));
    assert_eq!(obj["s-totalclients"], json!(42));
    assert_eq!(obj["cs-uri-query"], json!("token=abc&exp=1"));
    assert_eq!(obj["c-username"], json!("jo smith"));
    assert_eq!(obj["sc(Realm)"], json!("Cadence Streaming"));
    // Keys come in the #Fields order (serde_json's map sorts them, so look
    // at the raw text).
    let pos: Vec<usize> = FIELDS
        .iter()
        .map(|k| line.find(&format!("\"{k}\":")).expect("key present"))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "order {pos:?}");
    // Control characters are escaped by JSON, not lost.
    let r = AccessRecord {
        user_agent: Some("a\"b\n".into()),
        ..session_record()
    };
    let v: serde_json::Value = serde_json::from_str(&json_line(&r)).expect("valid JSON");
    assert_eq!(v["cs(User-Agent)"], json!("a\"b\n"));
}
