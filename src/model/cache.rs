//! The prediction cache: attacks ask about the same inputs again and again (a variant equal to
//! its original, a trigger tried twice), and an exact-token-id key answers them without a
//! forward pass.
//!
//! Why it is laid out as it is: on a long run the cache is full most of the time, and every
//! new answer evicts an old one. Kept as a map from the token ids themselves to boxed logits,
//! each entry was four small allocations (about 300 bytes with the map), 60 MB at the default
//! 200,000 entries, and the churn of freeing and allocating them fragmented the heap: the
//! 1M-row shuffle's memory kept rising for 150k rows after the cache had filled (README,
//! "Scale"). So an entry is now a 128-bit digest of its input in a ring of fixed slots, with
//! its logits in one flat array beside it: about 60 bytes, and no allocation once the ring has
//! wrapped. The digest is the first half of the input's SHA-256; two different inputs would
//! have to collide on 128 bits for the cache to answer one with the other's logits (for a
//! billion lookups the chance is below 10^-20).

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::*;

/// One cache entry as a journal records it: an exact model input and its logits.
pub(crate) type CacheEntry = (TokenIds, Arc<[f32]>);

/// The key an input is cached under: the first 128 bits of the SHA-256 of its token ids and
/// type ids (with their count, so that no two inputs share a byte string).
fn digest(input: &TokenIds) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update((input.ids.len() as u64).to_le_bytes());
    for id in input.ids.iter().chain(input.type_ids.iter()) {
        hasher.update(id.to_le_bytes());
    }
    let hash = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    u128::from_le_bytes(first)
}

/// A bounded map from exact model input to logits. Oldest entries go first when it is full;
/// attacks revisit recent inputs far more often than old ones.
///
/// What the cache holds is a function of the order of insertions alone (lookups do not
/// reorder it), so replaying a journal (`start_journal`) of insertions
/// rebuilds it exactly: a resumed trigger search relies on that to pay for, and count, the
/// same queries as one that was never stopped.
#[derive(Debug)]
pub struct PredictionCache {
    /// Digest → the insertion number of its entry; the entry lives in slot
    /// `number % capacity`.
    map: HashMap<u128, u64>,
    /// The digest held in each slot, in slot order.
    keys: Vec<u128>,
    /// Each slot's logits, `width` floats a slot.
    logits: Vec<f32>,
    /// Floats per entry: the model's label count, fixed by the first insertion.
    width: usize,
    /// Insertions so far (the next entry's number).
    inserted: u64,
    capacity: usize,
    journal: Option<Vec<CacheEntry>>,
}

impl PredictionCache {
    /// An empty cache holding at most `capacity` entries (0 stores nothing).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            keys: Vec::new(),
            logits: Vec::new(),
            width: 0,
            inserted: 0,
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
    pub fn get(&self, key: &TokenIds) -> Option<&[f32]> {
        let number = *self.map.get(&digest(key))?;
        let slot = (number % self.capacity as u64) as usize;
        Some(&self.logits[slot * self.width..(slot + 1) * self.width])
    }

    /// Cache `logits` for `key`, evicting the oldest entry to make room; a key already
    /// cached keeps its entry (and its place in the eviction order). Logits of another
    /// length than the first entry's are not cached (one model gives one length).
    pub(crate) fn insert(&mut self, key: TokenIds, logits: Arc<[f32]>) {
        if self.capacity == 0 {
            return;
        }
        if self.width == 0 {
            self.width = logits.len();
        }
        let digest = digest(&key);
        if logits.len() != self.width || self.width == 0 || self.map.contains_key(&digest) {
            return;
        }
        let number = self.inserted;
        let slot = (number % self.capacity as u64) as usize;
        if slot < self.keys.len() {
            // The slot holds the oldest entry: evict it.
            self.map.remove(&self.keys[slot]);
            self.keys[slot] = digest;
            self.logits[slot * self.width..(slot + 1) * self.width].copy_from_slice(&logits);
        } else {
            self.keys.push(digest);
            self.logits.extend_from_slice(&logits);
        }
        self.map.insert(digest, number);
        self.inserted += 1;
        if let Some(journal) = self.journal.as_mut() {
            journal.push((key, logits));
        }
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
        self.keys.clear();
        self.logits.clear();
        self.width = 0;
        self.inserted = 0;
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
        assert_eq!(original.keys, replayed.keys);
        assert_eq!(original.inserted, replayed.inserted);
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
        assert_eq!(cache.get(&key(2)), Some(&[2.0][..]));
    }

    #[test]
    fn a_wrapped_ring_answers_each_key_with_its_own_logits() {
        // Three laps of a 5-slot ring with two logits an entry: after each insertion, exactly
        // the last five keys are held, each with its own logits.
        let mut cache = PredictionCache::new(5);
        let key = |i: u32| TokenIds::single(vec![101, i, 102]);
        for i in 0..15u32 {
            cache.insert(key(i), Arc::from(vec![i as f32, -(i as f32)]));
            for j in 0..=i {
                let held = cache.get(&key(j));
                if j + 5 > i {
                    assert_eq!(
                        held,
                        Some(&[j as f32, -(j as f32)][..]),
                        "key {j} after {i}"
                    );
                } else {
                    assert_eq!(held, None, "key {j} after {i}");
                }
            }
            assert_eq!(cache.len(), (i as usize + 1).min(5));
        }
        // The same ids as another segment are another input.
        let mut pair = key(14);
        pair.type_ids = vec![0, 1, 1].into_boxed_slice();
        assert_eq!(cache.get(&pair), None);
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.get(&key(14)), None);
    }

    #[test]
    fn zero_capacity_cache_stores_nothing() {
        let mut cache = PredictionCache::new(0);
        cache.insert(TokenIds::single(vec![1]), Arc::from(vec![0.0]));
        assert!(cache.is_empty());
    }
}
