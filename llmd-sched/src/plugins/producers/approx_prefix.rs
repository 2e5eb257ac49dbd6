//! `approx-prefix-cache-producer`: prefix matches guessed from past routing decisions.

use std::cell::RefCell;
use std::sync::Arc;

use llmd_kvindex::index::{IndexConfig, KeyMode};
use llmd_kvindex::BlockKey;

use super::approx_hash::{approx_block_hashes, MIN_BLOCK_SIZE};
use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{
    CycleContext, Decided, EndpointIndex, PreRequest, PrefixInfo, PrefixLookupNote, PrefixMatch,
    Producer,
};
use crate::kv::{seek_uid, UidKvIndex, UidMatch};

/// Profile name llm-d hard-codes for the prefill stage.
const PREFILL_PROFILE: &str = "prefill";

/// The chain is already seeded with the model and cache salt, so every
/// entry lives under one index model.
const INDEX_MODEL: &str = "";

/// Table entries per unit of `lruCapacityPerServer`: room for that many
/// endpoints' LRUs of distinct blocks before the table itself evicts.
const TABLE_ENDPOINTS: usize = 32;

thread_local! {
    /// Per-thread match buffer, so a warm lookup does not allocate.
    static FOUND: RefCell<Vec<UidMatch>> = const { RefCell::new(Vec::new()) };
}

/// The producer with llm-d's defaults.
#[derive(Debug)]
pub struct ApproxPrefixProducer {
    name: Arc<str>,
    /// `autoTune` (true): block size from the endpoint's cache config, and
    /// each endpoint's LRU capacity from the cache size (`num_gpu_blocks`)
    /// it reports when first routed to (`lruCapacityPerServer` if none);
    /// that capacity holds until the endpoint is removed, as in llm-d. The
    /// count is taken as it is, in the index's blocks (at least 64 tokens),
    /// as llm-d takes it: four times a 16-token engine's token capacity. The
    /// table is sized from `lruCapacityPerServer` (× 32 endpoints), so larger
    /// per-endpoint bounds over many endpoints meet table-wide eviction
    /// (`llmd_kvindex_entries_evicted_total`).
    pub auto_tune: bool,
    /// `blockSizeTokens` (16; raised to 64 at request time).
    pub block_size: usize,
    /// `maxPrefixTokensToMatch` (131072).
    pub max_prefix_tokens: usize,
    /// `maxPrefixBlocksToMatch` (2048; used when the token cap is 0).
    pub max_prefix_blocks: usize,
    /// `lruCapacityPerServer` (31250): blocks remembered per endpoint, least
    /// recently routed dropped first.
    pub lru_capacity: usize,
    index: UidKvIndex,
}

impl ApproxPrefixProducer {
    /// Decodes the parameters (deprecated `blockSize` maps to `blockSizeTokens`).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let auto_tune = p.bool("autoTune", true)?;
        // llm-d maps the deprecated `blockSize` (> 0) into `blockSizeTokens`
        // when that is at its default (16), set or not.
        let legacy = p.opt_i64("blockSize")?.filter(|&b| b > 0);
        let (key, block_size) = match (p.opt_i64("blockSizeTokens")?.unwrap_or(16), legacy) {
            (16, Some(b)) => ("blockSize", b),
            (b, _) => ("blockSizeTokens", b),
        };
        let block_size = super::precise_prefix::block_size_param(p, key, block_size)?;
        let max_prefix_tokens = p.i64("maxPrefixTokensToMatch", 131_072)?;
        let max_prefix_blocks = p.i64("maxPrefixBlocksToMatch", 2048)?;
        let lru_capacity = p.i64("lruCapacityPerServer", 31_250)?;
        if max_prefix_tokens < 0 {
            return Err(p.err("maxPrefixTokensToMatch", "must be >= 0"));
        }
        if max_prefix_blocks < 0 {
            return Err(p.err("maxPrefixBlocksToMatch", "must be >= 0"));
        }
        if lru_capacity <= 0 {
            return Err(p.err("lruCapacityPerServer", "must be > 0"));
        }
        let lru_capacity = lru_capacity as usize;
        let max_endpoints = super::precise_prefix::max_endpoints_param(p)?;
        let index = UidKvIndex::new(IndexConfig {
            capacity_blocks: lru_capacity.saturating_mul(TABLE_ENDPOINTS).min(1 << 24),
            key_mode: KeyMode::Approximate { block_size },
            approx_capacity_per_endpoint: lru_capacity,
            max_endpoints,
            ..IndexConfig::default()
        })
        .map_err(|e| p.err("lruCapacityPerServer", e.to_string()))?;
        Ok(ApproxPrefixProducer {
            name: p.plugin_name().into(),
            auto_tune,
            block_size,
            max_prefix_tokens: max_prefix_tokens as usize,
            max_prefix_blocks: max_prefix_blocks as usize,
            lru_capacity,
            index,
        })
    }

    /// The routing-fed index (for inspection).
    pub fn index(&self) -> &UidKvIndex {
        &self.index
    }

    /// The block size of this request's chain. With `autoTune`, the smallest
    /// engine block size any candidate reports, so the chain (and what is
    /// recorded for the pick) does not depend on the candidates' order; llm-d
    /// takes the first candidate's, which is the same whenever the pool
    /// agrees. Sizes below the 64-token floor all give the floor, so the scan
    /// stops at the first such candidate.
    fn effective_block_size(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex]) -> usize {
        let mut tuned: Option<usize> = None;
        if self.auto_tune {
            for &i in candidates {
                let b = ctx.endpoint(i).cache_block_size() as usize;
                if b > 0 {
                    tuned = Some(tuned.map_or(b, |t| t.min(b)));
                    if b <= MIN_BLOCK_SIZE {
                        break;
                    }
                }
            }
        }
        tuned.unwrap_or(self.block_size).max(MIN_BLOCK_SIZE)
    }
}

