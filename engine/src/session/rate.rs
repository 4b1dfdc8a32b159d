//! Play rates: the `Scale` (RFC 2326 §12.34) and `Speed` (§12.35) of a
//! PLAY, in exact fixed point (thousandths), with their parsers, their
//! formatting in replies, and the negotiation of the rate actually used.
//!
//! - **Scale** is media time per unit of play time: 1 is normal play, 2 is
//!   fast forward (two seconds of media per second), −2 is rewind. Any scale
//!   other than 1 is trick play: only the key frames (sync samples) of the
//!   video track are sent.
//! - **Speed** is play time per wall-clock second: 2 delivers twice as fast,
//!   with unchanged RTP timestamps (for caching clients).
//!
//! Supported values (what [`negotiate`] maps a request to, the nearest
//! supported value being the one used and reported):
//! - Scale: 1, or `1 ≤ |s| ≤ max` where `max` is the smallest of the
//!   configured `max_scale` and the key-frame spacing of the file's video
//!   track in frames (so key frames are never sent faster than the file's own
//!   frame rate). `0 < |s| < 1` (slow motion) becomes ±1. A session without a
//!   video track that has both sync and non-sync samples (audio only, or
//!   every sample a key frame, or none flagged) supports Scale 1 only, and
//!   any Scale falls back to 1.
//! - Speed: `1/max_speed ≤ x ≤ max_speed`.

use std::fmt;

use rtsp_types::headers::media_properties::{MediaProperty, ScaleRange};

/// Thousandths per unit.
const MILLI: u64 = 1000;

/// A `Scale` value (RFC 2326 §12.34), in thousandths: 1000 is normal play,
/// 2000 fast forward at twice the rate, −2000 rewind at twice the rate.
/// Never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale(i32);

/// A `Speed` value (RFC 2326 §12.35), in thousandths: 1000 delivers in real
/// time, 2000 twice as fast. Never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Speed(u32);

/// The rate of a PLAY: its scale and speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayRate {
    /// Media time per unit of play time.
    pub scale: Scale,
    /// Play time per wall-clock time.
    pub speed: Speed,
}

impl PlayRate {
    /// Normal play: Scale 1, Speed 1.
    pub const NORMAL: PlayRate = PlayRate {
        scale: Scale::ONE,
        speed: Speed::ONE,
    };

    /// True for Scale 1 and Speed 1 (the pacer's fast path).
    pub fn is_normal(self) -> bool {
        self == PlayRate::NORMAL
    }

    /// True when the scale is not 1 (key frames only).
    pub fn is_trick(self) -> bool {
        self.scale != Scale::ONE
    }
}

impl Default for PlayRate {
    fn default() -> Self {
        PlayRate::NORMAL
    }
}

impl Scale {
    /// Scale 1: normal play.
    pub const ONE: Scale = Scale(1000);

    /// The scale of `milli` thousandths; `None` for 0.
    pub fn from_milli(milli: i32) -> Option<Scale> {
        (milli != 0).then_some(Scale(milli))
    }

    /// The value in thousandths (never 0).
    pub fn milli(self) -> i32 {
        self.0
    }

    /// |scale| in thousandths (at least 1).
    pub fn magnitude_milli(self) -> u64 {
        u64::from(self.0.unsigned_abs())
    }

    /// True for a negative scale (reverse play).
    pub fn is_reverse(self) -> bool {
        self.0 < 0
    }
}

impl Speed {
    /// Speed 1: real-time delivery.
    pub const ONE: Speed = Speed(1000);

    /// The speed of `milli` thousandths; `None` for 0.
    pub fn from_milli(milli: u32) -> Option<Speed> {
        (milli != 0).then_some(Speed(milli))
    }

    /// The value in thousandths (never 0).
    pub fn milli(self) -> u32 {
        self.0
    }

    /// Wall-clock µs that `play_us` µs of play time take at this speed.
    pub fn wall_us(self, play_us: u64) -> u64 {
        mul_div(play_us, MILLI, u64::from(self.0))
    }

    /// Play-time µs delivered in `wall_us` µs of wall-clock time.
    pub fn play_us(self, wall_us: u64) -> u64 {
        mul_div(wall_us, u64::from(self.0), MILLI)
    }
}

/// `a × b / c` in 128-bit arithmetic, saturating at `u64::MAX` (`c` > 0).
pub(crate) fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    let v = u128::from(a) * u128::from(b) / u128::from(c.max(1));
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// Writes thousandths as a decimal with three places (`2.000`, `-0.500`),
/// as gst-rtsp-server does.
fn write_milli(f: &mut fmt::Formatter<'_>, negative: bool, magnitude: u64) -> fmt::Result {
    let sign = if negative { "-" } else { "" };
    write!(f, "{sign}{}.{:03}", magnitude / MILLI, magnitude % MILLI)
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_milli(f, self.is_reverse(), self.magnitude_milli())
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_milli(f, false, u64::from(self.0))
    }
}

