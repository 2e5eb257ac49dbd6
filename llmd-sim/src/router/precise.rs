//! A prefix index rebuilt from the engines' KV events (llm-d's precise
//! producer): block key → which workers hold it, per tier.

use ahash::AHashMap;
use llmd_kvindex::events::{EventBatch, KvEvent};
use llmd_kvindex::Tier;

/// Engine-truth prefix index for up to 64 workers.
#[derive(Debug, Default)]
pub struct PreciseIndex {
    gpu: AHashMap<u64, u64>,
    cpu: AHashMap<u64, u64>,
    block_size: usize,
}

/// llm-d's default weight of a block held only in host memory.
const CPU_WEIGHT: f64 = 0.8;

impl PreciseIndex {
    /// An empty index for engines with `block_size`-token blocks.
    pub fn new(block_size: usize) -> Self {
        PreciseIndex {
            block_size,
            ..Default::default()
        }
    }

    /// Engine block size.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Applies one decoded batch from `worker`.
    pub fn apply(&mut self, worker: usize, batch: &EventBatch) {
        let bit = 1u64 << (worker % 64);
        for ev in &batch.events {
            match ev {
                KvEvent::BlockStored(s) => {
                    let map = self.tier_map(s.medium.as_deref());
                    for h in &s.block_hashes {
                        *map.entry(h.key().0).or_default() |= bit;
                    }
                }
                KvEvent::BlockRemoved(r) => {
                    let map = self.tier_map(r.medium.as_deref());
                    for h in &r.block_hashes {
                        let k = h.key().0;
                        if let Some(m) = map.get_mut(&k) {
                            *m &= !bit;
                            if *m == 0 {
                                map.remove(&k);
                            }
                        }
                    }
                }
                KvEvent::AllBlocksCleared => {
                    for map in [&mut self.gpu, &mut self.cpu] {
                        map.retain(|_, m| {
                            *m &= !bit;
                            *m != 0
                        });
                    }
                }
            }
        }
    }

    fn tier_map(&mut self, medium: Option<&str>) -> &mut AHashMap<u64, u64> {
        match Tier::from_medium(medium) {
            Some(Tier::Cpu) | Some(Tier::Storage) => &mut self.cpu,
            _ => &mut self.gpu,
        }
    }

    /// Workers holding `key` on the GPU, as a bitmask.
    pub fn gpu_holders(&self, key: u64) -> u64 {
        self.gpu.get(&key).copied().unwrap_or(0)
    }

    /// Workers holding `key` in host memory, as a bitmask.
    pub fn cpu_holders(&self, key: u64) -> u64 {
        self.cpu.get(&key).copied().unwrap_or(0)
    }

    /// Weighted longest consecutive prefix of `keys` per worker (GPU 1.0,
    /// CPU 0.8), written into `out[worker]`.
    pub fn longest_prefix(&self, keys: &[u64], out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = 0.0);
        let mut alive: u64 = if out.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << out.len()) - 1
        };
        for k in keys {
            let g = self.gpu_holders(*k) & alive;
            let c = self.cpu_holders(*k) & alive & !g;
            alive = g | c;
            if alive == 0 {
                break;
            }
            let mut m = alive;
            while m != 0 {
                let w = m.trailing_zeros() as usize;
                out[w] += if g >> w & 1 == 1 { 1.0 } else { CPU_WEIGHT };
                m &= m - 1;
            }
        }
    }

    /// Every (worker, tier) pair's key set, for checks.
    pub fn keys_of(&self, worker: usize, tier: Tier) -> Vec<u64> {
        let bit = 1u64 << (worker % 64);
        let map = if tier == Tier::Gpu {
            &self.gpu
        } else {
            &self.cpu
        };
        let mut v: Vec<u64> = map
            .iter()
            .filter(|(_, m)| *m & bit != 0)
            .map(|(k, _)| *k)
            .collect();
        v.sort_unstable();
        v
    }
}
