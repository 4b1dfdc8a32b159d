//! Pairing of tunnel GETs and POSTs by cookie, sans-IO: the state machine of
//! a cookie's home shard ([`crate::tunnel::CookieHasher::home_shard`]).
//!
//! The GET's shard registers the GET here (by message when the home shard is
//! another one); a POST's shard hands the POST connection here. The registry
//! answers where the POST must go: to the GET's shard, so both halves (and
//! the decoding) live on one shard. Either half may arrive first; an
//! unpaired half expires after [`RegistryConfig::pending_timeout_us`]. A
//! paired GET stays registered until [`TunnelRegistry::remove_get`], so a
//! client may open a new POST mid-session (QuickTime does). Time is passed
//! in, in µs.

use std::collections::{BTreeMap, HashMap};

use crate::tunnel::classify::Cookie;

/// Default wait for the other half, µs.
pub const DEFAULT_PENDING_TIMEOUT_US: u64 = 15_000_000;
/// Default cap on unpaired halves held at once.
pub const DEFAULT_MAX_PENDING: usize = 4096;

/// Registry limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// How long a GET without POST, or a POST without GET, waits, µs.
    pub pending_timeout_us: u64,
    /// Most unpaired halves held at once; more is [`RegistryError::Full`].
    pub max_pending: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            pending_timeout_us: DEFAULT_PENDING_TIMEOUT_US,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

/// Result of registering a GET.
#[derive(Debug, PartialEq, Eq)]
pub enum GetOutcome<P> {
    /// Registered; waiting for its POST.
    Registered,
    /// A POST was waiting: send it to the GET's shard.
    Paired {
        /// The waiting POST.
        post: P,
    },
}

/// Result of offering a POST.
#[derive(Debug, PartialEq, Eq)]
pub enum PostOutcome<G, P> {
    /// The GET is registered at `get`: send the POST there.
    Forward {
        /// Where the GET lives.
        get: G,
        /// The POST, handed back.
        post: P,
    },
    /// No GET yet: the registry holds the POST until its GET or its
    /// deadline.
    Waiting,
}

/// Why a half was refused; close it (an HTTP tunnel has no error channel
/// once the GET is answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A GET with this cookie is already registered (DSS refuses too).
    #[error("a GET with this cookie is already registered")]
    DuplicateGet,
    /// A POST with this cookie is already waiting for its GET.
    #[error("a POST with this cookie is already waiting")]
    DuplicatePost,
    /// [`RegistryConfig::max_pending`] unpaired halves are held.
    #[error("too many unpaired tunnel halves")]
    Full,
}

/// An unpaired half whose deadline passed.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired<G, P> {
    /// A GET never joined by a POST: close it at `at`.
    Get {
        /// Its cookie.
        cookie: Cookie,
        /// Where it lives.
        at: G,
    },
    /// A POST whose GET never came: close it.
    Post {
        /// Its cookie.
        cookie: Cookie,
        /// The POST.
        post: P,
    },
}

/// Deadline key: (deadline µs, insertion sequence).
type Key = (u64, u64);

#[derive(Debug)]
enum Entry<G, P> {
    Get { at: G, deadline: Option<Key> },
    Post { post: P, deadline: Key },
}

/// One home shard's cookie table. `G` says where a GET lives (shard index
/// and connection handle), `P` is a POST in transit (its fd and the bytes
/// already read), both opaque here.
#[derive(Debug)]
pub struct TunnelRegistry<G, P> {
    config: RegistryConfig,
    entries: HashMap<Cookie, Entry<G, P>>,
    deadlines: BTreeMap<Key, Cookie>,
    seq: u64,
}

