//! The run's keys and the slot of each, held densely: most ids in one vector sorted by
//! id (20 bytes an object, no empty buckets), the newest in a hash table of at most an
//! eighth as many, merged into it as it fills (about 26 bytes an object in all). A hash
//! table of every key cost about 44 bytes an object at its load factor, and twice that
//! while it doubled; it was most of what a run's memory grew by with its graph
//! (docs/benchmarks.md).

use corral_core::changes::{KeyId, KeyIdMap};

/// Keys the hash table takes before a merge, at least; past eight times this, an eighth
/// of the sorted ones (merges then cost a constant amount of moving per key).
const MIN_RECENT: usize = 4096;

/// A key id and its slot, in 4-byte words so an entry is 20 bytes, not 24.
#[derive(Clone, Copy, Default)]
struct Entry {
    id: [u32; 4],
    slot: u32,
}

impl Entry {
    fn new(id: KeyId, slot: u32) -> Entry {
        let [a, b] = id.words();
        Entry {
            id: [(a >> 32) as u32, a as u32, (b >> 32) as u32, b as u32],
            slot,
        }
    }
}

/// Key id → slot.
#[derive(Default)]
pub struct KeyIndex {
    /// Merged entries in id order (the order of [`Entry::id`]'s words).
    sorted: Vec<Entry>,
    /// Where each prefix of `bits` bits starts in `sorted` (one more than the prefixes,
    /// the last `sorted.len()`): a lookup searches only its prefix's few entries. Ids are
    /// keyed hashes, so prefixes are even.
    starts: Vec<u32>,
    bits: u32,
    /// Entries since the last merge.
    recent: KeyIdMap<u32>,
}

impl KeyIndex {
    /// Room for `n` keys in the sorted part (reserved, touched only as keys come); none
    /// where the system will not lend the address space.
    pub fn reserve(&mut self, n: usize) {
        let _ = self
            .sorted
            .try_reserve_exact(n.saturating_sub(self.sorted.len()));
    }

    pub fn get(&self, id: KeyId) -> Option<u32> {
        if let Some(&slot) = self.recent.get(&id) {
            return Some(slot);
        }
        let probe = Entry::new(id, 0).id;
        let prefix = prefix(probe[0], self.bits);
        let from = self.starts.get(prefix).map_or(0, |&s| s as usize);
        let to = self
            .starts
            .get(prefix + 1)
            .map_or(self.sorted.len(), |&s| s as usize);
        let range = self.sorted.get(from..to)?;
        let at = range.binary_search_by(|e| e.id.cmp(&probe)).ok()?;
        range.get(at).map(|e| e.slot)
    }

    pub fn contains(&self, id: KeyId) -> bool {
        self.get(id).is_some()
    }

    /// Adds `id` (not already present: the store checks first).
    pub fn insert(&mut self, id: KeyId, slot: u32) {
        self.recent.insert(id, slot);
        if self.recent.len() >= (self.sorted.len() / 8).max(MIN_RECENT) {
            self.merge();
        }
    }

    /// Moves the recent entries into the sorted ones, in place from the back.
    fn merge(&mut self) {
        let mut new: Vec<Entry> = self
            .recent
            .drain()
            .map(|(id, slot)| Entry::new(id, slot))
            .collect();
        new.sort_unstable_by_key(|e| e.id);
        let old = self.sorted.len();
        // Exact: a doubling vector would hold up to twice what it needs.
        self.sorted.reserve_exact(new.len());
        self.sorted.resize(old + new.len(), Entry::default());
        let (mut i, mut k) = (old, self.sorted.len());
        while let Some(last) = new.last() {
            k -= 1;
            if i > 0 && self.sorted[i - 1].id > last.id {
                i -= 1;
                self.sorted[k] = self.sorted[i];
            } else {
                self.sorted[k] = *last;
                new.pop();
            }
        }
        self.index_prefixes();
    }

    /// Two to four entries a prefix.
    fn index_prefixes(&mut self) {
        let n = self.sorted.len();
        self.bits = (usize::BITS - (n / 4).leading_zeros()).min(24);
        let prefixes = 1usize << self.bits;
        self.starts.clear();
        self.starts.reserve_exact(prefixes + 1);
        let mut at = 0usize;
        for p in 0..prefixes {
            while at < n && prefix(self.sorted[at].id[0], self.bits) < p {
                at += 1;
            }
            self.starts.push(at as u32);
        }
        self.starts.push(n as u32);
    }
}

