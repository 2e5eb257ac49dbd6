//! Engine-parity mode: prompts are hashed exactly as vLLM hashes them
//! ([`BlockHasher`]), so the keys in KV events are used as published.

use llmd_kvindex::events::{EventBatch, KvEvent};
use llmd_kvindex::hash::{BlockHasher, LoraRef, RequestExtras};
use llmd_kvindex::Tier;
use parking_lot::RwLock;

use super::store::{BlockStore, Holder, TierWeights};
use super::{ApplyStats, KvBackend};
use crate::error::ScheduleError;
use crate::model::Request;

/// An in-memory index keyed by vLLM's own block keys.
#[derive(Debug)]
pub struct EngineParityIndex {
    hasher: BlockHasher,
    weights: TierWeights,
    store: RwLock<BlockStore>,
}

impl EngineParityIndex {
    /// An index hashing prompts with `hasher` (the engines' algorithm, seed, block size).
    pub fn new(hasher: BlockHasher, weights: TierWeights) -> Self {
        EngineParityIndex {
            hasher,
            weights,
            store: RwLock::default(),
        }
    }

    /// The request properties vLLM folds into block hashes.
    pub fn extras(req: &Request) -> RequestExtras {
        RequestExtras {
            lora: req.lora.as_ref().map(|l| LoraRef {
                id: l.id,
                name: Some(l.name.clone()),
                path: l.path.clone(),
            }),
            cache_salt: req.cache_salt.clone(),
            ..Default::default()
        }
    }
}

impl KvBackend for EngineParityIndex {
    fn block_size(&self) -> u32 {
        self.hasher.block_size() as u32
    }

    fn prompt_keys(&self, req: &Request, tokens: &[u32]) -> Result<Vec<u64>, ScheduleError> {
        let keys = self
            .hasher
            .block_keys(tokens, &Self::extras(req))
            .map_err(|e| ScheduleError::Hash(e.to_string()))?;
        Ok(keys.into_iter().map(|k| k.0).collect())
    }

    fn match_prefix(&self, keys: &[u64], now_ns: u64, found: &mut dyn FnMut(u64, u32, f64)) {
        self.store
            .read()
            .match_prefix(keys, now_ns, &self.weights, found);
    }

    fn apply_batch(&self, uid: u64, _model: &str, batch: &EventBatch) -> ApplyStats {
        let mut st = ApplyStats::default();
        let bs = self.hasher.block_size() as i64;
        let mut s = self.store.write();
        for ev in &batch.events {
            match ev {
                KvEvent::BlockStored(b) => {
                    let tier = Tier::from_medium(b.medium.as_deref());
                    match tier {
                        Some(t) if b.block_size == bs => {
                            for h in &b.block_hashes {
                                s.add(
                                    h.key().0,
                                    Holder {
                                        uid,
                                        tier: t as u8,
                                        expires: 0,
                                    },
                                );
                                st.stored += 1;
                            }
                        }
                        _ => st.skipped += b.block_hashes.len() as u32,
                    }
                }
                KvEvent::BlockRemoved(b) => {
                    let tier = Tier::from_medium(b.medium.as_deref()).map(|t| t as u8);
                    for h in &b.block_hashes {
                        if s.remove(h.key().0, uid, tier) {
                            st.removed += 1;
                        } else {
                            st.skipped += 1;
                        }
                    }
                }
                KvEvent::AllBlocksCleared => {
                    s.remove_endpoint(uid);
                    st.cleared += 1;
                }
            }
        }
        st
    }

    fn insert_speculative(&self, uid: u64, keys: &[u64], expires_ns: u64) {
        self.store.write().speculative(uid, keys, expires_ns);
    }

    fn remove_endpoint(&self, uid: u64) {
        self.store.write().remove_endpoint(uid);
    }

    fn tick(&self, now_ns: u64) {
        self.store.write().expire(now_ns);
    }

    fn len(&self) -> usize {
        self.store.read().blocks.len()
    }
}
