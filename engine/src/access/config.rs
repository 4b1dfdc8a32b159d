//! The `[auth]` section of the TOML configuration file.
//!
//! ```toml
//! [auth]
//! users_file = "/etc/cadence/qtusers"      # default users file (DSS format)
//! groups_file = "/etc/cadence/qtgroups"    # default groups file
//! auth_scheme = "digest"                   # when an access file names none
//! require_auth_by_default = false          # true: no access file = valid-user
//! nonce_lifetime = 300                     # seconds a Digest nonce is fresh
//! # nonce_secret_file = "/etc/cadence/nonce-secret"  # share nonces across nodes
//! signed_urls = "off"                      # "off" | "optional" | "required"
//! # url_secret_file = "/etc/cadence/url-secret"
//!
//! [[auth.client_subnets]]
//! path_prefix = "private"                  # catalog path prefix, whole segments
//! allow = ["10.0.0.0/8", "2001:db8::/32"]  # empty: every address
//! deny = ["10.66.0.0/16"]
//! ```

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use super::subnet::{parse_cidr, SubnetRule};

/// Authentication scheme of a challenge (`AuthScheme` in `qtaccess`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    /// RFC 7617 Basic (the password crosses the network in clear).
    Basic,
    /// RFC 2617 / RFC 7616 Digest with MD5.
    Digest,
}

/// Whether signed URLs are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignedUrlMode {
    /// Query parameters `exp`, `ip`, `sig` mean nothing.
    #[default]
    Off,
    /// A request carrying a signature must have a valid one, which grants
    /// access in place of the access-file rules; unsigned requests go through
    /// the access-file rules.
    Optional,
    /// Every request needs a valid signature (which then grants access in
    /// place of the access-file rules).
    Required,
}

/// The `[auth]` section. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Users file used when an access file has no `AuthUserFile` (and by
    /// `require_auth_by_default`) [default: /etc/cadence/qtusers].
    pub users_file: PathBuf,
    /// Groups file used when an access file has no `AuthGroupFile`
    /// [default: /etc/cadence/qtgroups].
    pub groups_file: PathBuf,
    /// Scheme challenged when an access file has no `AuthScheme`
    /// [default: digest, as DSS's `authentication_scheme`].
    pub auth_scheme: AuthScheme,
    /// When true, a file with no access file above it requires a valid user
    /// of `users_file` (DSS with `enable_allow_guest_default` off); when
    /// false such files are open [default: false].
    pub require_auth_by_default: bool,
    /// Seconds a Digest nonce stays fresh; an older one is answered with
    /// `stale=true`. 10..=86400 [default: 300].
    pub nonce_lifetime: u64,
    /// File holding the Digest nonce key (at least 16 bytes), for several
    /// servers behind one balancer; a random key per start when absent.
    pub nonce_secret_file: Option<PathBuf>,
    /// Signed-URL checking [default: off].
    pub signed_urls: SignedUrlMode,
    /// File holding the signed-URL key (at least 16 bytes); required unless
    /// `signed_urls = "off"`.
    pub url_secret_file: Option<PathBuf>,
    /// Client-subnet rules per catalog path prefix, checked before any
    /// credentials; the rule with the longest matching prefix applies.
    pub client_subnets: Vec<ClientSubnetConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            users_file: PathBuf::from("/etc/cadence/qtusers"),
            groups_file: PathBuf::from("/etc/cadence/qtgroups"),
            auth_scheme: AuthScheme::Digest,
            require_auth_by_default: false,
            nonce_lifetime: 300,
            nonce_secret_file: None,
            signed_urls: SignedUrlMode::Off,
            url_secret_file: None,
            client_subnets: Vec::new(),
        }
    }
}

/// One `[[auth.client_subnets]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSubnetConfig {
    /// Catalog path prefix in whole segments (`"private"` covers
    /// `private/a.mp4`, not `privateer.mp4`); `""` or `"/"` covers every file.
    /// Leading and trailing `/` are ignored.
    pub path_prefix: String,
    /// CIDRs (`10.0.0.0/8`, `2001:db8::/32`; a bare address is one host)
    /// allowed; empty allows every address not denied.
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDRs denied; a denied address is refused even when also allowed.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// Why an `[auth]` section is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[auth] {0}")]
pub struct AuthConfigError(pub String);

/// Shortest and longest `nonce_lifetime`, seconds.
pub const NONCE_LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 10..=86_400;

impl AuthConfig {
    /// Checks every value; the error names the key and the bad value.
    pub fn validate(&self) -> Result<(), AuthConfigError> {
        self.subnet_rules().map(|_| ())
    }

