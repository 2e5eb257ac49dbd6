//! Router-key mode: the router hashes token ids with its own chain, both for
//! prompts and for the token ids carried by `BlockStored` events.

use std::collections::HashMap;

use ahash::RandomState;
use llmd_kvindex::events::{EventBatch, KvEvent};
use llmd_kvindex::Tier;
use parking_lot::RwLock;
use xxhash_rust::xxh64::xxh64;

use super::{ApplyStats, KvBackend};

/// Weight of a block per tier (llm-d `kvCacheBackendConfigs`; GPU 1.0, CPU 0.8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierWeights {
    /// Device memory.
    pub gpu: f64,
    /// Host memory.
    pub cpu: f64,
    /// Disk or remote storage.
    pub storage: f64,
    /// Speculative (routing-time) entries.
    pub speculative: f64,
}

impl Default for TierWeights {
    fn default() -> Self {
        TierWeights { gpu: 1.0, cpu: 0.8, storage: 0.8, speculative: 1.0 }
    }
}

const SPECULATIVE: u8 = 3;

#[derive(Clone, Copy, Debug)]
struct Holder {
    uid: u64,
    tier: u8,
    /// 0 = confirmed by the engine; otherwise the expiry of a speculative entry.
    expires: u64,
}

#[derive(Debug, Default)]
struct State {
    blocks: HashMap<u64, Vec<Holder>, RandomState>,
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
        RouterKeyIndex { block_size: block_size.max(1), seed: seed.to_string(), weights, state: RwLock::default() }
    }

    fn root(&self, model: &str, lora: Option<&str>, salt: Option<&str>) -> u64 {
        let mut b = Vec::with_capacity(self.seed.len() + model.len() + 16);
        for part in [self.seed.as_str(), model, lora.unwrap_or(""), salt.unwrap_or("")] {
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

    fn weight(&self, tier: u8) -> f64 {
        match tier {
            0 => self.weights.gpu,
            1 => self.weights.cpu,
            2 => self.weights.storage,
            _ => self.weights.speculative,
        }
    }

    fn add_holder(s: &mut State, key: u64, h: Holder) {
        let hs = s.blocks.entry(key).or_default();
        hs.retain(|x| !(x.uid == h.uid && (x.tier == h.tier || x.tier == SPECULATIVE)));
        hs.push(h);
    }

    fn remove_holder(s: &mut State, key: u64, uid: u64, tier: Option<u8>) {
        if let Some(hs) = s.blocks.get_mut(&key) {
            hs.retain(|x| !(x.uid == uid && tier.map_or(true, |t| t == x.tier)));
            if hs.is_empty() {
                s.blocks.remove(&key);
            }
        }
    }
}

impl KvBackend for RouterKeyIndex {
    fn block_size(&self) -> u32 {
        self.block_size
    }

    fn prompt_keys(&self, model: &str, lora: Option<&str>, cache_salt: Option<&str>, tokens: &[u32]) -> Vec<u64> {
        let bs = self.block_size as usize;
        let mut prev = self.root(model, lora, cache_salt);
        let mut buf = Vec::with_capacity(8 + bs * 4);
        tokens
            .chunks_exact(bs)
            .map(|c| {
                prev = Self::chain(prev, c.iter().copied(), &mut buf);
                prev
            })
            .collect()
    }

    fn match_prefix(&self, keys: &[u64], now_ns: u64, found: &mut dyn FnMut(u64, u32, f64)) {
        let s = self.state.read();
        let live = |h: &Holder| h.expires == 0 || h.expires > now_ns;
        // (uid, consecutive, weighted, still matching)
        let mut cur: Vec<(u64, u32, f64, bool)> = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            let Some(hs) = s.blocks.get(key) else { break };
            if k == 0 {
                for h in hs.iter().filter(|h| live(h)) {
                    let w = self.weight(h.tier);
                    match cur.iter_mut().find(|c| c.0 == h.uid) {
                        Some(c) => c.2 = c.2.max(w),
                        None => cur.push((h.uid, 1, w, true)),
                    }
                }
            } else {
                let mut any = false;
                for c in cur.iter_mut().filter(|c| c.3) {
                    let best = hs.iter().filter(|h| h.uid == c.0 && live(h)).map(|h| self.weight(h.tier)).fold(None, |a: Option<f64>, w| Some(a.map_or(w, |a| a.max(w))));
                    match best {
                        Some(w) => {
                            c.1 += 1;
                            c.2 += w;
                            any = true;
                        }
                        None => c.3 = false,
                    }
                }
                if !any {
                    break;
                }
            }
        }
        for (uid, n, w, _) in cur {
            found(uid, n, w);
        }
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
                        Self::add_holder(s, k, Holder { uid, tier: tier as u8, expires: 0 });
                        st.stored += 1;
                    }
                }
                KvEvent::BlockRemoved(b) => {
                    let tier = Tier::from_medium(b.medium.as_deref()).map(|t| t as u8);
                    for h in &b.block_hashes {
                        let router = s.engine_to_router.get_mut(&uid).and_then(|m| m.remove(&h.key().0));
                        match router {
                            Some(r) => {
                                Self::remove_holder(s, r, uid, tier);
                                st.removed += 1;
                            }
                            None => st.skipped += 1,
                        }
                    }
                }
                KvEvent::AllBlocksCleared => {
                    if let Some(m) = s.engine_to_router.remove(&uid) {
                        for r in m.values() {
                            Self::remove_holder(s, *r, uid, None);
                        }
                    }
                    st.cleared += 1;
                }
            }
        }
        st
    }

    fn insert_speculative(&self, uid: u64, keys: &[u64], expires_ns: u64) {
        let mut s = self.state.write();
        for &k in keys {
            let hs = s.blocks.entry(k).or_default();
            if !hs.iter().any(|h| h.uid == uid && h.expires == 0) {
                hs.retain(|h| !(h.uid == uid && h.tier == SPECULATIVE));
                hs.push(Holder { uid, tier: SPECULATIVE, expires: expires_ns.max(1) });
            }
        }
    }

    fn remove_endpoint(&self, uid: u64) {
        let mut s = self.state.write();
        s.engine_to_router.remove(&uid);
        s.blocks.retain(|_, hs| {
            hs.retain(|h| h.uid != uid);
            !hs.is_empty()
        });
    }

    fn tick(&self, now_ns: u64) {
        let mut s = self.state.write();
        s.blocks.retain(|_, hs| {
            hs.retain(|h| h.expires == 0 || h.expires > now_ns);
            !hs.is_empty()
        });
    }

    fn len(&self) -> usize {
        self.state.read().blocks.len()
    }
}
