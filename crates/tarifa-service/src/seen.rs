//! Which idempotency keys may be stored already: a Bloom filter of every key in the event store,
//! kept by the writer.
//!
//! Why: most events are new, and proving that a key is new by asking the database costs a round
//! trip per group of commands on the writer's critical path (and the database's CPU). A Bloom
//! filter has no false negatives, so a key it has never seen is certainly new and needs no query;
//! only a key it "may contain" (a real duplicate, or about 1 % of new keys) is looked up. Memory is
//! about 1.2 bytes per stored key (10 bits); the filter grows by adding layers, each twice the
//! size of the one before, so it never has to be rebuilt while the service runs. The keys stored
//! before a start are fed to it in the background (`writer::load_seen_keys`).

/// Bits per key of each layer, and the number of probes: about 0.8 % false positives at capacity.
const BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;
/// The first layer's capacity when the store is small.
const MIN_CAPACITY: usize = 1 << 20;

/// A growing Bloom filter of idempotency keys.
pub struct SeenKeys {
    layers: Vec<Layer>,
}

struct Layer {
    bits: Vec<u64>,
    capacity: usize,
    len: usize,
}

impl Layer {
    fn new(capacity: usize) -> Layer {
        Layer {
            bits: vec![0; (capacity * BITS_PER_KEY).div_ceil(64)],
            capacity,
            len: 0,
        }
    }

    fn contains(&self, hash: u128) -> bool {
        positions(self.bits.len(), hash).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }

    fn insert(&mut self, hash: u128) {
        for p in positions(self.bits.len(), hash) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
        self.len += 1;
    }
}

/// The bit positions of a key in a layer of `words` words (double hashing of one 128-bit hash).
fn positions(words: usize, hash: u128) -> impl Iterator<Item = usize> {
    let m = (words * 64) as u64;
    let (h1, h2) = (hash as u64, ((hash >> 64) as u64) | 1);
    (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
}

fn hash(key: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
}

impl SeenKeys {
    /// An empty filter sized for about `expected` keys.
    pub fn with_capacity(expected: usize) -> SeenKeys {
        SeenKeys {
            layers: vec![Layer::new(expected.max(MIN_CAPACITY))],
        }
    }

    /// `false`: the key was never inserted. `true`: it may have been.
    pub fn may_contain(&self, key: &str) -> bool {
        let h = hash(key);
        self.layers.iter().any(|l| l.contains(h))
    }

    pub fn insert(&mut self, key: &str) {
        let h = hash(key);
        let last = self.layers.last().expect("a filter has a layer");
        if last.len >= last.capacity {
            let next = Layer::new(last.capacity * 2);
            self.layers.push(next);
        }
        self.layers
            .last_mut()
            .expect("a filter has a layer")
            .insert(h);
    }

    /// Keys inserted so far.
    pub fn len(&self) -> usize {
        self.layers.iter().map(|l| l.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of filter memory.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(|l| l.bits.len() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_inserted_key_is_found_and_few_new_keys_are_false_positives() {
        let mut seen = SeenKeys::with_capacity(0);
        let n = MIN_CAPACITY;
        for i in 0..n {
            seen.insert(&format!("st:wamid.{i}:delivered:346000{i}"));
        }
        assert_eq!(seen.len(), n);
        assert_eq!(seen.layers.len(), 1, "filled exactly to capacity");
        for i in 0..n {
            assert!(seen.may_contain(&format!("st:wamid.{i}:delivered:346000{i}")));
        }
        let false_positives = (0..100_000)
            .filter(|i| seen.may_contain(&format!("st:wamid.{i}:read:346000{i}")))
            .count();
        // 10 bits and 7 probes a key: about 0.8 %.
        assert!(
            false_positives < 1_500,
            "{false_positives} false positives in 100,000"
        );
        assert!(seen.bytes() <= n * BITS_PER_KEY / 8 + 8);
    }

    #[test]
    fn grows_by_layers_without_forgetting() {
        let mut seen = SeenKeys::with_capacity(0);
        let n = MIN_CAPACITY * 3;
        for i in 0..n {
            seen.insert(&format!("out:{i}"));
        }
        assert_eq!(seen.layers.len(), 2, "1 M then 2 M keys");
        assert!((0..n).all(|i| seen.may_contain(&format!("out:{i}"))));
        seen.insert("one more");
        assert_eq!(seen.layers.len(), 3);
        assert!(seen.may_contain("one more") && seen.may_contain("out:0"));
    }

    proptest! {
        /// No false negatives: a key that was inserted is always reported.
        #[test]
        fn no_false_negatives(keys in proptest::collection::vec(".{0,40}", 1..200)) {
            let mut seen = SeenKeys::with_capacity(0);
            for k in &keys {
                seen.insert(k);
            }
            for k in &keys {
                prop_assert!(seen.may_contain(k));
            }
        }
    }
}
