//! Churn mode (`--churn MIN-MAX`): sessions get random lifetimes and each
//! one that ends is replaced at once, so that `--clients` sessions stay up,
//! as viewers come and go on a real server.
//!
//! A session's lifetime is its play time: from the PLAY reply to the moment
//! it ends (TEARDOWN, or closing its RTSP connection without TEARDOWN for the
//! `--churn-no-teardown` fraction). Client *i* is slot *i*; the *g*-th
//! session of a slot (generation *g*, 0 for the first) draws its lifetime and
//! its way of ending from (seed, slot, generation) alone, so a run with the
//! same `--seed` gives every slot the same sequence of sessions whatever the
//! timing.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How an ending session leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// TEARDOWN (RFC 2326 §10.7), then close once it is answered.
    Teardown,
    /// Close the RTSP connection without TEARDOWN (a player that crashed or
    /// was killed). The server keeps a UDP session until its timeout.
    Close,
}

/// Churn settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// Shortest lifetime (play time).
    pub min: Duration,
    /// Longest lifetime; lifetimes are uniform in `[min, max]`.
    pub max: Duration,
    /// Percent (0–100) of ending sessions that close without TEARDOWN.
    pub no_teardown_pct: f64,
    /// Seed of the lifetime draws.
    pub seed: u64,
}

/// The splitmix64 finalizer: spreads (seed, slot, generation) over 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Churn {
    /// Lifetime and ending of session `generation` of slot `slot`.
    pub fn draw(&self, slot: usize, generation: u64) -> (Duration, Ending) {
        let key = mix(self.seed ^ mix(slot as u64) ^ mix(generation.wrapping_add(1) << 32));
        let mut rng = StdRng::seed_from_u64(key);
        let (min, max) = (self.min.as_secs_f64(), self.max.as_secs_f64());
        let lifetime = if max > min {
            rng.gen_range(min..=max)
        } else {
            min
        };
        let close = rng.gen_bool((self.no_teardown_pct / 100.0).clamp(0.0, 1.0));
        let ending = if close {
            Ending::Close
        } else {
            Ending::Teardown
        };
        (Duration::from_secs_f64(lifetime), ending)
    }
}

/// Parses `MIN-MAX` (seconds, decimals allowed; `S` alone means `S-S`) into
/// lifetimes, each at least 0.1 s and at most 10^6 s, `MIN ≤ MAX`.
pub fn parse_range(s: &str) -> Result<(Duration, Duration), String> {
    let bad = || format!("--churn {s:?}: expected MIN-MAX in seconds, e.g. 2-20");
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a: f64 = a.trim().parse().map_err(|_| bad())?;
    let b: f64 = b.trim().parse().map_err(|_| bad())?;
    if !(a.is_finite() && b.is_finite()) || a < 0.1 || b > 1e6 || a > b {
        return Err(format!(
            "--churn {s:?}: lifetimes must satisfy 0.1 ≤ MIN ≤ MAX ≤ 1000000 seconds"
        ));
    }
    Ok((Duration::from_secs_f64(a), Duration::from_secs_f64(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn churn(no_teardown_pct: f64) -> Churn {
        Churn {
            min: Duration::from_secs(2),
            max: Duration::from_secs(20),
            no_teardown_pct,
            seed: 42,
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("2-20").unwrap(),
            (Duration::from_secs(2), Duration::from_secs(20))
        );
        assert_eq!(
            parse_range("0.5-1.5").unwrap(),
            (Duration::from_millis(500), Duration::from_millis(1500))
        );
        assert_eq!(
            parse_range("5").unwrap(),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
        for bad in ["20-2", "0-5", "x", "1-", "-3", "1-2000000", "nan-1"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn draws_are_uniform_within_bounds_and_repeatable() {
        let c = churn(0.0);
        let mut sum = 0.0;
        let n = 20_000;
        for slot in 0..n {
            let (l, e) = c.draw(slot, 3);
            assert!((2.0..=20.0).contains(&l.as_secs_f64()), "{l:?}");
            assert_eq!(e, Ending::Teardown);
            assert_eq!(c.draw(slot, 3), (l, e));
            sum += l.as_secs_f64();
        }
        let mean = sum / n as f64;
        assert!((mean - 11.0).abs() < 0.15, "mean lifetime {mean}");
        // Another generation, slot or seed gives another draw.
        assert_ne!(c.draw(1, 0), c.draw(1, 1));
        assert_ne!(c.draw(1, 0), c.draw(2, 0));
        let other = Churn { seed: 43, ..c };
        assert_ne!(c.draw(1, 0), other.draw(1, 0));
    }

    #[test]
    fn no_teardown_fraction() {
        let c = churn(25.0);
        let closes = (0..10_000)
            .filter(|&g| c.draw(7, g).1 == Ending::Close)
            .count();
        assert!((2_300..2_700).contains(&closes), "{closes} of 10000");
        assert!((0..1000).all(|g| churn(100.0).draw(0, g).1 == Ending::Close));
        let fixed = Churn {
            max: Duration::from_secs(2),
            ..c
        };
        assert_eq!(fixed.draw(0, 0).0, Duration::from_secs(2));
    }
}
