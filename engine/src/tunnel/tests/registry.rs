//! The pairing table: either half first, duplicates, the cap, expiry in
//! simulated time, and a property test that every POST handed in comes
//! back out exactly once.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use crate::tunnel::registry::{DEFAULT_MAX_PENDING, DEFAULT_PENDING_TIMEOUT_US};
use crate::tunnel::{
    Cookie, Expired, GetOutcome, PostOutcome, RegistryConfig, RegistryError, TunnelRegistry,
};

/// Where a GET lives: (shard, connection).
type At = (usize, u32);
/// A POST in transit: its id.
type Post = u32;

fn cookie(s: &str) -> Cookie {
    Cookie::new(s).expect("cookie")
}

fn registry(timeout_us: u64, max_pending: usize) -> TunnelRegistry<At, Post> {
    TunnelRegistry::new(RegistryConfig {
        pending_timeout_us: timeout_us,
        max_pending,
    })
}

#[test]
fn defaults() {
    let c = RegistryConfig::default();
    assert_eq!(c.pending_timeout_us, DEFAULT_PENDING_TIMEOUT_US);
    assert_eq!(c.max_pending, DEFAULT_MAX_PENDING);
}

#[test]
fn get_first_then_post() {
    let mut r = registry(1_000, 8);
    assert_eq!(
        r.register_get(cookie("a"), (1, 7), 0),
        Ok(GetOutcome::Registered)
    );
    assert_eq!((r.pending(), r.next_deadline()), (1, Some(1_000)));
    assert_eq!(
        r.offer_post(cookie("a"), 42, 500),
        Ok(PostOutcome::Forward {
            get: (1, 7),
            post: 42
        })
    );
    // Paired: no deadline any more, the GET stays known.
    assert_eq!((r.pending(), r.next_deadline(), r.len()), (0, None, 1));
    let mut out = Vec::new();
    r.expire(u64::MAX, &mut out);
    assert!(out.is_empty(), "a paired GET never expires");
    // A new POST mid-session (QuickTime reopens one) goes to the same GET.
    assert_eq!(
        r.offer_post(cookie("a"), 43, 10_000),
        Ok(PostOutcome::Forward {
            get: (1, 7),
            post: 43
        })
    );
    assert_eq!(r.get_location(&cookie("a")), Some(&(1, 7)));
    assert!(r.remove_get(&cookie("a"), &(1, 7)));
    assert!(r.is_empty());
}

#[test]
fn post_first_then_get() {
    let mut r = registry(1_000, 8);
    assert_eq!(r.offer_post(cookie("b"), 9, 100), Ok(PostOutcome::Waiting));
    assert_eq!(r.next_deadline(), Some(1_100));
    assert_eq!(r.get_location(&cookie("b")), None);
    assert_eq!(
        r.register_get(cookie("b"), (0, 3), 200),
        Ok(GetOutcome::Paired { post: 9 })
    );
    assert_eq!((r.pending(), r.next_deadline()), (0, None));
    assert_eq!(r.get_location(&cookie("b")), Some(&(0, 3)));
}

#[test]
fn duplicates_are_refused() {
    let mut r = registry(1_000, 8);
    r.register_get(cookie("a"), (0, 1), 0).expect("first GET");
    assert_eq!(
        r.register_get(cookie("a"), (1, 2), 0),
        Err(RegistryError::DuplicateGet)
    );
    assert_eq!(
        r.get_location(&cookie("a")),
        Some(&(0, 1)),
        "first one kept"
    );
    r.offer_post(cookie("p"), 1, 0).expect("first POST");
    assert_eq!(
        r.offer_post(cookie("p"), 2, 0),
        Err((RegistryError::DuplicatePost, 2)),
        "the refused POST is handed back"
    );
    assert_eq!(r.pending(), 2);
}

#[test]
fn remove_get_checks_the_location() {
    let mut r = registry(1_000, 8);
    r.register_get(cookie("a"), (0, 1), 0).expect("GET");
    assert!(!r.remove_get(&cookie("a"), &(0, 2)), "another connection");
    assert!(!r.remove_get(&cookie("zz"), &(0, 1)), "unknown cookie");
    assert_eq!(r.pending(), 1);
    assert!(r.remove_get(&cookie("a"), &(0, 1)));
    assert_eq!((r.pending(), r.next_deadline()), (0, None));
    // A waiting POST is not a GET.
    r.offer_post(cookie("p"), 5, 0).expect("POST");
    assert!(!r.remove_get(&cookie("p"), &(0, 1)));
    assert_eq!(r.pending(), 1);
}

