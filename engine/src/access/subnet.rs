//! Client-subnet rules: allow and deny lists of CIDRs per catalog path
//! prefix. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2),
//! which a dual-stack socket reports for IPv4 peers, are treated as IPv4, in
//! rules and in peers alike.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

/// One compiled rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetRule {
    /// Catalog path prefix, no leading or trailing `/`; `""` is every path.
    pub prefix: String,
    /// Allowed networks; empty allows every address that is not denied.
    pub allow: Vec<IpNet>,
    /// Denied networks (checked first).
    pub deny: Vec<IpNet>,
}

/// A refusal by a subnet rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetDenied {
    /// The client address (IPv4 when it was v4-mapped).
    pub client: IpAddr,
    /// The rule's prefix (`""` for every path).
    pub prefix: String,
    /// The deny entry that matched, or `None` when the address is in no
    /// allow entry.
    pub denied_by: Option<IpNet>,
}

/// `a.b.c.d` for a v4-mapped IPv6 address, the address itself otherwise.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (one
/// host). A v4-mapped IPv6 network of prefix ≥ 96 becomes the IPv4 network.
/// Host bits must be zero (`10.1.0.0/8` is refused as a likely typo).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    let net = match t.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match t.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => {
                return Err(format!(
                    "{s:?} is not a CIDR (a.b.c.d/n or x:y::/n) or an address"
                ))
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has host bits set; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(unmap(net))
}

/// The IPv4 network for a v4-mapped IPv6 network of prefix ≥ 96, the
/// network itself otherwise.
pub fn unmap(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (
            v6.network().to_ipv4_mapped(),
            v6.prefix_len().checked_sub(96),
        ) {
            if let Ok(n) = Ipv4Net::new(v4, len) {
                return IpNet::V4(n);
            }
        }
    }
    net
}

/// Whether `net` contains `ip`, both taken with v4-mapped addresses as IPv4.
pub fn net_contains(net: &IpNet, ip: IpAddr) -> bool {
    net.contains(&normalize(ip))
}

/// Whether `path` is `prefix` or below it, in whole segments.
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Applies the rule with the longest prefix covering `path` (`rules` sorted
/// longest prefix first, as [`super::AuthConfig`] compiles them): a deny
/// match refuses; otherwise a non-empty allow list must match. No rule
/// covering the path allows.
pub fn check(rules: &[SubnetRule], path: &str, peer: IpAddr) -> Result<(), SubnetDenied> {
    let Some(rule) = rules.iter().find(|r| under_prefix(path, &r.prefix)) else {
        return Ok(());
    };
    let client = normalize(peer);
    let denied = |denied_by| SubnetDenied {
        client,
        prefix: rule.prefix.clone(),
        denied_by,
    };
    if let Some(d) = rule.deny.iter().find(|n| n.contains(&client)) {
        return Err(denied(Some(*d)));
    }
    if !rule.allow.is_empty() && !rule.allow.iter().any(|n| n.contains(&client)) {
        return Err(denied(None));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn rule(prefix: &str, allow: &[&str], deny: &[&str]) -> SubnetRule {
        let nets = |l: &[&str]| l.iter().map(|s| parse_cidr(s).expect("cidr")).collect();
        SubnetRule {
            prefix: prefix.into(),
            allow: nets(allow),
            deny: nets(deny),
        }
    }

    #[test]
    fn v4_mapped_addresses_are_ipv4() {
        assert_eq!(normalize(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(normalize(ip("::1")), ip("::1"));
        assert_eq!(normalize(ip("2001:db8::1")), ip("2001:db8::1"));
        let net = parse_cidr("10.0.0.0/8").expect("cidr");
        assert!(net_contains(&net, ip("::ffff:10.200.0.1")));
        assert!(!net_contains(&net, ip("::ffff:11.0.0.1")));
        // A v4-mapped rule is an IPv4 rule.
        let mapped = parse_cidr("::ffff:192.0.2.0/120").expect("cidr");
        assert_eq!(mapped.to_string(), "192.0.2.0/24");
        assert!(net_contains(&mapped, ip("192.0.2.9")));
        assert_eq!(
            parse_cidr("::ffff:192.0.2.9").expect("host").to_string(),
            "192.0.2.9/32"
        );
    }

    #[test]
    fn cidr_parsing() {
        assert_eq!(
            parse_cidr(" 2001:db8::/32 ").expect("v6").to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            parse_cidr("192.0.2.1").expect("host").to_string(),
            "192.0.2.1/32"
        );
        assert!(parse_cidr("10.0.0.1/8")
            .expect_err("host bits")
            .contains("10.0.0.0/8"));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("bogus").is_err());
    }

    #[test]
    fn longest_prefix_rule_applies() {
        let rules = vec![
            rule("private/open", &[], &["10.66.0.0/16"]),
            rule(
                "private",
                &["10.0.0.0/8", "2001:db8::/32"],
                &["10.66.0.0/16"],
            ),
            rule("", &[], &["203.0.113.0/24"]),
        ];
        // Allowed in private.
        assert!(check(&rules, "private/a.mp4", ip("10.1.1.1")).is_ok());
        assert!(check(&rules, "private/a.mp4", ip("::ffff:10.1.1.1")).is_ok());
        assert!(check(&rules, "private/a.mp4", ip("2001:db8::5")).is_ok());
        // Not in the allow list.
        let e = check(&rules, "private/a.mp4", ip("192.0.2.1")).expect_err("outside");
        assert_eq!((e.prefix.as_str(), e.denied_by), ("private", None));
        // Deny beats allow.
        let e = check(&rules, "private/x/a.mp4", ip("::ffff:10.66.3.4")).expect_err("denied");
        assert_eq!(e.client, ip("10.66.3.4"));
        assert_eq!(e.denied_by, Some(parse_cidr("10.66.0.0/16").expect("net")));
        // The more specific rule has no allow list: 192.0.2.1 may.
        assert!(check(&rules, "private/open/a.mp4", ip("192.0.2.1")).is_ok());
        assert!(check(&rules, "private/open/a.mp4", ip("10.66.0.1")).is_err());
        // Whole segments only: privateer.mp4 falls to the root rule.
        assert!(check(&rules, "privateer.mp4", ip("192.0.2.1")).is_ok());
        assert!(check(&rules, "privateer.mp4", ip("203.0.113.9")).is_err());
        assert!(check(&[], "a.mp4", ip("203.0.113.9")).is_ok());
    }
}
