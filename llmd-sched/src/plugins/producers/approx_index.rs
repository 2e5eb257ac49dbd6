//! The approximate prefix index: per-endpoint LRU of block hashes plus a
//! hash → endpoints map, fed by routing decisions (llm-d's in-memory indexer).

use std::collections::{HashMap, VecDeque};

use ahash::RandomState;
use parking_lot::RwLock;

/// Recency order is a queue of (tick, hash) with lazy deletion: an entry whose
/// tick no longer matches `by_hash` is stale and skipped at eviction.
#[derive(Debug, Default)]
struct EndpointLru {
    by_hash: HashMap<u64, u64, RandomState>,
    order: VecDeque<(u64, u64)>,
}

impl EndpointLru {
    fn compact(&mut self) {
        if self.order.len() > 2 * self.by_hash.len() + 64 {
            let by_hash = &self.by_hash;
            self.order.retain(|(t, h)| by_hash.get(h) == Some(t));
        }
    }
}

#[derive(Debug, Default)]
struct State {
    tick: u64,
    holders: HashMap<u64, Vec<u64>, RandomState>,
    per_endpoint: HashMap<u64, EndpointLru, RandomState>,
}

/// Endpoints are keyed by [`crate::model::EndpointState::uid`].
#[derive(Debug, Default)]
pub struct ApproxIndex {
    state: RwLock<State>,
}

impl ApproxIndex {
    /// Walks the chain: stops at the first hash nobody holds; every holder of
    /// each walked hash gets +1. Calls `add(uid)` once per (hash, holder).
    pub fn lookup(&self, hashes: &[u64], mut add: impl FnMut(u64)) {
        let s = self.state.read();
        for h in hashes {
            match s.holders.get(h) {
                Some(hs) if !hs.is_empty() => hs.iter().for_each(|&u| add(u)),
                _ => break,
            }
        }
    }

    /// Records that `uid` now holds `hashes` (most recent last), evicting its
    /// least recently used hashes beyond `capacity`.
    pub fn insert(&self, uid: u64, hashes: &[u64], capacity: usize) {
        let capacity = capacity.max(1);
        let mut guard = self.state.write();
        let s = &mut *guard;
        let lru = s.per_endpoint.entry(uid).or_default();
        for &h in hashes {
            s.tick += 1;
            if lru.by_hash.insert(h, s.tick).is_none() {
                s.holders.entry(h).or_default().push(uid);
            }
            lru.order.push_back((s.tick, h));
        }
        while lru.by_hash.len() > capacity {
            let Some((t, h)) = lru.order.pop_front() else {
                break;
            };
            if lru.by_hash.get(&h) != Some(&t) {
                continue;
            }
            lru.by_hash.remove(&h);
            if let Some(hs) = s.holders.get_mut(&h) {
                hs.retain(|&u| u != uid);
                if hs.is_empty() {
                    s.holders.remove(&h);
                }
            }
        }
        lru.compact();
    }

    /// Forgets an endpoint.
    pub fn remove_endpoint(&self, uid: u64) {
        let mut guard = self.state.write();
        let s = &mut *guard;
        if let Some(lru) = s.per_endpoint.remove(&uid) {
            for h in lru.by_hash.keys() {
                if let Some(hs) = s.holders.get_mut(h) {
                    hs.retain(|&u| u != uid);
                    if hs.is_empty() {
                        s.holders.remove(h);
                    }
                }
            }
        }
    }

    /// Number of hashes held by an endpoint.
    pub fn endpoint_size(&self, uid: u64) -> usize {
        self.state
            .read()
            .per_endpoint
            .get(&uid)
            .map_or(0, |l| l.by_hash.len())
    }

    /// Distinct hashes indexed.
    pub fn len(&self) -> usize {
        self.state.read().holders.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_oldest_and_lookup_stops_at_first_miss() {
        let ix = ApproxIndex::default();
        ix.insert(1, &[10, 11, 12], 3);
        ix.insert(2, &[10], 8);
        let mut hits = Vec::new();
        ix.lookup(&[10, 11, 99, 12], |u| hits.push(u));
        hits.sort();
        assert_eq!(hits, vec![1, 1, 2]);
        ix.insert(1, &[13], 3); // evicts 10 from endpoint 1
        let mut hits = Vec::new();
        ix.lookup(&[10], |u| hits.push(u));
        assert_eq!(hits, vec![2]);
        assert_eq!(ix.endpoint_size(1), 3);
        ix.remove_endpoint(2);
        let mut n = 0;
        ix.lookup(&[10], |_| n += 1);
        assert_eq!(n, 0);
    }
}
