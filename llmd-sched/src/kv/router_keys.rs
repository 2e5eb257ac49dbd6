//! Router-key mode: the router hashes token ids with its own chain, both for
//! prompts and for the token ids carried by `BlockStored` events, and maps each
//! endpoint's engine keys to router keys. Works whatever hash algorithm or seed
//! the engines use.

use std::collections::HashMap;

use ahash::RandomState;
use llmd_kvindex::events::{EventBatch, KvEvent};
use llmd_kvindex::Tier;
use parking_lot::RwLock;
use xxhash_rust::xxh64::xxh64;

use super::store::{BlockStore, Holder, TierWeights};
use super::{ApplyStats, KvBackend};
use crate::error::ScheduleError;
use crate::model::Request;

#[derive(Debug, Default)]
struct State {
    store: BlockStore,
    engine_to_router: HashMap<u64, HashMap<u64, u64, RandomState>, RandomState>,
}

/// An in-memory index in router-key mode.
#[derive(Debug)]
pub struct RouterKeyIndex {
    block_size: u32,
    seed: String,
    weights: TierWeights,
    state: RwLock<State>,
}

impl RouterKeyIndex {
    /// An index for `block_size`-token blocks; `seed` separates deployments.
    pub fn new(block_size: u32, seed: &str, weights: TierWeights) -> Self {
        RouterKeyIndex {
            block_size: block_size.max(1),
            seed: seed.to_string(),
            weights,
            state: RwLock::default(),
        }
    }

    fn root(&self, model: &str, lora: Option<&str>, salt: Option<&str>) -> u64 {
        let mut b = Vec::with_capacity(self.seed.len() + model.len() + 32);
        for part in [
            self.seed.as_str(),
            model,
            lora.unwrap_or(""),
            salt.unwrap_or(""),
        ] {
            b.extend_from_slice(&(part.len() as u64).to_le_bytes());
            b.extend_from_slice(part.as_bytes());
        }
        xxh64(&b, 0)
    }

    fn chain(prev: u64, tokens: impl Iterator<Item = u32>, buf: &mut Vec<u8>) -> u64 {
        buf.clear();
        buf.extend_from_slice(&prev.to_le_bytes());
        for t in tokens {
            buf.extend_from_slice(&t.to_le_bytes());
        }
        xxh64(buf, 0)
    }
}

impl KvBackend for RouterKeyIndex {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn prompt_keys(&self, req: &Request, tokens: &[u32]) -> Result<Vec<u64>, ScheduleError> {
        let bs = self.block_size as usize;
        let lora = req.lora.as_ref().map(|l| l.name.as_str());
        let mut prev = self.root(&req.model, lora, req.cache_salt.as_deref());
        let mut buf = Vec::with_capacity(8 + bs * 4);
        Ok(tokens
            .chunks_exact(bs)
            .map(|c| {
                prev = Self::chain(prev, c.iter().copied(), &mut buf);
                prev
            })
            .collect())
    }

    fn match_prefix(&self, keys: &[u64], now_ns: u64, found: &mut dyn FnMut(u64, u32, f64)) {
        self.state
            .read()
            .store
            .match_prefix(keys, now_ns, &self.weights, found);
    }

    fn apply_batch(&self, uid: u64, model: &str, batch: &EventBatch) -> ApplyStats {
        let mut st = ApplyStats::default();
        let bs = self.block_size as usize;
        let mut buf = Vec::with_capacity(8 + bs * 4);
        let mut guard = self.state.write();
        let s = &mut *guard;
        for ev in &batch.events {
            match ev {
                KvEvent::BlockStored(b) => {
                    let n = b.block_hashes.len();
                    if b.block_size as usize != bs || b.token_ids.len() < n * bs {
                        st.skipped += n as u32;
                        continue;
                    }
                    let Some(tier) = Tier::from_medium(b.medium.as_deref()) else {
                        st.skipped += n as u32;
                        continue;
                    };
                    let map = s.engine_to_router.entry(uid).or_default();
                    let mut prev = match &b.parent_block_hash {
                        None => self.root(model, b.lora_name.as_deref(), None),
                        Some(p) => match map.get(&p.key().0) {
                            Some(&r) => r,
                            None => {
                                st.skipped += n as u32;
                                continue;
                            }
                        },
                    };
                    let mut keys = Vec::with_capacity(n);
                    for (i, h) in b.block_hashes.iter().enumerate() {
                        let toks = b.token_ids[i * bs..(i + 1) * bs].iter().map(|&t| t as u32);
                        prev = Self::chain(prev, toks, &mut buf);
                        map.insert(h.key().0, prev);
                        keys.push(prev);
                    }
                    for k in keys {
                        s.store.add(
                            k,
                            Holder {
                                uid,
                                tier: tier as u8,
                                expires: 0,
                            },
                        );
                        st.stored += 1;
                    }
                }
                KvEvent::BlockRemoved(b) => {
                    let tier = Tier::from_medium(b.medium.as_deref()).map(|t| t as u8);
                    for h in &b.block_hashes {
                        let router = s
                            .engine_to_router
                            .get_mut(&uid)
                            .and_then(|m| m.remove(&h.key().0));
                        match router {
                            Some(r) if s.store.remove(r, uid, tier) => st.removed += 1,
                            _ => st.skipped += 1,
                        }
                    }
                }
                KvEvent::AllBlocksCleared => {
                    s.engine_to_router.remove(&uid);
                    s.store.remove_endpoint(uid);
                    st.cleared += 1;
                }
            }
        }
        st
    }

    fn insert_speculative(&self, uid: u64, keys: &[u64], expires_ns: u64) {
        self.state.write().store.speculative(uid, keys, expires_ns);
    }

    fn remove_endpoint(&self, uid: u64) {
        let mut s = self.state.write();
        s.engine_to_router.remove(&uid);
        s.store.remove_endpoint(uid);
    }

    fn tick(&self, now_ns: u64) {
        self.state.write().store.expire(now_ns);
    }

    fn len(&self) -> usize {
        self.state.read().store.blocks.len()
    }
}
