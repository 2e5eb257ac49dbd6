//! Applying a decoded `EventBatch` of one endpoint.

use super::endpoints::{EndpointId, EndpointState};
use super::keys::{fingerprint, model_seed, SPECULATIVE};
use super::{KeyMode, KvIndex};
use crate::events::{EventBatch, KvEvent};
use crate::types::Tier;
use std::sync::atomic::Ordering;

/// What one [`KvIndex::apply_batch`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// (block, tier) entries newly set for the endpoint.
    pub stored: u32,
    /// `stored` per tier, indexed by `Tier as usize` (GPU, CPU, storage),
    /// counted since the batch's last `AllBlocksCleared` (all of the batch
    /// when it has none), so that a follower of the endpoint's block counts
    /// can clear, then add.
    pub stored_by_tier: [u32; 3],
    /// (block, tier) entries removed.
    pub removed: u32,
    /// `removed` per tier, since the batch's last `AllBlocksCleared`.
    pub removed_by_tier: [u32; 3],
    /// `AllBlocksCleared` events applied.
    pub cleared: u32,
    /// Blocks that could not be placed (router keys: unknown parent or
    /// engine key, a parent ending inside a router block, too few tokens
    /// for a router block; router blocks of an engine block beyond the
    /// 1,024 before its last that its mapping can name; a key repeated in
    /// one removal; at removal or
    /// offload, also each router block of an engine block whose derived
    /// mapping was dropped). Not counted in `stored`.
    pub unplaceable: u32,
    /// Events with a `medium` that is not GPU, CPU or storage (skipped).
    pub unknown_media: u32,
    /// Engine parity: `BlockStored` events re-hashed as a self-check.
    pub parity_checks: u32,
    /// Engine parity: self-checks whose key differed from the event's — the
    /// hasher's seed, algorithm, block size or extra-key schema is wrong.
    pub parity_mismatches: u32,
    /// Events ignored: unregistered endpoint, or approximate mode.
    pub ignored: u32,
    /// In a batch with more than one `AllBlocksCleared`: the events before
    /// the last one, not applied (the clear erases what they would have
    /// done; their blocks are in none of the other counts).
    pub superseded: u32,
    /// Blocks moved between tiers, `moves[from][to]` (`Tier as usize`): a
    /// block newly stored in tier `to` that the endpoint holds in tier
    /// `from`, or removed from `from` earlier in the same batch. GPU to CPU
    /// or storage is an offload, the other way a reload. One move per
    /// stored block (the first tier found, GPU first).
    pub moves: [[u32; 3]; 3],
    /// (fingerprint, tier) removed earlier in this batch, for `moves`
    /// (bounded by [`MAX_TRACKED_REMOVALS`]).
    pub(crate) removed_in_batch: std::collections::HashSet<(u64, u8)>,
    /// Tiers (bit per tier) whose removals are remembered: those the batch
    /// also stores to another tier than. A batch that removes and stores in
    /// one tier only (the common GPU-only stream) remembers nothing.
    pub(crate) track_removals: u8,
}

/// Removals a batch remembers for move detection; past it, a block removed
/// and stored again in another tier within one batch is not counted as a
/// move unless it is still held.
pub(crate) const MAX_TRACKED_REMOVALS: usize = 65_536;

/// The tiers whose removals a batch must remember to see moves: removed
/// from, and the batch stores to some other tier.
fn removals_to_track(events: &[KvEvent]) -> u8 {
    let (mut stored, mut removed) = (0u8, 0u8);
    for ev in events {
        match ev {
            KvEvent::BlockStored(b) => {
                if let Some(t) = Tier::from_medium(b.medium.as_deref()) {
                    stored |= 1 << t as u8;
                }
            }
            KvEvent::BlockRemoved(b) => {
                if let Some(t) = Tier::from_medium(b.medium.as_deref()) {
                    removed |= 1 << t as u8;
                }
            }
            KvEvent::AllBlocksCleared => {}
        }
    }
    (0..3u8)
        .filter(|&t| removed & (1 << t) != 0 && stored & !(1 << t) != 0)
        .fold(0, |m, t| m | (1 << t))
}

impl ApplyReport {
    pub(crate) fn note_removed(&mut self, fp: u64, tier: usize) {
        if self.track_removals & (1 << tier) != 0
            && self.removed_in_batch.len() < MAX_TRACKED_REMOVALS
        {
            self.removed_in_batch.insert((fp, tier as u8));
        }
    }
}

