//! The KV-block index: (model, block key) → the endpoints holding that block,
//! each with a tier (GPU, CPU, storage), plus speculative entries.
//!
//! * **Reads are lock-free**: [`KvIndex::match_prefix`] only loads atomics
//!   (a per-bucket seqlock check, retried only if a writer rewrote that very
//!   bucket meanwhile); it never takes a lock.
//! * **Writes** take one shard mutex per block touched, plus the writing
//!   endpoint's own mutex, so different endpoints ingest in parallel.
//! * **Memory is fixed** at construction: a set-associative table of
//!   `capacity_blocks` entries (≈ 24 B each, plus ≈ 2 B of checkpoint
//!   store); an event flood evicts instead of growing: CLOCK, with entries
//!   deeper in their chain going first among those left unused, as vLLM's
//!   own LRU frees tails first (`depth.rs`).
//! * Endpoints are dense slots ([`EndpointId`]); each table entry holds a
//!   64-bit endpoint bitset, so a block held by many endpoints costs one
//!   entry per 64 of them.
//! * **Long lookups skip** what an endpoint was shown to hold: checkpoints
//!   at every 16th block, keyed by a digest of the prompt prefix and trusted
//!   while no block of that prefix changed for the endpoint (its epoch,
//!   raised on every removal, eviction or tier change, is unchanged, or its
//!   log of the blocks behind the raises since names none of them), written
//!   at ingestion along followed chains and by lookups. Answers stay exactly
//!   the block-by-block walk's.
//!
//! ```
//! use llmd_kvindex::index::{IndexConfig, KeyMode, KvIndex, PrefixMatches};
//! use llmd_kvindex::BlockKey;
//!
//! let index = KvIndex::new(IndexConfig {
//!     key_mode: KeyMode::Approximate { block_size: 16 },
//!     ..IndexConfig::default()
//! })?;
//! let pod = index.register_endpoint("pod-a")?;
//! let keys = [BlockKey(1), BlockKey(2), BlockKey(3)];
//! index.record_routing(pod, "llama", &keys[..2], 0);
//! let mut out = PrefixMatches::new();
//! index.match_prefix("llama", &keys, &mut out);
//! assert_eq!(out.get(pod).map(|m| m.consecutive_blocks), Some(2));
//! # Ok::<(), llmd_kvindex::index::IndexError>(())
//! ```
//!
//! Design, memory-ordering argument and trade-offs: `docs/index.md`.

mod apply;
mod bucket;
mod buckets;
mod chains;
mod checkpoints;
mod config;
mod depth;
mod endpoints;
mod epochs;
mod keys;
mod lookup;
mod lost;
mod lru;
mod parity;
mod prompt;
mod router;
mod speculative;
mod stats;
mod sync;
mod table;
mod tails;

pub use apply::ApplyReport;
pub use config::{IndexConfig, IndexError, KeyMode, TierWeights, MAX_BLOCK_SIZE, MAX_LRU_CAPACITY};
pub use endpoints::EndpointId;
pub use lookup::{EndpointMatch, PrefixMatches};
pub use stats::{EndpointStats, IndexStats};

use checkpoints::Checkpoints;
use endpoints::{EndpointState, Registry};
use keys::TIERS;
use lru::Lru;
use parking_lot::Mutex;
use stats::Counters;
use std::sync::atomic::AtomicUsize;
use table::Table;

/// Live speculative entries: (endpoint, fingerprint) → deadline, oldest first.
type SpecMap = Lru<(u16, u64), u64>;

/// The concurrent KV-block index. `Send + Sync`; share it behind an `Arc`.
pub struct KvIndex {
    cfg: IndexConfig,
    block_size: usize,
    table: Table,
    /// Verified-prefix checkpoints that let long lookups skip blocks.
    checkpoints: Checkpoints,
    registry: Mutex<Registry>,
    endpoints: Box<[Mutex<EndpointState>]>,
    /// One past the highest slot ever registered: the groups a lookup probes.
    high_water: AtomicUsize,
    spec: Mutex<SpecMap>,
    weights: [f64; TIERS],
    /// Table tiers by decreasing weight (ties: GPU, CPU, storage, speculative).
    tier_order: [usize; TIERS],
    counters: Counters,
}

impl std::fmt::Debug for KvIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvIndex")
            .field("key_mode", &self.cfg.key_mode)
            .field("capacity", &self.table.capacity())
            .field("entries", &self.table.live())
            .finish_non_exhaustive()
    }
}

impl KvIndex {
    /// Builds an index; reserves the whole table up front. A table whose
    /// memory cannot be had is [`IndexError::OutOfMemory`], not an abort.
    pub fn new(cfg: IndexConfig) -> Result<Self, IndexError> {
        cfg.validate()?;
        let weights = cfg.tier_weights.as_array();
        let mut tier_order = [0, 1, 2, 3];
        tier_order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
        let oom = || IndexError::OutOfMemory {
            bytes: Table::bytes_for(cfg.capacity_blocks)
                + Checkpoints::bytes_for(Self::checkpoint_records(cfg.capacity_blocks)),
            capacity_blocks: cfg.capacity_blocks,
        };
        let table =
            Table::new(cfg.capacity_blocks, cfg.max_endpoints, tier_order).ok_or_else(oom)?;
        let checkpoints = Checkpoints::new(Self::checkpoint_records(cfg.capacity_blocks))
            .ok_or_else(oom)?
            .with_reach(table.epochs().reach());
        Ok(KvIndex {
            block_size: cfg.key_mode.block_size(),
            table,
            checkpoints,
            registry: Mutex::new(Registry::default()),
            endpoints: (0..cfg.max_endpoints)
                .map(|_| {
                    Mutex::new(EndpointState::new(
                        cfg.engine_map_capacity_per_endpoint,
                        cfg.approx_capacity_per_endpoint,
                    ))
                })
                .collect(),
            high_water: AtomicUsize::new(0),
            spec: Mutex::new(Lru::new(cfg.speculative_capacity)),
            weights,
            tier_order,
            counters: Counters::default(),
            cfg,
        })
    }

    /// Checkpoint records for a table of `capacity` entries: one per
    /// checkpoint span of entries, at least 1,024.
    fn checkpoint_records(capacity: usize) -> usize {
        (capacity / checkpoints::SPAN).max(1024)
    }

    /// The configuration the index was built with.
    pub fn config(&self) -> &IndexConfig {
        &self.cfg
    }

    /// Tokens per block of prompt keys.
    pub fn block_size(&self) -> usize {
        self.block_size
    }
}

/// The identity of a model inside the index: entries stored under two model
/// names are interchangeable exactly when their keys are equal. Lets a caller
/// group endpoints by the model their entries live under without comparing
/// strings.
pub fn model_key(model: &str) -> u64 {
    keys::model_seed(model)
}

#[doc(hidden)]
pub mod loom_support;

#[cfg(test)]
mod tests;
