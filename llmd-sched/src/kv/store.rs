//! The block → holders map shared by both key modes, with tier weights and
//! speculative entries.

use std::collections::HashMap;

use ahash::RandomState;

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
        TierWeights {
            gpu: 1.0,
            cpu: 0.8,
            storage: 0.8,
            speculative: 1.0,
        }
    }
}

/// Tier code of speculative entries.
pub(crate) const SPECULATIVE: u8 = 3;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Holder {
    pub uid: u64,
    pub tier: u8,
    /// 0 = confirmed by the engine; otherwise the expiry of a speculative entry.
    pub expires: u64,
}

/// Block key → endpoints holding it.
#[derive(Debug, Default)]
pub(crate) struct BlockStore {
    pub blocks: HashMap<u64, Vec<Holder>, RandomState>,
}

impl BlockStore {
    pub fn add(&mut self, key: u64, h: Holder) {
        let hs = self.blocks.entry(key).or_default();
        hs.retain(|x| !(x.uid == h.uid && (x.tier == h.tier || x.tier == SPECULATIVE)));
        hs.push(h);
    }

    pub fn remove(&mut self, key: u64, uid: u64, tier: Option<u8>) -> bool {
        let Some(hs) = self.blocks.get_mut(&key) else {
            return false;
        };
        let before = hs.len();
        hs.retain(|x| !(x.uid == uid && tier.map_or(true, |t| t == x.tier)));
        let removed = hs.len() != before;
        if hs.is_empty() {
            self.blocks.remove(&key);
        }
        removed
    }

    pub fn speculative(&mut self, uid: u64, keys: &[u64], expires_ns: u64) {
        for &k in keys {
            let hs = self.blocks.entry(k).or_default();
            if !hs.iter().any(|h| h.uid == uid && h.expires == 0) {
                hs.retain(|h| !(h.uid == uid && h.tier == SPECULATIVE));
                hs.push(Holder {
                    uid,
                    tier: SPECULATIVE,
                    expires: expires_ns.max(1),
                });
            }
        }
    }

    pub fn remove_endpoint(&mut self, uid: u64) {
        self.blocks.retain(|_, hs| {
            hs.retain(|h| h.uid != uid);
            !hs.is_empty()
        });
    }

    pub fn expire(&mut self, now_ns: u64) {
        self.blocks.retain(|_, hs| {
            hs.retain(|h| h.expires == 0 || h.expires > now_ns);
            !hs.is_empty()
        });
    }

    /// Longest consecutive run from block 0 per endpoint, tier-weighted.
    pub fn match_prefix(
        &self,
        keys: &[u64],
        now_ns: u64,
        w: &TierWeights,
        found: &mut dyn FnMut(u64, u32, f64),
    ) {
        let weight = |tier: u8| match tier {
            0 => w.gpu,
            1 => w.cpu,
            2 => w.storage,
            _ => w.speculative,
        };
        let live = |h: &Holder| h.expires == 0 || h.expires > now_ns;
        // (uid, consecutive, weighted, still matching)
        let mut cur: Vec<(u64, u32, f64, bool)> = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            let Some(hs) = self.blocks.get(key) else {
                break;
            };
            if k == 0 {
                for h in hs.iter().filter(|h| live(h)) {
                    let wt = weight(h.tier);
                    match cur.iter_mut().find(|c| c.0 == h.uid) {
                        Some(c) => c.2 = c.2.max(wt),
                        None => cur.push((h.uid, 1, wt, true)),
                    }
                }
                continue;
            }
            let mut any = false;
            for c in cur.iter_mut().filter(|c| c.3) {
                let best = hs
                    .iter()
                    .filter(|h| h.uid == c.0 && live(h))
                    .map(|h| weight(h.tier))
                    .reduce(f64::max);
                match best {
                    Some(wt) => {
                        c.1 += 1;
                        c.2 += wt;
                        any = true;
                    }
                    None => c.3 = false,
                }
            }
            if !any {
                break;
            }
        }
        for (uid, n, wt, _) in cur {
            found(uid, n, wt);
        }
    }
}
