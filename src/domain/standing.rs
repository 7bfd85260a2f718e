//! Who a caller is and what they hold, remembered between requests only for as long as the
//! database has not changed since it was read.
//!
//! Every entry is tagged with the store's write generation read *before* the rows were read.
//! Any committed change to a kept table, by any process, moves the database's change clock; each
//! request reads that clock before trusting anything kept (see [`crate::store::WriteClock`]),
//! which drops every entry at once: a request that starts after a write's response was sent can
//! never see what the write changed as it was before. Coarse on purpose: writes are rare next to reads,
//! and a rule with no exceptions cannot be forgotten by the next feature.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::authz::KeySet;
use crate::store::WriteClock;
use crate::store::entities::{api_tokens, users};

use super::access::MemberAccess;

/// Entries kept per kind before the oldest generation's are dropped wholesale.
const MAX_ENTRIES: usize = 50_000;

/// One kind of entry, all from the same generation.
struct Generation<K, V> {
    generation: u64,
    entries: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Generation<K, V> {
    fn new() -> Self {
        Generation {
            generation: 0,
            entries: HashMap::new(),
        }
    }

    fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q, current: u64) -> Option<V>
    where
        K: Borrow<Q>,
    {
        (self.generation == current)
            .then(|| self.entries.get(key).cloned())
            .flatten()
    }

    fn put(&mut self, key: K, value: V, current: u64) {
        if current < self.generation {
            return;
        }
        if self.generation != current || self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
            self.generation = current;
        }
        self.entries.insert(key, value);
    }
}

/// A cache of one kind of value, safe to share between requests.
struct Shelf<K, V> {
    inner: Mutex<Generation<K, V>>,
}

impl<K: Eq + Hash, V: Clone> Shelf<K, V> {
    fn new() -> Self {
        Shelf {
            inner: Mutex::new(Generation::new()),
        }
    }

    fn get<Q: Eq + Hash + ?Sized>(&self, writes: &WriteClock, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let current = writes.generation()?;
        self.inner.lock().ok()?.get(key, current)
    }

    /// Keeps a value read at generation `read_at`, unless the database has changed since.
    fn put(&self, writes: &WriteClock, read_at: Option<u64>, key: K, value: V) {
        let (Some(read_at), Some(current)) = (read_at, writes.generation()) else {
            return;
        };
        if read_at != current {
            return;
        }
        if let Ok(mut inner) = self.inner.lock() {
            inner.put(key, value, current);
        }
    }
}

/// An API token as authentication needs it.
#[derive(Clone, Debug)]
pub struct TokenHolder {
    pub token: api_tokens::Model,
    pub user: users::Model,
    pub keychain_keys: Option<KeySet>,
}

/// The shared cache of callers' standing.
pub struct Standing {
    writes: Arc<WriteClock>,
    /// (session, user) → the user, for live sessions only.
    sessions: Shelf<(Uuid, Uuid), users::Model>,
    /// Digest of an API token → the token and its user.
    tokens: Shelf<String, TokenHolder>,
    /// (user, organization) → the member's access without any token mask; `None` for a
    /// non-member.
    members: Shelf<(Uuid, Uuid), Option<Arc<MemberAccess>>>,
}

impl Standing {
    pub fn new(writes: Arc<WriteClock>) -> Standing {
        Standing {
            writes,
            sessions: Shelf::new(),
            tokens: Shelf::new(),
            members: Shelf::new(),
        }
    }

    /// Read this before reading the rows to be kept, and pass it to the `keep_` call.
    pub fn generation(&self) -> Option<u64> {
        self.writes.generation()
    }

    pub fn session(&self, session_id: Uuid, user_id: Uuid) -> Option<users::Model> {
        self.sessions.get(&self.writes, &(session_id, user_id))
    }

    pub fn keep_session(&self, read_at: Option<u64>, session_id: Uuid, user: users::Model) {
        self.sessions.put(&self.writes, read_at, (session_id, user.id), user);
    }

    pub fn token(&self, digest: &str) -> Option<TokenHolder> {
        self.tokens.get(&self.writes, digest)
    }

    pub fn keep_token(&self, read_at: Option<u64>, digest: String, holder: TokenHolder) {
        self.tokens.put(&self.writes, read_at, digest, holder);
    }

    /// `Some(None)`: known not to be a member; `None`: not known.
    pub fn member(&self, user_id: Uuid, organization_id: Uuid) -> Option<Option<Arc<MemberAccess>>> {
        self.members.get(&self.writes, &(user_id, organization_id))
    }

    pub fn keep_member(
        &self,
        read_at: Option<u64>,
        user_id: Uuid,
        organization_id: Uuid,
        access: Option<Arc<MemberAccess>>,
    ) {
        self.members
            .put(&self.writes, read_at, (user_id, organization_id), access);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_write_is_never_served_after_it() {
        let mut shelf: Generation<u32, &str> = Generation::new();
        shelf.put(1, "old", 7);
        assert_eq!(shelf.get(&1, 7), Some("old"));
        assert_eq!(shelf.get(&1, 8), None, "a newer generation drops the entry");
        shelf.put(2, "new", 8);
        assert_eq!(shelf.get(&1, 8), None, "entries of the old generation are gone");
        assert_eq!(shelf.get(&2, 8), Some("new"));
    }

    #[test]
    fn a_value_read_across_a_write_is_not_kept() {
        let writes = WriteClock::new();
        let shelf: Shelf<u32, &str> = Shelf::new();
        let read_at = writes.generation();
        writes.tick();
        shelf.put(&writes, read_at, 1, "read before the write committed");
        assert_eq!(shelf.get(&writes, &1), None);
        let read_at = writes.generation();
        shelf.put(&writes, read_at, 1, "fresh");
        assert_eq!(shelf.get(&writes, &1), Some("fresh"));
    }

    #[test]
    fn a_change_seen_in_the_database_clock_drops_what_was_kept() {
        let writes = WriteClock::new();
        let shelf: Shelf<u32, &str> = Shelf::new();
        writes.observe(7);
        let read_at = writes.generation();
        shelf.put(&writes, read_at, 1, "value");
        writes.observe(7);
        assert_eq!(shelf.get(&writes, &1), Some("value"), "an unchanged clock keeps it");
        writes.observe(8);
        assert_eq!(shelf.get(&writes, &1), None, "a moved clock drops it");
    }

    #[test]
    fn the_shelf_is_bounded() {
        let mut shelf: Generation<usize, usize> = Generation::new();
        for i in 0..MAX_ENTRIES + 10 {
            shelf.put(i, i, 1);
        }
        assert!(shelf.entries.len() <= MAX_ENTRIES);
        assert_eq!(shelf.get(&(MAX_ENTRIES + 9), 1), Some(MAX_ENTRIES + 9));
    }
}
