//! The precise prefix path's seam to a KV-block index fed by engine events.
//!
//! [`KvBackend`] is what the precise producer and the scheduler need from an
//! index. Two modes: [`EngineParityIndex`] hashes prompts exactly as vLLM does
//! and uses the events' keys as published (the host supplies the engines'
//! hasher configuration); [`RouterKeyIndex`] re-hashes the events' token ids with
//! the router's own chain, which works whatever algorithm or seed the engines use.

pub mod engine_parity;
pub mod router_keys;
mod store;

use llmd_kvindex::events::EventBatch;

use crate::error::ScheduleError;
use crate::model::Request;

pub use engine_parity::EngineParityIndex;
pub use router_keys::RouterKeyIndex;
pub use store::TierWeights;

/// What applying one event batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Blocks added.
    pub stored: u32,
    /// Blocks removed.
    pub removed: u32,
    /// Endpoint caches cleared.
    pub cleared: u32,
    /// Blocks skipped (unknown parent, block-size mismatch, missing tokens).
    pub skipped: u32,
}

/// A KV-block index as the precise producer uses it. Endpoints are identified by
/// [`crate::model::EndpointState::uid`].
pub trait KvBackend: Send + Sync + std::fmt::Debug {
    /// Tokens per block.
    fn block_size(&self) -> u32;
    /// The request's block keys: full blocks only.
    fn prompt_keys(&self, req: &Request, tokens: &[u32]) -> Result<Vec<u64>, ScheduleError>;
    /// For each endpoint holding `keys[0..n]` consecutively (n >= 1), calls
    /// `found(uid, n, weighted)` where `weighted` sums each block's best tier weight.
    fn match_prefix(&self, keys: &[u64], now_ns: u64, found: &mut dyn FnMut(u64, u32, f64));
    /// Applies a decoded event batch from endpoint `uid` serving `model`.
    fn apply_batch(&self, uid: u64, model: &str, batch: &EventBatch) -> ApplyStats;
    /// Inserts predicted entries for a routing decision, expiring at `expires_ns`.
    fn insert_speculative(&self, uid: u64, keys: &[u64], expires_ns: u64);
    /// Forgets an endpoint.
    fn remove_endpoint(&self, uid: u64);
    /// Drops expired speculative entries.
    fn tick(&self, now_ns: u64);
    /// Distinct blocks indexed.
    fn len(&self) -> usize;
    /// True when nothing is indexed.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
