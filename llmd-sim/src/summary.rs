//! Aggregates of one run: latency percentiles, throughput, cache hits,
//! goodput and load spread.

use serde::Serialize;

use crate::engine::RunOutput;
use crate::request::Outcome;

/// One row of the comparison table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    /// Policy.
    pub policy: String,
    /// Requests issued.
    pub requests: u64,
    /// Requests completed.
    pub completed: u64,
    /// Requests failed.
    pub failed: u64,
    /// Requests the router's admission control refused (sheddable ones no
    /// endpoint was predicted to serve in time).
    pub rejected: u64,
    /// TTFT percentiles, seconds.
    pub ttft_p50: f64,
    /// TTFT p90.
    pub ttft_p90: f64,
    /// TTFT p99.
    pub ttft_p99: f64,
    /// Mean TTFT.
    pub ttft_mean: f64,
    /// TPOT p50, seconds.
    pub tpot_p50: f64,
    /// TPOT p90.
    pub tpot_p90: f64,
    /// Output tokens per second over the run.
    pub output_tps: f64,
    /// Completed requests per second.
    pub request_rate: f64,
    /// Prompt tokens served from prefix caches / prompt tokens.
    pub cache_hit_rate: f64,
    /// Requests meeting both SLOs per second.
    pub goodput: f64,
    /// Share of requests meeting both SLOs.
    pub slo_attainment: f64,
    /// Busiest worker's requests over the mean (1.0 = even).
    pub load_max_over_mean: f64,
    /// Coefficient of variation of requests per worker.
    pub load_cv: f64,
    /// Preemptions.
    pub preemptions: u64,
    /// Median |predicted − measured| / measured TTFT of the router's latency
    /// model (routers with a `predicted-latency-producer`).
    pub ttft_prediction_error_p50: Option<f64>,
    /// The same for TPOT.
    pub tpot_prediction_error_p50: Option<f64>,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// The policy's config settings accepted but not executed (also printed
    /// to stderr): its results are without them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_executed: Vec<String>,
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(percentile(&s, 50.0))
}

impl Summary {
    /// Summarises a run.
    pub fn of(out: &RunOutput) -> Summary {
        let recs = &out.records;
        let completed: Vec<_> = recs
            .iter()
            .filter(|r| r.outcome == Outcome::Completed)
            .collect();
        let mut ttft: Vec<f64> = completed.iter().filter_map(|r| r.ttft()).collect();
        let mut tpot: Vec<f64> = completed.iter().filter_map(|r| r.tpot()).collect();
        ttft.sort_by(f64::total_cmp);
        tpot.sort_by(f64::total_cmp);
        let start = recs.iter().map(|r| r.arrival).fold(f64::INFINITY, f64::min);
        let end = recs.iter().filter_map(|r| r.finished).fold(0.0, f64::max);
        let span = if end > start { end - start } else { 1.0 };
        let out_tokens: u64 = completed.iter().map(|r| u64::from(r.output_tokens)).sum();
        let prompt: u64 = completed.iter().map(|r| u64::from(r.prompt_tokens)).sum();
        let cached: u64 = completed.iter().map(|r| u64::from(r.cached_tokens)).sum();
        let good = recs.iter().filter(|r| r.good()).count();
        let rejected = recs
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Rejected(_)))
            .count() as u64;
        let n = out.per_worker.len().max(1) as f64;
        let mean = out.per_worker.iter().sum::<u64>() as f64 / n;
        let max = out.per_worker.iter().copied().max().unwrap_or(0) as f64;
        let var = out
            .per_worker
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        Summary {
            policy: out.policy.clone(),
            requests: recs.len() as u64,
            completed: completed.len() as u64,
            failed: (recs.len() - completed.len()) as u64 - rejected,
            rejected,
            ttft_p50: percentile(&ttft, 50.0),
            ttft_p90: percentile(&ttft, 90.0),
            ttft_p99: percentile(&ttft, 99.0),
            ttft_mean: if ttft.is_empty() {
                0.0
            } else {
                ttft.iter().sum::<f64>() / ttft.len() as f64
            },
            tpot_p50: percentile(&tpot, 50.0),
            tpot_p90: percentile(&tpot, 90.0),
            output_tps: out_tokens as f64 / span,
            request_rate: completed.len() as f64 / span,
            cache_hit_rate: if prompt == 0 {
                0.0
            } else {
                cached as f64 / prompt as f64
            },
            goodput: good as f64 / span,
            slo_attainment: if recs.is_empty() {
                0.0
            } else {
                good as f64 / recs.len() as f64
            },
            load_max_over_mean: if mean > 0.0 { max / mean } else { 0.0 },
            load_cv: if mean > 0.0 { var.sqrt() / mean } else { 0.0 },
            preemptions: recs.iter().map(|r| u64::from(r.preemptions)).sum(),
            ttft_prediction_error_p50: out.prediction_errors.as_ref().and_then(|e| median(&e.ttft)),
            tpot_prediction_error_p50: out.prediction_errors.as_ref().and_then(|e| median(&e.tpot)),
            sim_seconds: out.sim_seconds,
            not_executed: out.not_executed.clone(),
            wall_seconds: out.wall_seconds,
        }
    }
}
