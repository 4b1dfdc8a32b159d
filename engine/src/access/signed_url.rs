//! Signed URLs: `rtsp://host/<path>?exp=<unix s>[&ip=<cidr>]&sig=<token>`.
//!
//! `token = base64url-nopad(HMAC-SHA256(key, "<path>?exp=<exp>[&ip=<cidr>]"))`
//! (RFC 4648 §5, RFC 2104), where `<path>` is the catalog path (percent
//! decoded, no leading `/`, no `trackID=N` suffix) and `<exp>`, `<cidr>` are
//! the parameter values exactly as they appear in the URL. A URL is valid
//! until `exp` inclusive. Other query parameters are ignored and not signed.
//!
//! Verification ([`verify`]) checks, in this order: the signature (else
//! [`SignedUrlError::Forged`]), the expiry ([`SignedUrlError::Expired`]) and
//! the client subnet ([`SignedUrlError::WrongSubnet`]).

use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq;

use super::secret::Secret;
use super::subnet::{net_contains, normalize, parse_cidr, unmap};

/// Why a signed URL is refused (403). Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedUrlError {
    /// `signed_urls = "required"` and the request has no `sig`.
    #[error("signed URL required but the request has none")]
    Missing,
    /// A parameter is missing, repeated or not in its format.
    #[error("malformed signed URL: {0}")]
    Malformed(&'static str),
    /// The token is not the HMAC of this path, expiry and subnet.
    #[error("forged signed URL: the signature does not match path, exp and ip")]
    Forged,
    /// Valid signature, but `exp` has passed.
    #[error("expired signed URL: valid until {expires_at}, now {now}")]
    Expired {
        /// `exp`, unix seconds.
        expires_at: u64,
        /// The request time, unix seconds.
        now: u64,
    },
    /// Valid signature, but the client is outside the URL's `ip` subnet.
    #[error("signed URL for client subnet {subnet}, requested from {client}")]
    WrongSubnet {
        /// The `ip` parameter.
        subnet: IpNet,
        /// The client address (IPv4 when v4-mapped).
        client: IpAddr,
    },
}

/// What a valid signed URL grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedGrant {
    /// `exp`, unix seconds.
    pub expires_at: u64,
    /// `ip`, when the URL is bound to a subnet.
    pub subnet: Option<IpNet>,
}

/// The signed-URL parameters of a query, raw values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedParams<'a> {
    /// `exp`.
    pub exp: &'a str,
    /// `ip`.
    pub ip: Option<&'a str>,
    /// `sig`.
    pub sig: &'a str,
}

/// Finds `exp`, `ip` and `sig` in percent-decoded query parameters. `None`
/// when none of the three is present; an error when one is repeated, or
/// when `exp` or `sig` is missing while another is present.
pub fn find_params(query: &[(String, String)]) -> Result<Option<SignedParams<'_>>, SignedUrlError> {
    let mut exp = None;
    let mut ip = None;
    let mut sig = None;
    for (k, v) in query {
        let slot = match k.as_str() {
            "exp" => &mut exp,
            "ip" => &mut ip,
            "sig" => &mut sig,
            _ => continue,
        };
        if slot.replace(v.as_str()).is_some() {
            return Err(SignedUrlError::Malformed("a parameter is repeated"));
        }
    }
    match (exp, sig) {
        (None, None) if ip.is_none() => Ok(None),
        (Some(exp), Some(sig)) => Ok(Some(SignedParams { exp, ip, sig })),
        (None, _) => Err(SignedUrlError::Malformed("no exp parameter")),
        (_, None) => Err(SignedUrlError::Malformed("no sig parameter")),
    }
}

/// The signed text, `"<path>?exp=<exp>[&ip=<ip>]"`.
pub fn signing_input(path: &str, exp: &str, ip: Option<&str>) -> String {
    match ip {
        Some(ip) => format!("{path}?exp={exp}&ip={ip}"),
        None => format!("{path}?exp={exp}"),
    }
}

