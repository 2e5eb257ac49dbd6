//! Counters and the statistics snapshot.

use super::endpoints::EndpointId;
use super::keys::SPECULATIVE;
use super::KvIndex;
use crate::types::Tier;
use std::sync::atomic::{AtomicU64, Ordering};

/// Event-level counters, summed over all `apply_batch` calls.
#[derive(Default)]
pub(crate) struct Counters {
    pub unplaceable: AtomicU64,
    pub unknown_media: AtomicU64,
    pub parity_checks: AtomicU64,
    pub parity_mismatches: AtomicU64,
    pub ignored: AtomicU64,
    pub spec_expired: AtomicU64,
    pub spec_confirmed: AtomicU64,
}

/// Blocks one endpoint holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStats {
    /// The slot.
    pub id: EndpointId,
    /// Its registered name.
    pub name: String,
    /// Blocks held, per tier, indexed by `Tier as usize` (GPU, CPU, storage).
    pub blocks: [u64; 3],
    /// Live speculative blocks.
    pub speculative: u64,
}

impl EndpointStats {
    /// Blocks held in `tier`.
    pub fn blocks_in(&self, tier: Tier) -> u64 {
        self.blocks[tier as usize]
    }
}

/// A snapshot of the index's size and health counters.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexStats {
    /// Occupied table entries (model, block, tier, group of 64 endpoints).
    pub entries: u64,
    /// Maximum entries (`capacity_blocks`); `entries` never exceeds it.
    pub capacity: u64,
    /// (block, endpoint, tier) holdings across all entries.
    pub holdings: u64,
    /// Bytes of the table, its verified-prefix checkpoint store (both fixed
    /// at construction; the store is about 2 B per table entry) and the
    /// epoch logs allocated so far (one per endpoint slot that has lost a
    /// block; at most about 2 B per table entry).
    pub table_bytes: u64,
    /// Entries evicted, at capacity or (see `displacement_failures`) below it.
    pub evictions: u64,
    /// Evictions while the table was below capacity: both candidate buckets
    /// full and no chain of moves to alternate buckets could free a slot.
    pub displacement_failures: u64,
    /// Entries moved to their alternate bucket to make room for another.
    pub moves: u64,
    /// Blocks that could not be placed (router keys).
    pub unplaceable: u64,
    /// Events with an unknown `medium`.
    pub unknown_media: u64,
    /// Engine-parity self-checks done.
    pub parity_checks: u64,
    /// Engine-parity self-checks that failed (configuration error).
    pub parity_mismatches: u64,
    /// Events ignored (unregistered endpoint, approximate mode).
    pub ignored_events: u64,
    /// Speculative entries expired (TTL or bound).
    pub speculative_expired: u64,
    /// Speculative entries confirmed by a `BlockStored`.
    pub speculative_confirmed: u64,
    /// Registered endpoints, by slot.
    pub endpoints: Vec<EndpointStats>,
}

impl KvIndex {
    /// A snapshot of sizes and counters (takes the registry lock; not for
    /// the hot path).
    pub fn stats(&self) -> IndexStats {
        let endpoints: Vec<EndpointStats> = self
            .registered()
            .into_iter()
            .map(|(id, name)| {
                let h = self.table.holdings(id.0);
                EndpointStats {
                    id,
                    name,
                    blocks: [h[0], h[1], h[2]],
                    speculative: h[SPECULATIVE],
                }
            })
            .collect();
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IndexStats {
            entries: self.table.live(),
            capacity: self.table.capacity() as u64,
            holdings: endpoints
                .iter()
                .map(|e| e.blocks.iter().sum::<u64>() + e.speculative)
                .sum(),
            table_bytes: (self.table.bytes()
                + self.table.epochs().bytes()
                + self.checkpoints.bytes()) as u64,
            evictions: self.table.evictions(),
            displacement_failures: self.table.displacement_failures(),
            moves: self.table.moves(),
            unplaceable: get(&c.unplaceable),
            unknown_media: get(&c.unknown_media),
            parity_checks: get(&c.parity_checks),
            parity_mismatches: get(&c.parity_mismatches),
            ignored_events: get(&c.ignored),
            speculative_expired: get(&c.spec_expired),
            speculative_confirmed: get(&c.spec_confirmed),
            endpoints,
        }
    }
}