/// The top `bits` (at most 32) of an id's first word.
fn prefix(top: u32, bits: u32) -> usize {
    top.checked_shr(32 - bits).unwrap_or(0) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_core::changes::KeyIds;
    use std::collections::HashMap;

    #[test]
    fn every_key_is_found_with_its_slot_across_merges_and_absent_ones_are_not() {
        let ids = KeyIds::default();
        let mut index = KeyIndex::default();
        let mut oracle = HashMap::new();
        for n in 0..100_000u32 {
            let id = ids.id(&format!("key-{n}"));
            index.insert(id, n);
            oracle.insert(id, n);
            // Each size up to a merge and past it is checked at some point.
            if n % 997 == 0 || n == 4095 || n == 4096 {
                for (&id, &slot) in oracle.iter().take(200) {
                    assert_eq!(index.get(id), Some(slot));
                }
            }
        }
        assert_eq!(index.sorted.len() + index.recent.len(), 100_000);
        for (&id, &slot) in &oracle {
            assert_eq!(index.get(id), Some(slot));
        }
        for n in 0..10_000 {
            assert!(!index.contains(ids.id(&format!("other-{n}"))));
        }
        // Most keys are in the sorted part, each prefix holding a few.
        assert!(index.sorted.len() > 80_000 && index.recent.len() < 20_000);
        assert!(index.sorted.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(index.sorted.capacity(), index.sorted.len());
        assert_directory(&index);
        let longest = index.starts.windows(2).map(|w| w[1] - w[0]).max();
        assert!(longest.is_some_and(|n| n <= 24), "{longest:?}");
    }

    /// The directory covers every entry, each within its prefix's range.
    fn assert_directory(index: &KeyIndex) {
        assert_eq!(index.starts.len(), (1 << index.bits) + 1);
        assert_eq!(
            index.starts.last().copied(),
            Some(index.sorted.len() as u32)
        );
        assert_eq!(index.starts.first().copied(), Some(0));
        for (p, w) in index.starts.windows(2).enumerate() {
            assert!(w[0] <= w[1]);
            for e in &index.sorted[w[0] as usize..w[1] as usize] {
                assert_eq!(prefix(e.id[0], index.bits), p);
            }
        }
    }

    #[test]
    fn a_prefix_is_the_top_bits_of_the_first_word() {
        assert_eq!(prefix(u32::MAX, 0), 0);
        assert_eq!(prefix(0x8000_0000, 1), 1);
        assert_eq!(prefix(0x7fff_ffff, 1), 0);
        assert_eq!(prefix(0xabcd_ef01, 24), 0xab_cdef);
    }

    #[test]
    fn merges_keep_the_order_wherever_the_new_ids_fall() {
        let id = |hi: u64, lo: u64| KeyId::from_words([hi, lo]);
        let step = u64::MAX / 64;
        let blocks: Vec<Vec<KeyId>> = vec![
            (20..30).map(|i| id(i * step, 0)).collect(),
            // Above every id so far, then below, then among them.
            (40..50).map(|i| id(i * step, 0)).collect(),
            (0..10).map(|i| id(i * step, 0)).collect(),
            (20..30).map(|i| id(i * step + 1, 0)).collect(),
            // One prefix at any size: the first word equal, the second apart.
            (1..5001).map(|i| id(7 * step, i)).collect(),
            (0..3).map(|i| id(u64::MAX - i, u64::MAX)).collect(),
        ];
        let mut index = KeyIndex::default();
        let mut added = Vec::new();
        for block in blocks {
            for key in block {
                index.insert(key, added.len() as u32);
                added.push(key);
            }
            index.merge();
            assert!(index.recent.is_empty());
            assert!(index.sorted.windows(2).all(|w| w[0].id < w[1].id));
            assert_directory(&index);
            for (slot, &key) in added.iter().enumerate() {
                assert_eq!(index.get(key), Some(slot as u32));
            }
            assert_eq!(index.get(id(7 * step, 99_999)), None);
            assert_eq!(index.get(id(u64::MAX, 0)), None);
        }
    }

    #[test]
    fn an_empty_or_small_index_answers() {
        let ids = KeyIds::default();
        let mut index = KeyIndex::default();
        assert_eq!(index.get(ids.id("a")), None);
        index.reserve(10);
        index.insert(ids.id("a"), 7);
        assert_eq!(index.get(ids.id("a")), Some(7));
        assert_eq!(index.get(ids.id("b")), None);
        index.merge();
        assert_eq!(index.get(ids.id("a")), Some(7));
        assert_eq!(index.get(ids.id("b")), None);
        assert_eq!(index.sorted.len(), 1);
    }
}
