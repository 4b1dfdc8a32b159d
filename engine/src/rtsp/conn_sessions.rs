//! The sessions that one RTSP connection created: almost always one, so
//! that one is held inline and only further ones allocate.

/// Slab keys of the sessions a connection created, in creation order.
#[derive(Debug, Clone)]
pub(crate) struct ConnSessions {
    first: usize,
    more: Vec<usize>,
}

impl ConnSessions {
    /// The list holding `key` alone (no allocation).
    pub(crate) fn new(key: usize) -> Self {
        ConnSessions {
            first: key,
            more: Vec::new(),
        }
    }

    /// Appends `key`.
    pub(crate) fn push(&mut self, key: usize) {
        self.more.push(key);
    }

    /// Removes `key`; returns true when the list is then empty (the caller
    /// drops it).
    pub(crate) fn remove(&mut self, key: usize) -> bool {
        if self.first == key {
            if self.more.is_empty() {
                return true;
            }
            self.first = self.more.remove(0);
        } else {
            self.more.retain(|k| *k != key);
        }
        false
    }

    /// The keys, in creation order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::ConnSessions;

    #[test]
    fn keeps_order_and_empties() {
        let mut l = ConnSessions::new(3);
        l.push(5);
        l.push(7);
        assert_eq!(l.iter().collect::<Vec<_>>(), [3, 5, 7]);
        assert!(!l.remove(3));
        assert_eq!(l.iter().collect::<Vec<_>>(), [5, 7]);
        assert!(!l.remove(7));
        assert!(!l.remove(9), "an absent key changes nothing");
        assert_eq!(l.iter().collect::<Vec<_>>(), [5]);
        assert!(l.remove(5));
    }
}
