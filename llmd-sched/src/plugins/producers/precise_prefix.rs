//! `precise-prefix-cache-producer`: prefix matches from an index fed by the
//! engines' KV events, with optional speculative entries at routing time.

use std::sync::Arc;

use std::cell::RefCell;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{
    CycleContext, Decided, EndpointIndex, PreRequest, PrefixInfo, PrefixLookupNote, PrefixMatch,
    Producer,
};
use crate::kv::{seek_uid, KvBackend, UidKvIndex, UidMatch};
use crate::model::Request;
use llmd_kvindex::hash::{BlockHasher, HasherConfig, LoraRef, RequestExtras};
use llmd_kvindex::index::{IndexConfig, IndexError, KeyMode, TierWeights, MAX_BLOCK_SIZE};
use llmd_kvindex::BlockKey;

/// Profile name llm-d hard-codes for the prefill stage.
const PREFILL_PROFILE: &str = "prefill";

/// The producer.
#[derive(Debug)]
pub struct PrecisePrefixProducer {
    name: Arc<str>,
    index: Arc<UidKvIndex>,
    /// `speculativeIndexing` (false); the TTL (`speculativeTTL`, "2s") is the index's.
    pub speculative: bool,
    /// Settings accepted but not executed by the library (for the config
    /// report): (dotted path, what the host does instead).
    pub not_executed: Vec<(String, String)>,
}

/// Why `kvEventsConfig` is not executed by the library itself.
const EVENTS_BY_HOST: &str = "the scheduler subscribes to no KV-event stream (no I/O): an llmd-feed Feed built from this scheduler executes it (Python llmd.Feed), or the host feeds each endpoint's ZMQ payloads to ingest_kv_events";

/// Table entries when `inMemoryConfig.size` is not given (~24 MiB). llm-d's
/// default of 1e8 keys grows lazily; this table is allocated up front.
pub const DEFAULT_INDEX_SIZE: usize = 1 << 20;

thread_local! {
    /// Per-thread match buffer, so a warm lookup does not allocate.
    static FOUND: RefCell<Vec<UidMatch>> = const { RefCell::new(Vec::new()) };
}

/// `maxEndpoints` (an llmd extension; default 1024, at most 65,536): endpoint
/// slots of a producer's index. An endpoint beyond it is refused at
/// `add_endpoint` with an error (and counted), never accepted and left
/// unindexed.
pub(crate) fn max_endpoints_param(p: &mut Params) -> Result<usize, ConfigError> {
    let n = p.i64("maxEndpoints", IndexConfig::default().max_endpoints as i64)?;
    if !(1..=1 << 16).contains(&n) {
        return Err(p.err("maxEndpoints", "must be in 1..=65536"));
    }
    Ok(n as usize)
}

/// A block size in tokens, read from parameter `key`: in 1..=2^20 (the
/// index's bound, `MAX_BLOCK_SIZE`), refused naming that parameter.
pub(crate) fn block_size_param(p: &Params, key: &str, v: i64) -> Result<usize, ConfigError> {
    match usize::try_from(v) {
        Ok(b @ 1..=MAX_BLOCK_SIZE) => Ok(b),
        _ => Err(p.err(key, format!("must be in 1..={MAX_BLOCK_SIZE}, got {v}"))),
    }
}

fn positive(p: &mut Params, key: &str) -> Result<(), ConfigError> {
    if let Some(v) = p.opt_f64(key)? {
        if v <= 0.0 {
            return Err(p.err(key, "must be > 0"));
        }
    }
    Ok(())
}

/// `tokenProcessorConfig`: the block size in tokens (`blockSizeTokens`, or
/// the older `blockSize`), with the settings the library does not execute.
fn token_processor(
    mut t: Params,
    not_executed: &mut Vec<(String, String)>,
) -> Result<i64, ConfigError> {
    t.note_not_executed(
        not_executed,
        "hashSeed",
        "engine parity takes the engines' seed from the host's hasher configuration (LoadOptions::engine_hasher); router keys need none",
    );
    t.note_not_executed(
        not_executed,
        "hashAlgorithm",
        "prompt keys are vLLM's own (engine parity) or the router's XXH3 chain (router keys), never llm-d's cbor-fnv / xxh64 keys",
    );
    let legacy = t.opt_i64("blockSize")?;
    let (key, block_size) = match (t.opt_i64("blockSizeTokens")?, legacy) {
        (Some(b), _) => ("blockSizeTokens", b),
        (None, Some(b)) => ("blockSize", b),
        (None, None) => ("blockSizeTokens", 16),
    };
    let block_size = block_size_param(&t, key, block_size)? as i64;
    // Only engine parity depends on the engines' seed, and it takes
    // it from the host's hasher configuration.
    t.string("hashSeed", "")?;
    let algo = t.string("hashAlgorithm", "cbor-fnv")?;
    if algo != "cbor-fnv" && algo != "xxh64" {
        return Err(t.err(
            "hashAlgorithm",
            format!("unknown algorithm '{algo}' (expected cbor-fnv or xxh64)"),
        ));
    }
    t.finish()?;
    Ok(block_size)
}

