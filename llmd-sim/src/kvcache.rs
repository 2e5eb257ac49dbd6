//! A worker's paged KV cache with prefix caching, as vLLM's block pool does
//! it: full blocks get a key when their tokens are computed, freed blocks
//! stay cached in a free queue (oldest first) until they are reused, and
//! every commit and eviction becomes a KV event.

use ahash::AHashMap;
use llmd_kvindex::events::{BlockRemoved, BlockStored, HashValue, KvEvent};

use crate::cputier::CpuTier;
use crate::lru::LruList;

const GPU: &str = "GPU";
const CPU: &str = "CPU";

/// Paged KV cache of one worker.
#[derive(Clone, Debug)]
pub struct KvCache {
    block_size: usize,
    ref_cnt: Vec<u32>,
    key: Vec<Option<u64>>,
    parent: Vec<Option<u64>>,
    tokens: Vec<u32>,
    map: AHashMap<u64, u32>,
    free: LruList,
    cpu: Option<CpuTier>,
    pending: Vec<KvEvent>,
    cpu_loaded_blocks: u64,
}

impl KvCache {
    /// `num_blocks` GPU blocks of `block_size` tokens, plus `cpu_blocks`
    /// host blocks (0 disables the tier).
    pub fn new(num_blocks: u32, block_size: usize, cpu_blocks: u32) -> Self {
        let n = num_blocks as usize;
        let mut free = LruList::new(n);
        for b in 0..num_blocks {
            free.push_back(b);
        }
        let cpu = (cpu_blocks > 0).then(|| CpuTier::new(cpu_blocks, block_size));
        KvCache {
            block_size,
            ref_cnt: vec![0; n],
            key: vec![None; n],
            parent: vec![None; n],
            tokens: if cpu.is_some() {
                vec![0; n * block_size]
            } else {
                Vec::new()
            },
            map: AHashMap::with_capacity(n),
            free,
            cpu,
            pending: Vec::new(),
            cpu_loaded_blocks: 0,
        }
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// GPU blocks in total.
    pub fn num_blocks(&self) -> usize {
        self.ref_cnt.len()
    }

    /// Blocks that can be allocated now (free, cached or not).
    pub fn free_blocks(&self) -> usize {
        self.free.len()
    }

    /// Blocks referenced by running requests.
    pub fn used_blocks(&self) -> usize {
        self.num_blocks() - self.free.len()
    }

    /// vLLM's `kv_cache_usage_perc`: referenced blocks over all blocks.
    pub fn usage(&self) -> f64 {
        self.used_blocks() as f64 / self.num_blocks().max(1) as f64
    }

    /// Blocks loaded back from the CPU tier so far.
    pub fn cpu_loaded_blocks(&self) -> u64 {
        self.cpu_loaded_blocks
    }

    /// Longest run of `keys` (at most `max`) cached on the GPU, and how many
    /// of those blocks sit in the free queue (allocating them costs capacity).
    pub fn gpu_prefix(&self, keys: &[u64], max: usize) -> (usize, usize) {
        let mut hits = 0;
        let mut free = 0;
        for k in keys.iter().take(max) {
            match self.map.get(k) {
                Some(&b) => {
                    hits += 1;
                    if self.ref_cnt[b as usize] == 0 {
                        free += 1;
                    }
                }
                None => break,
            }
        }
        (hits, free)
    }

    /// Longest run of `keys[start..max]` held by the CPU tier.
    pub fn cpu_prefix(&self, keys: &[u64], start: usize, max: usize) -> usize {
        let Some(cpu) = &self.cpu else { return 0 };
        keys.iter()
            .take(max)
            .skip(start)
            .take_while(|k| cpu.contains(**k))
            .count()
    }

    /// References the GPU blocks holding `keys` (all must be cached).
    pub fn acquire(&mut self, keys: &[u64], out: &mut Vec<u32>) {
        for k in keys {
            if let Some(&b) = self.map.get(k) {
                if self.ref_cnt[b as usize] == 0 {
                    self.free.remove(b);
                }
                self.ref_cnt[b as usize] += 1;
                out.push(b);
            }
        }
    }

    /// Allocates `n` blocks, evicting cached ones oldest first. Returns
    /// false (allocating nothing) when fewer than `n` are free.
    pub fn allocate(&mut self, n: usize, out: &mut Vec<u32>) -> bool {
        if self.free.len() < n {
            return false;
        }
        for _ in 0..n {
            let Some(b) = self.free.pop_front() else {
                return false;
            };
            self.evict(b);
            self.ref_cnt[b as usize] = 1;
            out.push(b);
        }
        true
    }

    fn evict(&mut self, b: u32) {
        let i = b as usize;
        let Some(k) = self.key[i].take() else { return };
        self.map.remove(&k);
        push_removed(&mut self.pending, k, GPU);
        if let Some(cpu) = &mut self.cpu {
            let toks = &self.tokens[i * self.block_size..(i + 1) * self.block_size];
            let (stored, evicted) = cpu.store(k, self.parent[i], toks);
            if let Some(old) = evicted {
                push_removed(&mut self.pending, old, CPU);
            }
            if stored {
                self.pending.push(stored_event(
                    &[k],
                    self.parent[i],
                    toks,
                    self.block_size,
                    CPU,
                ));
            }
        }
    }

    /// Gives the blocks `keys` (full, computed) their keys and publishes
    /// them. `parent` is the key before `keys[0]`; `tokens` are the blocks'
    /// tokens back to back. A key already cached in another block leaves
    /// that block uncached, as vLLM does for duplicates.
    pub fn commit(&mut self, blocks: &[u32], keys: &[u64], parent: Option<u64>, tokens: &[u32]) {
        let bs = self.block_size;
        let mut run_start: Option<usize> = None;
        let mut prev = parent;
        for (j, (&b, &k)) in blocks.iter().zip(keys).enumerate() {
            let i = b as usize;
            let fresh = self.key[i].is_none() && !self.map.contains_key(&k);
            if fresh {
                self.key[i] = Some(k);
                self.parent[i] = prev;
                self.map.insert(k, b);
                if !self.tokens.is_empty() {
                    self.tokens[i * bs..(i + 1) * bs]
                        .copy_from_slice(&tokens[j * bs..(j + 1) * bs]);
                }
                run_start.get_or_insert(j);
            } else if let Some(s) = run_start.take() {
                self.flush_run(keys, tokens, s, j, parent);
            }
            prev = Some(k);
        }
        if let Some(s) = run_start {
            self.flush_run(keys, tokens, s, blocks.len().min(keys.len()), parent);
        }
    }

    fn flush_run(&mut self, keys: &[u64], tokens: &[u32], s: usize, e: usize, parent: Option<u64>) {
        let p = if s == 0 { parent } else { Some(keys[s - 1]) };
        let bs = self.block_size;
        self.pending.push(stored_event(
            &keys[s..e],
            p,
            &tokens[s * bs..e * bs],
            bs,
            GPU,
        ));
    }

    /// Loads `keys` (a run held by the CPU tier) into freshly allocated GPU
    /// blocks appended to `out`. Returns false if GPU blocks ran out.
    ///
    /// The blocks are read (and refreshed) before the GPU blocks are
    /// allocated: allocating evicts GPU blocks into the CPU tier, which may
    /// drop its oldest entries, and the blocks being loaded must not be
    /// among them (vLLM holds blocks it is loading).
    pub fn load_from_cpu(&mut self, keys: &[u64], parent: Option<u64>, out: &mut Vec<u32>) -> bool {
        let start = out.len();
        if self.free.len() < keys.len() {
            return false;
        }
        let bs = self.block_size;
        let mut toks = Vec::with_capacity(keys.len() * bs);
        if let Some(cpu) = &mut self.cpu {
            for k in keys {
                match cpu.read(*k) {
                    Some(t) => toks.extend_from_slice(t),
                    None => toks.extend(std::iter::repeat(0).take(bs)),
                }
            }
        }
        if !self.allocate(keys.len(), out) {
            return false;
        }
        let blocks = out[start..].to_vec();
        self.commit(&blocks, keys, parent, &toks);
        self.cpu_loaded_blocks += keys.len() as u64;
        true
    }

    /// Drops one reference to each block; blocks reaching zero join the free
    /// queue, the last block of a request first so that it is evicted first.
    pub fn release(&mut self, blocks: &[u32]) {
        for &b in blocks.iter().rev() {
            let r = &mut self.ref_cnt[b as usize];
            *r = r.saturating_sub(1);
            if *r == 0 {
                self.free.push_back(b);
            }
        }
    }

    /// Events since the last call, in occurrence order.
    pub fn take_events(&mut self) -> Vec<KvEvent> {
        std::mem::take(&mut self.pending)
    }

    /// True when events are waiting to be published.
    pub fn has_events(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Keys cached on the GPU, unordered.
    pub fn gpu_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.map.keys().copied()
    }

    /// Keys held by the CPU tier, unordered.
    pub fn cpu_keys(&self) -> Vec<u64> {
        self.cpu
            .as_ref()
            .map(|c| c.keys().collect())
            .unwrap_or_default()
    }
}

fn stored_event(
    keys: &[u64],
    parent: Option<u64>,
    toks: &[u32],
    bs: usize,
    medium: &str,
) -> KvEvent {
    KvEvent::BlockStored(BlockStored {
        block_hashes: keys
            .iter()
            .map(|k| HashValue::Int(i128::from(*k)))
            .collect(),
        parent_block_hash: parent.map(|p| HashValue::Int(i128::from(p))),
        token_ids: toks.iter().map(|t| u64::from(*t)).collect(),
        block_size: bs as i64,
        medium: Some(medium.to_string()),
        ..BlockStored::default()
    })
}

fn push_removed(pending: &mut Vec<KvEvent>, key: u64, medium: &str) {
    if let Some(KvEvent::BlockRemoved(r)) = pending.last_mut() {
        if r.medium.as_deref() == Some(medium) {
            r.block_hashes.push(HashValue::Int(i128::from(key)));
            return;
        }
    }
    pending.push(KvEvent::BlockRemoved(BlockRemoved {
        block_hashes: vec![HashValue::Int(i128::from(key))],
        medium: Some(medium.to_string()),
        ..BlockRemoved::default()
    }));
}

impl KvCache {
    /// Checks that reference counts equal `held` (references per block from
    /// running sequences) and that every cached key points at its block.
    pub fn check_refs(&self, held: &[u32]) -> Result<(), String> {
        for (b, (&r, &h)) in self.ref_cnt.iter().zip(held).enumerate() {
            if r != h {
                return Err(format!("block {b}: ref count {r}, held {h} times"));
            }
            if (r == 0) != self.free.contains(b as u32) {
                return Err(format!(
                    "block {b}: ref count {r} but free-queue membership disagrees"
                ));
            }
        }
        for (k, &b) in &self.map {
            if self.key[b as usize] != Some(*k) {
                return Err(format!(
                    "key {k:#x} maps to block {b}, which holds another key"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens_stored(events: &[KvEvent], key: u64) -> Option<Vec<u64>> {
        events.iter().rev().find_map(|e| match e {
            KvEvent::BlockStored(b)
                if b.medium.as_deref() == Some(GPU)
                    && b.block_hashes.first() == Some(&HashValue::Int(i128::from(key))) =>
            {
                Some(b.token_ids.clone())
            }
            _ => None,
        })
    }

    /// Loading from a full CPU tier whose oldest entries are the blocks
    /// being loaded: the GPU blocks get the blocks' own tokens, although
    /// the evictions the allocation makes push them out of the CPU tier.
    #[test]
    fn a_load_reads_its_blocks_before_evicting_into_the_cpu_tier() {
        let mut kv = KvCache::new(2, 2, 2);
        let mut held = Vec::new();
        assert!(kv.allocate(2, &mut held));
        kv.commit(&held, &[1, 2], None, &[10, 11, 20, 21]);
        kv.release(&held);
        // Two other blocks: keys 1 and 2 go to the CPU tier.
        let mut other = Vec::new();
        assert!(kv.allocate(2, &mut other));
        kv.commit(&other, &[3, 4], None, &[30, 31, 40, 41]);
        kv.release(&other);
        assert_eq!(kv.cpu_prefix(&[1, 2], 0, 2), 2);
        kv.take_events();
        // Loading 1 and 2 evicts 3 and 4 into the full tier.
        let mut loaded = Vec::new();
        assert!(kv.load_from_cpu(&[1, 2], None, &mut loaded));
        let events = kv.take_events();
        assert_eq!(tokens_stored(&events, 1), Some(vec![10, 11, 20, 21]));
        assert_eq!(kv.gpu_prefix(&[1, 2], 2).0, 2);
        // Not enough free GPU blocks: nothing is read, allocated or loaded.
        let mut none = Vec::new();
        assert!(!kv.load_from_cpu(&[3, 4], None, &mut none));
        assert!(none.is_empty());
    }
}
