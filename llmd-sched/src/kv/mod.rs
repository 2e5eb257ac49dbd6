//! The prefix producers' KV-block index: [`llmd_kvindex::index::KvIndex`]
//! addressed by scheduler endpoint uids ([`UidKvIndex`]).
//!
//! [`KvBackend`] is the ingestion seam the scheduler drives for every precise
//! producer: it applies each endpoint's event batches and expires speculative
//! entries; lookups go through the producer's own [`UidKvIndex`].

mod uid_index;

use llmd_kvindex::events::EventBatch;
use llmd_kvindex::index::KvIndex;

pub use uid_index::{UidKvIndex, UidMatch};

/// What applying one event batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// (block, tier) entries added.
    pub stored: u32,
    /// (block, tier) entries removed.
    pub removed: u32,
    /// Endpoint caches cleared.
    pub cleared: u32,
    /// Blocks or events skipped: unknown parent or engine key, too few
    /// tokens, unknown medium, or no free endpoint slot.
    pub skipped: u32,
    /// Engine parity: published keys that differ from the router's own hash
    /// of the same tokens (the configured seed, algorithm or block size is wrong).
    pub parity_mismatches: u32,
}

impl ApplyStats {
    /// Adds `o` field by field.
    pub fn add(&mut self, o: &ApplyStats) {
        self.stored += o.stored;
        self.removed += o.removed;
        self.cleared += o.cleared;
        self.skipped += o.skipped;
        self.parity_mismatches += o.parity_mismatches;
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
