//! Every plugin type the loader knows, in one list keyed by llm-d's `type` name.

use std::collections::HashMap;
use std::sync::Arc;

use super::params::Params;
use crate::error::ConfigError;
use crate::framework::{Decider, Filter, Picker, PreRequest, ProfileHandler, Producer, Scorer};
use crate::inflight::InFlightTable;
use crate::kv::KvBackend;
use crate::plugins::filters::{
    ByLabelFilter, ConcurrencyDetector, LabelSelectorFilter, PrefixCacheAffinityFilter, RoleFilter,
    SloHeadroomTierFilter, Stage, UtilizationDetector, UtilizationFilter,
};
use crate::plugins::pickers::{max_endpoints, MaxScorePicker, RandomPicker, WeightedRandomPicker};
use crate::plugins::producers::{ApproxPrefixProducer, InFlightLoadProducer, PrecisePrefixProducer, TokenProducer};
use crate::plugins::profile::{
    AlwaysDisaggDecider, DisaggProfileHandler, MultimodalDecider, PrefixBasedPdDecider, SingleProfileHandler,
};
use crate::plugins::scorers::{
    ActiveRequestScorer, ContextLengthAware, Gauge, KvCacheUtilizationScorer, LoadAwareScorer, LoraAffinityScorer,
    MinMaxScorer, NoHitLruScorer, PrefixCacheScorer, SessionAffinity, TokenLoadScorer,
};

/// llm-d's stability level of a plugin type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stability {
    /// Beta.
    Beta,
    /// Alpha: llm-d refuses it without `--allow-experimental-plugins`.
    Alpha,
    /// Deprecated: accepted with a warning.
    Deprecated,
}

/// Data a plugin needs from a producer (llm-d data keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataKey {
    /// `TokenizedPrompt` (default producer `token-producer`).
    TokenizedPrompt,
    /// `PrefixCacheMatchInfo` (default `approx-prefix-cache-producer`).
    PrefixCacheMatchInfo,
    /// `InFlightLoad` (default `inflight-load-producer`).
    InFlightLoad,
    /// `UncachedRequestTokens` (no default producer).
    UncachedRequestTokens,
}

impl DataKey {
    /// The type created when nobody produces the key; `None` = no default.
    pub fn default_producer(self) -> Option<&'static str> {
        match self {
            DataKey::TokenizedPrompt => Some("token-producer"),
            DataKey::PrefixCacheMatchInfo => Some("approx-prefix-cache-producer"),
            DataKey::InFlightLoad => Some("inflight-load-producer"),
            DataKey::UncachedRequestTokens => None,
        }
    }
}

/// What one built plugin instance can do; the loader places it by capability.
#[derive(Clone, Default)]
pub struct Built {
    /// Filter form.
    pub filter: Option<Arc<dyn Filter>>,
    /// Scorer form.
    pub scorer: Option<Arc<dyn Scorer>>,
    /// Picker form.
    pub picker: Option<Arc<dyn Picker>>,
    /// Data producer form.
    pub producer: Option<Arc<dyn Producer>>,
    /// Post-decision hook.
    pub pre_request: Option<Arc<dyn PreRequest>>,
    /// Profile handler form.
    pub handler: Option<Arc<dyn ProfileHandler>>,
    /// P/D decider form.
    pub decider: Option<Arc<dyn Decider>>,
    /// Saturation detector form.
    pub detector: Option<UtilizationDetector>,
    /// The KV index a precise producer reads.
    pub kv_backend: Option<Arc<dyn KvBackend>>,
    /// Set for plugins the library accepts but does not execute: why.
    pub not_executed: Option<&'static str>,
    /// A remark for the load report (partly executed options).
    pub remark: Option<&'static str>,
    /// Keys this instance produces.
    pub produces: Vec<DataKey>,
    /// Keys this instance needs, with the producer instance name it reads.
    pub consumes: Vec<(DataKey, String)>,
}

