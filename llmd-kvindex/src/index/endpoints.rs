//! Endpoint slots: names ↔ dense ids, per-endpoint writer state, and the
//! operations that drop an endpoint's entries.

use super::lru::{FingerprintLru, Lru};
use super::{IndexError, KvIndex};
use parking_lot::MutexGuard;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// A dense endpoint slot inside one index (0 ..< `max_endpoints`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u16);

/// Names ↔ slots; behind a mutex, never on the lookup path.
#[derive(Default)]
pub(crate) struct Registry {
    by_name: HashMap<String, u16>,
    names: Vec<Option<String>>,
    /// Freed slots, reused oldest first.
    free: std::collections::VecDeque<u16>,
}

/// Router-key mode: what an engine key maps to for one endpoint.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mapped {
    /// The router block holding the engine block's last token.
    pub router_key: u64,
    /// Table tiers (bit per tier) in which the endpoint holds the block; 0
    /// for an engine block waiting in a tail (its router block is not
    /// complete, `tails.rs`): it holds nothing of its own and is mapped for
    /// its derived mappings.
    pub media: u8,
    /// The engine block ends where `router_key`'s block ends, so a child
    /// event's tokens continue that router chain. A block ending inside a
    /// router block (router blocks larger than the engine's) parents only
    /// as the last block of a tail; otherwise its children are not placed
    /// (counted), never chained at the wrong offset.
    pub aligned: bool,
    /// Router blocks before `router_key` that also hold tokens of this
    /// engine block (router blocks smaller than the engine's, or straddling
    /// two engine blocks): each is mapped under [`covered_key`]`(engine, n)`
    /// for `n` in `1..=covered`, nearest first, so that a removal clears
    /// every router block the engine block was part of.
    pub covered: u16,
}

/// Map key of the `n`-th router block before an engine block's last one
/// (see [`Mapped::covered`]): derived from the engine key, never equal to a
/// real one but by a 2⁻⁶⁴ chance.
pub(crate) fn covered_key(engine: u64, n: u16) -> u64 {
    super::keys::mix64(engine ^ u64::from(n).wrapping_mul(0xd6e8_feb8_6659_fd93))
}

/// Writer-side state of one endpoint slot. Every write for an endpoint holds
/// its mutex, so endpoint removal cannot race with that endpoint's writes.
pub(crate) struct EndpointState {
    pub active: bool,
    pub engine_map: Lru<u64, Mapped>,
    /// Approximate mode: fingerprints routed here, least recent first out.
    pub routed: FingerprintLru<()>,
    /// Approximate mode: `routed`'s bound was fixed since registration
    /// ([`KvIndex::record_routing_sized`]).
    pub routed_sized: bool,
    /// Router-key mode buffers (engine keys, router keys, token bytes).
    pub scratch: (Vec<u64>, Vec<u64>, Vec<u8>),
    /// Chains followed for ingest-time checkpoints, by the fingerprint of
    /// their last block (`chains.rs`).
    pub chains: FingerprintLru<super::chains::Chain>,
    /// Router-key mode: router blocks begun and not completed, by the
    /// engine key ending them (`tails.rs`).
    pub tails: super::tails::Tails,
}

impl EndpointState {
    pub(crate) fn new(engine_cap: usize, approx_cap: usize) -> Self {
        EndpointState {
            active: false,
            engine_map: Lru::new(engine_cap),
            routed: FingerprintLru::with_cap(approx_cap),
            routed_sized: false,
            scratch: Default::default(),
            chains: FingerprintLru::with_cap(super::chains::FOLLOWED),
            tails: super::tails::Tails::new(),
        }
    }
}

impl KvIndex {
    /// Registers `name` (idempotent) and returns its slot.
    pub fn register_endpoint(&self, name: &str) -> Result<EndpointId, IndexError> {
        let mut reg = self.registry.lock();
        if let Some(&id) = reg.by_name.get(name) {
            return Ok(EndpointId(id));
        }
        let id = match reg.free.pop_front() {
            Some(id) => id,
            None if reg.names.len() < self.cfg.max_endpoints => {
                reg.names.push(None);
                (reg.names.len() - 1) as u16
            }
            None => {
                return Err(IndexError::EndpointsFull {
                    max: self.cfg.max_endpoints,
                })
            }
        };
        reg.names[id as usize] = Some(name.to_string());
        reg.by_name.insert(name.to_string(), id);
        {
            // A reused slot starts from the configured bound again.
            let mut st = self.endpoints[id as usize].lock();
            st.active = true;
            st.routed_sized = false;
            st.routed
                .set_cap(self.cfg.approx_capacity_per_endpoint, |_, ()| {});
        }
        self.high_water
            .fetch_max(id as usize + 1, Ordering::Release);
        Ok(EndpointId(id))
    }

