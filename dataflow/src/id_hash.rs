//! [`IdMap`]: a hash map for the engine's integer keys (character, corporation, alliance and
//! system ids) in the scratch maps of one computation, with a multiply-rotate hasher instead of
//! the standard library's SipHash. Keys come from ESI, not from an attacker choosing collisions,
//! and these maps never outlive the call that builds them, so hashing speed is what matters.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The multiplier of the Fx hash (as in rustc's `FxHasher`).
const SEED: u64 = 0xf135_7aea_2e62_a9c5;

/// A multiply-rotate hasher for integer keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_i64(&mut self, n: i64) {
        self.mix(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        // The product's best bits are its high ones; hash tables index with the low ones.
        self.0.rotate_left(26)
    }
}

/// A hash map keyed by ids, hashed with [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// An empty [`IdMap`] with room for `capacity` entries.
pub fn id_map_with_capacity<K, V>(capacity: usize) -> IdMap<K, V> {
    IdMap::with_capacity_and_hasher(capacity, BuildHasherDefault::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_differ_hash_apart_and_equal_ids_alike() {
        let hash = |n: i64| {
            let mut h = IdHasher::default();
            h.write_i64(n);
            h.finish()
        };
        assert_eq!(hash(90_000_001), hash(90_000_001));
        let hashes: std::collections::HashSet<u64> =
            (0..10_000).map(|n| hash(n) & 0xffff).collect();
        // Sequential ids spread over the low bits a table indexes with.
        assert!(hashes.len() > 8_000, "{} distinct low halves", hashes.len());
        let mut map: IdMap<i64, usize> = id_map_with_capacity(4);
        map.insert(3, 1);
        *map.entry(3).or_insert(0) += 1;
        assert_eq!(map.get(&3), Some(&2));
    }
}
