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
    /// An encode profile ran (E/PD, E/P/D): the `decision` label says so.
    pub encode: bool,
    /// The request's own objectives; unset ones fall back to the defaults.
    pub slo: SloTargets,
    /// KV-cache bytes per token of the decode endpoint's model (its
    /// [`crate::model::KV_BYTES_LABEL`] label), for the P/D transfer in
    /// bytes; `None` falls back to [`super::MetricsConfig::kv_bytes_per_token`].
    pub kv_bytes_per_token: Option<u64>,
    /// Serial number of the request's opening in the scheduler: of two
    /// records of one id, the later opening keeps the id, whichever is
    /// recorded last. 0 (a host recording decisions itself): the last
    /// recorded keeps it.
    pub opening: u64,
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
        let [p, o, c] = Self::openai_counts(usage).map(|(_, v)| v.and_then(count));
        Usage {
            prompt_tokens: p,
            output_tokens: o,
            cached_tokens: c,
        }
    }

    /// What [`Usage::from_openai`] leaves out of `usage` that a host may
    /// want to refuse: the first count present (not absent, not null) that
    /// is not an integer in `0 ..= 2^32 − 1`, named with its value.
    pub fn openai_problem(usage: &serde_json::Value) -> Option<String> {
        Self::openai_counts(usage)
            .into_iter()
            .find_map(|(name, v)| match v {
                Some(v) if !v.is_null() && count(v).is_none() => Some(format!(
                    "usage {name} {v} is not a token count (0 ..= 2^32-1)"
                )),
                _ => None,
            })
    }

    fn openai_counts(usage: &serde_json::Value) -> [(&'static str, Option<&serde_json::Value>); 3] {
        [
            ("prompt_tokens", usage.get("prompt_tokens")),
            ("completion_tokens", usage.get("completion_tokens")),
            (
                "prompt_tokens_details.cached_tokens",
                usage
                    .get("prompt_tokens_details")
                    .and_then(|d| d.get("cached_tokens")),
            ),
        ]
    }
}

/// A token count from JSON: an integer in `0 ..= 2^32 − 1`.
fn count(v: &serde_json::Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}
