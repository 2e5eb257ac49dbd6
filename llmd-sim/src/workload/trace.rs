//! Replay of a JSONL trace, one request per line:
//!
//! ```json
//! {"arrival": 0.25, "prompt_tokens": [101, 7, 42], "output_len": 64}
//! {"arrival": 0.50, "prompt_len": 7200, "prefix_group": 3, "prefix_len": 6000,
//!  "output_len": 1000, "slo_ttft_ms": 2000, "slo_tpot_ms": 50, "lora": "a", "session": "s1"}
//! ```
//!
//! With lengths instead of tokens, the first `prefix_len` tokens come from
//! the group's stream (identical across the group) and the rest are unique.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest trace file read (bytes): a million requests take about
/// 100 MB.
pub const MAX_TRACE_BYTES: u64 = 1 << 30;

use serde::{Deserialize, Serialize};

use super::{Workload, OUTPUT_LABEL};
use crate::error::{Result, SimError};
use crate::request::{RequestSpec, Slo};
use crate::tokens::{push_tokens, stream_id};

const TRACE_PREFIX: u64 = 0x5452_4350;
const TRACE_TAIL: u64 = 0x5452_4354;

/// Where the trace is and how to replay it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TraceSpec {
    /// JSONL file (relative to the scenario file).
    pub path: PathBuf,
    /// Multiplies every arrival time (0.5 = twice the rate).
    #[serde(default = "unit")]
    pub time_scale: f64,
}

fn unit() -> f64 {
    1.0
}

/// One line of a trace.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TraceLine {
    /// Arrival, seconds from the start.
    pub arrival: f64,
    /// Prompt token ids (or give `prompt_len`).
    #[serde(default)]
    pub prompt_tokens: Option<Vec<u32>>,
    /// Prompt length when tokens are not given.
    #[serde(default)]
    pub prompt_len: Option<u32>,
    /// Prefix group sharing the first `prefix_len` tokens.
    #[serde(default)]
    pub prefix_group: Option<u32>,
    /// Tokens shared within the group.
    #[serde(default)]
    pub prefix_len: Option<u32>,
    /// Tokens to generate.
    pub output_len: u32,
    /// TTFT objective, ms.
    #[serde(default)]
    pub slo_ttft_ms: Option<f64>,
    /// TPOT objective, ms.
    #[serde(default)]
    pub slo_tpot_ms: Option<f64>,
    /// LoRA adapter.
    #[serde(default)]
    pub lora: Option<String>,
    /// Session id.
    #[serde(default)]
    pub session: Option<String>,
    /// Priority (below 0: sheddable); 0 when absent.
    #[serde(default)]
    pub priority: Option<i32>,
}

pub(super) struct TraceGen {
    lines: std::vec::IntoIter<TraceLine>,
    next_id: u64,
    max: u64,
    slo: Slo,
    vocab: u32,
    seed: u64,
    scale: f64,
}

impl TraceGen {
    pub(super) fn load(
        spec: &TraceSpec,
        base: &Path,
        seed: u64,
        max: u64,
        slo: Slo,
        vocab: u32,
    ) -> Result<Self> {
        let path = if spec.path.is_absolute() {
            spec.path.clone()
        } else {
            base.join(&spec.path)
        };
        let text = crate::scenario::read_text(&path, MAX_TRACE_BYTES)?;
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let l: TraceLine = serde_json::from_str(line)
                .map_err(|e| SimError::Workload(format!("{}:{}: {e}", path.display(), n + 1)))?;
            let len = match (&l.prompt_tokens, l.prompt_len) {
                (Some(t), _) => t.len() as u64,
                (None, Some(n)) => u64::from(n),
                (None, None) => {
                    return Err(SimError::Workload(format!(
                        "{}:{}: give prompt_tokens or prompt_len",
                        path.display(),
                        n + 1
                    )))
                }
            };
            super::shapes::prompt_len(&format!("{}:{}: the prompt", path.display(), n + 1), len)?;
            if !(l.arrival >= 0.0 && l.arrival.is_finite()) {
                return Err(SimError::Workload(format!(
                    "{}:{}: bad arrival",
                    path.display(),
                    n + 1
                )));
            }
            // A line's objectives are held to the scenario's rule: > 0.
            for (what, v) in [
                ("slo_ttft_ms", l.slo_ttft_ms),
                ("slo_tpot_ms", l.slo_tpot_ms),
            ] {
                if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                    return Err(SimError::Workload(format!(
                        "{}:{}: {what} must be a finite number > 0, got {v}",
                        path.display(),
                        n + 1
                    )));
                }
            }
            lines.push(l);
        }
        lines.sort_by(|a, b| a.arrival.total_cmp(&b.arrival));
        if !(spec.time_scale > 0.0 && spec.time_scale.is_finite()) {
            return Err(SimError::Workload(format!(
                "trace.time_scale must be a finite number > 0, got {}",
                spec.time_scale
            )));
        }
        // Scaled arrivals must stay times: an infinite one never arrives.
        if let Some(last) = lines.last() {
            if !(last.arrival * spec.time_scale).is_finite() {
                return Err(SimError::Workload(format!(
                    "{}: arrival {} scaled by trace.time_scale {} is not a finite time",
                    path.display(),
                    last.arrival,
                    spec.time_scale
                )));
            }
        }
        Ok(TraceGen {
            lines: lines.into_iter(),
            next_id: 0,
            max,
            slo,
            vocab,
            seed,
            scale: spec.time_scale,
        })
    }
}

impl Workload for TraceGen {
    fn next_request(&mut self) -> Option<RequestSpec> {
        if self.next_id >= self.max {
            return None;
        }
        let l = self.lines.next()?;
        let id = self.next_id;
        self.next_id += 1;
        let prompt = match l.prompt_tokens {
            Some(t) => t,
            None => {
                let len = l.prompt_len.unwrap_or(0);
                let shared = l
                    .prefix_group
                    .map_or(0, |_| l.prefix_len.unwrap_or(0).min(len));
                let mut p = Vec::with_capacity(len as usize);
                if let Some(g) = l.prefix_group {
                    push_tokens(
                        &mut p,
                        stream_id(TRACE_PREFIX, self.seed, g.into()),
                        0,
                        shared.into(),
                        self.vocab,
                    );
                }
                push_tokens(
                    &mut p,
                    stream_id(TRACE_TAIL, self.seed, id),
                    0,
                    (len - shared).into(),
                    self.vocab,
                );
                p
            }
        };
        let slo = Slo {
            ttft_s: l.slo_ttft_ms.map_or(self.slo.ttft_s, |v| v / 1e3),
            tpot_s: l.slo_tpot_ms.map_or(self.slo.tpot_s, |v| v / 1e3),
        };
        Some(RequestSpec {
            id,
            arrival: l.arrival * self.scale,
            prompt: Arc::from(prompt),
            output_len: l.output_len.max(1),
            output_seed: stream_id(OUTPUT_LABEL, self.seed, id),
            lora: l.lora,
            session: l.session,
            group: l.prefix_group,
            slo,
            priority: l.priority.unwrap_or(0),
            stage: None,
        })
    }
}