#[test]
fn cap_on_unpaired_halves() {
    let mut r = registry(1_000, 2);
    r.register_get(cookie("g1"), (0, 1), 0).expect("1");
    r.offer_post(cookie("p1"), 1, 0).expect("2");
    assert_eq!(
        r.register_get(cookie("g2"), (0, 2), 0),
        Err(RegistryError::Full)
    );
    assert_eq!(
        r.offer_post(cookie("p2"), 2, 0),
        Err((RegistryError::Full, 2))
    );
    // Pairing frees a slot and is allowed when full.
    assert!(matches!(
        r.offer_post(cookie("g1"), 3, 0),
        Ok(PostOutcome::Forward { .. })
    ));
    assert_eq!(r.pending(), 1);
    r.register_get(cookie("g2"), (0, 2), 0)
        .expect("a slot is free");
}

#[test]
fn expiry_in_deadline_order() {
    let mut r = registry(1_000, 8);
    r.register_get(cookie("g"), (0, 1), 0).expect("GET");
    r.offer_post(cookie("p"), 7, 300).expect("POST");
    r.register_get(cookie("h"), (0, 2), 300).expect("GET");
    let mut out = Vec::new();
    r.expire(999, &mut out);
    assert!(out.is_empty());
    assert_eq!(r.next_deadline(), Some(1_000));
    r.expire(1_000, &mut out);
    assert_eq!(
        out,
        vec![Expired::Get {
            cookie: cookie("g"),
            at: (0, 1)
        }]
    );
    assert_eq!(r.next_deadline(), Some(1_300));
    out.clear();
    r.expire(5_000, &mut out);
    assert_eq!(
        out,
        vec![
            Expired::Post {
                cookie: cookie("p"),
                post: 7
            },
            Expired::Get {
                cookie: cookie("h"),
                at: (0, 2)
            },
        ]
    );
    assert!(r.is_empty());
    assert_eq!(r.next_deadline(), None);
    // Deadlines saturate instead of overflowing.
    r.register_get(cookie("late"), (0, 3), u64::MAX - 1)
        .expect("GET");
    assert_eq!(r.next_deadline(), Some(u64::MAX));
}

#[derive(Clone, Debug)]
enum Op {
    Get { cookie: u8, conn: u32 },
    Post { cookie: u8 },
    RemoveGet { cookie: u8, conn: u32 },
    Advance { us: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 0u32..3).prop_map(|(cookie, conn)| Op::Get { cookie, conn }),
        (0u8..6).prop_map(|cookie| Op::Post { cookie }),
        (0u8..6, 0u32..3).prop_map(|(cookie, conn)| Op::RemoveGet { cookie, conn }),
        (0u64..800).prop_map(|us| Op::Advance { us }),
    ]
}

proptest! {
    /// Every POST handed in comes back exactly once (forwarded, paired,
    /// refused or expired); nothing expires early or is late by more than
    /// the step; the cap holds; `next_deadline` is the earliest deadline.
    #[test]
    fn every_post_comes_back_once(ops in prop::collection::vec(op(), 0..80)) {
        const TIMEOUT: u64 = 1_000;
        let mut r = registry(TIMEOUT, 3);
        let mut now = 0u64;
        let mut next_post = 0u32;
        let mut returned: HashSet<Post> = HashSet::new();
        let mut since: HashMap<Post, u64> = HashMap::new();
        let back = |post: Post, returned: &mut HashSet<Post>| {
            assert!(returned.insert(post), "POST {post} came back twice");
        };
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Get { cookie: c, conn } => {
                    let res = r.register_get(cookie(&format!("c{c}")), (0, conn), now);
                    if let Ok(GetOutcome::Paired { post }) = res {
                        back(post, &mut returned);
                    }
                }
                Op::Post { cookie: c } => {
                    let post = next_post;
                    next_post += 1;
                    since.insert(post, now);
                    match r.offer_post(cookie(&format!("c{c}")), post, now) {
                        Ok(PostOutcome::Forward { post: p, .. }) | Err((_, p)) => {
                            prop_assert_eq!(p, post);
                            back(p, &mut returned);
                        }
                        Ok(PostOutcome::Waiting) => {}
                    }
                }
                Op::RemoveGet { cookie: c, conn } => {
                    r.remove_get(&cookie(&format!("c{c}")), &(0, conn));
                }
                Op::Advance { us } => {
                    now += us;
                    out.clear();
                    r.expire(now, &mut out);
                    for e in out.drain(..) {
                        if let Expired::Post { post, .. } = e {
                            let waited = now - since[&post];
                            prop_assert!(waited >= TIMEOUT, "POST {} expired early", post);
                            back(post, &mut returned);
                        }
                    }
                    if let Some(d) = r.next_deadline() {
                        prop_assert!(d > now, "a passed deadline survived expire");
                    }
                }
            }
            prop_assert!(r.pending() <= 3);
            prop_assert_eq!(r.next_deadline().is_some(), r.pending() > 0);
            prop_assert!(r.pending() <= r.len());
        }
        out.clear();
        r.expire(u64::MAX, &mut out);
        for e in out.drain(..) {
            if let Expired::Post { post, .. } = e {
                back(post, &mut returned);
            }
        }
        prop_assert_eq!(returned.len() as u32, next_post, "every POST accounted for");
        prop_assert_eq!(r.pending(), 0);
    }
}
