//! Seed inputs, from real files and real protocol traffic:
//!
//! - [`from_sample`]: built in memory from the bundled sample
//!   (`media/sample.mp4`): the file itself, its stripped (plain) version, a
//!   cache entry of that, and well-formed messages of every other target in
//!   the shapes real clients and proxies send (requests as ffmpeg and
//!   GStreamer send them, receiver reports, PROXY v1/v2 as HAProxy writes
//!   them, tunnel halves as QuickTime and ffmpeg open them, DSS access and
//!   users files);
//! - [`from_media`]: seeds of one media file (ffmpeg output, see
//!   `scripts/fuzz-seeds`);
//! - [`from_capture`]: an `rtsp_session` input from a recorded client
//!   connection, with the recording server's session IDs, nonces and
//!   responses turned into [`crate::placeholders`].

use std::path::Path;

use cadence_hinting::cache::{self, CacheKey};
use cadence_hinting::mp4::Movie;
use cadence_hinting::packetize::plain::schedule_plain;
use cadence_hinting::HintError;
use rtcp_types::{
    Bye, Compound, ReceiverReport, ReportBlock, RtcpPacketWriter, RtcpPacketWriterExt, Sdes,
    SdesChunk, SdesItem, SenderReport,
};

use crate::fixture::{anon_map, users_text, SAMPLE, USERS};
use crate::placeholders::{NONCE, RESPONSE, SESSION, SIGNATURE};
use crate::session::SSRC_PLACEHOLDER;

/// One seed input.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Target it is for.
    pub target: &'static str,
    /// File name in the target's seed folder.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name: name.into(),
        bytes: bytes.into(),
    }
}

/// MTU the engine packetizes with (`cadence_engine::catalog::PLAIN_MTU`).
const MTU: u32 = 1450;
const BASE: &str = "rtsp://127.0.0.1:8554";

/// Every seed that needs no external tool. Errors: the sample cannot be
/// stripped or packetized (the harness is broken then).
pub fn from_sample() -> anyhow::Result<Vec<Seed>> {
    let mut out = from_media("sample.mp4", SAMPLE)?;
    let movie = Movie::parse(SAMPLE)?;
    let mut plain = Vec::new();
    cadence_hinting::writer::write_stripped(SAMPLE, &movie, &mut plain)?;
    out.extend(from_media("sample-plain.mp4", &plain)?);
    out.extend(rtsp_sessions());
    out.extend(rtcp_packets()?);
    out.extend(proxy_headers());
    out.extend(tunnels());
    out.extend(access_files());
    out.extend(authorizations());
    Ok(out)
}

/// Seeds of one media file: `hint_compile` for a hinted file (whole, and
/// cut at half its length); `plain_schedule` (MTU 1450 and 576) and
/// `schedule_cache` (the cache entry the engine would write) for a file
/// without hint tracks. Errors: a plain file that cannot be packetized.
pub fn from_media(name: &str, bytes: &[u8]) -> anyhow::Result<Vec<Seed>> {
    let mut out = vec![seed("hint_compile", name, bytes)];
    out.push(seed(
        "hint_compile",
        format!("{name}.half"),
        &bytes[..bytes.len() / 2],
    ));
    match cadence_hinting::compile::compile_slice(bytes) {
        Err(HintError::NoHintTracks) => {}
        _ => return Ok(out),
    }
    for (selector, mtu) in [(0u8, "1450"), (2, "576")] {
        let mut b = vec![selector];
        b.extend_from_slice(bytes);
        out.push(seed("plain_schedule", format!("{name}.mtu{mtu}"), b));
    }
    let schedule = schedule_plain(anon_map(bytes)?, MTU)?;
    let key = CacheKey {
        len: bytes.len() as u64,
        mtime_ns: 1_700_000_000_000_000_000,
        mtu: MTU,
    };
    let mut entry = Vec::new();
    cache::write(&schedule, &key, &mut entry)?;
    out.push(seed("schedule_cache", format!("{name}.schedule"), entry));
    Ok(out)
}

/// Writes `seeds` to `<dir>/<target>/<name>`.
pub fn write_all(dir: &Path, seeds: &[Seed]) -> std::io::Result<()> {
    for s in seeds {
        let d = dir.join(s.target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(&s.name), &s.bytes)?;
    }
    Ok(())
}

/// An `rtsp_session` input: `requests` (complete messages, or raw bytes
/// such as `$` frames) as reads of one header block each, the clock
/// advancing after each by the nibble of `after` (see
/// [`crate::rtsp_session`]).
pub fn session_input(requests: &[(&[u8], u8)]) -> Vec<u8> {
    let n = requests.len().min(255);
    let mut out = vec![n as u8];
    out.extend(requests.iter().take(n).map(|(_, after)| after << 4 | 0x0f));
    for (r, _) in requests {
        out.extend_from_slice(r);
    }
    out
}

