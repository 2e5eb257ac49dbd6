//! An exact mirror of the workers' caches rebuilt from their KV events only:
//! block key → which workers hold it, per tier. The run checks it against
//! every worker's cache at the end (routing uses `llmd_sched` instead).

use ahash::AHashMap;
use llmd_kvindex::events::{EventBatch, KvEvent};
use llmd_kvindex::Tier;

/// Event-fed mirror of up to 64 workers' caches.
#[derive(Debug, Default)]
pub struct PreciseIndex {
    gpu: AHashMap<u64, u64>,
    cpu: AHashMap<u64, u64>,
    block_size: usize,
}

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