/// The raw 32-byte HMAC of the signing input.
fn mac(key: &Secret, path: &str, exp: &str, ip: Option<&str>) -> [u8; 32] {
    key.hmac(&[signing_input(path, exp, ip).as_bytes()])
}

/// The token, base64url without padding (43 characters).
pub fn token(key: &Secret, path: &str, exp: &str, ip: Option<&str>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac(key, path, exp, ip))
}

/// Verifies the signed-URL parameters of a request for catalog path `path`
/// from `peer` at `now_unix_s` (see the module docs for the order).
pub fn verify(
    key: &Secret,
    path: &str,
    params: SignedParams<'_>,
    peer: IpAddr,
    now_unix_s: u64,
) -> Result<SignedGrant, SignedUrlError> {
    let given = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(params.sig)
        .map_err(|_| SignedUrlError::Forged)?;
    let want = mac(key, path, params.exp, params.ip);
    if given.len() != want.len() || !bool::from(given.ct_eq(&want)) {
        return Err(SignedUrlError::Forged);
    }
    let expires_at = parse_exp(params.exp)?;
    if now_unix_s > expires_at {
        return Err(SignedUrlError::Expired {
            expires_at,
            now: now_unix_s,
        });
    }
    let subnet = match params.ip {
        None => None,
        Some(ip) => {
            let net = parse_cidr(ip).map_err(|_| SignedUrlError::Malformed("ip is not a CIDR"))?;
            if !net_contains(&net, peer) {
                return Err(SignedUrlError::WrongSubnet {
                    subnet: net,
                    client: normalize(peer),
                });
            }
            Some(net)
        }
    };
    Ok(SignedGrant { expires_at, subnet })
}

fn parse_exp(exp: &str) -> Result<u64, SignedUrlError> {
    if exp.is_empty() || exp.len() > 20 || !exp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignedUrlError::Malformed("exp is not unix seconds"));
    }
    exp.parse()
        .map_err(|_| SignedUrlError::Malformed("exp is not unix seconds"))
}

/// Why [`sign_url`] cannot sign a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignUrlError {
    /// Not `rtsp://host[:port]/path`.
    #[error("not an rtsp:// URL with a path: {0}")]
    BadUrl(String),
    /// The URL already has a query or fragment.
    #[error("the URL already has a query or fragment")]
    HasQuery,
}

/// Signs `url` (`rtsp://host[:port]/<path>`) until `expires_at` (unix
/// seconds, inclusive), optionally bound to `subnet`, and returns
/// `url?exp=…[&ip=…]&sig=…`. The subnet is written in canonical form
/// (network address, v4-mapped as IPv4).
pub fn sign_url(
    key: &Secret,
    url: &str,
    expires_at: u64,
    subnet: Option<IpNet>,
) -> Result<String, SignUrlError> {
    let path = catalog_path_of_url(url)?;
    let exp = expires_at.to_string();
    let ip = subnet.map(|n| unmap(n.trunc()).to_string());
    let sig = token(key, &path, &exp, ip.as_deref());
    Ok(match ip {
        Some(ip) => format!("{url}?exp={exp}&ip={ip}&sig={sig}"),
        None => format!("{url}?exp={exp}&sig={sig}"),
    })
}

/// The catalog path a request for `url` names, as the server computes it
/// (`crate::rtsp::url::parse_target`).
fn catalog_path_of_url(url: &str) -> Result<String, SignUrlError> {
    let bad = || SignUrlError::BadUrl(url.to_string());
    let scheme_len = ["rtsp://", "rtsps://"]
        .iter()
        .find(|p| {
            url.get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
        })
        .map(|p| p.len())
        .ok_or_else(bad)?;
    if url.contains(['?', '#']) {
        return Err(SignUrlError::HasQuery);
    }
    let after = &url[scheme_len..];
    let slash = after.find('/').ok_or_else(bad)?;
    if slash == 0 {
        return Err(bad());
    }
    let target = crate::rtsp::url::parse_target(&after[slash..]).ok_or_else(bad)?;
    if target.path.is_empty() {
        return Err(bad());
    }
    Ok(target.path)
}