/// Shared objects factories may need.
pub struct BuildEnv {
    /// The scheduler's in-flight table.
    pub inflight: Arc<InFlightTable>,
    /// Deciders built so far, by instance name (handlers are built last).
    pub deciders: HashMap<String, Arc<dyn Decider>>,
}

type Factory = fn(&mut Params, &mut BuildEnv) -> Result<Built, ConfigError>;

/// One registry entry.
pub struct Entry {
    /// The llm-d `type` string.
    pub ty: &'static str,
    /// Stability.
    pub stability: Stability,
    /// Builder.
    pub build: Factory,
}

use Stability::{Alpha as A, Beta as B, Deprecated as D};

fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
fn filter<F: Filter + 'static>(f: F) -> Built {
    Built { filter: Some(arc(f)), ..Default::default() }
}
fn scorer<S: Scorer + 'static>(s: S) -> Built {
    Built { scorer: Some(arc(s)), ..Default::default() }
}
fn picker<P: Picker + 'static>(p: P) -> Built {
    Built { picker: Some(arc(p)), ..Default::default() }
}
fn decider<X: Decider + 'static>(d: X) -> Built {
    Built { decider: Some(arc(d)), ..Default::default() }
}
fn inflight_consumer(mut b: Built) -> Built {
    b.consumes.push((DataKey::InFlightLoad, "inflight-load-producer".into()));
    b
}
fn prefix_consumer(mut b: Built, producer: &str) -> Built {
    b.consumes.push((DataKey::PrefixCacheMatchInfo, producer.into()));
    b
}
/// Every plugin type, keyed by llm-d `type`. Order is only for reading.
pub static REGISTRY: &[Entry] = &[
    // ---- filters -------------------------------------------------------------
    Entry { ty: "decode-filter", stability: B, build: |_, _| Ok(filter(RoleFilter::new(Stage::Decode))) },
    Entry { ty: "prefill-filter", stability: B, build: |_, _| Ok(filter(RoleFilter::new(Stage::Prefill))) },
    Entry { ty: "encode-filter", stability: B, build: |_, _| Ok(filter(RoleFilter::new(Stage::Encode))) },
    Entry { ty: "label-selector-filter", stability: B, build: |p, _| Ok(filter(LabelSelectorFilter::from_params(p)?)) },
    Entry { ty: "by-label-selector", stability: D, build: |p, _| Ok(filter(LabelSelectorFilter::from_params(p)?)) },
    Entry { ty: "by-label", stability: D, build: |p, _| Ok(filter(ByLabelFilter::from_params(p)?)) },
    Entry { ty: "prefix-cache-affinity-filter", stability: B, build: |p, _| {
        let f = PrefixCacheAffinityFilter::from_params(p)?;
        let producer = f.producer.to_string();
        Ok(inflight_consumer(prefix_consumer(filter(f), &producer)))
    } },
    // Filter (fail-open) and pool saturation detector in one.
    Entry { ty: "utilization-detector", stability: B, build: |p, _| {
        let d = UtilizationDetector::from_params(p)?;
        Ok(Built { filter: Some(arc(d.clone())), detector: Some(d), ..Default::default() })
    } },
    Entry { ty: "concurrency-detector", stability: B, build: |p, _| Ok(inflight_consumer(filter(ConcurrencyDetector::from_params(p)?))) },
    Entry { ty: "utilization-filter", stability: A, build: |p, _| Ok(inflight_consumer(filter(UtilizationFilter::from_params(p)?))) },
    Entry { ty: "session-affinity-filter", stability: A, build: |p, _| {
        let s = arc(SessionAffinity::from_params(p)?);
        Ok(Built { filter: Some(s.clone()), pre_request: Some(s), ..Default::default() })
    } },
    Entry { ty: "slo-headroom-tier-filter", stability: B, build: |p, _| Ok(filter(SloHeadroomTierFilter::from_params(p)?)) },
    // Scorer, and a filter when `enableFiltering` is set.
    Entry { ty: "context-length-aware", stability: B, build: |p, _| {
        let c = arc(ContextLengthAware::from_params(p)?);
        let filter: Option<Arc<dyn Filter>> = if c.filtering { Some(c.clone()) } else { None };
        Ok(Built { scorer: Some(c), filter, ..Default::default() })
    } },
    // ---- scorers -------------------------------------------------------------
    Entry { ty: "queue-scorer", stability: B, build: |_, _| Ok(scorer(MinMaxScorer::new(Gauge::WaitingQueue))) },
    Entry { ty: "running-requests-size-scorer", stability: B, build: |_, _| Ok(scorer(MinMaxScorer::new(Gauge::RunningRequests))) },
    Entry { ty: "kv-cache-utilization-scorer", stability: B, build: |_, _| Ok(scorer(KvCacheUtilizationScorer)) },
    Entry { ty: "load-aware-scorer", stability: B, build: |p, _| Ok(scorer(LoadAwareScorer::from_params(p)?)) },
    Entry { ty: "token-load-scorer", stability: B, build: |p, _| {
        let mut b = inflight_consumer(scorer(TokenLoadScorer::from_params(p)?));
        b.consumes.push((DataKey::UncachedRequestTokens, "inflight-load-producer".into()));
        Ok(b)
    } },
    Entry { ty: "active-request-scorer", stability: B, build: |p, _| Ok(inflight_consumer(scorer(ActiveRequestScorer::from_params(p)?))) },
    Entry { ty: "prefix-cache-scorer", stability: B, build: |p, _| {
        let s = PrefixCacheScorer::from_params(p)?;
        let producer = s.producer.to_string();
        Ok(prefix_consumer(scorer(s), &producer))
    } },
    // Legacy all-in-one: the loader expands it into a precise producer + prefix-cache-scorer.
    Entry { ty: "precise-prefix-cache-scorer", stability: D, build: |p, _| {
        let producer = PrecisePrefixProducer::from_params(p)?;
        let name = p.plugin_name().to_string();
        let backend = producer.backend().clone();
        let producer = arc(producer);
        Ok(Built {
            scorer: Some(arc(PrefixCacheScorer::bound_to(&name))),
            producer: Some(producer.clone()),
            pre_request: Some(producer),
            kv_backend: Some(backend),
            produces: vec![DataKey::PrefixCacheMatchInfo],
            consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
            ..Default::default()
        })
    } },
    Entry { ty: "lora-affinity-scorer", stability: B, build: |_, _| Ok(scorer(LoraAffinityScorer)) },
    Entry { ty: "no-hit-lru-scorer", stability: B, build: |p, _| {
        let s = arc(NoHitLruScorer::from_params(p)?);
        let producer = s.producer().to_string();
        Ok(prefix_consumer(Built { scorer: Some(s.clone()), pre_request: Some(s), ..Default::default() }, &producer))
    } },
    Entry { ty: "session-affinity-scorer", stability: A, build: |p, _| {
        let s = arc(SessionAffinity::from_params(p)?);
        Ok(Built { scorer: Some(s.clone()), pre_request: Some(s), ..Default::default() })
    } },
    // ---- pickers -------------------------------------------------------------
    Entry { ty: "max-score-picker", stability: B, build: |p, _| Ok(picker(MaxScorePicker { max: max_endpoints(p)? })) },
    Entry { ty: "random-picker", stability: B, build: |p, _| Ok(picker(RandomPicker { max: max_endpoints(p)? })) },
    Entry { ty: "weighted-random-picker", stability: B, build: |p, _| Ok(picker(WeightedRandomPicker { max: max_endpoints(p)? })) },
    // ---- profile handlers and deciders -----------------------------------------
    Entry { ty: "single-profile-handler", stability: B, build: |_, _| {
        Ok(Built { handler: Some(arc(SingleProfileHandler)), ..Default::default() })
    } },
    Entry { ty: "disagg-profile-handler", stability: B, build: |p, env| {
        let h = DisaggProfileHandler::from_params(p, &env.deciders)?;
        Ok(Built { handler: Some(arc(h)), ..Default::default() })
    } },
    Entry { ty: "prefix-based-pd-decider", stability: B, build: |p, _| Ok(decider(PrefixBasedPdDecider::from_params(p)?)) },
    Entry { ty: "always-disagg-pd-decider", stability: B, build: |_, _| Ok(decider(AlwaysDisaggDecider)) },
    Entry { ty: "always-disagg-multimodal-decider", stability: B, build: |_, _| Ok(decider(MultimodalDecider)) },
    // ---- producers -----------------------------------------------------------
    Entry { ty: "token-producer", stability: B, build: |p, _| token_producer(p) },
    Entry { ty: "tokenizer", stability: D, build: |p, _| token_producer(p) },
    Entry { ty: "approx-prefix-cache-producer", stability: B, build: |p, _| {
        let a = arc(ApproxPrefixProducer::from_params(p)?);
        Ok(Built {
            producer: Some(a.clone()),
            pre_request: Some(a),
            produces: vec![DataKey::PrefixCacheMatchInfo],
            consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
            ..Default::default()
        })
    } },
    Entry { ty: "precise-prefix-cache-producer", stability: B, build: |p, _| {
        let x = PrecisePrefixProducer::from_params(p)?;
        let backend = x.backend().clone();
        let x = arc(x);
        Ok(Built {
            producer: Some(x.clone()),
            pre_request: Some(x),
            kv_backend: Some(backend),
            produces: vec![DataKey::PrefixCacheMatchInfo],
            consumes: vec![(DataKey::TokenizedPrompt, "token-producer".into())],
            ..Default::default()
        })
    } },
    Entry { ty: "inflight-load-producer", stability: B, build: |p, env| {
        let x = arc(InFlightLoadProducer::from_params(p, env.inflight.clone())?);
        Ok(Built {
            producer: Some(x.clone()),
            pre_request: Some(x),
            produces: vec![DataKey::InFlightLoad, DataKey::UncachedRequestTokens],
            ..Default::default()
        })
    } },
    // ---- accepted, not executed by the library (the host owns I/O, queues, admission) ----
    Entry { ty: "metrics-data-source", stability: B, build: metrics_data_source },
    Entry { ty: "file-discovery", stability: B, build: file_discovery },
    Entry { ty: "probabilistic-admitter", stability: B, build: probabilistic_admitter },
    Entry { ty: "static-usage-limit-policy", stability: B, build: static_usage_limit },
];