impl<G: Clone + PartialEq, P> TunnelRegistry<G, P> {
    /// An empty registry.
    pub fn new(config: RegistryConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
            deadlines: BTreeMap::new(),
            seq: 0,
        }
    }

    fn deadline(&mut self, cookie: &Cookie, now_us: u64) -> Key {
        self.seq += 1;
        let key = (
            now_us.saturating_add(self.config.pending_timeout_us),
            self.seq,
        );
        self.deadlines.insert(key, cookie.clone());
        key
    }

    /// Registers the GET of `cookie`, living at `at`.
    pub fn register_get(
        &mut self,
        cookie: Cookie,
        at: G,
        now_us: u64,
    ) -> Result<GetOutcome<P>, RegistryError> {
        match self.entries.remove(&cookie) {
            Some(Entry::Post { post, deadline }) => {
                self.deadlines.remove(&deadline);
                self.entries
                    .insert(cookie, Entry::Get { at, deadline: None });
                Ok(GetOutcome::Paired { post })
            }
            Some(get @ Entry::Get { .. }) => {
                self.entries.insert(cookie, get);
                Err(RegistryError::DuplicateGet)
            }
            None => {
                if self.pending() >= self.config.max_pending {
                    return Err(RegistryError::Full);
                }
                let deadline = Some(self.deadline(&cookie, now_us));
                self.entries.insert(cookie, Entry::Get { at, deadline });
                Ok(GetOutcome::Registered)
            }
        }
    }

    /// Offers a POST of `cookie`. On error the POST is handed back to be
    /// closed.
    pub fn offer_post(
        &mut self,
        cookie: Cookie,
        post: P,
        now_us: u64,
    ) -> Result<PostOutcome<G, P>, (RegistryError, P)> {
        match self.entries.get_mut(&cookie) {
            Some(Entry::Get { at, deadline }) => {
                if let Some(key) = deadline.take() {
                    self.deadlines.remove(&key);
                }
                Ok(PostOutcome::Forward {
                    get: at.clone(),
                    post,
                })
            }
            Some(Entry::Post { .. }) => Err((RegistryError::DuplicatePost, post)),
            None => {
                if self.pending() >= self.config.max_pending {
                    return Err((RegistryError::Full, post));
                }
                let deadline = self.deadline(&cookie, now_us);
                self.entries.insert(cookie, Entry::Post { post, deadline });
                Ok(PostOutcome::Waiting)
            }
        }
    }

    /// The GET of `cookie` at `at` closed: forget it. A registration from
    /// another GET with the same cookie is left alone. Returns whether an
    /// entry was removed.
    pub fn remove_get(&mut self, cookie: &Cookie, at: &G) -> bool {
        let matches = matches!(self.entries.get(cookie), Some(Entry::Get { at: a, .. }) if a == at);
        if !matches {
            return false;
        }
        if let Some(Entry::Get {
            deadline: Some(key),
            ..
        }) = self.entries.remove(cookie)
        {
            self.deadlines.remove(&key);
        }
        true
    }

    /// Removes every unpaired half whose deadline is at or before `now_us`,
    /// appending them to `out` in deadline order.
    pub fn expire(&mut self, now_us: u64, out: &mut Vec<Expired<G, P>>) {
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now_us {
                break;
            }
            let cookie = entry.remove();
            match self.entries.remove(&cookie) {
                Some(Entry::Get { at, .. }) => out.push(Expired::Get { cookie, at }),
                Some(Entry::Post { post, .. }) => out.push(Expired::Post { cookie, post }),
                None => {}
            }
        }
    }

    /// Earliest deadline of an unpaired half, µs; `None` when none waits.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.keys().next().map(|k| k.0)
    }

    /// Unpaired halves held (GETs without POST, POSTs without GET).
    pub fn pending(&self) -> usize {
        self.deadlines.len()
    }

    /// Cookies known (paired GETs included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No cookie is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where the GET of `cookie` lives, if registered.
    pub fn get_location(&self, cookie: &Cookie) -> Option<&G> {
        match self.entries.get(cookie) {
            Some(Entry::Get { at, .. }) => Some(at),
            _ => None,
        }
    }
}