/// Splits a Request-URI's path and query, for the shapes clients derive
/// from a signed DESCRIBE URL, into the path (with any `trackID=N` /
/// `streamid=N` segment, ready for `parse_target`) and the percent-decoded
/// query parameters:
///
/// - `/dir/f.mp4?exp=1&sig=T` → `/dir/f.mp4`, `[exp, sig]`
/// - `/dir/f.mp4/trackID=3?exp=1&sig=T` → `/dir/f.mp4/trackID=3`, `[exp, sig]`
/// - `/dir/f.mp4?exp=1&sig=T/trackID=3` (ffmpeg and live555 append the
///   control to a Content-Base with a query) → `/dir/f.mp4/trackID=3`,
///   `[exp, sig]`
///
/// Parameters without `=` get an empty value; a parameter that is not valid
/// UTF-8 after decoding is dropped.
pub fn split_query(path_and_query: &str) -> (String, Vec<(String, String)>) {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return (path_and_query.to_string(), Vec::new());
    };
    let (query, suffix) = match query.rsplit_once('/') {
        Some((q, last)) if last.starts_with("trackID=") || last.starts_with("streamid=") => {
            (q, Some(last))
        }
        _ => (query, None),
    };
    let mut path = path.to_string();
    if let Some(s) = suffix {
        if !path.ends_with('/') {
            path.push('/');
        }
        path.push_str(s);
    }
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect();
    (path, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Secret {
        Secret::from_bytes(b"signed url key for the tests!").expect("key")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn check(url: &str, peer: &str, now: u64) -> Result<SignedGrant, SignedUrlError> {
        let after = url.strip_prefix("rtsp://example.net:8554").expect("prefix");
        let (path, query) = split_query(after);
        let target = crate::rtsp::url::parse_target(&path).expect("target");
        let params = find_params(&query)?.ok_or(SignedUrlError::Missing)?;
        verify(&key(), &target.path, params, ip(peer), now)
    }

    #[test]
    fn token_is_hmac_sha256_base64url() {
        // Independently: python3 -c 'import hmac,hashlib,base64;print(base64.urlsafe_b64encode(
        //   hmac.new(b"signed url key for the tests!",b"dir/a b.mp4?exp=1700000000",
        //   hashlib.sha256).digest()).rstrip(b"="))'
        assert_eq!(
            token(&key(), "dir/a b.mp4", "1700000000", None),
            "aNgCWON_i7mqxcaoaT0Kt2GmNSD0AvUETxGQSnhfNDA"
        );
        assert_eq!(
            signing_input("a.mp4", "5", Some("10.0.0.0/8")),
            "a.mp4?exp=5&ip=10.0.0.0/8"
        );
    }

    #[test]
    fn signed_urls_verify_for_every_track_shape() {
        let url =
            sign_url(&key(), "rtsp://example.net:8554/dir/a%20b.mp4", 1_000, None).expect("sign");
        assert!(url.starts_with("rtsp://example.net:8554/dir/a%20b.mp4?exp=1000&sig="));
        let g = check(&url, "192.0.2.1", 1_000).expect("valid until exp inclusive");
        assert_eq!(g.expires_at, 1_000);
        let (base, query) = url.split_once('?').expect("query");
        // SETUP shapes derived from the DESCRIBE URL.
        check(&format!("{base}/trackID=3?{query}"), "192.0.2.1", 10).expect("track then query");
        check(&format!("{url}/trackID=3"), "192.0.2.1", 10).expect("query then track");
        check(&format!("{url}/streamid=0"), "192.0.2.1", 10).expect("ffmpeg streamid");
    }

    #[test]
    fn expired_forged_and_wrong_subnet_are_told_apart() {
        let net = parse_cidr("10.0.0.0/8").expect("net");
        let url = sign_url(&key(), "rtsp://example.net:8554/a.mp4", 500, Some(net)).expect("sign");
        assert!(url.contains("?exp=500&ip=10.0.0.0/8&sig="), "{url}");
        let g = check(&url, "::ffff:10.9.8.7", 400).expect("in subnet, v4-mapped");
        assert_eq!(g.subnet, Some(net));
        assert_eq!(
            check(&url, "10.9.8.7", 501),
            Err(SignedUrlError::Expired {
                expires_at: 500,
                now: 501
            })
        );
        assert_eq!(
            check(&url, "192.0.2.1", 400),
            Err(SignedUrlError::WrongSubnet {
                subnet: net,
                client: ip("192.0.2.1")
            })
        );
        // Tampering with any signed part, or with the signature, is forgery.
        for forged in [
            url.replace("exp=500", "exp=900"),
            url.replace("ip=10.0.0.0/8", "ip=0.0.0.0/0"),
            url.replace("&ip=10.0.0.0/8", ""),
            url.replace("/a.mp4", "/b.mp4"),
            {
                let mut u = url.clone();
                let last = u.pop().expect("char");
                u.push(if last == 'A' { 'B' } else { 'A' });
                u
            },
        ] {
            assert_eq!(
                check(&forged, "10.1.1.1", 400),
                Err(SignedUrlError::Forged),
                "{forged}"
            );
        }
        // Another key is forgery too.
        let other = Secret::from_bytes(b"some other signing key 1234").expect("key");
        let theirs = sign_url(&other, "rtsp://example.net:8554/a.mp4", 500, None).expect("sign");
        assert_eq!(check(&theirs, "10.1.1.1", 400), Err(SignedUrlError::Forged));
    }

    #[test]
    fn malformed_parameters() {
        let q = |s: &str| split_query(s).1;
        assert_eq!(find_params(&q("/a.mp4")), Ok(None));
        assert_eq!(find_params(&q("/a.mp4?foo=1")), Ok(None));
        assert_eq!(
            find_params(&q("/a.mp4?exp=1")),
            Err(SignedUrlError::Malformed("no sig parameter"))
        );
        assert_eq!(
            find_params(&q("/a.mp4?sig=x")),
            Err(SignedUrlError::Malformed("no exp parameter"))
        );
        assert_eq!(
            find_params(&q("/a.mp4?exp=1&exp=2&sig=x")),
            Err(SignedUrlError::Malformed("a parameter is repeated"))
        );
        // A signed but non-numeric exp is malformed.
        let sig = token(&key(), "a.mp4", "+5", None);
        let params = SignedParams {
            exp: "+5",
            ip: None,
            sig: &sig,
        };
        assert_eq!(
            verify(&key(), "a.mp4", params, ip("::1"), 0),
            Err(SignedUrlError::Malformed("exp is not unix seconds"))
        );
        assert_eq!(
            sign_url(&key(), "http://h/a.mp4", 1, None),
            Err(SignUrlError::BadUrl("http://h/a.mp4".into()))
        );
        assert_eq!(
            sign_url(&key(), "rtsp://h/a.mp4?x=1", 1, None),
            Err(SignUrlError::HasQuery)
        );
        assert!(sign_url(&key(), "rtsp://h/", 1, None).is_err());
    }

    #[test]
    fn query_splitting() {
        let (p, q) = split_query("/d/f.mp4?exp=1&ip=10.0.0.0%2F8&sig=T/trackID=3");
        assert_eq!(p, "/d/f.mp4/trackID=3");
        assert_eq!(
            q,
            vec![
                ("exp".to_string(), "1".to_string()),
                ("ip".to_string(), "10.0.0.0/8".to_string()),
                ("sig".to_string(), "T".to_string())
            ]
        );
        // A '/' inside a value (the CIDR) is not a track suffix.
        let (p, q) = split_query("/f.mp4?ip=10.0.0.0/8&flag");
        assert_eq!(p, "/f.mp4");
        assert_eq!(q[0].1, "10.0.0.0/8");
        assert_eq!(q[1], ("flag".to_string(), String::new()));
        assert_eq!(split_query("/f.mp4").0, "/f.mp4");
        assert_eq!(split_query("/f.mp4?a=%ff&b=2").1.len(), 1);
    }
}
