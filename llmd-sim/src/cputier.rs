//! An optional host-memory tier: GPU blocks evicted with a key are written
//! back here (LRU), and prefix hits in it are loaded back at PCIe speed.

use ahash::AHashMap;

use crate::lru::LruList;

/// Host-memory block store keyed by block key.
#[derive(Clone, Debug)]
pub struct CpuTier {
    block_size: usize,
    map: AHashMap<u64, u32>,
    key: Vec<u64>,
    parent: Vec<Option<u64>>,
    tokens: Vec<u32>,
    lru: LruList,
    free: Vec<u32>,
}

impl CpuTier {
    /// A tier of `blocks` blocks of `block_size` tokens.
    pub fn new(blocks: u32, block_size: usize) -> Self {
        let n = blocks as usize;
        CpuTier {
            block_size,
            map: AHashMap::with_capacity(n),
            key: vec![0; n],
            parent: vec![None; n],
            tokens: vec![0; n * block_size],
            lru: LruList::new(n),
            free: (0..blocks).rev().collect(),
        }
    }

    /// Capacity in blocks.
    pub fn capacity(&self) -> usize {
        self.key.len()
    }

    /// True when the tier holds `key`.
    pub fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    /// Keys held, unordered.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.map.keys().copied()
    }

    /// Stores a block; returns `(stored, evicted key)`. `stored` is false
    /// when the key was already present (it is only refreshed) or the tier
    /// has no capacity.
    pub fn store(&mut self, key: u64, parent: Option<u64>, tokens: &[u32]) -> (bool, Option<u64>) {
        if let Some(&slot) = self.map.get(&key) {
            self.lru.push_back(slot);
            return (false, None);
        }
        let mut evicted = None;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => match self.lru.pop_front() {
                Some(s) => {
                    let old = self.key[s as usize];
                    self.map.remove(&old);
                    evicted = Some(old);
                    s
                }
                None => return (false, None),
            },
        };
        let i = slot as usize;
        self.key[i] = key;
        self.parent[i] = parent;
        self.tokens[i * self.block_size..(i + 1) * self.block_size].copy_from_slice(tokens);
        self.map.insert(key, slot);
        self.lru.push_back(slot);
        (true, evicted)
    }

    /// The tokens of a held block (refreshing its recency).
    pub fn read(&mut self, key: u64) -> Option<&[u32]> {
        let slot = *self.map.get(&key)?;
        self.lru.push_back(slot);
        let i = slot as usize;
        Some(&self.tokens[i * self.block_size..(i + 1) * self.block_size])
    }
}
