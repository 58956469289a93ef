//! A fast, fixed-seed hasher for the baseline's `u64` keys.
//!
//! The root package does not depend on `foldhash`, so this is the same idea
//! in a few lines: one folded 64×64→128-bit multiply per key (foldhash's
//! `fast` hasher does the same for an integer). Good enough for keys that
//! are already uniformly spread, and far cheaper than std's SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// The multiplier of the fold (the golden ratio, odd).
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
/// A fixed seed, so that a run's iteration order is repeatable.
const SEED: u64 = 0x243F_6A88_85A3_08D3;

/// Builds [`FoldHasher`]s.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FoldHash;

/// Folded-multiply hasher: state `h`, each word `x` becomes
/// `fold(h ^ x, MULTIPLIER)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline(always)]
    fn write_u64(&mut self, x: u64) {
        self.0 = folded_multiply(self.0 ^ x, MULTIPLIER);
    }

    #[inline(always)]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for FoldHash {
    type Hasher = FoldHasher;
    #[inline(always)]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(SEED)
    }
}

/// A hash map with [`FoldHash`].
pub(crate) type FastMap<K, V> = HashMap<K, V, FoldHash>;

/// An empty [`FastMap`].
pub(crate) fn fast_map<K, V>() -> FastMap<K, V> {
    HashMap::with_hasher(FoldHash)
}
