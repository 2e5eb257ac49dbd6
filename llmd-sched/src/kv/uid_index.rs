//! A [`KvIndex`] addressed by scheduler endpoint uids: each uid gets an index
//! slot the first time it is written for, and gives it back when the endpoint
//! is removed.

use std::cell::RefCell;
use std::collections::HashMap;

use ahash::RandomState;
use llmd_kvindex::events::EventBatch;
use llmd_kvindex::index::{EndpointId, IndexConfig, IndexError, KvIndex, PrefixMatches};
use llmd_kvindex::BlockKey;
use parking_lot::RwLock;

use super::{ApplyStats, KvBackend};

/// uid ↔ slot. Uids start at 1, so 0 marks a free slot.
#[derive(Debug, Default)]
struct Slots {
    by_uid: HashMap<u64, EndpointId, RandomState>,
    uid_of: Vec<u64>,
}

/// One endpoint's prefix match.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UidMatch {
    /// The endpoint ([`crate::model::EndpointState::uid`]).
    pub uid: u64,
    /// Blocks 0 .. `consecutive_blocks` are all held by the endpoint.
    pub consecutive_blocks: u32,
    /// Sum over those blocks of the best tier weight they are held in.
    pub weighted_score: f64,
}

thread_local! {
    /// Lookup buffers, reused so a warm lookup does not allocate.
    static MATCHES: RefCell<PrefixMatches> = RefCell::new(PrefixMatches::new());
    /// Keys handed over as `u64` (as `PrefixInfo` keeps them), as `BlockKey`s.
    static KEYS: RefCell<Vec<BlockKey>> = const { RefCell::new(Vec::new()) };
}

/// The index with its uid → slot map.
#[derive(Debug)]
pub struct UidKvIndex {
    index: KvIndex,
    slots: RwLock<Slots>,
}

impl UidKvIndex {
    /// Builds the index (its whole table is allocated here).
    pub fn new(cfg: IndexConfig) -> Result<Self, IndexError> {
        Ok(UidKvIndex {
            index: KvIndex::new(cfg)?,
            slots: RwLock::default(),
        })
    }

    /// The underlying index.
    pub fn index(&self) -> &KvIndex {
        &self.index
    }

    /// The slot of `uid`, registering it on first use.
    fn slot(&self, uid: u64) -> Result<EndpointId, IndexError> {
        if let Some(&id) = self.slots.read().by_uid.get(&uid) {
            return Ok(id);
        }
        let mut s = self.slots.write();
        if let Some(&id) = s.by_uid.get(&uid) {
            return Ok(id);
        }
        let id = self.index.register_endpoint(&uid.to_string())?;
        s.by_uid.insert(uid, id);
        let i = id.0 as usize;
        if s.uid_of.len() <= i {
            s.uid_of.resize(i + 1, 0);
        }
        s.uid_of[i] = uid;
        Ok(id)
    }

    /// Drops every entry of `uid` and frees its slot.
    pub fn remove_endpoint(&self, uid: u64) {
        let id = {
            let mut s = self.slots.write();
            let Some(id) = s.by_uid.remove(&uid) else {
                return;
            };
            s.uid_of[id.0 as usize] = 0;
            id
        };
        // Outside the map lock: the scan takes milliseconds and lookups only
        // need the map. The slot is not reused before the index frees it.
        self.index.remove_endpoint(id);
    }

    /// The longest consecutive prefix of `keys` each endpoint holds, into
    /// `out` sorted by uid (endpoints matching no block are left out).
    pub fn matches(&self, model: &str, keys: &[BlockKey], out: &mut Vec<UidMatch>) {
        out.clear();
        if keys.is_empty() {
            return;
        }
        MATCHES.with(|m| {
            let mut m = m.borrow_mut();
            self.index.match_prefix(model, keys, &mut m);
            if m.is_empty() {
                return;
            }
            let slots = self.slots.read();
            out.extend(m.iter().filter_map(|x| {
                let uid = *slots.uid_of.get(x.endpoint.0 as usize)?;
                (uid != 0).then_some(UidMatch {
                    uid,
                    consecutive_blocks: x.consecutive_blocks,
                    weighted_score: x.weighted_score,
                })
            }));
        });
        out.sort_unstable_by_key(|m| m.uid);
    }

    /// Runs `f` on `keys` as block keys (a reused buffer, no allocation once warm).
    fn with_keys(keys: &[u64], f: impl FnOnce(&[BlockKey])) {
        KEYS.with(|k| {
            let mut k = k.borrow_mut();
            k.clear();
            k.extend(keys.iter().map(|&x| BlockKey(x)));
            f(&k);
        });
    }

    /// Marks `keys` as soon held by `uid` (speculative entries, expiring
    /// after the index's TTL unless an event confirms them).
    pub fn insert_speculative(&self, uid: u64, model: &str, keys: &[u64], now_ns: u64) {
        if let Ok(id) = self.slot(uid) {
            Self::with_keys(keys, |k| {
                self.index.insert_speculative(id, model, k, now_ns)
            });
        }
    }

    /// Approximate mode: records that a request with `keys` was routed to `uid`.
    pub fn record_routing(&self, uid: u64, model: &str, keys: &[u64], now_ns: u64) {
        if let Ok(id) = self.slot(uid) {
            Self::with_keys(keys, |k| self.index.record_routing(id, model, k, now_ns));
        }
    }
}

impl KvBackend for UidKvIndex {
    fn apply_batch(&self, uid: u64, model: &str, batch: &EventBatch) -> ApplyStats {
        let id = match self.slot(uid) {
            Ok(id) => id,
            Err(_) => {
                return ApplyStats {
                    skipped: batch.events.len() as u32,
                    ..Default::default()
                }
            }
        };
        let r = self.index.apply_batch(id, model, batch);
        ApplyStats {
            stored: r.stored,
            removed: r.removed,
            cleared: r.cleared,
            skipped: r.unplaceable + r.unknown_media + r.ignored,
            parity_mismatches: r.parity_mismatches,
        }
    }

    fn tick(&self, now_ns: u64) {
        self.index.tick(now_ns);
    }

    fn index(&self) -> &KvIndex {
        &self.index
    }
}
