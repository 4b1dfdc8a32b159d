//! The player fields DSS's `UserAgentParser` reads from a QuickTime-style
//! User-Agent, e.g. `QTS (qtver=6.5;cpu=PPC;os=Mac 10.3.9;lang=en)`: the
//! `key=value` pairs between `(` and `)`, separated by `;`.

/// Player fields found in a User-Agent; `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayerFields<'a> {
    /// `qtver` → `c-playerversion`.
    pub version: Option<&'a str>,
    /// `lang` → `c-playerlanguage`.
    pub language: Option<&'a str>,
    /// `os` → `c-os` (without the version when it carried one).
    pub os: Option<&'a str>,
    /// `osver`, or the part of `os` after its first space → `c-osversion`.
    pub os_version: Option<&'a str>,
    /// `cpu` → `c-cpu`.
    pub cpu: Option<&'a str>,
}

/// Parses the player fields; any User-Agent without a `(…)` list yields
/// all `None`. The first occurrence of a key wins, as in DSS.
pub fn player_fields(ua: &str) -> PlayerFields<'_> {
    let mut f = PlayerFields::default();
    let Some(open) = ua.find('(') else {
        return f;
    };
    let inner = &ua[open + 1..];
    let inner = inner.split(')').next().unwrap_or("");
    for part in inner.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if v.is_empty() {
            continue;
        }
        let slot = match k {
            "qtver" => &mut f.version,
            "lang" => &mut f.language,
            "os" => &mut f.os,
            "osver" => &mut f.os_version,
            "cpu" => &mut f.cpu,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }
    if let (Some(os), None) = (f.os, f.os_version) {
        if let Some((name, ver)) = os.split_once(' ') {
            f.os = Some(name);
            if !ver.is_empty() {
                f.os_version = Some(ver);
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quicktime_user_agent() {
        let f = player_fields("QTS (qtver=6.5;cpu=PPC;os=Mac 10.3.9;lang=en)");
        assert_eq!(f.version, Some("6.5"));
        assert_eq!(f.cpu, Some("PPC"));
        assert_eq!(f.os, Some("Mac"));
        assert_eq!(f.os_version, Some("10.3.9"));
        assert_eq!(f.language, Some("en"));
        let f = player_fields("QTS (qtver=7.7;os=Windows NT 6.1;osver=7)");
        assert_eq!(f.os, Some("Windows NT 6.1"));
        assert_eq!(f.os_version, Some("7"));
    }

    #[test]
    fn other_user_agents_have_no_fields() {
        assert_eq!(
            player_fields("LibVLC/3.0.18 (LIVE555 Streaming Media v2016.11.28)"),
            PlayerFields::default()
        );
        assert_eq!(player_fields("Lavf60.16.100"), PlayerFields::default());
        assert_eq!(player_fields("x (=;os=;"), PlayerFields::default());
    }
}
