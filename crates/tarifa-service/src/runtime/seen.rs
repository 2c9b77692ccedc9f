//! Which idempotency keys may be stored already: a Bloom filter of every key in the event store,
//! kept by the writer.
//!
//! Why: most events are new, and proving that a key is new by asking the database costs a round
//! trip per group of commands on the writer's critical path (and the database's CPU). A Bloom
//! filter has no false negatives, so a key it has never seen is certainly new and needs no query;
//! only a key it "may contain" (a real duplicate, or about 1 in 5,000 new keys) is looked up.
//!
//! The rate of false positives is what costs: a group of 70 events (20,000 events a second) with
//! one maybe among them waits for a look-up. At 10 bits a key (0.8 % false positives) half of the
//! groups did once the filter was full, and PostgreSQL's look-ups doubled the writer's time
//! (`docs/benchmarks-history.md`). So each layer has 20 bits a key and more (about 2.5 bytes a
//! key), and is *blocked*: a key's bits all lie in one 64-byte block, one cache line, so a key
//! costs one memory access however many bits it sets.
//!
//! The filter grows by adding layers, each twice the size of the one before, so it never has to
//! be rebuilt while the service runs; a key is looked for in every layer, so each new layer gets 2
//! more bits a key than the one before, which about halves its false positives, and their sum
//! stays under twice the first layer's ("scalable Bloom filters", Almeida et al. 2007). The keys
//! stored before a start are fed to it in the background (`writer::load_seen_keys`).

/// Bits per key of the first layer, and the bits each later layer adds.
const BITS_PER_KEY: usize = 20;
const BITS_PER_KEY_STEP: usize = 2;
/// Bits set per key, all in the key's block: about the best for 20 to 30 bits a key in blocks of
/// 512 bits (2 in 10,000 false positives at 20 bits, 5 in 100,000 at 24).
const PROBES: usize = 11;
/// The first layer's capacity when the store is small.
const MIN_CAPACITY: usize = 1 << 20;

/// 512 bits, aligned to a cache line.
#[derive(Clone, Copy, Default)]
#[repr(align(64))]
struct Block([u64; 8]);

const BLOCK_BITS: usize = 512;

/// A growing Bloom filter of idempotency keys.
pub struct SeenKeys {
    layers: Vec<Layer>,
}

struct Layer {
    blocks: Vec<Block>,
    capacity: usize,
    len: usize,
}

impl Layer {
    fn new(capacity: usize, bits_per_key: usize) -> Layer {
        Layer {
            blocks: vec![Block::default(); (capacity * bits_per_key).div_ceil(BLOCK_BITS).max(1)],
            capacity,
            len: 0,
        }
    }

    /// The key's block: the low half of its hash, mapped onto the blocks by a multiplication
    /// (no division); the high half places its bits inside the block.
    fn block(&self, hash: u128) -> usize {
        ((u128::from(hash as u64) * self.blocks.len() as u128) >> 64) as usize
    }

    fn contains(&self, hash: u128) -> bool {
        let block = &self.blocks[self.block(hash)].0;
        positions(hash).all(|p| block[p / 64] & (1 << (p % 64)) != 0)
    }

    fn insert(&mut self, hash: u128) {
        let i = self.block(hash);
        let block = &mut self.blocks[i].0;
        for p in positions(hash) {
            block[p / 64] |= 1 << (p % 64);
        }
        self.len += 1;
    }
}

/// The key's bit positions inside its block: the top 9 bits of the hash's high half multiplied by
/// successive powers of an odd constant (a bijection whose top bits depend on every bit). Double
/// hashing (`start + i × step`) gave five times the false positives here: in 512 bits, keys with
/// the same step share most of their positions.
fn positions(hash: u128) -> impl Iterator<Item = usize> {
    const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (hash >> 64) as u64;
    (0..PROBES).map(move |_| {
        let p = (h >> (64 - 9)) as usize;
        h = h.wrapping_mul(MIX);
        p
    })
}

fn hash(key: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
}

impl SeenKeys {
    /// An empty filter sized for about `expected` keys.
    pub fn with_capacity(expected: usize) -> SeenKeys {
        SeenKeys {
            layers: vec![Layer::new(expected.max(MIN_CAPACITY), BITS_PER_KEY)],
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
            let bits = BITS_PER_KEY + BITS_PER_KEY_STEP * self.layers.len();
            let next = Layer::new(last.capacity * 2, bits);
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
        self.layers
            .iter()
            .map(|l| l.blocks.len() * std::mem::size_of::<Block>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fewer than 400 of a million keys never inserted (`key(0)` … `key(999,999)`) are reported.
    fn assert_few_false_positives(seen: &SeenKeys, key: impl Fn(usize) -> String) {
        let false_positives = (0..1_000_000)
            .filter(|&i| seen.may_contain(&key(i)))
            .count();
        assert!(
            false_positives < 400,
            "{false_positives} false positives in 1,000,000"
        );
    }

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
        // 20 bits and 11 probes a key, in blocks of 512 bits: about 2 in 10,000.
        assert_few_false_positives(&seen, |i| format!("st:wamid.{i}:read:346000{i}"));
        assert!(seen.bytes() <= n * BITS_PER_KEY / 8 + 64);
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
        // A key is looked for in every layer; the later layers' extra bits keep the sum of their
        // false positives under twice the first's (at capacity, 2 in 10,000).
        assert_few_false_positives(&seen, |i| format!("in:{i}"));
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
