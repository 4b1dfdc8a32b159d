//! Home shards: the same for every shard holding the key, spread evenly,
//! dependent on the key.

use crate::tunnel::{Cookie, CookieHasher};

fn cookies(n: usize) -> Vec<Cookie> {
    (0..n)
        .map(|i| Cookie::new(&format!("{i:016x}")).expect("cookie"))
        .collect()
}

#[test]
fn same_key_same_home() {
    let a = CookieHasher::new([7; 16]);
    let b = a.clone();
    let c = CookieHasher::new([7; 16]);
    for cookie in cookies(100) {
        let home = a.home_shard(&cookie, 6);
        assert!(home < 6);
        assert_eq!(b.home_shard(&cookie, 6), home);
        assert_eq!(c.home_shard(&cookie, 6), home);
    }
    let p = CookieHasher::process();
    let cookie = Cookie::new("abc").expect("cookie");
    assert_eq!(
        p.home_shard(&cookie, 4),
        CookieHasher::process().home_shard(&cookie, 4)
    );
}

#[test]
fn degenerate_shard_counts() {
    let h = CookieHasher::new([1; 16]);
    for cookie in cookies(50) {
        assert_eq!(h.home_shard(&cookie, 0), 0);
        assert_eq!(h.home_shard(&cookie, 1), 0);
    }
}

#[test]
fn homes_spread_evenly() {
    // 12 000 sequential cookies (ffmpeg-like 16-hex) over 3 and 4 shards:
    // each shard within 5% of its share.
    let h = CookieHasher::new(*b"cadence-test-key");
    let all = cookies(12_000);
    for shards in [3usize, 4] {
        let mut counts = vec![0usize; shards];
        for cookie in &all {
            counts[h.home_shard(cookie, shards)] += 1;
        }
        let share = all.len() / shards;
        for (shard, n) in counts.iter().enumerate() {
            assert!(
                n.abs_diff(share) * 20 <= share,
                "shard {shard} of {shards}: {n}, share {share}"
            );
        }
    }
}

#[test]
fn the_key_changes_the_homes() {
    let a = CookieHasher::new([0; 16]);
    let b = CookieHasher::new([1; 16]);
    let all = cookies(1_000);
    let moved = all
        .iter()
        .filter(|c| a.home_shard(c, 4) != b.home_shard(c, 4))
        .count();
    // Independent keys: about 3/4 move.
    assert!((600..=900).contains(&moved), "{moved} of 1000 moved");
    assert_ne!(a.hash(&all[0]), b.hash(&all[0]));
}

#[test]
fn the_key_is_not_shown() {
    let h = CookieHasher::new(*b"0123456789abcdef");
    let shown = format!("{h:?}");
    for half in [b"01234567", b"89abcdef"] {
        let k = u64::from_le_bytes(*half);
        assert!(!shown.contains(&k.to_string()), "{shown}");
        assert!(!shown.contains(&format!("{k:x}")), "{shown}");
    }
    assert!(!shown.contains("0123"), "{shown}");
}
