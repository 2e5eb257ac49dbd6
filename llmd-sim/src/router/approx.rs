//! llm-d's approximate prefix index: the router hashes 64-token blocks of
//! the prompt itself (xxh64 chain, trailing partial block included) and
//! records them for the worker it picked, in a per-worker LRU. It never
//! hears what the engines really evicted.

use ahash::AHashMap;
use xxhash_rust::xxh64::xxh64;

use crate::lru::LruList;

#[derive(Debug)]
struct WorkerLru {
    slot: AHashMap<u64, u32>,
    keys: Vec<u64>,
    lru: LruList,
    free: Vec<u32>,
}

/// Routing-time prefix index for up to 64 workers.
#[derive(Debug)]
pub struct ApproxIndex {
    block: usize,
    max_blocks: usize,
    holders: AHashMap<u64, u64>,
    workers: Vec<WorkerLru>,
}

impl ApproxIndex {
    /// `block`-token blocks (llm-d raises anything below 64 to 64), an LRU of
    /// `capacity` hashes per worker (autoTune: the engine's block count).
    pub fn new(workers: usize, block: usize, capacity: usize) -> Self {
        let cap = capacity.max(1);
        ApproxIndex {
            block: block.max(64),
            max_blocks: 32_768 / block.max(64),
            holders: AHashMap::new(),
            workers: (0..workers)
                .map(|_| WorkerLru {
                    slot: AHashMap::new(),
                    keys: vec![0; cap],
                    lru: LruList::new(cap),
                    free: (0..cap as u32).rev().collect(),
                })
                .collect(),
        }
    }

    /// The request's hash chain (`seed = xxh64(model ‖ salt)`).
    pub fn hashes(&self, tokens: &[u32], model: &str) -> Vec<u64> {
        let mut h = xxh64(model.as_bytes(), 0);
        let mut out = Vec::with_capacity(tokens.len() / self.block + 1);
        let mut buf = Vec::with_capacity(self.block * 4);
        for chunk in tokens.chunks(self.block).take(self.max_blocks) {
            buf.clear();
            buf.extend(chunk.iter().flat_map(|t| t.to_le_bytes()));
            let c = xxh64(&buf, 0);
            let mut pair = [0u8; 16];
            pair[..8].copy_from_slice(&c.to_le_bytes());
            pair[8..].copy_from_slice(&h.to_le_bytes());
            h = xxh64(&pair, 0);
            out.push(h);
        }
        out
    }

    /// llm-d's walk: stop at the first hash nobody holds; every holder of
    /// each earlier hash gets one block. Writes match blocks per worker.
    pub fn matches(&self, hashes: &[u64], out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = 0.0);
        for h in hashes {
            let Some(&m) = self.holders.get(h) else { break };
            let mut m = m;
            while m != 0 {
                let w = m.trailing_zeros() as usize;
                if let Some(v) = out.get_mut(w) {
                    *v += 1.0;
                }
                m &= m - 1;
            }
        }
    }

    /// Records that `worker` now holds `hashes`.
    pub fn insert(&mut self, worker: usize, hashes: &[u64]) {
        let bit = 1u64 << (worker % 64);
        let Some(w) = self.workers.get_mut(worker) else {
            return;
        };
        for &h in hashes {
            if let Some(&s) = w.slot.get(&h) {
                w.lru.push_back(s);
                continue;
            }
            let s = match w.free.pop() {
                Some(s) => s,
                None => {
                    let Some(s) = w.lru.pop_front() else { return };
                    let old = w.keys[s as usize];
                    w.slot.remove(&old);
                    if let Some(m) = self.holders.get_mut(&old) {
                        *m &= !bit;
                        if *m == 0 {
                            self.holders.remove(&old);
                        }
                    }
                    s
                }
            };
            w.keys[s as usize] = h;
            w.slot.insert(h, s);
            w.lru.push_back(s);
            *self.holders.entry(h).or_default() |= bit;
        }
    }
}