/// The control nibble after a read: 2 s after a PLAY, 20 ms otherwise.
fn after(read: &[u8]) -> u8 {
    if read.starts_with(b"PLAY ") || read.windows(6).any(|w| w == b"\nPLAY ") {
        8
    } else {
        3
    }
}

/// An `rtsp_session` input from a recorded connection: `client` is what
/// the client sent, `server` what the server answered. The server's
/// session IDs become [`SESSION`], Digest `nonce` and `response` values
/// [`NONCE`] and [`RESPONSE`]; the reads are the client's header blocks
/// (with any `$` frames before them), 2 s after a PLAY, 20 ms after others.
pub fn from_capture(client: &[u8], server: &[u8]) -> Vec<u8> {
    if client.starts_with(b"POST ") {
        // A tunnel POST: the placeholders go into its base64 body.
        let head_len = client
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(client.len(), |i| i + 4);
        let (head, body) = client.split_at(head_len);
        let mut rtsp = Vec::new();
        if cadence_engine::tunnel::Base64Decoder::new()
            .push(body, &mut rtsp)
            .is_ok()
        {
            let rtsp = placeholders_in(&rtsp, server);
            let mut out = vec![0u8];
            out.extend_from_slice(head);
            out.extend_from_slice(base64_encode(&rtsp).as_bytes());
            return out;
        }
    }
    let text = placeholders_in(client, server);
    let mut reads: Vec<(&[u8], u8)> = Vec::new();
    let mut rest = &text[..];
    while !rest.is_empty() {
        let len = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(rest.len(), |i| i + 4);
        let (block, tail) = rest.split_at(len);
        reads.push((block, after(block)));
        rest = tail;
    }
    session_input(&reads)
}

/// `client` with the session IDs of `server` and the Digest nonces and
/// responses replaced by placeholders.
fn placeholders_in(client: &[u8], server: &[u8]) -> Vec<u8> {
    let mut text = client.to_vec();
    for id in session_ids(server) {
        text = replace(&text, id.as_bytes(), SESSION.as_bytes());
    }
    for param in ["nonce=\"", "response=\""] {
        let placeholder = if param.starts_with('n') {
            NONCE
        } else {
            RESPONSE
        };
        text = replace_quoted(&text, param.as_bytes(), placeholder.as_bytes());
    }
    text
}

