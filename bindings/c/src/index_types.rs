//! Plain-data structs of the index calls: configuration, matches, reports
//! and statistics.

use crate::hasher::llmd_hasher;

/// How index keys are formed. Passed as `uint32_t`; values are never reused.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum llmd_key_mode {
    /// The router's own chained hash of the events' tokens; works whatever
    /// seed or algorithm the engines use.
    RouterKeys = 1,
    /// No events: entries come from `llmd_index_record_routing` only.
    Approximate = 2,
    /// vLLM's own published keys, computed with a hasher (`hasher` field).
    EngineParity = 3,
}

/// Index configuration; zero fields take the defaults.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_index_config {
    /// An `llmd_key_mode`; 0 means router keys.
    pub key_mode: u32,
    /// Tokens per block in the router and approximate modes; 0 means 16. In
    /// engine parity the hasher's: 0 or that value (another is
    /// `LLMD_STATUS_INVALID_ARGUMENT`).
    pub block_size: usize,
    /// The hasher for engine parity (copied; may be freed afterwards).
    pub hasher: *const llmd_hasher,
    /// Upper bound on table entries (memory is fixed at creation); 0 = 2^20.
    pub capacity_blocks: usize,
    /// Endpoint slots; 0 = 1024.
    pub max_endpoints: usize,
    /// Lifetime of speculative entries in ns of the caller's clock; 0 = 2 s.
    pub speculative_ttl_ns: u64,
    /// Live speculative entries at most; 0 = 65536.
    pub speculative_capacity: usize,
    /// Approximate mode: blocks remembered per endpoint (llm-d's
    /// `lruCapacityPerServer`); 0 = 31250.
    pub approx_capacity_per_endpoint: usize,
    /// Router-key mode: engine-key mappings kept per endpoint; 0 = 2^18.
    pub engine_map_capacity_per_endpoint: usize,
    /// Non-zero: the four tier weights below replace the defaults (GPU
    /// 1.0, CPU 0.8, storage 0.5, speculative 0.9); each must be finite and
    /// non-negative (a byte, not a `bool`: any value a caller's memory holds is defined; non-zero is true).
    pub has_tier_weights: u8,
    /// Score of a matched block held on GPU.
    pub gpu_weight: f64,
    /// Score of a matched block held in CPU memory.
    pub cpu_weight: f64,
    /// Score of a matched block held in storage.
    pub storage_weight: f64,
    /// Score of a matched speculative block.
    pub speculative_weight: f64,
}

/// One endpoint's longest consecutive prefix match.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct llmd_endpoint_match {
    /// The endpoint's id from `llmd_index_register_endpoint`.
    pub endpoint: u16,
    /// Leading blocks of the prompt the endpoint holds.
    pub consecutive_blocks: u32,
    /// Those blocks weighted by tier (GPU 1.0, CPU 0.8, ...).
    pub weighted_score: f64,
}

/// Counts from applying one batch to the index.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct llmd_index_apply_report {
    /// Blocks stored.
    pub stored: u32,
    /// Blocks removed.
    pub removed: u32,
    /// Caches cleared.
    pub cleared: u32,
    /// Blocks that could not be placed (router keys: unknown parent or
    /// engine key, a parent ending inside a router block, too few tokens for
    /// a router block). Not counted in `stored`.
    pub unplaceable: u32,
    /// Events with a medium this library does not know.
    pub unknown_media: u32,
    /// Events ignored: the endpoint is being removed, or the index is in
    /// approximate mode.
    pub ignored: u32,
    /// Engine parity: parent-less `BlockStored` events re-hashed as a
    /// self-check.
    pub parity_checks: u32,
    /// Self-checks whose key differed from the event's: the hasher's seed,
    /// algorithm or block size is wrong.
    pub parity_mismatches: u32,
    /// In a batch with more than one `AllBlocksCleared`, the events before
    /// the last one, which it erases: not applied one by one, in none of the
    /// other counts (0 for a batch with one clear, applied whole).
    pub superseded: u32,
}

/// Index-wide statistics.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct llmd_index_stats {
    /// Live table entries.
    pub entries: u64,
    /// Table capacity in entries.
    pub capacity: u64,
    /// (block, endpoint) holdings.
    pub holdings: u64,
    /// Bytes of the table.
    pub table_bytes: u64,
    /// Entries evicted for room.
    pub evictions: u64,
    /// Registered endpoints.
    pub endpoints: u64,
}
