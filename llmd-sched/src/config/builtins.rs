//! Built-in executed plugins, keyed by llm-d `type`: filters and scorers
//! ([`STAGES`]), then pickers, profile handlers, deciders and producers ([`PIPELINE`]).

use std::sync::Arc;

use super::params::Params;
use super::registry::{Built, DataKey, Entry, Stability};
use crate::error::ConfigError;
use crate::framework::{Decider, Filter, Picker, Scorer};
use crate::plugins::attributes::{
    EndpointAttributeFilter, EndpointAttributeScorer, HeaderLabelAffinityScorer,
    TopologyAffinityFilter, TopologyAffinityScorer,
};
use crate::plugins::filters::{
    ByLabelFilter, ConcurrencyDetector, HeaderBasedTestingFilter, LabelSelectorFilter,
    PrefixCacheAffinityFilter, RoleFilter, SaturationDetector, SloHeadroomTierFilter, Stage,
    UtilizationDetector, UtilizationFilter,
};
use crate::plugins::pickers::{max_endpoints, MaxScorePicker, RandomPicker, WeightedRandomPicker};
use crate::plugins::producers::{
    ApproxPrefixProducer, BurstPrefixProducer, InFlightLoadProducer, MmEmbeddingsCacheScorer,
    P2pSourceProducer, PrecisePrefixProducer, PredictedLatencyProducer, TokenProducer,
    APPROX_PRODUCER, INFLIGHT_PRODUCER,
};
use crate::plugins::profile::{
    AlwaysDisaggDecider, DataParallelProfileHandler, DisaggProfileHandler, HeaderProfileHandler,
    MultimodalDecider, PdProfileHandler, PrefixBasedPdDecider, SingleProfileHandler,
};
use crate::plugins::scorers::{
    ActiveRequestScorer, ContextLengthAware, FleetLatencyScorer, Gauge, KvCacheUtilizationScorer,
    LatencyScorer, LoadAwareScorer, LoraAffinityScorer, MinMaxScorer, NoHitLruScorer,
    PeerGaugeScorer, PrefixCacheScorer, SessionAffinity, TokenLoadScorer,
};
use crate::plugins::screeners::RolloutScreener;

use Stability::{Alpha as A, Beta as B, Deprecated as D};

fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
fn filter<F: Filter + 'static>(f: F) -> Built {
    Built {
        filter: Some(arc(f)),
        ..Default::default()
    }
}
fn scorer<S: Scorer + 'static>(s: S) -> Built {
    Built {
        scorer: Some(arc(s)),
        ..Default::default()
    }
}
fn picker<P: Picker + 'static>(p: P) -> Built {
    Built {
        picker: Some(arc(p)),
        ..Default::default()
    }
}
fn decider<X: Decider + 'static>(d: X) -> Built {
    Built {
        decider: Some(arc(d)),
        ..Default::default()
    }
}
/// The in-flight producer a plugin reads: its `inFlightLoadProducerName`
/// (llm-d's default instance name when absent).
fn inflight_source(p: &mut Params) -> Result<String, ConfigError> {
    p.string("inFlightLoadProducerName", INFLIGHT_PRODUCER)
}

/// Why a deprecated parameter that llm-d also ignores is not executed.
const DEPRECATED_IGNORED: &str = "deprecated; ignored (llm-d ignores it too)";

/// The latency producer a plugin reads: its `latencyPredictionInfoProducerName`
/// (llm-d's default instance name when absent or empty). The loader creates
/// the default producer when the config lists none, as llm-d does; a name
/// that is not configured is an error.
fn latency_source(p: &mut Params) -> Result<String, ConfigError> {
    Ok(p.opt_string("latencyPredictionInfoProducerName")?
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| super::registry::LATENCY_PRODUCER.to_string()))
}

