//! The prefix producers' KV-block index: [`llmd_kvindex::index::KvIndex`]
//! addressed by scheduler endpoint uids ([`UidKvIndex`]).
//!
//! [`KvBackend`] is the ingestion seam the scheduler drives for every precise
//! producer: it applies each endpoint's event batches and expires speculative
//! entries; lookups go through the producer's own [`UidKvIndex`].

mod uid_index;

use llmd_kvindex::events::EventBatch;
use llmd_kvindex::index::KvIndex;

pub use uid_index::{seek_uid, UidKvIndex, UidMatch};

/// What applying one event batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// (block, tier) entries added.
    pub stored: u32,
    /// `stored` per tier (`Tier as usize`), since the batch's last clear.
    pub stored_by_tier: [u32; 3],
    /// (block, tier) entries removed.
    pub removed: u32,
    /// `removed` per tier, since the batch's last clear.
    pub removed_by_tier: [u32; 3],
    /// Endpoint caches cleared.
    pub cleared: u32,
    /// Blocks or events not placed, all reasons: the sum of the `skipped_*`
    /// fields. Never counted in `stored`.
    pub skipped: u32,
    /// Router keys: blocks whose parent or engine key was never stored, whose
    /// parent ends inside a router block, or too few tokens for a block.
    pub skipped_unknown_parent: u32,
    /// Events with a `medium` that is not GPU, CPU or storage.
    pub skipped_unknown_medium: u32,
    /// Events of an endpoint removed while its batch was on the way.
    pub skipped_stale: u32,
    /// Engine parity: published keys that differ from the router's own hash
    /// of the same tokens (the configured seed, algorithm or block size is wrong).
    pub parity_mismatches: u32,
    /// In a batch with more than one `AllBlocksCleared`, the events before
    /// the last one, which it erases: they are not applied one by one (the
    /// index ends as if they were), are in none of the other counts, and
    /// count as applied in `llmd_kvindex_events_applied_total`. A batch with
    /// one clear is applied whole (0 here). Summed over the scheduler's
    /// prefix indexes, as the other counts are.
    pub superseded: u32,
    /// Blocks moved between tiers, `moves[from][to]` (`Tier as usize`):
    /// offloads (GPU to CPU or storage) and reloads (back).
    pub moves: [[u32; 3]; 3],
}

impl ApplyStats {
    /// Adds `o` field by field.
    pub fn add(&mut self, o: &ApplyStats) {
        if o.cleared > 0 {
            // Per-tier counts restart at a clear.
            self.stored_by_tier = [0; 3];
            self.removed_by_tier = [0; 3];
        }
        self.stored += o.stored;
        self.removed += o.removed;
        for t in 0..3 {
            self.stored_by_tier[t] += o.stored_by_tier[t];
            self.removed_by_tier[t] += o.removed_by_tier[t];
        }
        self.cleared += o.cleared;
        self.skipped += o.skipped;
        self.skipped_unknown_parent += o.skipped_unknown_parent;
        self.skipped_unknown_medium += o.skipped_unknown_medium;
        self.skipped_stale += o.skipped_stale;
        self.parity_mismatches += o.parity_mismatches;
        self.superseded += o.superseded;
        for (row, o_row) in self.moves.iter_mut().zip(&o.moves) {
            for (m, o_m) in row.iter_mut().zip(o_row) {
                *m += o_m;
            }
        }
    }
}

/// An index fed by the engines' KV events. Endpoints are identified by
/// [`crate::model::EndpointState::uid`].
pub trait KvBackend: Send + Sync + std::fmt::Debug {
    /// Applies a decoded event batch from endpoint `uid` serving `model`.
    fn apply_batch(&self, uid: u64, model: &str, batch: &EventBatch) -> ApplyStats;
    /// Drops speculative entries whose deadline is at or before `now_ns`.
    fn tick(&self, now_ns: u64);
    /// The underlying index (statistics, direct inspection).
    fn index(&self) -> &KvIndex;
}