/// Types accepted and recorded but not executed by the library (the host owns
/// I/O, queues and admission); their parameters are not interpreted.
pub static HOST_OWNED: &[(&str, Stability, &str)] = &[
    ("core-metrics-extractor", B, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("endpoint-notification-source", B, "host-owned: endpoint discovery (call add_endpoint / remove_endpoint)"),
    ("k8s-notification-source", B, "host-owned: endpoint discovery (call add_endpoint / remove_endpoint)"),
    ("models-data-source", B, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("models-data-extractor", B, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("dcgm-data-source", A, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("dcgm-extractor", A, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("topology-extractor", A, "host-owned: scraping and metric extraction (pass /metrics text to update_endpoint_metrics_text)"),
    ("openai-parser", B, "host-owned: request parsing (build a Request)"),
    ("anthropic-parser", B, "host-owned: request parsing (build a Request)"),
    ("vllmhttp-parser", B, "host-owned: request parsing (build a Request)"),
    ("passthrough-parser", B, "host-owned: request parsing (build a Request)"),
    ("vllmgrpc-parser", B, "host-owned: request parsing (build a Request)"),
    ("sglanghttp-parser", B, "host-owned: request parsing (build a Request)"),
    ("vertexai-parser", B, "host-owned: request parsing (build a Request)"),
    ("latency-slo-admitter", B, "host-owned: admission runs before scheduling"),
    ("fcfs-ordering-policy", B, "host-owned: flow control and queuing"),
    ("edf-ordering-policy", B, "host-owned: flow control and queuing"),
    ("slo-deadline-ordering-policy", B, "host-owned: flow control and queuing"),
    ("global-strict-fairness-policy", B, "host-owned: flow control and queuing"),
    ("round-robin-fairness-policy", B, "host-owned: flow control and queuing"),
    ("program-aware-fairness", B, "host-owned: flow control and queuing"),
    ("priority-holdback-policy", A, "host-owned: flow control and queuing"),
    ("soft-reflective-ceiling-policy", A, "host-owned: flow control and queuing"),
    ("sheddable-eviction-filter", B, "host-owned: flow control and queuing"),
    ("priority-then-time-eviction-order-policy", A, "host-owned: flow control and queuing"),
    ("session-id-producer", B, "host-owned: request parsing (set Request::session_id or headers)"),
    ("request-attribute-reporter", B, "host-owned: response metadata"),
    ("agent-identity", A, "host-owned: request headers"),
    ("predicted-latency-producer", B, "host-owned: latency predictions (attach a LatencyPredictor)"),
    ("mm-embeddings-cache-producer", B, "host-owned: multimodal encoder cache"),
];

fn token_producer(p: &mut Params) -> Result<Built, ConfigError> {
    let t = TokenProducer::from_params(p)?;
    let remark = matches!(t.backend, crate::plugins::producers::TokenBackend::Vllm { .. }).then_some(
        "vllm backend not executed by the library (no I/O): requests carrying token ids are used as pre-tokenized; text prompts fall back to the estimate",
    );
    Ok(Built { producer: Some(arc(t)), produces: vec![DataKey::TokenizedPrompt], remark, ..Default::default() })
}

fn accepted(reason: &'static str) -> Built {
    Built { not_executed: Some(reason), ..Default::default() }
}

fn metrics_data_source(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    let scheme = p.string("scheme", "http")?;
    if scheme != "http" && scheme != "https" {
        return Err(p.err("scheme", format!("unknown scheme '{scheme}' (expected http or https)")));
    }
    p.opt_string("path")?;
    if let Some(port) = p.opt_i64("port")? {
        if !(1..=65535).contains(&port) {
            return Err(p.err("port", "must be a port number in 1..=65535"));
        }
    }
    p.bool("insecureSkipVerify", true)?;
    p.opt_duration_ns("interval")?;
    for k in ["caCertPath", "certPath", "keyPath", "tlsCaPath", "tlsCertPath", "tlsKeyPath"] {
        p.opt_string(k)?;
    }
    Ok(accepted("host-owned: scrape /metrics and pass the text to update_endpoint_metrics_text"))
}

fn file_discovery(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    p.opt_string("path")?.filter(|s| !s.is_empty()).ok_or_else(|| p.err("path", "required"))?;
    p.bool("watchFile", false)?;
    Ok(accepted("host-owned: read the endpoint file and call add_endpoint / remove_endpoint"))
}

fn probabilistic_admitter(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    for (k, d) in [("queueDepthThreshold", 5.0), ("kvCacheUtilThreshold", 0.8), ("power", 5.0), ("k", 300.0)] {
        if p.f64(k, d)? <= 0.0 {
            return Err(p.err(k, "must be > 0"));
        }
    }
    Ok(accepted("host-owned: admission runs before scheduling"))
}

fn static_usage_limit(p: &mut Params, _: &mut BuildEnv) -> Result<Built, ConfigError> {
    let t = p.f64("threshold", 1.0)?;
    if t <= 0.0 {
        return Err(p.err("threshold", "must be > 0"));
    }
    Ok(accepted("host-owned: flow control"))
}

/// The registry entry for a type.
pub fn lookup(ty: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.ty == ty)
}

/// The host-owned entry for a type: (stability, reason).
pub fn lookup_host_owned(ty: &str) -> Option<(Stability, &'static str)> {
    HOST_OWNED.iter().find(|e| e.0 == ty).map(|e| (e.1, e.2))
}

/// All registered type names, sorted (for error messages).
pub fn known_types() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = REGISTRY.iter().map(|e| e.ty).chain(HOST_OWNED.iter().map(|e| e.0)).collect();
    v.sort_unstable();
    v
}