impl PrecisePrefixProducer {
    /// Decodes llm-d's parameters and builds the index: engine parity when the
    /// host supplied the engines' hasher configuration (its block size must equal
    /// `blockSizeTokens`), router keys otherwise. Event transport settings
    /// (`kvEventsConfig`) are validated and left to the host.
    pub fn from_params(p: &mut Params, engine: Option<&HasherConfig>) -> Result<Self, ConfigError> {
        let mut block_size = 16i64;
        let mut not_executed = Vec::new();
        if let Some(t) = p.object("tokenProcessorConfig")? {
            block_size = token_processor(t, &mut not_executed)?;
        }
        // llm-d's tiers: GPU 1.0, CPU 0.8; storage counts like CPU; speculative
        // entries count like GPU blocks, as llm-d indexes them.
        let mut weights = TierWeights {
            gpu: 1.0,
            cpu: 0.8,
            storage: 0.8,
            speculative: 1.0,
        };
        let mut size = DEFAULT_INDEX_SIZE;
        if let Some(mut ix) = p.object("indexerConfig")? {
            // llm-d-inference-scheduler v0.4 (llm-d-kv-cache-manager v0.4):
            // the token processor's settings sat inside indexerConfig.
            if let Some(t) = ix.object("tokenProcessorConfig")? {
                if p.has("tokenProcessorConfig") {
                    return Err(ix.err(
                        "tokenProcessorConfig",
                        "given twice (here and at the top level, its place since v0.5)",
                    ));
                }
                block_size = token_processor(t, &mut not_executed)?;
            }
            if ix.has("tokenizersPoolConfig") {
                return Err(ix.err(
                    "tokenizersPoolConfig",
                    "is no longer supported; configure a token-producer instead",
                ));
            }
            if let Some(mut kb) = ix.object("kvBlockIndexConfig")? {
                for k in ["redisConfig", "costAwareMemoryConfig"] {
                    kb.note_not_executed(
                        &mut not_executed,
                        k,
                        "the index is the library's in-memory table (inMemoryConfig.size)",
                    );
                }
                for k in ["enableMetrics", "metricsLoggingInterval"] {
                    kb.note_not_executed(
                        &mut not_executed,
                        k,
                        "index metrics are always exported as llmd_kvindex_* by render_metrics",
                    );
                }
                if let Some(mut mem) = kb.object("inMemoryConfig")? {
                    mem.note_not_executed(
                        &mut not_executed,
                        "podCacheSize",
                        "endpoints per block are not capped: each entry holds a bitset of endpoints",
                    );
                    // YAML's .nan / .inf reach here as null: refused, like
                    // fractions and values out of range, never taken as unset.
                    let given = mem.has("size");
                    match mem.opt_i64("size")? {
                        Some(n) if (1..=1i64 << 36).contains(&n) => size = n as usize,
                        Some(_) => return Err(mem.err("size", "must be in 1..=2^36")),
                        None if given => {
                            return Err(mem.err(
                                "size",
                                "must be an integer in 1..=2^36 (got null or a non-finite number)",
                            ))
                        }
                        None => {}
                    }
                    positive(&mut mem, "podCacheSize")?;
                    mem.finish()?;
                }
                for k in ["redisConfig", "costAwareMemoryConfig"] {
                    if let Some(mut o) = kb.object(k)? {
                        o.accept_rest();
                    }
                }
                kb.bool("enableMetrics", false)?;
                kb.opt_duration_ns("metricsLoggingInterval")?;
                kb.finish()?;
            }
            for mut b in ix.objects("kvCacheBackendConfigs")? {
                let name = b
                    .opt_string("name")?
                    .ok_or_else(|| b.err("name", "required"))?;
                let w = b
                    .opt_f64("weight")?
                    .ok_or_else(|| b.err("weight", "required"))?;
                match name.to_ascii_lowercase().as_str() {
                    _ if !(w.is_finite() && w >= 0.0) => {
                        return Err(b.err("weight", "must be finite and >= 0"))
                    }
                    "gpu" => weights.gpu = w,
                    "cpu" => weights.cpu = w,
                    "storage" | "disk" => weights.storage = w,
                    other => {
                        return Err(b.err(
                            "name",
                            format!("unknown tier '{other}' (expected gpu, cpu, storage)"),
                        ))
                    }
                }
                b.finish()?;
            }
            ix.finish()?;
        }
        if !p.has("kvEventsConfig") {
            // llm-d subscribes by default (discoverPods: true, socketPort 5557).
            not_executed.push((
                "kvEventsConfig".to_string(),
                format!("{EVENTS_BY_HOST} (llm-d's defaults: discoverPods true, socketPort 5557)"),
            ));
        }
        if let Some(mut ev) = p.object("kvEventsConfig")? {
            for k in [
                "zmqEndpoint",
                "topicFilter",
                "concurrency",
                "discoverPods",
                "podDiscoveryConfig",
                "engineType",
            ] {
                ev.note_not_executed(&mut not_executed, k, EVENTS_BY_HOST);
            }
            ev.opt_string("topicFilter")?;
            positive(&mut ev, "concurrency")?;
            ev.bool("discoverPods", true)?;
            if let Some(mut pd) = ev.object("podDiscoveryConfig")? {
                pd.opt_string("podLabelSelector")?;
                pd.opt_string("podNamespace")?;
                for k in ["socketPort", "replaySocketPort"] {
                    if let Some(port) = pd.opt_i64(k)? {
                        if !(1..=65535).contains(&port) {
                            return Err(pd.err(k, "must be a port number in 1..=65535"));
                        }
                    }
                }
                pd.finish()?;
            }
            ev.opt_string("zmqEndpoint")?;
            let engine = ev.string("engineType", "vllm")?;
            if engine != "vllm" && engine != "sglang" {
                return Err(ev.err(
                    "engineType",
                    format!("unknown engine '{engine}' (expected vllm or sglang)"),
                ));
            }
            ev.finish()?;
        }
        let speculative = p.bool("speculativeIndexing", false)?;
        let max_endpoints = max_endpoints_param(p)?;
        let speculative_ttl_ns = p
            .opt_duration_ns("speculativeTTL")?
            .unwrap_or(2_000_000_000);
        let key_mode = match engine {
            Some(cfg) => {
                if cfg.block_size as i64 != block_size {
                    return Err(p.err(
                        "tokenProcessorConfig.blockSizeTokens",
                        format!(
                            "{block_size} differs from the engines' block size {}",
                            cfg.block_size
                        ),
                    ));
                }
                let hasher = BlockHasher::new(cfg.clone())
                    .map_err(|e| p.err("tokenProcessorConfig", format!("engine hasher: {e}")))?;
                KeyMode::EngineParity(hasher)
            }
            // The router's own chain needs no seed: both sides hash alike.
            None => KeyMode::RouterKeys {
                block_size: block_size as usize,
            },
        };
        let index = UidKvIndex::new(IndexConfig {
            capacity_blocks: size,
            key_mode,
            tier_weights: weights,
            speculative_ttl_ns,
            max_endpoints,
            ..IndexConfig::default()
        })
        .map_err(|e| match e {
            IndexError::OutOfMemory { .. } => p.err(
                "indexerConfig.kvBlockIndexConfig.inMemoryConfig.size",
                e.to_string(),
            ),
            _ => p.err("indexerConfig", e.to_string()),
        })?;
        Ok(PrecisePrefixProducer {
            name: p.plugin_name().into(),
            index: Arc::new(index),
            speculative,
            not_executed,
        })
    }