impl KvIndex {
    /// Applies one decoded batch of endpoint `ep`, serving `model`, in order.
    /// Events of one endpoint must be applied in sequence order; different
    /// endpoints may be applied concurrently.
    pub fn apply_batch(&self, ep: EndpointId, model: &str, batch: &EventBatch) -> ApplyReport {
        let mut report = ApplyReport::default();
        let st = match self.cfg.key_mode {
            KeyMode::Approximate { .. } => None,
            _ => self.active_state(ep),
        };
        let Some(mut st) = st else {
            report.ignored = batch.events.len() as u32;
            self.counters
                .ignored
                .fetch_add(report.ignored as u64, Ordering::Relaxed);
            return report;
        };
        let seed = model_seed(model);
        // In a batch of several `AllBlocksCleared`, the last erases whatever
        // the events before it did: they are not applied (each clear of a
        // held slot scans the table, so a batch alternating stores and
        // clears would otherwise cost a scan per pair). A batch with one
        // clear (vLLM's prefix-cache reset) is applied whole, so its report
        // counts what came before the clear too.
        let is_clear = |e: &KvEvent| matches!(e, KvEvent::AllBlocksCleared);
        let from = match (
            batch.events.iter().position(is_clear),
            batch.events.iter().rposition(is_clear),
        ) {
            (Some(first), Some(last)) if last > first => last,
            _ => 0,
        };
        report.superseded = from as u32;
        let events = &batch.events[from..];
        report.track_removals = removals_to_track(events);
        for ev in events {
            self.apply_event(ep, &mut st, model, seed, ev, &mut report);
        }
        let c = &self.counters;
        c.unplaceable
            .fetch_add(report.unplaceable as u64, Ordering::Relaxed);
        c.unknown_media
            .fetch_add(report.unknown_media as u64, Ordering::Relaxed);
        c.parity_checks
            .fetch_add(report.parity_checks as u64, Ordering::Relaxed);
        c.parity_mismatches
            .fetch_add(report.parity_mismatches as u64, Ordering::Relaxed);
        // The batch's removals served move detection only.
        report.removed_in_batch = Default::default();
        report
    }

    fn apply_event(
        &self,
        ep: EndpointId,
        st: &mut EndpointState,
        model: &str,
        seed: u64,
        ev: &KvEvent,
        report: &mut ApplyReport,
    ) {
        match ev {
            KvEvent::BlockStored(b) => {
                let Some(tier) = Tier::from_medium(b.medium.as_deref()) else {
                    report.unknown_media += 1;
                    return;
                };
                match &self.cfg.key_mode {
                    KeyMode::EngineParity(h) => {
                        self.stored_parity(h, (ep.0, st), seed, b, tier as usize, report)
                    }
                    KeyMode::RouterKeys { .. } => {
                        self.stored_router(ep.0, st, model, b, tier as usize, report)
                    }
                    KeyMode::Approximate { .. } => {}
                }
            }
            KvEvent::BlockRemoved(b) => {
                let Some(tier) = Tier::from_medium(b.medium.as_deref()) else {
                    report.unknown_media += 1;
                    return;
                };
                match &self.cfg.key_mode {
                    KeyMode::EngineParity(_) => {
                        let keys = b.block_hashes.iter().map(|h| h.key().0);
                        self.remove_keys(ep.0, seed, keys, tier as usize, report)
                    }
                    KeyMode::RouterKeys { .. } => {
                        self.removed_router(ep.0, st, seed, b, tier as usize, report)
                    }
                    KeyMode::Approximate { .. } => {}
                }
            }
            KvEvent::AllBlocksCleared => {
                self.drop_entries(ep, st);
                report.cleared += 1;
                report.stored_by_tier = [0; 3];
                report.removed_by_tier = [0; 3];
                report.removed_in_batch.clear();
            }
        }
    }

    /// Sets (fp, tier) for `ep`, the block being of depth class `depth`
    /// (`depth.rs`), confirming a speculative entry if present. Returns the
    /// rank of the tier the block counts in (see `Placed`).
    pub(crate) fn store_fp(
        &self,
        ep: u16,
        fp: u64,
        tier: usize,
        depth: u8,
        report: &mut super::apply::ApplyReport,
    ) -> u8 {
        let placed = self.table.set(fp, tier, ep, depth);
        let newly = placed.newly;
        let held = self.table.holdings(ep);
        if newly {
            report.stored += 1;
            report.stored_by_tier[tier] += 1;
            let others = (0..3).filter(|&t| t != tier);
            let recent = !report.removed_in_batch.is_empty();
            if recent || others.clone().any(|t| held[t] > 0) {
                let from = others.into_iter().find(|&t| {
                    (recent && report.removed_in_batch.contains(&(fp, t as u8)))
                        || (held[t] > 0 && self.table.holds(fp, t, ep))
                });
                if let Some(from) = from {
                    report.moves[from][tier] += 1;
                }
            }
        }
        if held[SPECULATIVE] > 0 {
            self.confirm_speculative(ep, fp);
        }
        placed.rank
    }

    /// Engine-key removal: clears each published key for `ep`.
    pub(crate) fn remove_keys(
        &self,
        ep: u16,
        seed: u64,
        keys: impl Iterator<Item = u64>,
        tier: usize,
        report: &mut ApplyReport,
    ) {
        for k in keys {
            let fp = fingerprint(seed, k);
            if self.table.clear(fp, tier, ep) {
                report.removed += 1;
                report.removed_by_tier[tier] += 1;
                report.note_removed(fp, tier);
            }
        }
    }
}