fn prefix_consumer(mut b: Built, producer: &str) -> Built {
    b.consumes
        .push((DataKey::PrefixCacheMatchInfo, producer.into()));
    b
}
/// Filters and scorers.
pub static STAGES: &[Entry] = &[
    // ---- filters -------------------------------------------------------------
    Entry {
        ty: "decode-filter",
        stability: B,
        build: |_, _| Ok(filter(RoleFilter::new(Stage::Decode))),
    },
    Entry {
        ty: "prefill-filter",
        stability: B,
        build: |_, _| Ok(filter(RoleFilter::new(Stage::Prefill))),
    },
    Entry {
        ty: "encode-filter",
        stability: B,
        build: |_, _| Ok(filter(RoleFilter::new(Stage::Encode))),
    },
    Entry {
        ty: "label-selector-filter",
        stability: B,
        build: |p, _| Ok(filter(LabelSelectorFilter::from_params(p)?)),
    },
    Entry {
        ty: "by-label-selector",
        stability: D,
        build: |p, _| Ok(filter(LabelSelectorFilter::from_params(p)?)),
    },
    Entry {
        ty: "by-label",
        stability: D,
        build: |p, _| Ok(filter(ByLabelFilter::from_params(p)?)),
    },
    // Host data as endpoint labels (see plugins::attributes).
    Entry {
        ty: "endpoint-attribute-filter",
        stability: A,
        build: |p, _| Ok(filter(EndpointAttributeFilter::from_params(p)?)),
    },
    Entry {
        ty: "topology-affinity-filter",
        stability: A,
        build: |p, _| Ok(filter(TopologyAffinityFilter::from_params(p)?)),
    },
    Entry {
        ty: "prefix-cache-affinity-filter",
        stability: B,
        build: |p, _| {
            let source = inflight_source(p)?;
            let latency = latency_source(p)?;
            let f = PrefixCacheAffinityFilter::from_params(p)?;
            let producer = f.producer.to_string();
            // llm-d needs the predictions only for `ttftSource: latencyPredictor`.
            let predicted =
                f.source == crate::plugins::filters::prefix_affinity::TtftSource::LatencyPredictor;
            let mut b = prefix_consumer(filter(f), &producer);
            b.consumes.push((DataKey::InFlightLoad, source));
            if predicted {
                b.consumes.push((DataKey::LatencyPredictionInfo, latency));
            }
            Ok(b)
        },
    },
    // Filter (fail-open) and pool saturation detector in one.
    Entry {
        ty: "utilization-detector",
        stability: B,
        build: |p, _| {
            let d = UtilizationDetector::from_params(p)?;
            Ok(Built {
                filter: Some(arc(d.clone())),
                detector: Some(SaturationDetector::Utilization(d)),
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "concurrency-detector",
        stability: B,
        build: |p, _| {
            let source = inflight_source(p)?;
            let d = ConcurrencyDetector::from_params(p)?;
            let mut b = filter(d);
            b.detector = Some(SaturationDetector::Concurrency(d));
            b.consumes.push((DataKey::InFlightLoad, source));
            Ok(b)
        },
    },
    Entry {
        ty: "utilization-filter",
        stability: A,
        build: |p, _| {
            let source = inflight_source(p)?;
            let mut b = filter(UtilizationFilter::from_params(p)?);
            b.consumes.push((DataKey::InFlightLoad, source));
            Ok(b)
        },
    },
    Entry {
        ty: "session-affinity-filter",
        stability: A,
        build: session_affinity_filter,
    },
    // llm-d-router's multi-cluster variants that delegate to the stock
    // plugin (a cluster is just an endpoint to them).
    Entry {
        ty: "multicluster-session-affinity-filter",
        stability: A,
        build: session_affinity_filter,
    },
    Entry {
        ty: "header-based-testing-filter",
        stability: B,
        build: |p, _| {
            let mut b = filter(HeaderBasedTestingFilter);
            for k in p.keys() {
                p.note_not_executed(
                    &mut b.settings_not_executed,
                    &k,
                    "the filter takes no parameters (llm-d's ignores them too)",
                );
            }
            p.accept_rest();
            Ok(b)
        },
    },
    Entry {
        ty: "slo-headroom-tier-filter",
        stability: B,
        build: |p, _| {
            let latency = latency_source(p)?;
            let mut b = filter(SloHeadroomTierFilter::from_params(p)?);
            b.consumes.push((DataKey::LatencyPredictionInfo, latency));
            Ok(b)
        },
    },
    // Scorer, and a filter when `enableFiltering` is set.
    Entry {
        ty: "context-length-aware",
        stability: B,
        build: |p, _| {
            let c = arc(ContextLengthAware::from_params(p)?);
            let filter: Option<Arc<dyn Filter>> = if c.filtering { Some(c.clone()) } else { None };
            Ok(Built {
                scorer: Some(c),
                filter,
                ..Default::default()
            })
        },
    },
    // ---- scorers -------------------------------------------------------------
    Entry {
        ty: "queue-scorer",
        stability: B,
        build: |_, _| Ok(scorer(MinMaxScorer::new(Gauge::WaitingQueue))),
    },
    Entry {
        ty: "running-requests-size-scorer",
        stability: B,
        build: |_, _| Ok(scorer(MinMaxScorer::new(Gauge::RunningRequests))),
    },
    Entry {
        ty: "kv-cache-utilization-scorer",
        stability: B,
        build: |_, _| Ok(scorer(KvCacheUtilizationScorer)),
    },
    // llm-d-inference-scheduler v0.2 (gateway-api-inference-extension v0.5):
    // the utilization scorer's earlier name.
    Entry {
        ty: "kv-cache-scorer",
        stability: D,
        build: |_, _| Ok(scorer(KvCacheUtilizationScorer)),
    },
    Entry {
        ty: "load-aware-scorer",
        stability: B,
        build: |p, _| Ok(scorer(LoadAwareScorer::from_params(p)?)),
    },
    Entry {
        ty: "token-load-scorer",
        stability: B,
        build: |p, _| {
            let source = inflight_source(p)?;
            let mut b = scorer(TokenLoadScorer::from_params(p)?);
            b.consumes.push((DataKey::InFlightLoad, source.clone()));
            b.consumes.push((DataKey::UncachedRequestTokens, source));
            Ok(b)
        },
    },
    Entry {
        ty: "latency-scorer",
        stability: B,
        build: |p, _| {
            let latency = latency_source(p)?;
            let mut not_executed = Vec::new();
            let s = LatencyScorer::from_params(p, &mut not_executed)?;
            let producer = s.prefix_producer.clone();
            let mut b = prefix_consumer(scorer(s), &producer);
            b.consumes.push((DataKey::LatencyPredictionInfo, latency));
            b.settings_not_executed = not_executed;
            Ok(b)
        },
    },
    // llmd's own (not an llm-d plugin): the request's predicted TTFT plus
    // the prefill its cache miss adds for the requests queued there.
    Entry {
        ty: "fleet-latency-scorer",
        stability: A,
        build: |p, _| {
            let latency = latency_source(p)?;
            let mut b = scorer(FleetLatencyScorer::from_params(p)?);
            b.consumes.push((DataKey::LatencyPredictionInfo, latency));
            Ok(b)
        },
    },
    Entry {
        ty: "active-request-scorer",
        stability: B,
        build: |p, _| {
            let source = inflight_source(p)?;
            let mut ignored = Vec::new();
            p.note_not_executed(&mut ignored, "requestTimeout", DEPRECATED_IGNORED);
            let mut b = scorer(ActiveRequestScorer::from_params(p)?);
            b.consumes.push((DataKey::InFlightLoad, source));
            b.settings_not_executed = ignored;
            Ok(b)
        },
    },
    Entry {
        ty: "prefix-cache-scorer",
        stability: B,
        build: |p, env| {
            if super::legacy_prefix::LEGACY_KEYS.iter().any(|k| p.has(k)) {
                return legacy_prefix_scorer(p, env);
            }
            prefix_cache_scorer(p, env)
        },
    },
    Entry {
        ty: "multicluster-prefix-cache-scorer",
        stability: A,
        build: prefix_cache_scorer,
    },
    // Multi-cluster scorers over a peer pool's averages, which the host sets
    // as endpoint labels (llm-d's data-layer extractor does no I/O here).
    Entry {
        ty: "mm-embeddings-cache-scorer",
        stability: B,
        build: |p, _| {
            let producer = p.string("producerName", "mm-embeddings-cache-producer")?;
            let mut b = scorer(MmEmbeddingsCacheScorer);
            b.consumes.push((DataKey::EncoderCacheMatchInfo, producer));
            Ok(b)
        },
    },
    Entry {
        ty: "multicluster-queue-scorer",
        stability: A,
        build: |_, _| Ok(scorer(PeerGaugeScorer::queue())),
    },
    Entry {
        ty: "multicluster-kv-cache-utilization-scorer",
        stability: A,
        build: |_, _| Ok(scorer(PeerGaugeScorer::kv_cache())),
    },
    // Legacy all-in-one: a precise producer + prefix-cache-scorer of its
    // own, or a scorer bound to the document's precise producer.
    Entry {
        ty: "precise-prefix-cache-scorer",
        stability: D,
        build: legacy_precise_scorer,
    },
    Entry {
        ty: "lora-affinity-scorer",
        stability: B,
        build: |_, _| Ok(scorer(LoraAffinityScorer)),
    },
    Entry {
        ty: "header-label-affinity-scorer",
        stability: A,
        build: |p, _| Ok(scorer(HeaderLabelAffinityScorer::from_params(p)?)),
    },
    Entry {
        ty: "endpoint-attribute-scorer",
        stability: A,
        build: |p, _| Ok(scorer(EndpointAttributeScorer::from_params(p)?)),
    },
    Entry {
        ty: "topology-affinity-scorer",
        stability: A,
        build: |p, _| Ok(scorer(TopologyAffinityScorer::from_params(p)?)),
    },
    Entry {
        ty: "no-hit-lru-scorer",
        stability: B,
        build: |p, _| {
            let mut settings_not_executed = Vec::new();
            for k in ["prefixPluginType", "prefixPluginName"] {
                p.note_not_executed(&mut settings_not_executed, k, DEPRECATED_IGNORED);
            }
            let s = arc(NoHitLruScorer::from_params(p)?);
            let producer = s.producer().to_string();
            Ok(prefix_consumer(
                Built {
                    scorer: Some(s.clone()),
                    pre_request: Some(s),
                    settings_not_executed,
                    ..Default::default()
                },
                &producer,
            ))
        },
    },
    Entry {
        ty: "session-affinity-scorer",
        stability: A,
        build: |p, _| {
            let mut settings_not_executed = Vec::new();
            let s = arc(SessionAffinity::from_params(p, &mut settings_not_executed)?);
            Ok(Built {
                scorer: Some(s.clone()),
                pre_request: Some(s),
                settings_not_executed,
                ..Default::default()
            })
        },
    },
];

/// Pickers, profile handlers, P/D deciders and producers.
pub static PIPELINE: &[Entry] = &[
    // ---- pickers -------------------------------------------------------------
    Entry {
        ty: "max-score-picker",
        stability: B,
        build: |p, _| {
            Ok(picker(MaxScorePicker {
                max: max_endpoints(p)?,
            }))
        },
    },
    Entry {
        ty: "random-picker",
        stability: B,
        build: |p, _| {
            Ok(picker(RandomPicker {
                max: max_endpoints(p)?,
            }))
        },
    },
    Entry {
        ty: "weighted-random-picker",
        stability: B,
        build: |p, _| {
            Ok(picker(WeightedRandomPicker {
                max: max_endpoints(p)?,
            }))
        },
    },
    // ---- profile handlers and deciders -----------------------------------------
    Entry {
        ty: "single-profile-handler",
        stability: B,
        build: |_, _| {
            Ok(Built {
                handler: Some(arc(SingleProfileHandler)),
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "pd-profile-handler",
        stability: D,
        build: |p, env| {
            let (h, report) = PdProfileHandler::from_params(p, &env.deciders)?;
            Ok(Built {
                handler: Some(arc(h)),
                remark: report.remark,
                settings_not_executed: report.not_executed,
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "header-profile-handler",
        stability: A,
        build: |p, _| {
            Ok(Built {
                handler: Some(arc(HeaderProfileHandler::from_params(p)?)),
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "data-parallel-profile-handler",
        stability: D,
        build: |p, _| {
            Ok(Built {
                handler: Some(arc(DataParallelProfileHandler::from_params(p)?)),
                ..Default::default()
            })
        },
    },
    // Deprecated PreRequest plugins that wrote the P/D headers; the scheduler
    // writes x-prefiller-host-port and x-encoder-hosts-ports for every
    // decision of disagg-profile-handler, so they add nothing.
    Entry {
        ty: "disagg-headers-handler",
        stability: D,
        build: disagg_headers,
    },
    Entry {
        ty: "prefill-header-handler",
        stability: D,
        build: disagg_headers,
    },
    Entry {
        ty: "disagg-profile-handler",
        stability: B,
        build: |p, env| {
            let h = DisaggProfileHandler::from_params(p, &env.deciders)?;
            Ok(Built {
                handler: Some(arc(h)),
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "prefix-based-pd-decider",
        stability: B,
        // It reads the approximate producer's matches, as llm-d's does: a
        // P/D config without prefix scorers still gets that producer.
        build: |p, _| {
            Ok(prefix_consumer(
                decider(PrefixBasedPdDecider::from_params(p)?),
                APPROX_PRODUCER,
            ))
        },
    },
    Entry {
        ty: "always-disagg-pd-decider",
        stability: B,
        build: |_, _| Ok(decider(AlwaysDisaggDecider)),
    },
    Entry {
        ty: "always-disagg-multimodal-decider",
        stability: B,
        build: |_, _| Ok(decider(MultimodalDecider)),
    },
    // ---- producers -----------------------------------------------------------
    Entry {
        ty: "token-producer",
        stability: B,
        build: |p, _| token_producer(p),
    },
    Entry {
        ty: "tokenizer",
        stability: D,
        build: |p, _| token_producer(p),
    },
    Entry {
        ty: "approx-prefix-cache-producer",
        stability: B,
        build: approx_prefix_producer,
    },
    Entry {
        ty: "multicluster-approx-prefix-cache-producer",
        stability: A,
        build: approx_prefix_producer,
    },
    Entry {
        ty: "burst-prefix-cache-producer",
        stability: A,
        build: |p, _| {
            let mut settings_not_executed = Vec::new();
            p.note_not_executed(
                &mut settings_not_executed,
                "windowDurationMs",
                "the library holds no request: the host collects a window of this length (Scheduler::burst_window) and passes it to pick_batch, which assigns it as llm-d does; a plain pick is a window of one",
            );
            let x = BurstPrefixProducer::from_params(p)?;
            Ok(Built {
                producer: Some(arc(x)),
                settings_not_executed,
                remark: Some("windows are assigned by pick_batch, per target model; a request past maxBatchSize gets no affinity and the producers after this one still run for it (llm-d skips them)"),
                produces: vec![DataKey::PrefixCacheMatchInfo],
                consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "precise-prefix-cache-producer",
        stability: B,
        build: |p, env| {
            let mut x = PrecisePrefixProducer::from_params(p, env.engine_hasher.as_ref())?;
            let backend = x.backend().clone();
            let settings_not_executed = std::mem::take(&mut x.not_executed);
            let x = arc(x);
            Ok(Built {
                settings_not_executed,
                producer: Some(x.clone()),
                pre_request: Some(x),
                kv_backend: Some(backend),
                produces: vec![DataKey::PrefixCacheMatchInfo],
                consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "mm-embeddings-cache-producer",
        stability: B,
        build: |p, _| {
            let x = crate::plugins::producers::mm_cache::producer(p)?;
            Ok(Built {
                producer: Some(x.clone()),
                pre_request: Some(x),
                produces: vec![DataKey::EncoderCacheMatchInfo],
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "p2p-source-producer",
        stability: A,
        build: |p, _| {
            let x = P2pSourceProducer::from_params(p)?;
            let producer = x.producer.clone();
            Ok(Built {
                pre_request: Some(arc(x)),
                remark: Some("cached tokens are counted over every tier (the prefix data carries no per-tier split; llm-d counts the CPU tier alone when its producer reports tiers)"),
                consumes: vec![(DataKey::PrefixCacheMatchInfo, producer)],
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "disaggregatedset-rollout-screener",
        stability: A,
        build: |p, _| {
            let x = arc(RolloutScreener::from_params(p)?);
            Ok(Built {
                screener: Some(x.clone()),
                pre_request: Some(x),
                remark: Some("revision coverage counts the registered endpoints in scope (each a Ready Pod) by their revision and role labels; no Pod watch and no cross-replica revision sync (a decision id keeps its revision within this scheduler; shares and strict misses are in the metrics and the decision's notes)"),
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "latency-slo-admitter",
        stability: B,
        build: |p, env| {
            let latency = latency_source(p)?;
            env.latency_admitter = true;
            Ok(Built {
                remark: Some("runs in pick after the producers: a sheddable request (priority < 0) with latency objectives is refused (ResourceExhausted) when no endpoint is predicted to meet them and none is idle or cold"),
                consumes: vec![(DataKey::LatencyPredictionInfo, latency)],
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "predicted-latency-producer",
        stability: B,
        build: |p, env| {
            let mut settings_not_executed = Vec::new();
            let inflight = inflight_source(p)?;
            let x = PredictedLatencyProducer::from_params(
                p,
                env.latency.clone(),
                &mut settings_not_executed,
            )?;
            env.latency_settings = Some(x.settings.clone());
            let prefix = x.prefix_producer.to_string();
            Ok(Built {
                producer: Some(arc(x)),
                settings_not_executed,
                remark: Some("predictions from the in-process online model (or a host-attached LatencyPredictor), trained from the lifecycle calls; no sidecar"),
                consumes: vec![
                    (DataKey::PrefixCacheMatchInfo, prefix),
                    (DataKey::InFlightLoad, inflight),
                ],
                produces: vec![DataKey::LatencyPredictionInfo],
                ..Default::default()
            })
        },
    },
    Entry {
        ty: "inflight-load-producer",
        stability: B,
        build: |p, env| {
            let mut settings_not_executed = Vec::new();
            // Asked for (llm-d's default is true), it is not done; false
            // asks for what happens.
            if p.bool("syncCrossReplicaState", false)? {
                settings_not_executed.push((
                    "syncCrossReplicaState".to_string(),
                    "in-flight load is not shared between router replicas: each scheduler counts the requests it picked".to_string(),
                ));
            }
            let x = arc(InFlightLoadProducer::from_params(p, env.inflight.clone())?);
            Ok(Built {
                producer: Some(x.clone()),
                pre_request: Some(x),
                produces: vec![DataKey::InFlightLoad, DataKey::UncachedRequestTokens],
                settings_not_executed,
                ..Default::default()
            })
        },
    },
];

fn session_affinity_filter(
    p: &mut Params,
    _: &mut super::registry::BuildEnv,
) -> Result<Built, ConfigError> {
    let mut settings_not_executed = Vec::new();
    let s = arc(SessionAffinity::from_params(p, &mut settings_not_executed)?);
    Ok(Built {
        filter: Some(s.clone()),
        pre_request: Some(s),
        settings_not_executed,
        ..Default::default()
    })
}

fn prefix_cache_scorer(
    p: &mut Params,
    _: &mut super::registry::BuildEnv,
) -> Result<Built, ConfigError> {
    let s = PrefixCacheScorer::from_params(p)?;
    let producer = s.producer.to_string();
    Ok(prefix_consumer(scorer(s), &producer))
}

fn approx_prefix_producer(
    p: &mut Params,
    _: &mut super::registry::BuildEnv,
) -> Result<Built, ConfigError> {
    let a = arc(ApproxPrefixProducer::from_params(p)?);
    Ok(Built {
        producer: Some(a.clone()),
        pre_request: Some(a),
        produces: vec![DataKey::PrefixCacheMatchInfo],
        consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
        ..Default::default()
    })
}

fn token_producer(p: &mut Params) -> Result<Built, ConfigError> {
    const TOKENIZE_BY_HOST: &str = "the library calls no tokenizer service (no I/O): requests carrying token ids are used as they are; text prompts and chat bodies are estimated (4 bytes per token) unless a tokenizer is set for the model (llmd-tokenize: set_tokenizer, then pick_openai)";
    let mut settings_not_executed = Vec::new();
    for k in ["modelName", "vllm", "udsTokenizerConfig"] {
        p.note_not_executed(&mut settings_not_executed, k, TOKENIZE_BY_HOST);
    }
    let has_dir = p.has("tokenizerDir");
    let t = TokenProducer::from_params(p)?;
    let remark = if has_dir {
        Some("tokenizerDir (llmd extension): the model directory is loaded by llmd-tokenize (automatically by the Python, C and Go bindings; Rust hosts call llmd_tokenize::load_configured) and set for modelName; pick_openai then routes on its exact ids")
    } else {
        matches!(t.backend, crate::plugins::producers::TokenBackend::Vllm { .. }).then_some(
            "vllm backend not executed by the library (no I/O): requests carrying token ids are used as pre-tokenized; text prompts fall back to the estimate unless a tokenizer is set for the model (set_tokenizer, pick_openai)",
        )
    };
    Ok(Built {
        producer: Some(arc(t)),
        produces: vec![DataKey::TokenizedPrompt],
        remark,
        settings_not_executed,
        ..Default::default()
    })
}

/// `disagg-headers-handler` / `prefill-header-handler`: the scheduler writes
/// the P/D headers itself from the profiles literally named `prefill` and
/// `encode`; other names are accepted and reported, not executed.
fn disagg_headers(p: &mut Params, _: &mut super::registry::BuildEnv) -> Result<Built, ConfigError> {
    let mut settings_not_executed = Vec::new();
    for (key, default) in [("prefillProfile", "prefill"), ("encodeProfile", "encode")] {
        let given = p.string(key, default)?;
        if given != default {
            settings_not_executed.push((
                key.to_string(),
                format!("the scheduler writes the P/D headers from the profile named '{default}', not '{given}'"),
            ));
        }
    }
    Ok(Built {
        remark: Some("P/D headers are written by the scheduler for every disaggregated decision"),
        settings_not_executed,
        ..Default::default()
    })
}

/// A precise producer and a `prefix-cache-scorer` bound to it, as one
/// instance (the legacy all-in-one scorers).
fn precise_all_in_one(mut producer: PrecisePrefixProducer, name: &str) -> Built {
    let backend = producer.backend().clone();
    let settings_not_executed = std::mem::take(&mut producer.not_executed);
    let producer = arc(producer);
    Built {
        settings_not_executed,
        scorer: Some(arc(PrefixCacheScorer::bound_to(name))),
        producer: Some(producer.clone()),
        pre_request: Some(producer),
        kv_backend: Some(backend),
        produces: vec![DataKey::PrefixCacheMatchInfo],
        consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
        ..Default::default()
    }
}

/// The deprecated all-in-one `precise-prefix-cache-scorer`, as llm-d since
/// v0.9 builds it: with one `precise-prefix-cache-producer` in the document
/// it is a `prefix-cache-scorer` bound to that producer, and its own
/// parameters are not used (each is reported); with several, it cannot
/// choose and is refused; with none, it hosts a producer of its own. (llm-d
/// looks only at producers built before it, which depends on build order;
/// here the whole document counts.)
fn legacy_precise_scorer(
    p: &mut Params,
    env: &mut super::registry::BuildEnv,
) -> Result<Built, ConfigError> {
    match env.precise_producers.as_slice() {
        [] => {
            let producer = PrecisePrefixProducer::from_params(p, env.engine_hasher.as_ref())?;
            Ok(precise_all_in_one(producer, p.plugin_name()))
        }
        [one] => {
            let mut b = prefix_consumer(scorer(PrefixCacheScorer::bound_to(one)), one);
            let why = format!(
                "bound to the configured precise-prefix-cache-producer '{one}', whose settings apply"
            );
            for k in p.keys() {
                p.note_not_executed(&mut b.settings_not_executed, &k, &why);
            }
            p.accept_rest();
            b.remark = Some("deprecated all-in-one scorer bound to the configured precise producer");
            Ok(b)
        }
        many => Err(p.err(
            "type",
            format!(
                "the deprecated all-in-one scorer cannot choose among the precise-prefix-cache-producers {}: configure prefix-cache-scorer with prefixMatchInfoProducerName instead",
                many.join(", ")
            ),
        )),
    }
}

/// `prefix-cache-scorer` in its v0.2 - v0.3 form (its own index): today's
/// producer and scorer under the one instance name, reported as such.
fn legacy_prefix_scorer(
    p: &mut Params,
    env: &mut super::registry::BuildEnv,
) -> Result<Built, ConfigError> {
    use super::legacy_prefix::{translate, LegacyPrefix};
    let t = translate(p)?;
    let name = p.plugin_name().to_string();
    let mut built = match t.producer {
        LegacyPrefix::Estimate(v) => {
            let mut q = Params::new(&name, "approx-prefix-cache-producer", Some(&v))?;
            let a = arc(ApproxPrefixProducer::from_params(&mut q)?);
            q.finish()?;
            Built {
                scorer: Some(arc(PrefixCacheScorer::bound_to(&name))),
                producer: Some(a.clone()),
                pre_request: Some(a),
                produces: vec![DataKey::PrefixCacheMatchInfo],
                consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
                ..Default::default()
            }
        }
        LegacyPrefix::CacheTracking(v) => {
            let mut q = Params::new(&name, "precise-prefix-cache-producer", Some(&v))?;
            let producer = PrecisePrefixProducer::from_params(&mut q, env.engine_hasher.as_ref())?;
            q.finish()?;
            precise_all_in_one(producer, &name)
        }
    };
    built.remark = Some(t.remark);
    built.settings_not_executed.extend(t.not_executed);
    Ok(built)
}