    /// A producer over an existing index.
    pub fn with_index(name: &str, index: Arc<UidKvIndex>, speculative: bool) -> Self {
        PrecisePrefixProducer {
            name: name.into(),
            index,
            speculative,
            not_executed: Vec::new(),
        }
    }

    /// The index this producer reads (events are applied to it).
    pub fn index(&self) -> &Arc<UidKvIndex> {
        &self.index
    }

    /// The index as the scheduler's event-ingestion seam.
    pub fn backend(&self) -> Arc<dyn KvBackend> {
        self.index.clone()
    }

    /// The request properties the engines fold into block hashes.
    fn extras(req: &Request) -> RequestExtras {
        RequestExtras {
            lora: req.lora.as_ref().map(|l| LoraRef {
                id: l.id,
                name: Some(l.name.clone()),
                path: l.path.clone(),
            }),
            cache_salt: req.cache_salt.clone(),
            ..Default::default()
        }
    }
}

impl Producer for PrecisePrefixProducer {
    /// Each candidate is matched under the model its own events are indexed
    /// under (its served model), so no answer depends on the candidates'
    /// order. Candidates are grouped by served model with one lookup per
    /// group: a single-model pool does exactly one. Engine-parity keys do not
    /// depend on the model (vLLM's block hashes do not include it) and are
    /// computed once; router keys are seeded with the model, so a second
    /// group computes its own.
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let index = self.index.index();
        let extras = Self::extras(ctx.request());
        let model_free_keys = matches!(index.config().key_mode, KeyMode::EngineParity(_));
        // The keys under the first candidate's model (the request's when
        // there is none) are the ones the post-decision hook reuses.
        let key_endpoint = candidates.first().copied();
        let key_model = key_endpoint.map_or(ctx.request().model.as_str(), |i| {
            ctx.endpoint(i).served_model()
        });
        let (keys, failed) = match index.prompt_keys(key_model, ctx.tokens(), &extras) {
            Ok(k) => (k, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut matches = vec![None; ctx.endpoints().len()];
        let (mut best, mut groups, mut probed, mut queried) = (0, 0, 0u32, 0u32);
        FOUND.with(|f| {
            let mut found = f.borrow_mut();
            let mut own_keys: Vec<BlockKey>;
            for (pos, &lead) in candidates.iter().enumerate() {
                if matches[lead].is_some() {
                    continue; // already matched with its group
                }
                let ep = ctx.endpoint(lead);
                let (model, group) = (ep.served_model(), ep.served_model_key());
                let group_keys: &[BlockKey] = if pos == 0 || model_free_keys {
                    &keys
                } else {
                    own_keys = index
                        .prompt_keys(model, ctx.tokens(), &extras)
                        .unwrap_or_default();
                    &own_keys
                };
                groups += 1;
                probed += self.index.matches(model, group_keys, &mut found);
                queried += group_keys.len() as u32;
                let mut cursor = 0;
                for &i in &candidates[pos..] {
                    let tag = ctx.tag(i);
                    if matches[i].is_some() || tag.model_key != group {
                        continue;
                    }
                    let m = match seek_uid(&found, tag.uid, &mut cursor) {
                        Some(f) => PrefixMatch {
                            match_blocks: f.weighted_score as u32,
                            cached_blocks: f.consecutive_blocks,
                        },
                        None => PrefixMatch::default(),
                    };
                    best = best.max(m.cached_blocks);
                    matches[i] = Some(m);
                }
            }
        });
        let block_size = index.block_size() as u32;
        match failed {
            Some(e) => ctx.note(format!("{}: no prefix lookup: {e}", self.name)),
            None => ctx.note(PrefixLookupNote {
                producer: self.name.clone(),
                blocks: keys.len() as u32,
                block_size: None,
                best,
                probed,
                groups: groups as u32,
            }),
        }
        ctx.set_prefix_info(PrefixInfo {
            producer: self.name.clone(),
            block_size,
            total_blocks: keys.len() as u32,
            probed_blocks: probed,
            queried_blocks: queried,
            matches,
            // Same size and alignment: collected in place, no allocation.
            keys: keys.into_iter().map(|k| k.0).collect(),
            key_endpoint,
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

impl PreRequest for PrecisePrefixProducer {
    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>) {
        if !self.speculative {
            return;
        }
        let Some(info) = ctx.prefix_info(&self.name) else {
            return;
        };
        let index = self.index.index();
        let model_free_keys = matches!(index.config().key_mode, KeyMode::EngineParity(_));
        let keyed_group = info
            .key_endpoint
            .map(|k| ctx.endpoint(k).served_model_key());
        let primary = decided.targets.first().copied();
        for i in primary.into_iter().chain(
            decided
                .pick_of(PREFILL_PROFILE)
                .filter(|&p| Some(p) != primary),
        ) {
            let ep = ctx.endpoint(i);
            // Speculative entries go under the pick's own served model, with
            // keys of that model (router keys of another group differ).
            let own: Vec<u64>;
            let keys: &[u64] = if model_free_keys || keyed_group == Some(ep.served_model_key()) {
                &info.keys
            } else {
                own = index
                    .prompt_keys(
                        ep.served_model(),
                        ctx.tokens(),
                        &Self::extras(ctx.request()),
                    )
                    .map(|k| k.into_iter().map(|k| k.0).collect())
                    .unwrap_or_default();
                &own
            };
            // Blocks the endpoint already matched are held (confirmed, or
            // speculative from an earlier decision within the TTL): only the
            // rest is new. Re-inserting the whole prompt on every decision
            // would cost ~30 ns per block for nothing.
            let held = info.get(i).map_or(0, |m| m.cached_blocks as usize);
            if let Some(rest) = keys.get(held..).filter(|r| !r.is_empty()) {
                self.index.insert_speculative(
                    ep.uid(),
                    ep.served_model(),
                    rest,
                    held,
                    ctx.now_ns(),
                );
            }
        }
    }
}
