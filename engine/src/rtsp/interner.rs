//! Shard-local string interning for what many sessions share: the file
//! path and URL stem of a popular title, and the `User-Agent` of the few
//! player builds that make up most clients. Each session then holds an
//! `Arc<str>` (16 bytes, no heap of its own) instead of a `String` apiece.

use std::collections::HashSet;
use std::sync::Arc;

/// Most distinct strings kept; beyond it the table starts over (strings in
/// use stay alive through their sessions' references, so this bounds only
/// what a client sending a new User-Agent per request can make it hold).
pub(crate) const MAX_INTERNED: usize = 4096;

/// Longest string interned, bytes; longer ones get their own allocation.
pub(crate) const MAX_INTERNED_LEN: usize = 512;

/// A set of shared strings.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    set: HashSet<Arc<str>>,
}

impl Interner {
    /// The shared copy of `s` (made now when it is new).
    pub(crate) fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        if s.len() <= MAX_INTERNED_LEN {
            if self.set.len() >= MAX_INTERNED {
                self.set.clear();
            }
            self.set.insert(a.clone());
        }
        a
    }

    /// Number of strings held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_shares_one_allocation() {
        let mut i = Interner::default();
        let a = i.get("LibVLC/3.0.20 (LIVE555 Streaming Media v2023.11.07)");
        let b = i.get("LibVLC/3.0.20 (LIVE555 Streaming Media v2023.11.07)");
        let c = i.get("GStreamer/1.22");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*c, "GStreamer/1.22");
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn bounded() {
        let mut i = Interner::default();
        for n in 0..MAX_INTERNED + 10 {
            i.get(&n.to_string());
        }
        assert!(i.len() <= MAX_INTERNED);
        let long = "x".repeat(MAX_INTERNED_LEN + 1);
        let before = i.len();
        assert_eq!(&*i.get(&long), long.as_str());
        assert_eq!(i.len(), before, "long strings are not kept");
    }
}
