//! Simulated requests: what a workload asks for and what happened to it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Latency objectives of one request (seconds).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Time to first token bound, seconds.
    pub ttft_s: f64,
    /// Mean time per output token bound, seconds.
    pub tpot_s: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Slo {
            ttft_s: 2.0,
            tpot_s: 0.1,
        }
    }
}

/// One request produced by a workload.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// Dense id, in arrival order.
    pub id: u64,
    /// Arrival time, seconds.
    pub arrival: f64,
    /// Prompt token ids.
    pub prompt: Arc<[u32]>,
    /// Tokens to generate (the request ignores EOS).
    pub output_len: u32,
    /// Seed of the output tokens (a pure function of it and the position).
    pub output_seed: u64,
    /// LoRA adapter, if any.
    pub lora: Option<String>,
    /// Session id (multi-turn chat).
    pub session: Option<String>,
    /// Prefix group, for reports.
    pub group: Option<u32>,
    /// Objectives.
    pub slo: Slo,
    /// Priority (llm-d's `x-gateway-inference-objective` priority): below 0
    /// is sheddable, which admission control may refuse under load.
    pub priority: i32,
    /// Ladder stage that sent it (`None` without a ladder). With
    /// `arrivals.drain_stages`, `arrival` is counted from the stage's start
    /// until the engine places the stage.
    pub stage: Option<u32>,
}

/// How a request ended.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Outcome {
    /// Every output token was produced.
    Completed,
    /// The request failed; the reason says why.
    Failed(String),
    /// The router's admission control refused it (a sheddable request no
    /// endpoint was predicted to serve within its objectives, or a full
    /// fleet); the reason says why.
    Rejected(String),
}

/// Per-request record written with `--trace-out`.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// Request id.
    pub id: u64,
    /// Arrival, seconds.
    pub arrival: f64,
    /// Worker that decoded it.
    pub worker: Option<usize>,
    /// Worker that prefilled it (P/D only).
    pub prefill_worker: Option<usize>,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Prompt tokens served from a prefix cache (GPU or CPU tier).
    pub cached_tokens: u32,
    /// Output tokens produced.
    pub output_tokens: u32,
    /// First token time, seconds.
    pub first_token: Option<f64>,
    /// Completion time, seconds.
    pub finished: Option<f64>,
    /// Times it was preempted.
    pub preemptions: u32,
    /// Outcome.
    pub outcome: Outcome,
    /// Objectives it was judged against.
    pub slo: Slo,
    /// Its priority (below 0: sheddable).
    pub priority: i32,
    /// Ladder stage that sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<u32>,
}

impl RequestRecord {
    /// Time to first token, seconds.
    pub fn ttft(&self) -> Option<f64> {
        self.first_token.map(|t| t - self.arrival)
    }

    /// Mean time per output token after the first (0 for one token).
    pub fn tpot(&self) -> Option<f64> {
        match (self.first_token, self.finished) {
            (Some(f), Some(e)) if self.output_tokens > 1 => {
                Some((e - f) / f64::from(self.output_tokens - 1))
            }
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        }
    }

    /// Completed within both objectives.
    pub fn good(&self) -> bool {
        self.outcome == Outcome::Completed
            && self.ttft().is_some_and(|t| t <= self.slo.ttft_s)
            && self.tpot().is_some_and(|t| t <= self.slo.tpot_s)
    }
}