/// Why a `Scale` or `Speed` header value is refused (400 Bad Request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Not `[ "-" ] 1*DIGIT [ "." *DIGIT ]` (Scale) or `1*DIGIT [ "." *DIGIT ]`
    /// (Speed): garbage, NaN, exponents, a sign on Speed.
    #[error("{header} value {value:?} is not a decimal number")]
    Syntax {
        /// `"Scale"` or `"Speed"`.
        header: &'static str,
        /// The value (truncated to 32 bytes).
        value: String,
    },
    /// Zero, which neither header allows (§12.34: no direction; §12.35: "a
    /// speed of zero is invalid").
    #[error("{header} of zero is invalid")]
    Zero {
        /// `"Scale"` or `"Speed"`.
        header: &'static str,
    },
}

/// A decimal `1*DIGIT [ "." *DIGIT ]` in thousandths, rounded half up,
/// saturating far beyond any supported rate. `None` when it is not one.
/// Returns `(thousandths, all digits zero)`.
fn parse_decimal(s: &str) -> Option<(u64, bool)> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    const CAP: u64 = 1 << 40;
    let mut milli: u64 = 0;
    for b in int.bytes() {
        milli = (milli * 10 + u64::from(b - b'0')).min(CAP);
    }
    milli = milli.saturating_mul(MILLI);
    let fb = frac.as_bytes();
    let digit = |i: usize| fb.get(i).map_or(0, |b| u64::from(b - b'0'));
    milli = milli.saturating_add(digit(0) * 100 + digit(1) * 10 + digit(2));
    if digit(3) >= 5 {
        milli = milli.saturating_add(1);
    }
    let zero = int.bytes().chain(frac.bytes()).all(|b| b == b'0');
    // A nonzero value below a thousandth still counts as nonzero.
    Some((if zero { 0 } else { milli.max(1) }, zero))
}

fn syntax(header: &'static str, value: &str) -> RateError {
    RateError::Syntax {
        header,
        value: value.chars().take(32).collect(),
    }
}

/// Parses a `Scale` header value (RFC 2326 §12.34:
/// `[ "-" ] 1*DIGIT [ "." *DIGIT ]`). Values beyond ±2,147,483 saturate.
pub fn parse_scale(value: &str) -> Result<Scale, RateError> {
    let v = value.trim();
    let (negative, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (milli, zero) = parse_decimal(digits).ok_or_else(|| syntax("Scale", value))?;
    if zero {
        return Err(RateError::Zero { header: "Scale" });
    }
    let m = i32::try_from(milli).unwrap_or(i32::MAX);
    Ok(Scale(if negative { -m } else { m }))
}

/// Parses a `Speed` header value (RFC 2326 §12.35: `1*DIGIT [ "." *DIGIT ]`;
/// a negative speed does not match). Values beyond 4,294,967 saturate.
pub fn parse_speed(value: &str) -> Result<Speed, RateError> {
    let (milli, zero) = parse_decimal(value.trim()).ok_or_else(|| syntax("Speed", value))?;
    if zero {
        return Err(RateError::Zero { header: "Speed" });
    }
    Ok(Speed(u32::try_from(milli).unwrap_or(u32::MAX)))
}

/// Server limits on play rates (config keys `max_scale`, `max_speed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Largest |Scale|, thousandths (at least 1000).
    pub max_scale_milli: u32,
    /// Largest Speed, thousandths (at least 1000); the smallest is its
    /// inverse.
    pub max_speed_milli: u32,
}

impl Default for RateLimits {
    /// `max_scale` 8, `max_speed` 4.
    fn default() -> Self {
        RateLimits {
            max_scale_milli: 8_000,
            max_speed_milli: 4_000,
        }
    }
}

impl RateLimits {
    /// What a file whose largest trick-play scale is `file_max_milli`
    /// (`None` when it cannot trick-play) supports, in the syntax of RTSP
    /// 2.0's `Media-Properties` (RFC 7826 §18.29): random access, immutable,
    /// unlimited, and `Scales="-8:-1, 1:8"` (or `Scales="1"`).
    pub fn media_properties(&self, file_max_milli: Option<u32>) -> String {
        let scales = match self.max_scale(file_max_milli) {
            None => vec![ScaleRange::Scale(1.0)],
            Some(max) => {
                let max = f64::from(max) / 1000.0;
                vec![ScaleRange::Range(-max, -1.0), ScaleRange::Range(1.0, max)]
            }
        };
        [
            MediaProperty::RandomAccess(None),
            MediaProperty::Immutable,
            MediaProperty::Unlimited,
            MediaProperty::Scales(scales),
        ]
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
    }

    fn max_scale(&self, file_max_milli: Option<u32>) -> Option<u32> {
        let max = file_max_milli?.min(self.max_scale_milli);
        (max >= 1000).then_some(max)
    }
}

