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

    /// Longest consecutive run from block 0 per endpoint, tier-weighted. Cost is
    /// linear in the holders of the walked keys, not in endpoints × keys.
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
        // uid -> (consecutive blocks, weighted sum, weight counted for the last block)
        let mut cur: HashMap<u64, (u32, f64, f64), RandomState> = HashMap::default();
        for (k, key) in keys.iter().enumerate() {
            let Some(hs) = self.blocks.get(key) else {
                break;
            };
            let k = k as u32;
            let mut extended = 0usize;
            for h in hs.iter().filter(|h| h.expires == 0 || h.expires > now_ns) {
                let wt = weight(h.tier);
                if k == 0 {
                    let e = cur.entry(h.uid).or_insert((0, 0.0, 0.0));
                    if e.0 == 0 {
                        *e = (1, wt, wt);
                        extended += 1;
                    } else if wt > e.2 {
                        e.1 += wt - e.2;
                        e.2 = wt;
                    }
                    continue;
                }
                let Some(e) = cur.get_mut(&h.uid) else {
                    continue;
                };
                if e.0 == k {
                    *e = (k + 1, e.1 + wt, wt);
                    extended += 1;
                } else if e.0 == k + 1 && wt > e.2 {
                    // The same block held in a better tier too: count the best.
                    e.1 += wt - e.2;
                    e.2 = wt;
                }
            }
            if extended == 0 {
                break;
            }
        }
        for (uid, (n, wt, _)) in cur {
            found(uid, n, wt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(s: &BlockStore, keys: &[u64], now: u64) -> Vec<(u64, u32, f64)> {
        let mut v = Vec::new();
        s.match_prefix(keys, now, &TierWeights::default(), &mut |u, n, w| {
            v.push((u, n, w))
        });
        v.sort_by_key(|x| x.0);
        v
    }

    #[test]
    fn consecutive_runs_best_tier_and_expiry() {
        let mut s = BlockStore::default();
        let gpu = |uid| Holder {
            uid,
            tier: 0,
            expires: 0,
        };
        let cpu = |uid| Holder {
            uid,
            tier: 1,
            expires: 0,
        };
        for k in [10, 11, 13] {
            s.add(k, gpu(1)); // gap at 12
        }
        for k in [10, 11, 12] {
            s.add(k, cpu(2));
        }
        s.add(11, gpu(2)); // block 11 also on GPU: best tier counts
        s.speculative(3, &[10, 11, 12, 13], 100);
        let m = matches(&s, &[10, 11, 12, 13], 50);
        assert_eq!(m[0], (1, 2, 2.0));
        assert_eq!((m[1].0, m[1].1), (2, 3));
        assert!((m[1].2 - (0.8 + 1.0 + 0.8)).abs() < 1e-12);
        assert_eq!(m[2], (3, 4, 4.0));
        // Speculative entries expire.
        let m = matches(&s, &[10, 11, 12, 13], 100);
        assert_eq!(m.len(), 2);
        // Removing a middle block cuts the run.
        assert!(s.remove(11, 1, None));
        assert_eq!(matches(&s, &[10, 11], 0)[0], (1, 1, 1.0));
    }
}
