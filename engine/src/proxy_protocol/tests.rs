use super::*;
use proptest::prelude::*;

fn v4(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn complete(buf: &[u8]) -> (ProxyHeader, usize) {
    match parse(buf) {
        Ok(Some(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

/// Every strict prefix of `header` needs more bytes; the whole parses to
/// the same result with any data after it left alone.
fn assert_incremental(header: &[u8]) -> ProxyHeader {
    for cut in 0..header.len() {
        assert_eq!(
            parse(&header[..cut]),
            Ok(None),
            "prefix of {cut} of {} bytes",
            header.len()
        );
    }
    let (h, n) = complete(header);
    assert_eq!(n, header.len());
    let mut with_data = header.to_vec();
    with_data.extend_from_slice(b"OPTIONS * RTSP/1.0\r\n\r\n");
    assert_eq!(complete(&with_data), (h, header.len()));
    h
}

#[test]
fn v1_spec_examples() {
    let h = assert_incremental(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    assert_eq!(h.version, Version::V1);
    assert_eq!(
        h.addrs,
        Some(ProxiedAddrs {
            source: v4("192.168.0.1:56324"),
            destination: v4("192.168.0.11:443"),
            transport: Transport::Stream,
        })
    );
    assert_eq!(h.client_addr(v4("10.0.0.1:1")), v4("192.168.0.1:56324"));

    // The longest lines of §2.1: 56, 104 and 107 bytes.
    let max4 = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(max4.len(), 56);
    assert_incremental(max4);
    let ffff = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let max6 = format!("PROXY TCP6 {ffff} {ffff} 65535 65535\r\n");
    assert_eq!(max6.len(), 104);
    let h = assert_incremental(max6.as_bytes());
    let a = h.addrs.expect("addresses");
    assert_eq!(a.source.ip(), IpAddr::V6(Ipv6Addr::from([0xffff; 8])));
    assert_eq!(a.destination.port(), 65535);

    let h = assert_incremental(b"PROXY UNKNOWN\r\n");
    assert_eq!(h.addrs, None);
    assert_eq!(h.client_addr(v4("10.0.0.1:1")), v4("10.0.0.1:1"));
    let worst = format!("PROXY UNKNOWN {ffff} {ffff} 65535 65535\r\n");
    assert_eq!(worst.len(), V1_MAX_LEN);
    assert_eq!(assert_incremental(worst.as_bytes()).addrs, None);

    let h = assert_incremental(b"PROXY TCP6 2001:db8::1 ::1 1 8554\r\n");
    assert_eq!(
        h.addrs.map(|a| (a.source, a.destination)),
        Some((
            "[2001:db8::1]:1".parse().expect("v6"),
            "[::1]:8554".parse().expect("v6")
        ))
    );
}

#[test]
fn v1_rejections() {
    let too_long = format!("PROXY UNKNOWN {}", "f".repeat(100));
    assert_eq!(parse(too_long.as_bytes()), Err(ProxyError::V1TooLong));
    // A CR at byte 107 means the line (with its LF) would be 108 bytes.
    let cr_late = format!("PROXY UNKNOWN {}\r", "f".repeat(V1_MAX_LEN - 15));
    assert_eq!(cr_late.len(), V1_MAX_LEN);
    assert_eq!(parse(cr_late.as_bytes()), Err(ProxyError::V1TooLong));
    for bad in [
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\rx",
        "PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",
        "PROXY TCP4 192.168.0.01 192.168.0.11 56324 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",
        "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 7\r\n",
        "PROXY TCP4 ::1 ::1 56324 443\r\n",
        "PROXY TCP6 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY TCP6 ::ffff:1.2.3.4 ::1 56324 443\r\n",
        "PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "PROXY \r\n",
    ] {
        assert_eq!(
            parse(bad.as_bytes()),
            Err(ProxyError::V1Malformed),
            "{bad:?}"
        );
    }
    assert_eq!(parse(b"OPTIONS * RTSP/1.0\r\n"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"PROXX"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"proxy "), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"PROX"), Ok(None));
}

/// A v2 header: signature, version 2, `cmd`, `fam`, then `body` (addresses
/// and TLVs) with its length.
fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | cmd);
    h.push(fam);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn v4_body(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut b = src.to_vec();
    b.extend_from_slice(&dst);
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b
}

#[test]
fn v2_families_commands_and_tlvs() {
    let h = assert_incremental(&v2(
        1,
        0x11,
        &v4_body([192, 0, 2, 7], [10, 0, 0, 1], 40000, 554),
    ));
    assert_eq!(h.version, Version::V2);
    assert_eq!(
        h.addrs,
        Some(ProxiedAddrs {
            source: v4("192.0.2.7:40000"),
            destination: v4("10.0.0.1:554"),
            transport: Transport::Stream,
        })
    );

    // UDP over IPv6, followed by TLVs (NOOP and ALPN) that are skipped.
    let mut body = Vec::new();
    body.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5).octets());
    body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    body.extend_from_slice(&5004u16.to_be_bytes());
    body.extend_from_slice(&8554u16.to_be_bytes());
    body.extend_from_slice(&[0x04, 0x00, 0x03, 0, 0, 0, 0x01, 0x00, 0x02, b'h', b'2']);
    let header = v2(1, 0x22, &body);
    let h = assert_incremental(&header);
    let a = h.addrs.expect("addresses");
    assert_eq!(
        a.source,
        "[2001:db8::5]:5004".parse::<SocketAddr>().expect("v6")
    );
    assert_eq!(
        a.destination,
        "[::1]:8554".parse::<SocketAddr>().expect("v6")
    );
    assert_eq!(a.transport, Transport::Datagram);

    // LOCAL: addresses present or not, the real endpoints are used; the
    // length is still honoured.
    let local = v2(0, 0x11, &v4_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
    assert_eq!(assert_incremental(&local).addrs, None);
    assert_eq!(assert_incremental(&v2(0, 0x00, &[])).addrs, None);
    // AF_UNSPEC and AF_UNIX with PROXY: real endpoints too.
    assert_eq!(assert_incremental(&v2(1, 0x00, &[9, 9, 9])).addrs, None);
    assert_eq!(assert_incremental(&v2(1, 0x31, &[0u8; 216])).addrs, None);
}

#[test]
fn v2_rejections() {
    let good = v2(1, 0x11, &v4_body([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
    let mut bad = good.clone();
    bad[12] = 0x11;
    assert_eq!(parse(&bad[..13]), Err(ProxyError::V2Version(1)));
    bad[12] = 0x22;
    assert_eq!(parse(&bad[..13]), Err(ProxyError::V2Command(2)));
    let mut bad = good.clone();
    bad[13] = 0x41;
    assert_eq!(parse(&bad[..14]), Err(ProxyError::V2Family(0x41)));
    bad[13] = 0x13;
    assert_eq!(parse(&bad), Err(ProxyError::V2Family(0x13)));
    assert_eq!(
        parse(&v2(1, 0x21, &[0u8; 12])),
        Err(ProxyError::V2Short {
            len: 12,
            needed: 36
        })
    );
    // Oversize is known from the fixed 16 bytes, before the body arrives.
    let big = v2(1, 0x11, &vec![0u8; 4000]);
    assert_eq!(
        parse(&big[..16]),
        Err(ProxyError::V2TooLarge {
            len: 4016,
            limit: DEFAULT_MAX_V2_LEN
        })
    );
    assert_eq!(
        parse_with_limit(&big, 8192).map(|r| r.map(|(_, n)| n)),
        Ok(Some(4016))
    );
    let mut sig = good.clone();
    sig[7] = b'X';
    assert_eq!(parse(&sig[..8]), Err(ProxyError::NotProxy));
    // An RTSP client's stray CRLF then a request is not a header.
    assert_eq!(parse(b"\r\nOPTIONS"), Err(ProxyError::NotProxy));
}

/// The header HAProxy 2.6.12 (Debian) sent with `send-proxy-v2
/// proxy-v2-options crc32c` for a connection from [::1]:35274 to its
/// frontend [::1]:40761, printed by `haproxy_sends_v1_and_v2` and pasted
/// here so this test needs no haproxy.
const HAPROXY_V2_CAPTURE: &str = "0d0a0d0a000d0a515549540a2121002b\
00000000000000000000000000000001\
00000000000000000000000000000001\
89ca9f390300049f6e7d6d";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn haproxy_v2_capture() {
    let bytes = unhex(HAPROXY_V2_CAPTURE);
    let h = assert_incremental(&bytes);
    let a = h.addrs.expect("addresses");
    assert_eq!(a.source, "[::1]:35274".parse::<SocketAddr>().expect("v6"));
    assert_eq!(
        a.destination,
        "[::1]:40761".parse::<SocketAddr>().expect("v6")
    );
    assert_eq!(a.transport, Transport::Stream);
}

#[test]
fn trusted_proxies() {
    let t = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", " ::1/128 "])
        .expect("parses");
    assert!(t.contains("10.1.2.3".parse().expect("ip")));
    assert!(t.contains("192.0.2.7".parse().expect("ip")));
    assert!(!t.contains("192.0.2.8".parse().expect("ip")));
    assert!(t.contains("2001:db8:1::9".parse().expect("ip")));
    assert!(t.contains("::1".parse().expect("ip")));
    assert!(!t.contains("::2".parse().expect("ip")));
    // A dual-stack socket reports IPv4 peers as mapped addresses.
    assert!(t.contains("::ffff:10.9.9.9".parse().expect("ip")));
    assert!(!t.contains("::ffff:11.9.9.9".parse().expect("ip")));
    assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
    assert!(TrustedProxies::parse(&["proxy.example"]).is_err());
    assert!(TrustedProxies::default().is_empty());
}

fn any_socket_pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    prop_oneof![
        (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(a, b, p, q)| (
                SocketAddr::new(IpAddr::from(a), p),
                SocketAddr::new(IpAddr::from(b), q)
            )),
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(a, b, p, q)| (
                SocketAddr::new(IpAddr::from(a), p),
                SocketAddr::new(IpAddr::from(b), q)
            )),
    ]
}

proptest! {
    /// v1 lines written as a sender writes them parse back, incrementally.
    #[test]
    fn v1_round_trip((src, dst) in any_socket_pair()) {
        let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
        let line = format!("PROXY {proto} {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port());
        // Rust prints IPv4-mapped/compatible IPv6 with a dotted quad, which
        // the v1 grammar does not allow; skip those.
        prop_assume!(!line.contains('.') || src.is_ipv4());
        for cut in 0..line.len() {
            prop_assert_eq!(parse(&line.as_bytes()[..cut]), Ok(None));
        }
        let (h, n) = parse(line.as_bytes()).expect("valid").expect("complete");
        prop_assert_eq!(n, line.len());
        prop_assert_eq!(h.addrs.map(|a| (a.source, a.destination)), Some((src, dst)));
    }

    /// v2 headers with any addresses and any TLV bytes parse back.
    #[test]
    fn v2_round_trip((src, dst) in any_socket_pair(), tlvs in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut body = Vec::new();
        let fam = match (src.ip(), dst.ip()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => { body.extend_from_slice(&a.octets()); body.extend_from_slice(&b.octets()); 0x11 }
            (IpAddr::V6(a), IpAddr::V6(b)) => { body.extend_from_slice(&a.octets()); body.extend_from_slice(&b.octets()); 0x21 }
            _ => unreachable!("pairs share a family"),
        };
        body.extend_from_slice(&src.port().to_be_bytes());
        body.extend_from_slice(&dst.port().to_be_bytes());
        body.extend_from_slice(&tlvs);
        let header = v2(1, fam, &body);
        for cut in 0..header.len() {
            prop_assert_eq!(parse(&header[..cut]), Ok(None));
        }
        let (h, n) = parse(&header).expect("valid").expect("complete");
        prop_assert_eq!(n, header.len());
        prop_assert_eq!(h.addrs.map(|a| (a.source, a.destination)), Some((src, dst)));
    }

    /// Arbitrary bytes never panic; a complete header is reported the same
    /// for any longer buffer and never claims more bytes than given.
    #[test]
    fn arbitrary_bytes(prefix in prop::sample::select(vec![&b""[..], b"PROXY ", b"PROXY TCP4 ", &V2_SIGNATURE[..]]),
                       bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = prefix.to_vec();
        buf.extend_from_slice(&bytes);
        if let Ok(Some((h, n))) = parse(&buf) {
            prop_assert!(n <= buf.len());
            prop_assert_eq!(parse(&buf[..n]), Ok(Some((h, n))));
        }
        for cut in 0..buf.len() {
            // A prefix that errs means every longer buffer errs too.
            if parse(&buf[..cut]).is_err() {
                prop_assert!(parse(&buf).is_err());
                break;
            }
        }
    }
}

mod haproxy;