    /// The slot of a registered endpoint.
    pub fn endpoint_id(&self, name: &str) -> Option<EndpointId> {
        self.registry
            .lock()
            .by_name
            .get(name)
            .map(|&id| EndpointId(id))
    }

    /// The name of a registered slot.
    pub fn endpoint_name(&self, id: EndpointId) -> Option<String> {
        self.registry
            .lock()
            .names
            .get(id.0 as usize)
            .and_then(|n| n.clone())
    }

    /// Removes an endpoint: drops all its entries (a full table scan) and
    /// frees its slot for reuse. Unknown ids are ignored, and so is a
    /// second removal of a slot already being removed by another thread.
    /// A slot id is reused after removal: a caller holding an id from
    /// before may name another endpoint by then
    /// ([`KvIndex::remove_endpoint_named`] cannot).
    pub fn remove_endpoint(&self, id: EndpointId) {
        {
            let mut reg = self.registry.lock();
            // Taking the name marks the slot as being removed: not
            // registered, not yet free, so neither a concurrent removal nor
            // a registration can take it until it is retired.
            match reg.names.get_mut(id.0 as usize).and_then(Option::take) {
                Some(name) => {
                    reg.by_name.remove(&name);
                }
                None => return,
            }
        }
        self.retire(id);
    }

    /// Removes the endpoint registered as `name`, as
    /// [`KvIndex::remove_endpoint`]; the name and its slot are resolved
    /// under one lock. Returns whether it was registered.
    pub fn remove_endpoint_named(&self, name: &str) -> bool {
        let id = {
            let mut reg = self.registry.lock();
            let Some(id) = reg.by_name.remove(name) else {
                return false;
            };
            reg.names[id as usize] = None;
            EndpointId(id)
        };
        self.retire(id);
        true
    }

    /// Drops the entries of a slot taken out of the registry, then frees it.
    fn retire(&self, id: EndpointId) {
        if let Some(mut st) = self.active_state(id) {
            st.active = false;
            self.drop_entries(id, &mut st);
        }
        self.registry.lock().free.push_back(id.0);
    }

    /// Drops everything known about an endpoint (vLLM `AllBlocksCleared`):
    /// all media, its speculative entries and its engine-key map.
    pub fn clear_endpoint(&self, id: EndpointId) {
        if let Some(mut st) = self.active_state(id) {
            self.drop_entries(id, &mut st);
        }
    }

    pub(crate) fn drop_entries(&self, id: EndpointId, st: &mut EndpointState) {
        // Nothing held (the holdings counters are exact): no scan. A batch of
        // many `AllBlocksCleared` events then costs its length, not a table
        // scan per event.
        if self.table.holdings(id.0).iter().any(|&n| n != 0) {
            // Queue items left behind would only clear bits that are gone,
            // but purging keeps the bound on live speculative entries exact.
            self.spec.lock().retain(|&(ep, _)| ep != id.0);
            self.table.clear_endpoint(id.0, 0b1111);
        }
        // Whatever was held, no checkpoint of the slot survives this.
        self.table.bump(id.0 as usize, super::epochs::ANY_BLOCK);
        st.engine_map.clear();
        st.routed.clear();
        st.chains.clear();
        st.tails.clear();
    }

    /// The writer state of `id` if the slot is registered.
    pub(crate) fn active_state(&self, id: EndpointId) -> Option<MutexGuard<'_, EndpointState>> {
        let st = self.endpoints.get(id.0 as usize)?.lock();
        st.active.then_some(st)
    }

    /// Registered endpoints with their names, by slot.
    pub(crate) fn registered(&self) -> Vec<(EndpointId, String)> {
        let reg = self.registry.lock();
        reg.names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.clone().map(|n| (EndpointId(i as u16), n)))
            .collect()
    }
}
