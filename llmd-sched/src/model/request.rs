//! Requests as the scheduler sees them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The prompt: token ids (pre-tokenized) or text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Token ids, used as they are.
    Tokens(Vec<u32>),
    /// Text; tokenized by the configured token producer (llm-d's `estimate` backend).
    Text(String),
}

impl Default for Prompt {
    fn default() -> Self {
        Prompt::Tokens(Vec::new())
    }
}

/// Per-request latency objectives in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Time to first token (ms); only a finite value above 0 is an
    /// objective (see [`Request::ttft_slo_ms`]).
    pub ttft_ms: Option<f64>,
    /// Time per output token (ms); likewise.
    pub tpot_ms: Option<f64>,
}

/// A LoRA adapter reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoraRef {
    /// Integer id as vLLM assigns it (part of vLLM's block-hash extra keys).
    pub id: Option<i64>,
    /// Adapter name (the "model" a client asks for).
    pub name: String,
    /// Adapter path, if the engine identifies adapters by path.
    pub path: Option<String>,
}

/// One request to schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Request id; the lifecycle calls (`on_first_token`, ...) use it.
    pub id: String,
    /// Target model (after rewrites); for LoRA requests the base model.
    pub model: String,
    /// The prompt.
    pub prompt: Prompt,
    /// LoRA adapter, if any.
    #[serde(default)]
    pub lora: Option<LoraRef>,
    /// vLLM `cache_salt`.
    #[serde(default)]
    pub cache_salt: Option<String>,
    /// Session id (also read from headers by session plugins).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Request headers; names are matched case-insensitively.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Objective priority; negative = sheddable.
    #[serde(default)]
    pub priority: i32,
    /// Latency objectives; header `x-llm-d-slo-ttft-ms` / `x-llm-d-slo-tpot-ms` also count.
    #[serde(default)]
    pub slo: Slo,
    /// The request carries multimodal items (read by the multimodal encode decider).
    #[serde(default)]
    pub multimodal: bool,
    /// Identities of the request's multimodal items (images, videos,
    /// audio), read by `mm-embeddings-cache-producer`: the engine's multimodal
    /// hashes when the host has them; from an OpenAI body, the xxh64 (hex) of
    /// each image or video URL and of each audio's data and format, as
    /// llm-d's estimating tokenizer identifies them. Duplicates count once.
    #[serde(default)]
    pub mm_items: Vec<String>,
    /// When the request reached the router, on the scheduler's clock
    /// ([`crate::Clock::now_ns`]). With it, TTFT, end-to-end latency and the
    /// router queue-time metric start at arrival (time spent queued in the
    /// host before `pick` included); without it they start when `pick` is
    /// called. A value after the `pick` call is ignored.
    #[serde(default)]
    pub arrived_at_ns: Option<u64>,
    /// The most tokens the request may generate (OpenAI `max_tokens` /
    /// `max_completion_tokens`): caps the output-token estimate of the
    /// in-flight load producer (`addEstimatedOutputTokens`), since a request
    /// never produces more than it asks for.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
}

impl Request {
    /// A request for `model` with token ids.
    pub fn with_tokens(id: impl Into<String>, model: impl Into<String>, tokens: Vec<u32>) -> Self {
        Request {
            id: id.into(),
            model: model.into(),
            prompt: Prompt::Tokens(tokens),
            ..Default::default()
        }
    }

    /// A request for `model` with a text prompt.
    pub fn with_text(
        id: impl Into<String>,
        model: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Request {
            id: id.into(),
            model: model.into(),
            prompt: Prompt::Text(text.into()),
            ..Default::default()
        }
    }

    /// Builder: adds a header (the name is stored lower-case).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }

    /// A header value, matched case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.headers.get(name) {
            return Some(v);
        }
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The model whose adapters matter for LoRA affinity: the adapter name, else the model.
    pub fn target_model(&self) -> &str {
        self.lora
            .as_ref()
            .map(|l| l.name.as_str())
            .unwrap_or(&self.model)
    }

    /// TTFT objective from the request or its `x-llm-d-slo-ttft-ms` (legacy
    /// `x-slo-ttft-ms`) header. Only a finite value above 0 is an objective:
    /// 0, a negative, NaN or infinite value (a header of `inf` from a client)
    /// counts as none.
    pub fn ttft_slo_ms(&self) -> Option<f64> {
        objective(self.slo.ttft_ms)
            .or_else(|| objective(self.header_f64(&["x-llm-d-slo-ttft-ms", "x-slo-ttft-ms"])))
    }

    /// TPOT objective from the request or its `x-llm-d-slo-tpot-ms` (legacy `x-slo-tpot-ms`) header.
    /// Only a finite value above 0 is an objective, as for TTFT.
    pub fn tpot_slo_ms(&self) -> Option<f64> {
        objective(self.slo.tpot_ms)
            .or_else(|| objective(self.header_f64(&["x-llm-d-slo-tpot-ms", "x-slo-tpot-ms"])))
    }

    fn header_f64(&self, names: &[&str]) -> Option<f64> {
        names
            .iter()
            .find_map(|n| self.header_value(n)?.trim().parse::<f64>().ok())
    }
}

/// A latency objective in milliseconds, if `v` is one: finite and above 0.
fn objective(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v > 0.0)
}
