//! The one kind of cache whose values outlive a request: rows (or values computed from rows)
//! shared between requests while the database is unchanged.
//!
//! The freshness rule, in one place: a value is stored with the write clock's generation read
//! *before* the rows it came from were read, and it is kept only if that generation is still
//! the current one when it is stored (a value read across a write is thrown away). It is served
//! only while that generation is current. The generation moves with every commit of this
//! process and whenever a request sees the database's change clock move (every request reads
//! it before trusting anything kept), so a request that starts after any write, in any process,
//! never gets a value from before it. Coarse on purpose: writes are rare next to reads, and a
//! rule with no exceptions cannot be forgotten by the next feature.
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use super::WriteClock;
use crate::metrics::CacheCounters;

/// Values of one kind, all from one generation; at most `capacity` of them (a full cache starts
/// over, so a large installation keeps a working set).
pub struct Shared<K, V> {
    writes: Arc<WriteClock>,
    capacity: usize,
    /// Hits and misses, for the operators' metrics.
    counters: Arc<CacheCounters>,
    inner: Mutex<Generation<K, V>>,
}

struct Generation<K, V> {
    generation: u64,
    values: HashMap<K, V>,
}

impl<K: Eq + Hash + Clone, V: Clone> Shared<K, V> {
    pub fn new(writes: &Arc<WriteClock>, capacity: usize) -> Shared<K, V> {
        Shared::counted(writes, capacity, Arc::default())
    }

    /// A cache whose hits and misses go to `counters` (see [`crate::metrics::Metrics::cache`]).
    pub fn counted(writes: &Arc<WriteClock>, capacity: usize, counters: Arc<CacheCounters>) -> Shared<K, V> {
        Shared {
            writes: writes.clone(),
            capacity,
            counters,
            inner: Mutex::new(Generation {
                generation: 0,
                values: HashMap::new(),
            }),
        }
    }

    /// The generation to read before reading what will be kept; pass it to [`Shared::put`].
    pub fn generation(&self) -> Option<u64> {
        self.writes.generation()
    }

    /// The current value of a key, if kept.
    pub fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let current = self.writes.generation()?;
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let found = if inner.generation == current {
            inner.values.get(key).cloned()
        } else {
            None
        };
        drop(inner);
        match found {
            Some(_) => self.counters.hit(1),
            None => self.counters.miss(1),
        }
        found
    }

    /// The current values of those `keys` that are kept; the others are left out.
    pub fn get_many<'k>(&self, keys: impl Iterator<Item = &'k K>) -> HashMap<K, V>
    where
        K: 'k,
    {
        let Some(current) = self.writes.generation() else {
            return HashMap::new();
        };
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut asked = 0u64;
        let found: HashMap<K, V> = if inner.generation != current || inner.values.is_empty() {
            asked = keys.count() as u64;
            HashMap::new()
        } else {
            keys.inspect(|_| asked += 1)
                .filter_map(|k| inner.values.get(k).map(|v| (k.clone(), v.clone())))
                .collect()
        };
        drop(inner);
        let hits = found.len() as u64;
        self.counters.hit(hits);
        self.counters.miss(asked.saturating_sub(hits));
        found
    }

    /// Keeps one value read at generation `read_at`, unless the database has changed since.
    pub fn put(&self, read_at: Option<u64>, key: K, value: V) {
        self.put_with(read_at, 1, |values| {
            values.insert(key, value);
        });
    }

    /// Keeps values read at generation `read_at`, unless the database has changed since.
    pub fn put_many(&self, read_at: Option<u64>, values: &HashMap<K, V>) {
        self.put_with(read_at, values.len(), |kept| {
            kept.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        });
    }

    fn put_with(&self, read_at: Option<u64>, count: usize, add: impl FnOnce(&mut HashMap<K, V>)) {
        let (Some(read_at), Some(current)) = (read_at, self.writes.generation()) else {
            return;
        };
        // Read across a write: what it read may already be stale.
        if read_at != current || count > self.capacity {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.generation != current || inner.values.len() + count > self.capacity {
            inner.values.clear();
            inner.generation = current;
        }
        add(&mut inner.values);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_read_before_a_write_is_never_served_after_it() {
        let writes = Arc::new(WriteClock::new());
        let shared = Shared::new(&writes, 10);
        let read_at = shared.generation();
        shared.put(read_at, 1, "one");
        assert_eq!(shared.get(&1), Some("one"));
        writes.tick();
        assert_eq!(shared.get(&1), None, "a newer generation hides the value");
        shared.put(shared.generation(), 2, "two");
        writes.tick();
        shared.put(shared.generation(), 3, "three");
        assert_eq!(shared.get(&1), None, "values of old generations are gone");
        assert_eq!(shared.get(&2), None);
        assert_eq!(shared.get(&3), Some("three"));
    }

    #[test]
    fn a_value_read_across_a_write_is_not_kept() {
        let writes = Arc::new(WriteClock::new());
        let shared = Shared::new(&writes, 10);
        let read_at = shared.generation();
        writes.tick();
        shared.put(read_at, 1, "stale");
        assert_eq!(shared.get(&1), None);
        let read_at = shared.generation();
        writes.observe(42);
        shared.put_many(read_at, &HashMap::from([(2, "stale too")]));
        assert_eq!(shared.get_many([2].iter()), HashMap::new());
    }

    #[test]
    fn the_cache_is_bounded() {
        let writes = Arc::new(WriteClock::new());
        let shared = Shared::new(&writes, 3);
        for key in 0..10 {
            shared.put(shared.generation(), key, key);
        }
        let kept = shared.get_many((0..10).collect::<Vec<_>>().iter());
        assert!(kept.len() <= 3, "{kept:?}");
        assert_eq!(shared.get(&9), Some(9), "the newest value is kept");
        shared.put_many(shared.generation(), &(0..4).map(|k| (k, k)).collect());
        assert!(
            shared.get_many((0..4).collect::<Vec<_>>().iter()).is_empty(),
            "more than the capacity at once is not kept"
        );
    }
}
