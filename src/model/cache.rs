//! The prediction cache: attacks ask about the same inputs again and again (a variant equal to
//! its original, a trigger tried twice), and an exact-token-id key answers them without a
//! forward pass.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::*;

/// One cache entry: an exact model input and its logits.
pub(crate) type CacheEntry = (TokenIds, Arc<[f32]>);

/// A bounded map from exact model input to logits. Oldest entries go first when it is full;
/// attacks revisit recent inputs far more often than old ones.
///
/// What the cache holds is a function of the order of insertions alone (lookups do not
/// reorder it), so replaying a journal (`start_journal`) of insertions
/// rebuilds it exactly: a resumed trigger search relies on that to pay for, and count, the
/// same queries as one that was never stopped.
#[derive(Debug)]
pub struct PredictionCache {
    // The key is shared by the map and the eviction order: one allocation per entry, not two
    // (a cache of 200,000 entries is a large share of a long run's memory).
    map: HashMap<Arc<TokenIds>, Arc<[f32]>>,
    order: VecDeque<Arc<TokenIds>>,
    capacity: usize,
    journal: Option<Vec<CacheEntry>>,
}

impl PredictionCache {
    /// An empty cache holding at most `capacity` entries (0 stores nothing).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            journal: None,
        }
    }

    /// Record every insertion from now on (see [`PredictionCache::take_journal`]).
    pub(crate) fn start_journal(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// The insertions recorded since the journal started or was last taken, in order; the
    /// journal keeps recording.
    pub(crate) fn take_journal(&mut self) -> Vec<CacheEntry> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Stop recording insertions and drop any not yet taken.
    pub(crate) fn stop_journal(&mut self) {
        self.journal = None;
    }

    /// The logits cached for exactly these token ids (and type ids), if any.
    pub fn get(&self, key: &TokenIds) -> Option<&Arc<[f32]>> {
        self.map.get(key)
    }

    /// Cache `logits` for `key`, evicting the oldest entries to make room; a key already
    /// cached keeps its entry (and its place in the eviction order).
    pub(crate) fn insert(&mut self, key: TokenIds, logits: Arc<[f32]>) {
        if self.capacity == 0 || self.map.contains_key(&key) {
            return;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if let Some(journal) = self.journal.as_mut() {
            journal.push((key.clone(), logits.clone()));
        }
        let key = Arc::new(key);
        self.order.push_back(key.clone());
        self.map.insert(key, logits);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Drop every entry (the journal, if recording, is left as it is).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaying_a_journal_rebuilds_the_cache() {
        // Insertions (with repeats and evictions) recorded in a journal, taken in two parts
        // as a checkpointing search takes them, and replayed into a fresh cache that saw the
        // same insertions before the journal started: the same entries, evicted alike.
        let key = |i: u32| TokenIds::single(vec![101, i, 102]);
        let mut original = PredictionCache::new(4);
        let mut replayed = PredictionCache::new(4);
        for i in 0..3 {
            original.insert(key(i), Arc::from(vec![i as f32]));
            replayed.insert(key(i), Arc::from(vec![i as f32]));
        }
        original.start_journal();
        let mut journal = Vec::new();
        for i in [2, 3, 4, 1, 5, 6, 3] {
            original.insert(key(i), Arc::from(vec![i as f32]));
            if i == 1 {
                journal.extend(original.take_journal());
            }
        }
        journal.extend(original.take_journal());
        assert_eq!(journal.len(), 4, "repeats of cached keys are not inserted");
        for (k, v) in journal {
            replayed.insert(k, v);
        }
        for i in 0..8 {
            assert_eq!(original.get(&key(i)), replayed.get(&key(i)), "key {i}");
        }
        assert_eq!(original.order, replayed.order);
    }

    #[test]
    fn cache_evicts_oldest_first() {
        let mut cache = PredictionCache::new(2);
        let key = |i| TokenIds::single(vec![101, i, 102]);
        for i in 0..3 {
            cache.insert(key(i), Arc::from(vec![i as f32]));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.get(&key(2)).is_some());
    }

    #[test]
    fn zero_capacity_cache_stores_nothing() {
        let mut cache = PredictionCache::new(0);
        cache.insert(TokenIds::single(vec![1]), Arc::from(vec![0.0]));
        assert!(cache.is_empty());
    }
}
