//! `prefix-cache-scorer` in its llm-d v0.2 – v0.3 form: a scorer that was its
//! own prefix index (gateway-api-inference-extension's prefix plugin), with
//! `mode: estimate` (default; `hashBlockSize` prompt characters per block,
//! `maxPrefixBlocksToMatch`, `lruCapacityPerServer`) or, in v0.2,
//! `mode: cache_tracking` (the KV-cache indexer fed by KV events:
//! `indexerConfig`, `kvEventsConfig`). Such a scorer is built as today's
//! producer + `prefix-cache-scorer` pair, and what cannot be reproduced
//! exactly is said in the load report.

use serde_json::{json, Map, Value};

use super::params::Params;
use crate::error::ConfigError;
use crate::plugins::producers::approx_hash::MIN_BLOCK_SIZE;

/// Keys that mark the v0.2 – v0.3 form (today's scorer has none of them).
pub const LEGACY_KEYS: [&str; 6] = [
    "mode",
    "hashBlockSize",
    "maxPrefixBlocksToMatch",
    "lruCapacityPerServer",
    "indexerConfig",
    "kvEventsConfig",
];

/// What the legacy parameters become.
pub enum LegacyPrefix {
    /// `mode: estimate`: parameters of an `approx-prefix-cache-producer`.
    Estimate(Value),
    /// `mode: cache_tracking`: parameters of a `precise-prefix-cache-producer`.
    CacheTracking(Value),
}

/// The translation with its report: (producer parameters, remark, settings
/// accepted but not executed).
pub struct Translated {
    /// The producer to build.
    pub producer: LegacyPrefix,
    /// How the form is executed.
    pub remark: &'static str,
    /// Settings accepted but not executed: (dotted path, why).
    pub not_executed: Vec<(String, String)>,
}

fn count(p: &mut Params, key: &str, default: i64) -> Result<i64, ConfigError> {
    let v = p.i64(key, default)?;
    if v <= 0 {
        return Err(p.err(key, "must be > 0"));
    }
    Ok(v)
}