impl Producer for ApproxPrefixProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let bs = self.effective_block_size(ctx, candidates);
        // llm-d's `resolveMaxBlocks`: a token cap wins and may resolve to 0
        // blocks (a cap below the block size hashes nothing); without one,
        // `maxPrefixBlocksToMatch` 0 means the whole prompt.
        let max_blocks = if self.max_prefix_tokens > 0 {
            Some(self.max_prefix_tokens / bs)
        } else {
            Some(self.max_prefix_blocks).filter(|&b| b > 0)
        };
        let req = ctx.request();
        let hashes = match max_blocks {
            Some(0) => Vec::new(),
            cap => approx_block_hashes(
                req.target_model(),
                req.cache_salt.as_deref().unwrap_or(""),
                ctx.tokens(),
                bs,
                cap.unwrap_or(0),
            ),
        };
        // Same size and alignment: converted in place, no allocation.
        let keys: Vec<BlockKey> = hashes.into_iter().map(BlockKey).collect();
        let mut matches = vec![None; ctx.endpoints().len()];
        let (best, probed) = FOUND.with(|f| {
            let mut found = f.borrow_mut();
            let probed = self.index.matches(INDEX_MODEL, &keys, &mut found);
            let mut cursor = 0;
            for &i in candidates {
                let n = seek_uid(&found, ctx.tag(i).uid, &mut cursor)
                    .map_or(0, |m| m.consecutive_blocks);
                matches[i] = Some(PrefixMatch {
                    match_blocks: n,
                    cached_blocks: n,
                });
            }
            let best = found
                .iter()
                .map(|m| m.consecutive_blocks)
                .max()
                .unwrap_or(0);
            (best, probed)
        });
        ctx.note(PrefixLookupNote {
            producer: self.name.clone(),
            blocks: keys.len() as u32,
            block_size: Some(bs as u32),
            best,
            probed,
            groups: 1,
        });
        ctx.set_prefix_info(PrefixInfo {
            producer: self.name.clone(),
            block_size: bs as u32,
            total_blocks: keys.len() as u32,
            probed_blocks: probed,
            queried_blocks: keys.len() as u32,
            matches,
            keys: keys.into_iter().map(|k| k.0).collect(),
            key_endpoint: None,
        });
    }

    fn on_endpoint_added(&self, uid: u64) -> Result<(), crate::ScheduleError> {
        self.index
            .add_endpoint(uid)
            .map_err(|e| crate::ScheduleError::Index(format!("{}: {e}", self.name)))
    }

    fn on_endpoint_removed(&self, uid: u64) {
        self.index.remove_endpoint(uid);
    }

    fn index_stats(&self) -> Option<llmd_kvindex::index::IndexStats> {
        Some(self.index.index().stats())
    }
}

impl PreRequest for ApproxPrefixProducer {
    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>) {
        let Some(info) = ctx.prefix_info(&self.name) else {
            return;
        };
        let record = |i: EndpointIndex| {
            let ep = ctx.endpoint(i);
            if self.auto_tune {
                // llm-d: the endpoint's cache size when it is first routed
                // to (lruCapacityPerServer while none is reported) fixes
                // its LRU until the endpoint is removed.
                let blocks = usize::try_from(ep.cache_num_blocks()).unwrap_or(usize::MAX);
                let cap = if blocks > 0 {
                    blocks
                } else {
                    self.lru_capacity
                };
                self.index.record_routing_sized(
                    ep.uid(),
                    INDEX_MODEL,
                    &info.keys,
                    ctx.now_ns(),
                    cap,
                );
            } else {
                self.index
                    .record_routing(ep.uid(), INDEX_MODEL, &info.keys, ctx.now_ns());
            }
        };
        if let Some(&p) = decided.targets.first() {
            record(p);
        }
        if let Some(p) = decided.pick_of(PREFILL_PROFILE) {
            if decided.targets.first() != Some(&p) {
                record(p);
            }
        }
    }
}