/// The rate used for `requested` on a session whose video track supports
/// |Scale| up to `file_max_milli` thousandths (`None`: no trick play):
/// the nearest supported value of each (see the module docs).
pub fn negotiate(
    requested: PlayRate,
    file_max_milli: Option<u32>,
    limits: &RateLimits,
) -> PlayRate {
    let scale = match limits.max_scale(file_max_milli) {
        None => Scale::ONE,
        Some(max) => {
            let m = requested
                .scale
                .magnitude_milli()
                .clamp(1000, u64::from(max));
            let m = i32::try_from(m).unwrap_or(i32::MAX);
            Scale(if requested.scale.is_reverse() { -m } else { m })
        }
    };
    let max_speed = u64::from(limits.max_speed_milli.max(1000));
    let min_speed = (MILLI * MILLI).div_ceil(max_speed);
    let speed = u64::from(requested.speed.0).clamp(min_speed, max_speed);
    PlayRate {
        scale,
        speed: Speed(u32::try_from(speed).unwrap_or(u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_grammar_exactly() {
        assert_eq!(parse_scale("2").unwrap(), Scale(2000));
        assert_eq!(parse_scale(" -2.0 ").unwrap(), Scale(-2000));
        assert_eq!(parse_scale("1.5").unwrap(), Scale(1500));
        assert_eq!(parse_scale("0.0005").unwrap(), Scale(1));
        assert_eq!(parse_scale("2.").unwrap(), Scale(2000));
        assert_eq!(
            parse_scale("99999999999999999999").unwrap(),
            Scale(i32::MAX)
        );
        assert_eq!(
            parse_scale("-99999999999999999999").unwrap(),
            Scale(-i32::MAX)
        );
        assert_eq!(parse_speed("2").unwrap(), Speed(2000));
        assert_eq!(parse_speed("0.25").unwrap(), Speed(250));
        assert_eq!(parse_speed("4.0004").unwrap(), Speed(4000));
        assert_eq!(parse_speed("4.0005").unwrap(), Speed(4001));
        for bad in [
            "", "-", "abc", "NaN", "nan", "inf", "1e3", "+2", ".5", "2..0", "2,0", "0x10", "--2",
            "1 2",
        ] {
            assert!(
                matches!(parse_scale(bad), Err(RateError::Syntax { .. })),
                "{bad:?}"
            );
            assert!(
                matches!(parse_speed(bad), Err(RateError::Syntax { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(parse_speed("-2"), Err(RateError::Syntax { .. })));
        for zero in ["0", "0.0", "-0", "000.000"] {
            assert_eq!(
                parse_scale(zero),
                Err(RateError::Zero { header: "Scale" }),
                "{zero}"
            );
        }
        assert_eq!(parse_speed("0"), Err(RateError::Zero { header: "Speed" }));
    }

    #[test]
    fn formats_three_places() {
        assert_eq!(Scale(2000).to_string(), "2.000");
        assert_eq!(Scale(-1500).to_string(), "-1.500");
        assert_eq!(Scale(-1).to_string(), "-0.001");
        assert_eq!(Speed(250).to_string(), "0.250");
    }

    #[test]
    fn negotiation_picks_the_nearest_supported_value() {
        let limits = RateLimits::default();
        let rate = |scale, speed| PlayRate {
            scale: Scale(scale),
            speed: Speed(speed),
        };
        // Within range: unchanged.
        assert_eq!(
            negotiate(rate(2000, 1000), Some(50_000), &limits),
            rate(2000, 1000)
        );
        assert_eq!(
            negotiate(rate(-2000, 2000), Some(50_000), &limits),
            rate(-2000, 2000)
        );
        // Beyond the configured or the file's maximum: the maximum.
        assert_eq!(
            negotiate(rate(100_000, 1000), Some(50_000), &limits),
            rate(8000, 1000)
        );
        assert_eq!(
            negotiate(rate(-100_000, 1000), Some(3000), &limits),
            rate(-3000, 1000)
        );
        // Slow motion: ±1.
        assert_eq!(
            negotiate(rate(500, 1000), Some(50_000), &limits),
            rate(1000, 1000)
        );
        assert_eq!(
            negotiate(rate(-500, 1000), Some(50_000), &limits),
            rate(-1000, 1000)
        );
        // No trick play in the file: Scale 1, whatever was asked.
        assert_eq!(
            negotiate(rate(-4000, 1000), None, &limits),
            rate(1000, 1000)
        );
        // Speed within [1/max, max].
        assert_eq!(
            negotiate(rate(1000, 10_000), None, &limits),
            rate(1000, 4000)
        );
        assert_eq!(negotiate(rate(1000, 1), None, &limits), rate(1000, 250));
        let props = |max| limits.media_properties(max);
        assert_eq!(
            props(Some(50_000)),
            "Random-Access, Immutable, Unlimited, Scales=\"-8:-1, 1:8\""
        );
        assert!(props(Some(2500)).ends_with("Scales=\"-2.5:-1, 1:2.5\""));
        assert!(props(None).ends_with("Scales=\"1\""));
        assert!(props(Some(500)).ends_with("Scales=\"1\""));
    }

    #[test]
    fn speed_maps_play_time_to_wall_time() {
        assert_eq!(Speed(2000).wall_us(1_000_000), 500_000);
        assert_eq!(Speed(2000).play_us(500_000), 1_000_000);
        assert_eq!(Speed(1).wall_us(u64::MAX), u64::MAX);
    }
}
