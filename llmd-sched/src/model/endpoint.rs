//! Endpoints: what the host tells the scheduler about each model-server port.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// Label carrying the P/D role of an endpoint.
pub const ROLE_LABEL: &str = "llm-d.ai/role";
/// Endpoint label (llmd's own) with the KV-cache bytes per token of the
/// model the endpoint serves: 2 × layers × KV heads × head dim × bytes per
/// element. With it the metrics report a P/D KV transfer in bytes.
pub const KV_BYTES_LABEL: &str = "llmd.dev/kv-bytes-per-token";

/// The P/D role of an endpoint, parsed from its `llm-d.ai/role` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `decode`
    Decode,
    /// `prefill`
    Prefill,
    /// `encode`
    Encode,
    /// `prefill-decode`, or the deprecated `both`
    PrefillDecode,
    /// `encode-prefill`
    EncodePrefill,
    /// `encode-prefill-decode`
    EncodePrefillDecode,
}

impl Role {
    /// Parses a label value; unknown values are `None` (such endpoints match no role set).
    pub fn parse(value: &str) -> Option<Role> {
        Some(match value {
            "decode" => Role::Decode,
            "prefill" => Role::Prefill,
            "encode" => Role::Encode,
            "prefill-decode" | "both" => Role::PrefillDecode,
            "encode-prefill" => Role::EncodePrefill,
            "encode-prefill-decode" => Role::EncodePrefillDecode,
            _ => return None,
        })
    }
}

/// A metrics snapshot of one endpoint, as scraped from the model server.
///
/// `updated_at_ns == 0` means "never scraped": the utilization detector treats
/// such an endpoint as saturated, scorers read the zero values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointMetrics {
    /// `vllm:num_requests_waiting`.
    pub waiting_queue_size: u32,
    /// `vllm:num_requests_running`.
    pub running_requests_size: u32,
    /// `vllm:kv_cache_usage_perc` (legacy `vllm:gpu_cache_usage_perc`), in [0, 1].
    pub kv_cache_usage: f64,
    /// LoRA adapters running on the endpoint (`running_lora_adapters`).
    pub active_models: Vec<String>,
    /// LoRA adapters waiting for a slot (`waiting_lora_adapters`).
    pub waiting_models: Vec<String>,
    /// `max_lora`; 0 when unknown.
    pub max_active_models: u32,
    /// `vllm:cache_config_info{block_size}`; 0 when unknown.
    pub cache_block_size: u32,
    /// `vllm:cache_config_info{num_gpu_blocks}`; 0 when unknown.
    pub cache_num_blocks: u64,
    /// When the snapshot was taken (clock nanoseconds); 0 = never.
    pub updated_at_ns: u64,
}

/// An endpoint as registered by the host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Unique name (for Kubernetes, `namespace/pod` or `pod:rank`).
    pub name: String,
    /// `ip:port` written into the routing headers.
    pub address: String,
    /// Labels, including `llm-d.ai/role` and `llm-d.ai/context-length-range`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Served base model, if known.
    #[serde(default)]
    pub model: Option<String>,
    /// LoRA adapters the endpoint can serve.
    #[serde(default)]
    pub lora_adapters: Vec<String>,
    /// Initial metrics snapshot.
    #[serde(default)]
    pub metrics: EndpointMetrics,
}

impl Endpoint {
    /// An endpoint with a name and an address and nothing else.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Endpoint {
            name: name.into(),
            address: address.into(),
            ..Default::default()
        }
    }

    /// Builder: adds a label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Builder: sets the metrics snapshot.
    pub fn with_metrics(mut self, metrics: EndpointMetrics) -> Self {
        self.metrics = metrics;
        self
    }
}

/// LoRA state read by the LoRA-affinity scorer, swapped as one unit.
#[derive(Debug, Default)]
pub(crate) struct LoraState {
    pub active: Vec<String>,
    pub waiting: Vec<String>,
    pub max: u32,
}

