//! Configuration and errors of the index.

use crate::hash::{BlockHasher, HashError};
use thiserror::Error;

/// How block keys are formed (see `docs/index.md`, "Key modes").
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum KeyMode {
    /// Keys are vLLM's own published block keys; prompts are hashed exactly
    /// as the engines do. Parent-less `BlockStored` events are re-hashed as a
    /// self-check of the hasher's configuration.
    EngineParity(BlockHasher),
    /// Keys are the router's own chained XXH3-64 of the events' `token_ids`,
    /// in blocks of `block_size` tokens; engine keys are mapped per endpoint.
    /// Works whatever seed or algorithm the engines use.
    RouterKeys {
        /// Tokens per router block.
        block_size: usize,
    },
    /// No events: entries come from [`KvIndex::record_routing`] only, keyed
    /// like [`KeyMode::RouterKeys`], with a per-endpoint LRU capacity.
    ///
    /// [`KvIndex::record_routing`]: super::KvIndex::record_routing
    Approximate {
        /// Tokens per block.
        block_size: usize,
    },
}

impl KeyMode {
    /// Tokens per block of the prompt keys.
    pub fn block_size(&self) -> usize {
        match self {
            KeyMode::EngineParity(h) => h.block_size(),
            KeyMode::RouterKeys { block_size } | KeyMode::Approximate { block_size } => *block_size,
        }
    }
}

/// Score weight of a matched block per tier: each matched block adds the
/// best weight among the tiers the endpoint holds it in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierWeights {
    /// GPU memory (llm-d default 1.0).
    pub gpu: f64,
    /// Host memory of an offloading connector (llm-d default 0.8).
    pub cpu: f64,
    /// Disk / remote storage: slower to load than host memory, so below CPU.
    pub storage: f64,
    /// Speculative entries (routed there, not yet confirmed by an event).
    pub speculative: f64,
}

impl Default for TierWeights {
    fn default() -> Self {
        TierWeights {
            gpu: 1.0,
            cpu: 0.8,
            storage: 0.5,
            speculative: 0.9,
        }
    }
}

impl TierWeights {
    /// Weights indexed by table tier (GPU, CPU, storage, speculative).
    pub(crate) fn as_array(&self) -> [f64; 4] {
        [self.gpu, self.cpu, self.storage, self.speculative]
    }
}

/// Index configuration; `IndexConfig::default()` is a sensible start.
#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// Upper bound on table entries. An entry is one (model, block, tier,
    /// group of 64 endpoint slots): with ≤ 64 endpoints and GPU only, one
    /// entry per block. Memory is fixed at construction (~24 B per entry,
    /// plus ~2 B per entry of verified-prefix checkpoints).
    pub capacity_blocks: usize,
    /// How keys are formed.
    pub key_mode: KeyMode,
    /// Per-tier score weights.
    pub tier_weights: TierWeights,
    /// Lifetime of speculative entries, in nanoseconds of the caller's clock.
    pub speculative_ttl_ns: u64,
    /// Upper bound on live speculative (block, endpoint) entries; the oldest
    /// expire early beyond it (1 ..= [`MAX_LRU_CAPACITY`]).
    pub speculative_capacity: usize,
    /// Approximate mode: blocks remembered per endpoint (llm-d's
    /// `lruCapacityPerServer`, default 31250; 1 ..= [`MAX_LRU_CAPACITY`]).
    pub approx_capacity_per_endpoint: usize,
    /// Router-key mode: engine-key → router-key mappings kept per endpoint
    /// (least recently used dropped beyond it). An engine block takes one
    /// mapping per router block holding some of its tokens: one when the
    /// router blocks are as large or larger and aligned with it, at most
    /// `ceil(engine / router) + 1` otherwise (1 ..= [`MAX_LRU_CAPACITY`]).
    pub engine_map_capacity_per_endpoint: usize,
    /// Endpoint slots (1 ..= 65536).
    pub max_endpoints: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            capacity_blocks: 1 << 20,
            key_mode: KeyMode::RouterKeys { block_size: 16 },
            tier_weights: TierWeights::default(),
            speculative_ttl_ns: 2_000_000_000,
            speculative_capacity: 1 << 16,
            approx_capacity_per_endpoint: 31_250,
            engine_map_capacity_per_endpoint: 1 << 18,
            max_endpoints: 1024,
        }
    }
}

/// Errors of the index.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum IndexError {
    /// A configuration value is out of range.
    #[error("invalid index configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The prompt could not be hashed (engine parity).
    #[error("cannot hash the prompt: {0}")]
    Hash(#[from] HashError),
    /// The table for the configured capacity could not be allocated.
    #[error(
        "cannot allocate the index table: {bytes} bytes for capacity_blocks = {capacity_blocks}"
    )]
    OutOfMemory {
        /// Bytes the table needed.
        bytes: u128,
        /// The configured capacity.
        capacity_blocks: usize,
    },
    /// Every endpoint slot is taken.
    #[error("endpoint table full: all {max} slots are registered")]
    EndpointsFull {
        /// The configured number of slots.
        max: usize,
    },
}

/// Largest block size, in tokens, an index accepts (2^20): vLLM's are tens
/// of tokens, and buffers are sized from it.
pub const MAX_BLOCK_SIZE: usize = 1 << 20;

/// Largest value of the capacities that bound a least-recently-used map
/// (`speculative_capacity`, `approx_capacity_per_endpoint`,
/// `engine_map_capacity_per_endpoint`): 2³² − 2.
pub const MAX_LRU_CAPACITY: usize = u32::MAX as usize - 1;

impl IndexConfig {
    /// Checks ranges; the index is built only from a valid configuration.
    pub fn validate(&self) -> Result<(), IndexError> {
        let bad = |field, reason: &str| {
            Err(IndexError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if self.capacity_blocks == 0 {
            return bad("capacity_blocks", "must be at least 1");
        }
        if self.capacity_blocks > 1 << 36 {
            return bad("capacity_blocks", "must be at most 2^36");
        }
        if self.max_endpoints == 0 || self.max_endpoints > 1 << 16 {
            return bad("max_endpoints", "must be in 1..=65536");
        }
        // vLLM's block sizes are tens of tokens; past 2^20 a size is a
        // mistake, and buffers sized from it must not be.
        if self.key_mode.block_size() == 0 || self.key_mode.block_size() > MAX_BLOCK_SIZE {
            return bad("key_mode.block_size", "must be in 1..=2^20");
        }
        let w = self.tier_weights.as_array();
        if w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return bad("tier_weights", "weights must be finite and non-negative");
        }
        // These bounds are the least-recently-used maps' capacities, which
        // address their entries with 32 bits.
        for (field, cap) in [
            ("speculative_capacity", self.speculative_capacity),
            (
                "approx_capacity_per_endpoint",
                self.approx_capacity_per_endpoint,
            ),
            (
                "engine_map_capacity_per_endpoint",
                self.engine_map_capacity_per_endpoint,
            ),
        ] {
            if cap == 0 || cap > MAX_LRU_CAPACITY {
                return bad(field, "must be in 1..=2^32-2");
            }
        }
        Ok(())
    }
}
