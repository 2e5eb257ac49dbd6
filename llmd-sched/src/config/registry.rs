//! The plugin registry: every type the loader knows, keyed by llm-d's `type`
//! name. The lists themselves are in [`super::builtins`] (executed stages,
//! grouped by family) and [`super::host_owned`] (accepted, run by the host).

use std::collections::HashMap;
use std::sync::Arc;

use super::params::Params;
use crate::error::ConfigError;
use crate::framework::{
    Decider, Filter, Picker, PreRequest, Producer, ProfileHandler, Scorer, Screener,
};
use crate::inflight::InFlightTable;
use crate::kv::KvBackend;
use crate::plugins::filters::SaturationDetector;

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

/// The latency producer's type (and default instance name).
pub const LATENCY_PRODUCER: &str = "predicted-latency-producer";

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
    /// `EncoderCacheMatchInfo` (default `mm-embeddings-cache-producer`).
    EncoderCacheMatchInfo,
    /// `LatencyPredictionInfo` (default `predicted-latency-producer`).
    LatencyPredictionInfo,
}

impl DataKey {
    /// The type created when nobody produces the key; `None` = no default.
    pub fn default_producer(self) -> Option<&'static str> {
        match self {
            DataKey::TokenizedPrompt => Some("token-producer"),
            DataKey::PrefixCacheMatchInfo => Some("approx-prefix-cache-producer"),
            DataKey::InFlightLoad => Some("inflight-load-producer"),
            DataKey::UncachedRequestTokens => None,
            DataKey::EncoderCacheMatchInfo => Some("mm-embeddings-cache-producer"),
            DataKey::LatencyPredictionInfo => Some(LATENCY_PRODUCER),
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
    /// Request-control screener (runs before the producers and profiles).
    pub screener: Option<Arc<dyn Screener>>,
    /// Profile handler form.
    pub handler: Option<Arc<dyn ProfileHandler>>,
    /// P/D decider form.
    pub decider: Option<Arc<dyn Decider>>,
    /// Saturation detector form.
    pub detector: Option<SaturationDetector>,
    /// The KV index a precise producer reads.
    pub kv_backend: Option<Arc<dyn KvBackend>>,
    /// Set for plugins the library accepts but does not execute: why.
    pub not_executed: Option<&'static str>,
    /// A remark for the load report (partly executed options).
    pub remark: Option<&'static str>,
    /// Settings accepted but not executed: (dotted path, what the host does instead).
    pub settings_not_executed: Vec<(String, String)>,
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
    /// The engines' hashing, when the host knows it: precise producers then run in engine-parity mode.
    pub engine_hasher: Option<llmd_kvindex::hash::HasherConfig>,
    /// The scheduler's online latency model (`predicted-latency-producer`).
    pub latency: Arc<crate::latency::OnlineLatencyModel>,
    /// Set by a `predicted-latency-producer`: how the model is trained.
    pub latency_settings: Option<crate::plugins::producers::LatencySettings>,
    /// Set by a `latency-slo-admitter`.
    pub latency_admitter: bool,
    /// Instance names of the document's `precise-prefix-cache-producer`s
    /// (a legacy `precise-prefix-cache-scorer` binds to the only one).
    pub precise_producers: Vec<String>,
}

pub(crate) type Factory = fn(&mut Params, &mut BuildEnv) -> Result<Built, ConfigError>;

/// One registry entry.
pub struct Entry {
    /// The llm-d `type` string.
    pub ty: &'static str,
    /// Stability.
    pub stability: Stability,
    /// Builder.
    pub build: Factory,
}

/// Every executed plugin type, in reading order.
fn executed() -> impl Iterator<Item = &'static Entry> {
    super::builtins::STAGES
        .iter()
        .chain(super::builtins::PIPELINE.iter())
        .chain(super::host_owned::VALIDATED.iter())
}

/// The registry entry for a type.
pub fn lookup(ty: &str) -> Option<&'static Entry> {
    executed().find(|e| e.ty == ty)
}

/// The host-owned entry for a type: (stability, reason).
pub fn lookup_host_owned(ty: &str) -> Option<(Stability, &'static str)> {
    super::host_owned::HOST_OWNED
        .iter()
        .find(|e| e.0 == ty)
        .map(|e| (e.1, e.2))
}

/// All registered type names, sorted (for error messages).
pub fn known_types() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = executed()
        .map(|e| e.ty)
        .chain(super::host_owned::HOST_OWNED.iter().map(|e| e.0))
        .collect();
    v.sort_unstable();
    v
}