/// The scheduler's live view of one endpoint.
///
/// Numeric metrics are atomics so the hot path reads them without locks; a
/// reader may see fields from two consecutive snapshots, which is harmless for
/// scoring (each field is individually consistent).
#[derive(Debug)]
pub struct EndpointState {
    uid: u64,
    info: Endpoint,
    name: Arc<str>,
    /// [`llmd_kvindex::index::model_key`] of the served model ("" when none).
    model_key: u64,
    role: Option<Role>,
    kv_bytes_per_token: Option<u64>,
    queue: AtomicU32,
    running: AtomicU32,
    kv_bits: AtomicU64,
    block_size: AtomicU32,
    num_blocks: AtomicU64,
    updated_at: AtomicU64,
    lora: RwLock<Arc<LoraState>>,
    inflight_requests: AtomicI64,
    inflight_tokens: AtomicI64,
}

/// What a pick's passes over the whole fleet read of each endpoint, fixed
/// for the endpoint's lifetime. The scheduler keeps the fleet's tags side by
/// side ([`crate::framework::CycleContext::tag`]), so those passes read one
/// dense array instead of visiting every endpoint's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointTag {
    /// [`EndpointState::uid`].
    pub uid: u64,
    /// [`EndpointState::served_model_key`].
    pub model_key: u64,
    /// [`EndpointState::role`].
    pub role: Option<Role>,
    /// [`EndpointState::has_role_label`].
    pub role_labeled: bool,
}

/// The [`KV_BYTES_LABEL`] of `labels`: `None` when absent, an error (saying
/// why) when it is not a positive integer.
pub(crate) fn kv_bytes_label(
    labels: &BTreeMap<String, String>,
) -> Result<Option<u64>, &'static str> {
    match labels.get(KV_BYTES_LABEL) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err("must be a positive integer (bytes per token)"),
        },
    }
}

impl EndpointState {
    pub(crate) fn new(info: Endpoint) -> Self {
        let role = info.labels.get(ROLE_LABEL).and_then(|v| Role::parse(v));
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        let state = EndpointState {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            name: Arc::from(info.name.as_str()),
            model_key: llmd_kvindex::index::model_key(info.model.as_deref().unwrap_or("")),
            role,
            kv_bytes_per_token: kv_bytes_label(&info.labels).ok().flatten(),
            queue: AtomicU32::new(0),
            running: AtomicU32::new(0),
            kv_bits: AtomicU64::new(0),
            block_size: AtomicU32::new(0),
            num_blocks: AtomicU64::new(0),
            updated_at: AtomicU64::new(0),
            lora: RwLock::new(Arc::default()),
            inflight_requests: AtomicI64::new(0),
            inflight_tokens: AtomicI64::new(0),
            info,
        };
        let m = state.info.metrics.clone();
        state.set_metrics(&m);
        state
    }

    /// KV-cache bytes per token of the served model: the endpoint's
    /// [`KV_BYTES_LABEL`], when set.
    pub fn kv_bytes_per_token(&self) -> Option<u64> {
        self.kv_bytes_per_token
    }

