//! `precise-prefix-cache-producer`: prefix matches from an index fed by the
//! engines' KV events, with optional speculative entries at routing time.

use std::sync::Arc;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{
    CycleContext, Decided, EndpointIndex, PreRequest, PrefixInfo, PrefixMatch, Producer,
};
use llmd_kvindex::hash::{BlockHasher, HasherConfig};

use crate::kv::{EngineParityIndex, KvBackend, RouterKeyIndex, TierWeights};

/// Profile name llm-d hard-codes for the prefill stage.
const PREFILL_PROFILE: &str = "prefill";

/// The producer.
#[derive(Debug)]
pub struct PrecisePrefixProducer {
    name: Arc<str>,
    backend: Arc<dyn KvBackend>,
    /// `speculativeIndexing` (false).
    pub speculative: bool,
    /// `speculativeTTL` ("2s").
    pub speculative_ttl_ns: u64,
}

fn positive(p: &mut Params, key: &str) -> Result<(), ConfigError> {
    if let Some(v) = p.opt_f64(key)? {
        if v <= 0.0 {
            return Err(p.err(key, "must be > 0"));
        }
    }
    Ok(())
}

impl PrecisePrefixProducer {
    /// Decodes llm-d's parameters and builds the index: engine parity when the
    /// host supplied the engines' hasher configuration (its block size must equal
    /// `blockSizeTokens`), router keys otherwise. Event transport settings
    /// (`kvEventsConfig`) are validated and left to the host.
    pub fn from_params(p: &mut Params, engine: Option<&HasherConfig>) -> Result<Self, ConfigError> {
        let (mut block_size, mut seed) = (16i64, String::new());
        if let Some(mut t) = p.object("tokenProcessorConfig")? {
            let legacy = t.opt_i64("blockSize")?;
            block_size = t.opt_i64("blockSizeTokens")?.or(legacy).unwrap_or(16);
            if block_size <= 0 {
                return Err(t.err("blockSizeTokens", "must be > 0"));
            }
            seed = t.string("hashSeed", "")?;
            let algo = t.string("hashAlgorithm", "cbor-fnv")?;
            if algo != "cbor-fnv" && algo != "xxh64" {
                return Err(t.err(
                    "hashAlgorithm",
                    format!("unknown algorithm '{algo}' (expected cbor-fnv or xxh64)"),
                ));
            }
            t.finish()?;
        }
        let mut weights = TierWeights::default();
        if let Some(mut ix) = p.object("indexerConfig")? {
            if ix.has("tokenizersPoolConfig") {
                return Err(ix.err(
                    "tokenizersPoolConfig",
                    "is no longer supported; configure a token-producer instead",
                ));
            }
            if let Some(mut kb) = ix.object("kvBlockIndexConfig")? {
                if let Some(mut mem) = kb.object("inMemoryConfig")? {
                    positive(&mut mem, "size")?;
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
        if let Some(mut ev) = p.object("kvEventsConfig")? {
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
        let speculative_ttl_ns = p
            .opt_duration_ns("speculativeTTL")?
            .unwrap_or(2_000_000_000);
        let backend: Arc<dyn KvBackend> = match engine {
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
                Arc::new(EngineParityIndex::new(hasher, weights))
            }
            None => Arc::new(RouterKeyIndex::new(block_size as u32, &seed, weights)),
        };
        Ok(PrecisePrefixProducer {
            name: p.plugin_name().into(),
            backend,
            speculative,
            speculative_ttl_ns,
        })
    }

    /// A producer over an existing backend.
    pub fn with_backend(
        name: &str,
        backend: Arc<dyn KvBackend>,
        speculative: bool,
        ttl_ns: u64,
    ) -> Self {
        PrecisePrefixProducer {
            name: name.into(),
            backend,
            speculative,
            speculative_ttl_ns: ttl_ns,
        }
    }

    /// The index this producer reads (events are applied to it).
    pub fn backend(&self) -> &Arc<dyn KvBackend> {
        &self.backend
    }
}

impl Producer for PrecisePrefixProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let keys = match self.backend.prompt_keys(ctx.request(), ctx.tokens()) {
            Ok(k) => k,
            Err(e) => {
                ctx.note(format!("{}: no prefix lookup: {e}", self.name));
                Vec::new()
            }
        };
        let mut found: Vec<(u64, u32, f64)> = Vec::new();
        if !keys.is_empty() {
            self.backend
                .match_prefix(&keys, ctx.now_ns(), &mut |uid, n, w| {
                    found.push((uid, n, w))
                });
        }
        let mut matches = vec![None; ctx.endpoints().len()];
        for &i in candidates {
            let uid = ctx.endpoint(i).uid();
            let m =
                found
                    .iter()
                    .find(|f| f.0 == uid)
                    .map_or(PrefixMatch::default(), |&(_, n, w)| PrefixMatch {
                        match_blocks: w as u32,
                        cached_blocks: n,
                    });
            matches[i] = Some(m);
        }
        let best = found.iter().map(|f| f.1).max().unwrap_or(0);
        ctx.note(format!(
            "{}: {} full blocks, best consecutive match {} blocks",
            self.name,
            keys.len(),
            best
        ));
        ctx.set_prefix_info(PrefixInfo {
            producer: self.name.clone(),
            block_size: self.backend.block_size(),
            total_blocks: keys.len() as u32,
            matches,
            keys,
        });
    }

    fn on_endpoint_removed(&self, uid: u64) {
        self.backend.remove_endpoint(uid);
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
        let expires = ctx.now_ns().saturating_add(self.speculative_ttl_ns);
        let primary = decided.targets.first().copied();
        for i in primary.into_iter().chain(
            decided
                .pick_of(PREFILL_PROFILE)
                .filter(|&p| Some(p) != primary),
        ) {
            self.backend
                .insert_speculative(ctx.endpoint(i).uid(), &info.keys, expires);
        }
    }
}
