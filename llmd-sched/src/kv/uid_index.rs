//! A [`KvIndex`] addressed by scheduler endpoint uids: each uid gets an index
//! slot when its endpoint is added ([`UidKvIndex::add_endpoint`]) and gives it
//! back when the endpoint is removed. Writes for a uid that holds no slot are
//! dropped, never registered on the fly, so a write racing with a removal
//! cannot leave a slot behind for an endpoint that is gone.

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

/// Finds `uid`'s match in `found` (sorted by uid, as
/// [`UidKvIndex::matches`] leaves it), resuming at `*cursor`. Candidates
/// come mostly in ascending uid order (endpoints are numbered as they are
/// added), so each costs a comparison or two instead of a binary search;
/// any order gives the same answers.
pub fn seek_uid<'a>(found: &'a [UidMatch], uid: u64, cursor: &mut usize) -> Option<&'a UidMatch> {
    // Behind the cursor: search from the start.
    let lo = match cursor.checked_sub(1).and_then(|p| found.get(p)) {
        Some(m) if m.uid >= uid => 0,
        _ => (*cursor).min(found.len()),
    };
    let j = match found.get(lo) {
        Some(m) if m.uid >= uid => lo,
        _ => lo + found[lo..].partition_point(|m| m.uid < uid),
    };
    match found.get(j) {
        Some(m) if m.uid == uid => {
            *cursor = j + 1;
            Some(m)
        }
        _ => {
            *cursor = j;
            None
        }
    }
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

    /// Gives `uid` an index slot (idempotent). Every write for `uid` needs
    /// one; an endpoint past the index's `max_endpoints` is refused here, at
    /// registration, never silently at ingest.
    pub fn add_endpoint(&self, uid: u64) -> Result<(), IndexError> {
        let mut s = self.slots.write();
        if s.by_uid.contains_key(&uid) {
            return Ok(());
        }
        let id = self.index.register_endpoint(&uid.to_string())?;
        s.by_uid.insert(uid, id);
        let i = id.0 as usize;
        if s.uid_of.len() <= i {
            s.uid_of.resize(i + 1, 0);
        }
        s.uid_of[i] = uid;
        Ok(())
    }

    /// Runs `f` with the slot of a registered `uid`, holding the uid map's
    /// read lock throughout: a removal (which takes the write lock before it
    /// frees the slot) cannot interleave, so a write for an endpoint that is
    /// being removed either lands before the removal's scan or not at all,
    /// and never under a slot that was handed to another endpoint since.
    fn with_slot<R>(&self, uid: u64, f: impl FnOnce(EndpointId) -> R) -> Option<R> {
        let s = self.slots.read();
        let id = *s.by_uid.get(&uid)?;
        Some(f(id))
    }

    /// Registered endpoints (each holds one index slot).
    pub fn endpoint_count(&self) -> usize {
        self.slots.read().by_uid.len()
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
    /// Returns the block positions the lookup probed in the index
    /// ([`llmd_kvindex::index::PrefixMatches::probed_blocks`]).
    pub fn matches(&self, model: &str, keys: &[BlockKey], out: &mut Vec<UidMatch>) -> u32 {
        out.clear();
        if keys.is_empty() {
            return 0;
        }
        let probed = MATCHES.with(|m| {
            let mut m = m.borrow_mut();
            self.index.match_prefix(model, keys, &mut m);
            if m.is_empty() {
                return m.probed_blocks();
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
            m.probed_blocks()
        });
        out.sort_unstable_by_key(|m| m.uid);
        probed
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

    /// Marks `keys`, blocks `first_block..` of a prompt, as soon held by
    /// `uid` (speculative entries, expiring after the index's TTL unless an
    /// event confirms them; [`KvIndex::insert_speculative_from`]).
    /// Unregistered uids (an endpoint removed meanwhile) are ignored.
    pub fn insert_speculative(
        &self,
        uid: u64,
        model: &str,
        keys: &[u64],
        first_block: usize,
        now_ns: u64,
    ) {
        self.with_slot(uid, |id| {
            Self::with_keys(keys, |k| {
                self.index
                    .insert_speculative_from(id, model, k, first_block, now_ns)
            })
        });
    }

    /// Approximate mode: records that a request with `keys` was routed to `uid`.
    /// Unregistered uids (an endpoint removed meanwhile) are ignored.
    pub fn record_routing(&self, uid: u64, model: &str, keys: &[u64], now_ns: u64) {
        self.with_slot(uid, |id| {
            Self::with_keys(keys, |k| self.index.record_routing(id, model, k, now_ns))
        });
    }

    /// [`KvIndex::record_routing_sized`] by uid: the first call since the
    /// endpoint's registration fixes how many blocks it keeps.
    pub fn record_routing_sized(
        &self,
        uid: u64,
        model: &str,
        keys: &[u64],
        now_ns: u64,
        first_capacity: usize,
    ) {
        self.with_slot(uid, |id| {
            Self::with_keys(keys, |k| {
                self.index
                    .record_routing_sized(id, model, k, now_ns, first_capacity)
            })
        });
    }
}

impl KvBackend for UidKvIndex {
    fn apply_batch(&self, uid: u64, model: &str, batch: &EventBatch) -> ApplyStats {
        let Some(r) = self.with_slot(uid, |id| self.index.apply_batch(id, model, batch)) else {
            // The endpoint was removed while its batch was on the way.
            let n = batch.events.len() as u32;
            return ApplyStats {
                skipped: n,
                skipped_stale: n,
                ..Default::default()
            };
        };
        ApplyStats {
            stored: r.stored,
            stored_by_tier: r.stored_by_tier,
            removed: r.removed,
            removed_by_tier: r.removed_by_tier,
            cleared: r.cleared,
            skipped: r.unplaceable + r.unknown_media + r.ignored,
            skipped_unknown_parent: r.unplaceable,
            skipped_unknown_medium: r.unknown_media,
            // A slot found inactive: its endpoint is being removed.
            skipped_stale: r.ignored,
            parity_mismatches: r.parity_mismatches,
            superseded: r.superseded,
            moves: r.moves,
        }
    }

    fn tick(&self, now_ns: u64) {
        self.index.tick(now_ns);
    }

    fn index(&self) -> &KvIndex {
        &self.index
    }
}

#[cfg(test)]
mod tests {
    use super::{seek_uid, UidMatch};

    /// The cursor walk answers as a binary search does, whatever order the
    /// uids are asked in.
    #[test]
    fn seek_matches_a_binary_search_in_any_order() {
        let found: Vec<UidMatch> = [2u64, 3, 5, 8, 13, 21]
            .iter()
            .map(|&uid| UidMatch {
                uid,
                consecutive_blocks: uid as u32,
                weighted_score: 0.0,
            })
            .collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let orders: Vec<Vec<u64>> = vec![
            (0..25).collect(),
            (0..25).rev().collect(),
            (0..200)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state % 25
                })
                .collect(),
            vec![],
        ];
        for order in orders {
            let mut cursor = 0;
            for uid in order {
                let want = found
                    .binary_search_by_key(&uid, |m| m.uid)
                    .ok()
                    .map(|j| &found[j]);
                assert_eq!(seek_uid(&found, uid, &mut cursor), want, "uid {uid}");
                assert!(cursor <= found.len());
            }
        }
        assert_eq!(seek_uid(&[], 4, &mut 0), None);
    }
}