    /// Process-unique id of this registration (a re-added endpoint gets a new one).
    pub fn uid(&self) -> u64 {
        self.uid
    }
    /// The registered descriptor (its `metrics` field is the initial snapshot only).
    pub fn info(&self) -> &Endpoint {
        &self.info
    }
    /// The model this endpoint's KV events are indexed under: its served
    /// model, or "" when it was registered without one.
    pub fn served_model(&self) -> &str {
        self.info.model.as_deref().unwrap_or("")
    }
    /// The index's identity of [`EndpointState::served_model`]: equal keys
    /// mean the prefix index treats the two models as one.
    pub fn served_model_key(&self) -> u64 {
        self.model_key
    }
    /// Endpoint name.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub(crate) fn name_arc(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }
    /// `ip:port`.
    pub fn address(&self) -> &str {
        &self.info.address
    }
    /// A label value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.info.labels.get(key).map(String::as_str)
    }
    /// Role from `llm-d.ai/role`; `None` when unlabeled or unknown.
    pub fn role(&self) -> Option<Role> {
        self.role
    }
    /// True when the `llm-d.ai/role` label is present at all.
    pub fn has_role_label(&self) -> bool {
        self.info.labels.contains_key(ROLE_LABEL)
    }
    /// The endpoint's [`EndpointTag`].
    pub fn tag(&self) -> EndpointTag {
        EndpointTag {
            uid: self.uid,
            model_key: self.model_key,
            role: self.role,
            role_labeled: self.has_role_label(),
        }
    }
    /// Waiting queue size.
    pub fn waiting_queue_size(&self) -> u32 {
        self.queue.load(Ordering::Relaxed)
    }
    /// Running requests.
    pub fn running_requests_size(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }
    /// KV-cache usage in [0, 1].
    pub fn kv_cache_usage(&self) -> f64 {
        f64::from_bits(self.kv_bits.load(Ordering::Relaxed))
    }
    /// Engine block size in tokens (0 = unknown).
    pub fn cache_block_size(&self) -> u32 {
        self.block_size.load(Ordering::Relaxed)
    }
    /// Engine GPU block count (0 = unknown).
    pub fn cache_num_blocks(&self) -> u64 {
        self.num_blocks.load(Ordering::Relaxed)
    }
    /// Metrics timestamp in clock nanoseconds (0 = never scraped).
    pub fn metrics_updated_at_ns(&self) -> u64 {
        self.updated_at.load(Ordering::Relaxed)
    }
    /// LoRA adapters: (active, waiting, max).
    pub fn lora(&self) -> (Vec<String>, Vec<String>, u32) {
        let l = self.lora_state();
        (l.active.clone(), l.waiting.clone(), l.max)
    }
    pub(crate) fn lora_state(&self) -> Arc<LoraState> {
        Arc::clone(&self.lora.read())
    }
    /// Requests in flight from this scheduler to the endpoint.
    pub fn inflight_requests(&self) -> i64 {
        self.inflight_requests.load(Ordering::Relaxed).max(0)
    }
    /// Uncached prompt tokens in flight from this scheduler to the endpoint.
    pub fn inflight_tokens(&self) -> i64 {
        self.inflight_tokens.load(Ordering::Relaxed).max(0)
    }
    pub(crate) fn add_inflight(&self, requests: i64, tokens: i64) {
        self.inflight_requests
            .fetch_add(requests, Ordering::Relaxed);
        self.inflight_tokens.fetch_add(tokens, Ordering::Relaxed);
    }
    /// A full copy of the current metrics.
    pub fn metrics(&self) -> EndpointMetrics {
        let l = self.lora_state();
        EndpointMetrics {
            waiting_queue_size: self.waiting_queue_size(),
            running_requests_size: self.running_requests_size(),
            kv_cache_usage: self.kv_cache_usage(),
            active_models: l.active.clone(),
            waiting_models: l.waiting.clone(),
            max_active_models: l.max,
            cache_block_size: self.cache_block_size(),
            cache_num_blocks: self.cache_num_blocks(),
            updated_at_ns: self.metrics_updated_at_ns(),
        }
    }
    pub(crate) fn set_metrics(&self, m: &EndpointMetrics) {
        self.queue.store(m.waiting_queue_size, Ordering::Relaxed);
        self.running
            .store(m.running_requests_size, Ordering::Relaxed);
        self.kv_bits
            .store(m.kv_cache_usage.to_bits(), Ordering::Relaxed);
        self.block_size.store(m.cache_block_size, Ordering::Relaxed);
        self.num_blocks.store(m.cache_num_blocks, Ordering::Relaxed);
        *self.lora.write() = Arc::new(LoraState {
            active: m.active_models.clone(),
            waiting: m.waiting_models.clone(),
            max: m.max_active_models,
        });
        // Written last so a reader that sees the new timestamp sees fresh values.
        self.updated_at.store(m.updated_at_ns, Ordering::Release);
    }
}
