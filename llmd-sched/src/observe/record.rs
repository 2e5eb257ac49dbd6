//! What the scheduler and the host tell the metrics: a decision, a
//! rejection, and the engine's usage at completion. Times are offsets from
//! the scheduler clock's epoch, so tests and the simulator control them.

use super::config::SloTargets;
use super::labels::RejectReason;
use std::time::Duration;

/// One endpoint chosen for a leg of a request.
#[derive(Clone, Copy, Debug)]
pub struct Leg<'a> {
    /// Endpoint name (as registered with [`super::Metrics::register_endpoint`]).
    pub endpoint: &'a str,
    /// Prompt blocks the router predicted cached on this endpoint.
    pub predicted_hit_blocks: u32,
}

/// A successful scheduling decision.
#[derive(Clone, Copy, Debug)]
pub struct DecisionRecord<'a> {
    /// Request id; only the lifecycle table sees it, never a label.
    pub request_id: &'a str,
    /// Requested model.
    pub model: &'a str,
    /// Primary (decode) profile that produced the target.
    pub profile: &'a str,
    /// When the router received the request.
    pub arrived: Duration,
    /// When the decision was made (the request is dispatched right after).
    pub decided: Duration,
    /// Prompt length in tokens (0 when unknown).
    pub prompt_tokens: u32,
    /// Tokens per KV block, to turn predicted blocks into tokens.
    pub block_size: u32,
    /// The decode (or only) target.
    pub decode: Leg<'a>,
    /// The prefill target under P/D.
    pub prefill: Option<Leg<'a>>,
    /// The request's own objectives; unset ones fall back to the defaults.
    pub slo: SloTargets,
    /// KV-cache bytes per token of the decode endpoint's model (its
    /// [`crate::model::KV_BYTES_LABEL`] label), for the P/D transfer in
    /// bytes; `None` falls back to [`super::MetricsConfig::kv_bytes_per_token`].
    pub kv_bytes_per_token: Option<u64>,
}

/// A request the scheduler refused.
#[derive(Clone, Copy, Debug)]
pub struct RejectRecord<'a> {
    /// Requested model.
    pub model: &'a str,
    /// Profile that failed.
    pub profile: &'a str,
    /// Why (429 or 503).
    pub reason: RejectReason,
    /// When the router received the request.
    pub arrived: Duration,
    /// When the scheduler gave up.
    pub decided: Duration,
    /// The request's own objectives (it counts as missing them).
    pub slo: SloTargets,
}

/// Token usage the engine reported at completion (OpenAI `usage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// `prompt_tokens`; falls back to the decision's prompt length.
    pub prompt_tokens: Option<u32>,
    /// `completion_tokens`; falls back to the tokens counted by the lifecycle calls.
    pub output_tokens: Option<u32>,
    /// `prompt_tokens_details.cached_tokens`; `None` when not reported.
    pub cached_tokens: Option<u32>,
}

impl Usage {
    /// Reads an OpenAI `usage` object (`prompt_tokens`, `completion_tokens`,
    /// `prompt_tokens_details.cached_tokens`, as vLLM returns it). Absent,
    /// null, negative or non-integer counts, and counts of 2^32 or more,
    /// are not reported (`None`); the rest of the object is ignored.
    pub fn from_openai(usage: &serde_json::Value) -> Usage {
        let count = |v: Option<&serde_json::Value>| {
            v.and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        };
        Usage {
            prompt_tokens: count(usage.get("prompt_tokens")),
            output_tokens: count(usage.get("completion_tokens")),
            cached_tokens: count(
                usage
                    .get("prompt_tokens_details")
                    .and_then(|d| d.get("cached_tokens")),
            ),
        }
    }
}
