//! Speculative entries (inserted when a request is routed, confirmed by a
//! later `BlockStored`, expired after a TTL) and approximate mode (entries
//! from routing decisions only, bounded per endpoint).

use super::depth::class_of;
use super::endpoints::EndpointId;
use super::keys::{fingerprint, model_seed, SPECULATIVE};
use super::{KeyMode, KvIndex};
use crate::types::{BlockKey, Tier};
use std::sync::atomic::Ordering;

/// Expired entries handled per write call, so writes stay O(1) amortised.
const EXPIRE_PER_WRITE: usize = 64;

impl KvIndex {
    /// Marks `keys` as (soon) held by `ep`, e.g. right after routing a
    /// request there. They match with the speculative weight until a
    /// `BlockStored` confirms them or `speculative_ttl_ns` passes.
    pub fn insert_speculative(&self, ep: EndpointId, model: &str, keys: &[BlockKey], now_ns: u64) {
        self.insert_speculative_from(ep, model, keys, 0, now_ns)
    }

    /// [`KvIndex::insert_speculative`] of blocks `first_block..` of a
    /// prompt (those before it are held already): each block's place in
    /// the prompt sets its depth class, so eviction takes the deep ones
    /// first (`depth.rs`).
    pub fn insert_speculative_from(
        &self,
        ep: EndpointId,
        model: &str,
        keys: &[BlockKey],
        first_block: usize,
        now_ns: u64,
    ) {
        let Some(_st) = self.active_state(ep) else {
            return;
        };
        let seed = model_seed(model);
        let deadline = now_ns.saturating_add(self.cfg.speculative_ttl_ns);
        let mut spec = self.spec.lock();
        self.expire_locked(&mut spec, now_ns, EXPIRE_PER_WRITE);
        // A prompt routed here again refreshes its chain in the queue by
        // following it (`Lru::run`).
        let mut spec = spec.run();
        for (i, k) in keys.iter().enumerate() {
            let fp = fingerprint(seed, k.0);
            let depth = first_block.saturating_add(i);
            self.table.set(fp, SPECULATIVE, ep.0, class_of(depth));
            if let Some(((old_ep, old_fp), _)) = spec.insert((ep.0, fp), deadline) {
                // Over the bound: the oldest expires early (counted when
                // it was still there, not evicted or confirmed already).
                if self.table.clear(old_fp, SPECULATIVE, old_ep) {
                    self.counters.spec_expired.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Expires speculative entries whose deadline is at or before `now_ns`.
    pub fn tick(&self, now_ns: u64) {
        let mut spec = self.spec.lock();
        self.expire_locked(&mut spec, now_ns, usize::MAX);
    }

    fn expire_locked(&self, spec: &mut super::SpecMap, now_ns: u64, limit: usize) {
        for _ in 0..limit {
            match spec.pop_oldest_if(|&deadline| deadline <= now_ns) {
                Some(((ep, fp), _)) => {
                    // Counted when it was still there (not evicted by CLOCK
                    // or confirmed meanwhile).
                    if self.table.clear(fp, SPECULATIVE, ep) {
                        self.counters.spec_expired.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => break,
            }
        }
    }

    /// A real entry for (ep, fp) arrived: the speculative one is confirmed.
    /// Called with the endpoint's writer lock held.
    pub(crate) fn confirm_speculative(&self, ep: u16, fp: u64) {
        if self.table.clear(fp, SPECULATIVE, ep) {
            self.spec.lock().remove(&(ep, fp));
            self.counters.spec_confirmed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records that a request with prompt `keys` was routed to `ep`.
    ///
    /// * Approximate mode: the blocks count as held on GPU, up to
    ///   `approx_capacity_per_endpoint` per endpoint (least recently routed
    ///   dropped first) — the only source of entries in that mode.
    /// * Engine-parity and router-key modes, which learn what is held from
    ///   events: the blocks become speculative entries
    ///   ([`KvIndex::insert_speculative`]), held with the speculative weight
    ///   until an event confirms them or `speculative_ttl_ns` passes.
    pub fn record_routing(&self, ep: EndpointId, model: &str, keys: &[BlockKey], now_ns: u64) {
        self.record_routing_with(ep, model, keys, now_ns, None)
    }

    /// [`KvIndex::record_routing`], where in approximate mode the first call
    /// since the endpoint's registration also fixes how many blocks the
    /// endpoint keeps: `first_capacity` (at least 1) instead of
    /// `approx_capacity_per_endpoint`. Later calls leave the bound as it is.
    /// (llm-d's `autoTune` sizes an endpoint's LRU once, when the endpoint is
    /// first routed to, from the cache size it reports then.)
    pub fn record_routing_sized(
        &self,
        ep: EndpointId,
        model: &str,
        keys: &[BlockKey],
        now_ns: u64,
        first_capacity: usize,
    ) {
        self.record_routing_with(ep, model, keys, now_ns, Some(first_capacity))
    }

    fn record_routing_with(
        &self,
        ep: EndpointId,
        model: &str,
        keys: &[BlockKey],
        now_ns: u64,
        first_capacity: Option<usize>,
    ) {
        if !matches!(self.cfg.key_mode, KeyMode::Approximate { .. }) {
            return self.insert_speculative(ep, model, keys, now_ns);
        }
        let Some(mut st) = self.active_state(ep) else {
            return;
        };
        if let (Some(cap), false) = (first_capacity, st.routed_sized) {
            st.routed_sized = true;
            st.routed.set_cap(cap, |old, ()| {
                self.table.clear(old, Tier::Gpu as usize, ep.0);
            });
        }
        {
            let mut spec = self.spec.lock();
            self.expire_locked(&mut spec, now_ns, EXPIRE_PER_WRITE);
        }
        let seed = model_seed(model);
        // The keys start at block 0: checkpoint them as a new chain.
        let mut chain = self.chain_for(ep.0, &st.chains, seed, None);
        let alone = self.table.holds_only(ep.0, Tier::Gpu as usize);
        // A prefix routed here before is refreshed by following its chain in
        // the LRU rather than looking each block up.
        let mut routed = st.routed.run();
        for k in keys {
            let fp = fingerprint(seed, k.0);
            // A block routed here before is usually still held as it was:
            // only its recency changes.
            let class = chain.class();
            let placed = self
                .table
                .refresh_held(fp, Tier::Gpu as usize, ep.0, class, alone)
                .unwrap_or_else(|| self.table.set(fp, Tier::Gpu as usize, ep.0, class));
            self.chain_push(&mut chain, ep.0, k.0, placed.rank);
            if let Some((old, ())) = routed.insert(fp, ()) {
                self.table.clear(old, Tier::Gpu as usize, ep.0);
            }
        }
    }
}
