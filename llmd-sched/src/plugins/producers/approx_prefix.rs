//! `approx-prefix-cache-producer`: prefix matches guessed from past routing decisions.

use std::collections::HashMap;
use std::sync::Arc;

use ahash::RandomState;

use super::approx_hash::{approx_block_hashes, MIN_BLOCK_SIZE};
use super::approx_index::ApproxIndex;
use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{
    CycleContext, Decided, EndpointIndex, PreRequest, PrefixInfo, PrefixMatch, Producer,
};

/// Profile name llm-d hard-codes for the prefill stage.
const PREFILL_PROFILE: &str = "prefill";

/// The producer with llm-d's defaults.
#[derive(Debug)]
pub struct ApproxPrefixProducer {
    name: Arc<str>,
    /// `autoTune` (true): block size and LRU capacity from the endpoint's cache config.
    pub auto_tune: bool,
    /// `blockSizeTokens` (16; raised to 64 at request time).
    pub block_size: usize,
    /// `maxPrefixTokensToMatch` (131072).
    pub max_prefix_tokens: usize,
    /// `maxPrefixBlocksToMatch` (2048; used when the token cap is 0).
    pub max_prefix_blocks: usize,
    /// `lruCapacityPerServer` (31250).
    pub lru_capacity: usize,
    index: ApproxIndex,
}

impl ApproxPrefixProducer {
    /// Decodes the parameters (deprecated `blockSize` maps to `blockSizeTokens`).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let auto_tune = p.bool("autoTune", true)?;
        let legacy = p.opt_i64("blockSize")?;
        let block_size = p.opt_i64("blockSizeTokens")?.or(legacy).unwrap_or(16);
        if block_size <= 0 {
            return Err(p.err("blockSizeTokens", "must be > 0"));
        }
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
        Ok(ApproxPrefixProducer {
            name: p.plugin_name().into(),
            auto_tune,
            block_size: block_size as usize,
            max_prefix_tokens: max_prefix_tokens as usize,
            max_prefix_blocks: max_prefix_blocks as usize,
            lru_capacity: lru_capacity as usize,
            index: ApproxIndex::default(),
        })
    }

    /// The routing-fed index (for inspection).
    pub fn index(&self) -> &ApproxIndex {
        &self.index
    }

    fn effective_block_size(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex]) -> usize {
        let tuned = if self.auto_tune {
            candidates
                .first()
                .map(|&i| ctx.endpoint(i).cache_block_size() as usize)
                .filter(|&b| b > 0)
        } else {
            None
        };
        tuned.unwrap_or(self.block_size).max(MIN_BLOCK_SIZE)
    }
}

impl Producer for ApproxPrefixProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let bs = self.effective_block_size(ctx, candidates);
        let max_blocks = if self.max_prefix_tokens > 0 {
            self.max_prefix_tokens / bs
        } else {
            self.max_prefix_blocks
        };
        let req = ctx.request();
        let hashes = approx_block_hashes(
            req.target_model(),
            req.cache_salt.as_deref().unwrap_or(""),
            ctx.tokens(),
            bs,
            max_blocks,
        );
        let mut counts: HashMap<u64, u32, RandomState> = HashMap::default();
        self.index
            .lookup(&hashes, |uid| *counts.entry(uid).or_insert(0) += 1);
        let mut matches = vec![None; ctx.endpoints().len()];
        for &i in candidates {
            let n = counts.get(&ctx.endpoint(i).uid()).copied().unwrap_or(0);
            matches[i] = Some(PrefixMatch {
                match_blocks: n,
                cached_blocks: n,
            });
        }
        let best = counts.values().copied().max().unwrap_or(0);
        ctx.note(format!(
            "{}: {} blocks of {} tokens, best match {} blocks",
            self.name,
            hashes.len(),
            bs,
            best
        ));
        ctx.set_prefix_info(PrefixInfo {
            producer: self.name.clone(),
            block_size: bs as u32,
            total_blocks: hashes.len() as u32,
            matches,
            keys: hashes,
        });
    }

    fn on_endpoint_removed(&self, uid: u64) {
        self.index.remove_endpoint(uid);
    }
}

impl PreRequest for ApproxPrefixProducer {
    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>) {
        let Some(info) = ctx.prefix_info(&self.name) else {
            return;
        };
        let record = |i: EndpointIndex| {
            let ep = ctx.endpoint(i);
            let cap = if self.auto_tune && ep.cache_num_blocks() > 0 {
                ep.cache_num_blocks() as usize
            } else {
                self.lru_capacity
            };
            self.index.insert(ep.uid(), &info.keys, cap);
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