    /// Validates and compiles the subnet rules (longest prefix first).
    pub(crate) fn subnet_rules(&self) -> Result<Vec<SubnetRule>, AuthConfigError> {
        let err = |m: String| Err(AuthConfigError(m));
        if !NONCE_LIFETIME_RANGE.contains(&self.nonce_lifetime) {
            return err(format!(
                "nonce_lifetime must be {}..={} seconds, got {}",
                NONCE_LIFETIME_RANGE.start(),
                NONCE_LIFETIME_RANGE.end(),
                self.nonce_lifetime
            ));
        }
        if self.signed_urls != SignedUrlMode::Off && self.url_secret_file.is_none() {
            return err("signed_urls is on but url_secret_file is not set".into());
        }
        for (key, p) in [
            ("users_file", &self.users_file),
            ("groups_file", &self.groups_file),
        ] {
            if p.as_os_str().is_empty() {
                return err(format!("{key} is empty"));
            }
        }
        let mut rules: Vec<SubnetRule> = Vec::with_capacity(self.client_subnets.len());
        for (i, c) in self.client_subnets.iter().enumerate() {
            let at = format!("client_subnets[{i}]");
            let prefix = c.path_prefix.trim_matches('/');
            if prefix
                .split('/')
                .any(|s| (s.is_empty() && !prefix.is_empty()) || s == "." || s == "..")
            {
                return err(format!(
                    "{at}.path_prefix {:?} has an empty, '.' or '..' segment",
                    c.path_prefix
                ));
            }
            if let Some(j) = rules.iter().position(|r| r.prefix == prefix) {
                return err(format!(
                    "{at}.path_prefix {:?} repeats client_subnets[{j}]",
                    c.path_prefix
                ));
            }
            let nets = |list: &[String], key: &str| -> Result<Vec<IpNet>, AuthConfigError> {
                list.iter()
                    .map(|s| parse_cidr(s).map_err(|e| AuthConfigError(format!("{at}.{key}: {e}"))))
                    .collect()
            };
            let allow = nets(&c.allow, "allow")?;
            let deny = nets(&c.deny, "deny")?;
            if allow.is_empty() && deny.is_empty() {
                return err(format!("{at} has neither allow nor deny"));
            }
            rules.push(SubnetRule {
                prefix: prefix.to_string(),
                allow,
                deny,
            });
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        auth: AuthConfig,
    }

    fn parse(text: &str) -> Result<AuthConfig, String> {
        toml::from_str::<File>(text)
            .map(|f| f.auth)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn full_section() {
        let c = parse(
            r#"
            [auth]
            users_file = "/srv/qtusers"
            auth_scheme = "basic"
            require_auth_by_default = true
            nonce_lifetime = 60
            signed_urls = "required"
            url_secret_file = "/srv/url-secret"
            [[auth.client_subnets]]
            path_prefix = "/private/"
            allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
            deny = ["10.66.0.0/16"]
            [[auth.client_subnets]]
            path_prefix = ""
            deny = ["::ffff:198.51.100.0/120"]
            "#,
        )
        .expect("valid toml");
        assert_eq!(c.users_file, PathBuf::from("/srv/qtusers"));
        assert_eq!(c.groups_file, PathBuf::from("/etc/cadence/qtgroups"));
        assert_eq!(c.auth_scheme, AuthScheme::Basic);
        assert_eq!(c.signed_urls, SignedUrlMode::Required);
        let rules = c.subnet_rules().expect("valid");
        assert_eq!(rules[0].prefix, "private");
        assert_eq!(rules[0].allow.len(), 3);
        assert_eq!(rules[1].prefix, "");
        // The v4-mapped deny list is held as IPv4.
        assert_eq!(rules[1].deny[0].to_string(), "198.51.100.0/24");
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c = parse("[auth]\n").expect("empty section");
        assert_eq!(c, AuthConfig::default());
        assert!(c.validate().is_ok());
        let e = parse("[auth]\nuser_file = \"x\"\n").expect_err("typo");
        assert!(e.contains("unknown field"), "{e}");
        let e = parse("[auth]\nsigned_urls = \"maybe\"\n").expect_err("bad mode");
        assert!(e.contains("unknown variant"), "{e}");
        let e = parse("[auth]\n[[auth.client_subnets]]\npath_prefix = \"a\"\nallw = []\n")
            .expect_err("typo");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn validation_errors_name_the_key() {
        let check = |c: AuthConfig, needle: &str| {
            let e = c.validate().expect_err(needle).to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        };
        check(
            AuthConfig {
                nonce_lifetime: 5,
                ..Default::default()
            },
            "nonce_lifetime",
        );
        check(
            AuthConfig {
                signed_urls: SignedUrlMode::Optional,
                ..Default::default()
            },
            "url_secret_file",
        );
        let subnet = |prefix: &str, allow: &[&str]| AuthConfig {
            client_subnets: vec![ClientSubnetConfig {
                path_prefix: prefix.into(),
                allow: allow.iter().map(|s| s.to_string()).collect(),
                deny: vec![],
            }],
            ..Default::default()
        };
        check(subnet("a", &["10.0.0/8"]), "client_subnets[0].allow");
        check(subnet("a", &["10.1.0.0/8"]), "host bits");
        check(subnet("a/../b", &["10.0.0.0/8"]), "'..'");
        check(subnet("a", &[]), "neither allow nor deny");
        let mut twice = subnet("a", &["10.0.0.0/8"]);
        twice.client_subnets.push(ClientSubnetConfig {
            path_prefix: "/a/".into(),
            allow: vec![],
            deny: vec!["::1".into()],
        });
        check(twice, "repeats client_subnets[0]");
    }
}