/// Translates the legacy parameters (consuming them from `p`).
pub fn translate(p: &mut Params) -> Result<Translated, ConfigError> {
    let mode = p.string("mode", "estimate")?;
    let mut not_executed = Vec::new();
    match mode.as_str() {
        "estimate" => {
            let chars = count(p, "hashBlockSize", 64)?;
            let blocks = count(p, "maxPrefixBlocksToMatch", 256)?;
            let lru = p.i64("lruCapacityPerServer", 31_250)?;
            let lru = if lru <= 0 { 31_250 } else { lru };
            for k in ["indexerConfig", "kvEventsConfig"] {
                if p.take(k).is_some() {
                    not_executed.push((
                        k.to_string(),
                        "only used with mode: cache_tracking".to_string(),
                    ));
                }
            }
            // The form counted prompt characters; a token is taken as 4 of
            // them. Blocks are hashBlockSize/4 tokens, raised to today's
            // floor of 64 at request time; the spans the old blocks covered
            // are kept: the prefix matched (maxPrefixBlocksToMatch blocks of
            // hashBlockSize characters) and the tokens each endpoint's LRU
            // remembers (lruCapacityPerServer such blocks), so the larger
            // blocks neither match further into a prompt nor remember more.
            let tokens = (chars / 4).max(1);
            let effective = tokens.max(MIN_BLOCK_SIZE as i64);
            let span = blocks.saturating_mul(tokens);
            let lru_blocks = (lru.saturating_mul(tokens) / effective).max(1);
            Ok(Translated {
                producer: LegacyPrefix::Estimate(json!({
                    "autoTune": false,
                    "blockSizeTokens": tokens,
                    "maxPrefixTokensToMatch": span.max(effective),
                    "maxPrefixBlocksToMatch": 0,
                    "lruCapacityPerServer": lru_blocks,
                })),
                remark: "v0.2-v0.3 prefix-cache-scorer (mode estimate): executed as an approximate producer with blocks of hashBlockSize/4 tokens (hashBlockSize counted prompt characters; today's floor of 64 tokens applies), matching as far into a prompt (maxPrefixBlocksToMatch × hashBlockSize / 4 tokens) and remembering as many tokens per endpoint (lruCapacityPerServer × hashBlockSize / 4) as the old blocks did",
                not_executed,
            })
        }
        "cache_tracking" => {
            for k in [
                "hashBlockSize",
                "maxPrefixBlocksToMatch",
                "lruCapacityPerServer",
            ] {
                if p.take(k).is_some() {
                    not_executed.push((k.to_string(), "only used with mode: estimate".to_string()));
                }
            }
            let mut indexer = match p.take("indexerConfig") {
                Some(Value::Object(m)) => m,
                None => Map::new(),
                Some(_) => return Err(p.err("indexerConfig", "expected an object")),
            };
            let mut producer = Map::new();
            if let Some(t) = indexer.remove("tokenProcessorConfig") {
                producer.insert("tokenProcessorConfig".into(), t);
            }
            for (k, why) in [
                (
                    "prefixStoreConfig",
                    "the library keeps no prefix store; prompts arrive tokenized (token-producer)",
                ),
                (
                    "tokenizersPoolConfig",
                    "the library runs no tokenizer pool; prompts arrive tokenized (token-producer)",
                ),
            ] {
                if indexer.remove(k).is_some() {
                    not_executed.push((format!("indexerConfig.{k}"), why.to_string()));
                }
            }
            if !indexer.is_empty() {
                producer.insert("indexerConfig".into(), Value::Object(indexer));
            }
            if let Some(ev) = p.take("kvEventsConfig") {
                producer.insert("kvEventsConfig".into(), ev);
            }
            Ok(Translated {
                producer: LegacyPrefix::CacheTracking(Value::Object(producer)),
                remark: "v0.2 prefix-cache-scorer (mode cache_tracking): executed as a precise-prefix-cache-producer fed by the KV events the host ingests",
                not_executed,
            })
        }
        other => Err(p.err(
            "mode",
            format!("unknown mode '{other}' (expected estimate or cache_tracking)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(params: Value) -> Value {
        let mut p = Params::new("p", "prefix-cache-scorer", Some(&params)).unwrap();
        match translate(&mut p).unwrap().producer {
            LegacyPrefix::Estimate(v) => v,
            LegacyPrefix::CacheTracking(_) => panic!("estimate mode"),
        }
    }

    #[test]
    fn character_blocks_keep_their_spans_under_the_token_floor() {
        // llm-d's published estimated config: 64-character blocks are 16
        // tokens; 256 of them 4,096 tokens; 31,250 of them 500,000 tokens,
        // 7,812 blocks of 64.
        let v = estimate(
            json!({"hashBlockSize": 64, "maxPrefixBlocksToMatch": 256, "lruCapacityPerServer": 31250}),
        );
        assert_eq!(
            (
                &v["blockSizeTokens"],
                &v["maxPrefixTokensToMatch"],
                &v["lruCapacityPerServer"]
            ),
            (&json!(16), &json!(4096), &json!(7812))
        );
        // At or above the floor a block translates to itself.
        let v = estimate(
            json!({"hashBlockSize": 258, "maxPrefixBlocksToMatch": 256, "lruCapacityPerServer": 100}),
        );
        assert_eq!(
            (
                &v["blockSizeTokens"],
                &v["maxPrefixTokensToMatch"],
                &v["lruCapacityPerServer"]
            ),
            (&json!(64), &json!(16384), &json!(100))
        );
        // A span under one block still matches one; under 4 characters a
        // block is one token; the LRU keeps at least one block.
        let v = estimate(
            json!({"hashBlockSize": 2, "maxPrefixBlocksToMatch": 1, "lruCapacityPerServer": 3}),
        );
        assert_eq!(
            (
                &v["blockSizeTokens"],
                &v["maxPrefixTokensToMatch"],
                &v["lruCapacityPerServer"]
            ),
            (&json!(1), &json!(64), &json!(1))
        );
    }
}