/// Session IDs in `Session:` headers of `server`'s responses.
fn session_ids(server: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(server);
    let mut ids: Vec<String> = text
        .split("\r\n")
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("session")
                .then(|| value.split(';').next().unwrap_or("").trim().to_string())
        })
        .filter(|id| !id.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if !from.is_empty() && haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// Replaces the quoted value after every `param` (which ends with `"`).
fn replace_quoted(haystack: &[u8], param: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        let boundary = i == 0 || !haystack[i - 1].is_ascii_alphanumeric();
        if boundary && haystack[i..].starts_with(param) {
            out.extend_from_slice(param);
            i += param.len();
            let end = haystack[i..]
                .iter()
                .position(|&b| b == b'"')
                .map_or(haystack.len(), |e| i + e);
            out.extend_from_slice(to);
            i = end;
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn rtsp_sessions() -> Vec<Seed> {
    let ffmpeg_udp = |path: &str, auth: &str| -> Vec<String> {
        let u = format!("{BASE}/{path}");
        let ua = "User-Agent: Lavf61.7.100\r\n";
        vec![
            format!("OPTIONS {u} RTSP/1.0\r\nCSeq: 1\r\n{ua}{auth}\r\n"),
            format!("DESCRIBE {u} RTSP/1.0\r\nAccept: application/sdp\r\nCSeq: 2\r\n{ua}{auth}\r\n"),
            format!("SETUP {u}/trackID=3 RTSP/1.0\r\nTransport: RTP/AVP/UDP;unicast;client_port=25378-25379\r\nCSeq: 3\r\n{ua}{auth}\r\n"),
            format!("SETUP {u}/trackID=4 RTSP/1.0\r\nTransport: RTP/AVP/UDP;unicast;client_port=25380-25381\r\nCSeq: 4\r\n{ua}Session: {SESSION}\r\n{auth}\r\n"),
            format!("PLAY {u} RTSP/1.0\r\nRange: npt=0.000-\r\nCSeq: 5\r\n{ua}Session: {SESSION}\r\n{auth}\r\n"),
            format!("GET_PARAMETER {u} RTSP/1.0\r\nCSeq: 6\r\n{ua}Session: {SESSION}\r\n{auth}\r\n"),
            format!("PAUSE {u} RTSP/1.0\r\nCSeq: 7\r\n{ua}Session: {SESSION}\r\n{auth}\r\n"),
            format!("PLAY {u} RTSP/1.0\r\nRange: npt=10.000-\r\nScale: 2\r\nCSeq: 8\r\n{ua}Session: {SESSION}\r\n{auth}\r\n"),
            format!("TEARDOWN {u} RTSP/1.0\r\nCSeq: 9\r\n{ua}Session: {SESSION}\r\n{auth}\r\n"),
        ]
        .into_iter()
        .map(|r| {
            // Digest's uri is each request's own URL.
            let url = r.split(' ').nth(1).unwrap_or("").to_string();
            r.replace("@U@", &url)
        })
        .collect()
    };
    let gst_tcp = |path: &str| -> Vec<String> {
        let u = format!("{BASE}/{path}");
        let ua = "User-Agent: GStreamer/1.22.0\r\n";
        vec![
            format!("OPTIONS {u} RTSP/1.0\r\nCSeq: 1\r\n{ua}Date: Wed, 02 Dec 2026 17:00:00 GMT\r\n\r\n"),
            format!("DESCRIBE {u} RTSP/1.0\r\nCSeq: 2\r\n{ua}Accept: application/sdp\r\n\r\n"),
            format!("SETUP {u}/trackID=3 RTSP/1.0\r\nCSeq: 3\r\n{ua}Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
            format!("SETUP {u}/trackID=4 RTSP/1.0\r\nCSeq: 4\r\n{ua}Transport: RTP/AVP/TCP;unicast;interleaved=2-3\r\nSession: {SESSION}\r\n\r\n"),
            format!("PLAY {u} RTSP/1.0\r\nCSeq: 5\r\n{ua}Range: npt=0-\r\nSpeed: 2.000\r\nSession: {SESSION}\r\n\r\n"),
            format!("TEARDOWN {u} RTSP/1.0\r\nCSeq: 6\r\n{ua}Session: {SESSION}\r\n\r\n"),
        ]
    };
    let digest = |user: &str| {
        format!(
            "Authorization: Digest username=\"{user}\", realm=\"Streaming Server\", nonce=\"{NONCE}\", uri=\"@U@\", response=\"{RESPONSE}\"\r\n"
        )
    };
    let basic = format!(
        "Authorization: {}\r\n",
        cadence_engine::access::authorization::BasicCredentials::new(
            USERS[0].0,
            USERS[0].1.as_bytes()
        )
        .to_header()
    );
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("ffmpeg-udp", ffmpeg_udp("sample.mp4", "")),
        ("ffmpeg-udp-plain", ffmpeg_udp("plain.mp4", "")),
        (
            "ffmpeg-digest",
            ffmpeg_udp("digest/sample.mp4", &digest("alice")),
        ),
        (
            "ffmpeg-staff",
            ffmpeg_udp("staff/sample.mp4", &digest("bob")),
        ),
        ("ffmpeg-basic", ffmpeg_udp("basic/sample.mp4", &basic)),
        ("ffmpeg-corrupt", ffmpeg_udp("corrupt.mp4", "")),
        ("gstreamer-tcp", gst_tcp("sample.mp4")),
        (
            "signed-url",
            ffmpeg_udp(&format!("sample.mp4?exp=1900000000&sig={SIGNATURE}"), ""),
        ),
    ];
    // An RTCP receiver report on interleaved channel 1 between requests.
    let mut rr = vec![b'$', 1, 0, 32];
    rr.extend(receiver_report(&[SSRC_PLACEHOLDER]).unwrap_or_default());
    rr[3] = (rr.len() - 4) as u8;
    let mut out: Vec<Seed> = cases
        .iter()
        .map(|(name, reqs)| {
            let mut reads: Vec<(&[u8], u8)> = reqs
                .iter()
                .map(|r| (r.as_bytes(), after(r.as_bytes())))
                .collect();
            if *name == "gstreamer-tcp" {
                reads.insert(5, (&rr, 3));
            }
            seed("rtsp_session", *name, session_input(&reads))
        })
        .collect();
    // The raw stream alone (default control: one header block per read).
    let mut raw = vec![0u8];
    raw.extend(ffmpeg_udp("sample.mp4", "").concat().into_bytes());
    out.push(seed("rtsp_session", "raw-default-control", raw));
    out
}

fn receiver_report(ssrcs: &[u32]) -> anyhow::Result<Vec<u8>> {
    let mut rr = ReceiverReport::builder(0x1234_5678);
    for &s in ssrcs {
        rr = rr.add_report_block(
            ReportBlock::builder(s)
                .fraction_lost(12)
                .cumulative_lost(3)
                .extended_sequence_number(0x0001_0203)
                .interarrival_jitter(450)
                .last_sender_report_timestamp(0x1111_2222)
                .delay_since_last_sender_report_timestamp(0x100),
        );
    }
    let sdes = Sdes::builder().add_chunk(
        SdesChunk::builder(0x1234_5678)
            .add_item(SdesItem::builder(SdesItem::CNAME, "client@127.0.0.1")),
    );
    Compound::builder()
        .add_packet(rr)
        .add_packet(sdes)
        .pipe(write)
}

/// Writes an RTCP packet (or compound) into a new buffer.
fn write(p: impl RtcpPacketWriter) -> anyhow::Result<Vec<u8>> {
    let mut buf = vec![0u8; p.calculate_size()?];
    let n = p.write_into(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// `x.pipe(f)` is `f(x)`: keeps builder chains readable.
trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}

fn rtcp_packets() -> anyhow::Result<Vec<Seed>> {
    let both = [SSRC_PLACEHOLDER, SSRC_PLACEHOLDER + 1];
    let mut out = vec![
        seed("rtcp", "rr-sdes-both-tracks", receiver_report(&both)?),
        seed("rtcp", "rr-sdes-one-track", receiver_report(&both[..1])?),
    ];
    let sr = SenderReport::builder(0x1234_5678)
        .ntp_timestamp(0xe000_0000_8000_0000)
        .rtp_timestamp(90_000)
        .packet_count(10)
        .octet_count(12_000)
        .add_report_block(
            ReportBlock::builder(SSRC_PLACEHOLDER)
                .fraction_lost(255)
                .cumulative_lost(0x7f_ffff),
        );
    out.push(seed(
        "rtcp",
        "sr-block",
        Compound::builder().add_packet(sr).pipe(write)?,
    ));
    let bye = Bye::builder().add_source(0x1234_5678).reason("teardown");
    out.push(seed(
        "rtcp",
        "rr-bye",
        Compound::builder()
            .add_packet(ReceiverReport::builder(0x1234_5678))
            .add_packet(bye)
            .pipe(write)?,
    ));
    Ok(out)
}

/// A PROXY v2 header: signature, version 2 and `cmd`, family/transport
/// `fam`, then `body` (addresses and TLVs).
pub fn proxy_v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn proxy_headers() -> Vec<Seed> {
    let rtsp = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    let mut v4 = vec![192, 0, 2, 1, 10, 0, 0, 1];
    v4.extend_from_slice(&56324u16.to_be_bytes());
    v4.extend_from_slice(&8554u16.to_be_bytes());
    let mut v4_tlv = v4.clone();
    // PP2_TYPE_UNIQUE_ID and a NOOP, as HAProxy's `send-proxy-v2` may add.
    v4_tlv.extend_from_slice(&[0x05, 0x00, 0x04, 1, 2, 3, 4, 0x04, 0x00, 0x00]);
    let mut v6 = Vec::new();
    v6.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .map(|a| a.octets())
            .unwrap_or_default(),
    );
    v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    v6.extend_from_slice(&[0xdc, 0x04, 0x21, 0x6a]);
    let with_rtsp = |mut h: Vec<u8>| {
        h.extend_from_slice(rtsp);
        h
    };
    vec![
        seed(
            "proxy_header",
            "v1-tcp4",
            with_rtsp(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 8554\r\n".to_vec()),
        ),
        seed(
            "proxy_header",
            "v1-tcp6",
            b"PROXY TCP6 2001:db8::1 ::1 56324 8554\r\n".to_vec(),
        ),
        seed("proxy_header", "v1-unknown", b"PROXY UNKNOWN\r\n".to_vec()),
        seed("proxy_header", "v2-tcp4", with_rtsp(proxy_v2(1, 0x11, &v4))),
        seed("proxy_header", "v2-tcp4-tlvs", proxy_v2(1, 0x11, &v4_tlv)),
        seed("proxy_header", "v2-udp6", proxy_v2(1, 0x22, &v6)),
        seed("proxy_header", "v2-local", proxy_v2(0, 0x00, &[])),
        seed(
            "proxy_header",
            "trusted-list",
            b"10.0.0.0/8\n192.0.2.7\n::1/128\n2001:db8::/32\n".to_vec(),
        ),
    ]
}

fn tunnels() -> Vec<Seed> {
    let cookie = "x-sessioncookie: 7f3c1a2b9d\r\n";
    let get = format!(
        "GET /sample.mp4 HTTP/1.0\r\nUser-Agent: QTS (qtver=7.7.1;os=Windows NT 6.1)\r\n{cookie}Accept: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n\r\n"
    );
    let body = format!("DESCRIBE {BASE}/sample.mp4 RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\nOPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n");
    let b64 = base64_encode(body.as_bytes());
    let post = format!(
        "POST /sample.mp4 HTTP/1.0\r\nUser-Agent: QTS (qtver=7.7.1;os=Windows NT 6.1)\r\n{cookie}Content-Type: application/x-rtsp-tunnelled\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nContent-Length: 32767\r\nExpires: Sun, 9 Jan 1972 00:00:00 GMT\r\n\r\n"
    );
    let split_b64 = format!("{}\r\n{}", &b64[..10], &b64[10..]);
    let mut out = vec![
        seed("http_tunnel", "get", [&[0u8][..], get.as_bytes()].concat()),
        seed(
            "http_tunnel",
            "post-body",
            [&[7u8][..], post.as_bytes(), b64.as_bytes()].concat(),
        ),
        seed(
            "http_tunnel",
            "post-body-lines",
            [&[2u8][..], post.as_bytes(), split_b64.as_bytes()].concat(),
        ),
        seed(
            "http_tunnel",
            "head-method",
            [&[0u8][..], b"HEAD /sample.mp4 HTTP/1.1\r\nHost: x\r\n\r\n"].concat(),
        ),
    ];
    // The same tunnel in the session target: a POST whose body drives the shard.
    let mut stream = post.into_bytes();
    stream.extend_from_slice(b64.as_bytes());
    out.push(seed(
        "rtsp_session",
        "tunnel-post",
        [&[0u8][..], &stream].concat(),
    ));
    out
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = u32::from(c[0]) << 16
            | u32::from(*c.get(1).unwrap_or(&0)) << 8
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn access_files() -> Vec<Seed> {
    vec![
        seed("access_files", "qtaccess-dss", "AuthName \"Streaming Server\"\r\nAuthScheme digest\r\nAuthUserFile /etc/streaming/qtusers\r\nAuthGroupFile /etc/streaming/qtgroups\r\n<Limit READ>\r\nrequire group staff\r\nrequire user alice\r\n</Limit>\r\n"),
        seed("access_files", "qtaccess-any", "\u{feff}# comment\nAuthScheme basic\nrequire any-user\n"),
        seed("access_files", "qtusers", users_text()),
        seed("access_files", "qtgroups", "staff: bob alice\nadmins: alice\n"),
    ]
}

fn authorizations() -> Vec<Seed> {
    let with = |path: u8, method: u8, age: u8, uri: &str, value: &str| {
        let mut b = vec![path, method, age, 0];
        b.extend_from_slice(uri.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(value.as_bytes());
        b
    };
    let u = format!("{BASE}/digest/sample.mp4");
    let digest = format!("Digest username=\"alice\", realm=\"Streaming Server\", nonce=\"{NONCE}\", uri=\"{u}\", response=\"{RESPONSE}\"");
    let digest_qop = format!("Digest username=\"bob\", realm=\"Streaming Server\", nonce=\"{NONCE}\", uri=\"/staff/sample.mp4\", response=\"{RESPONSE}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\", opaque=\"\"");
    let basic = cadence_engine::access::authorization::BasicCredentials::new("alice", b"wonder")
        .to_header();
    vec![
        seed("authorization", "digest-alice", with(4, 0, 0, &u, &digest)),
        seed(
            "authorization",
            "digest-stale",
            with(4, 2, 200, &u, &digest),
        ),
        seed(
            "authorization",
            "digest-qop-bob",
            with(5, 1, 1, &format!("{BASE}/staff/sample.mp4"), &digest_qop),
        ),
        seed(
            "authorization",
            "basic-alice",
            with(3, 0, 0, &format!("{BASE}/basic/sample.mp4"), &basic),
        ),
        seed(
            "authorization",
            "signed-url",
            with(
                0,
                0,
                0,
                &format!("{BASE}/sample.mp4?exp=1900000000&ip=127.0.0.0/8&sig={SIGNATURE}"),
                "",
            ),
        ),
        seed(
            "authorization",
            "protected-users-file",
            with(0, 0, 0, &format!("{BASE}/qtusers"), ""),
        ),
        seed("authorization", "private-subnet", with(7, 0, 0, "", "")),
    ]
}
