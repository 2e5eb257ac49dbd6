//! Figures of a rate ladder computed the way llm-d's published benchmarks
//! compute them (inference-perf's per-stage lifecycle report), so a
//! simulated run can be set beside a published table.
//!
//! inference-perf assigns each request to the stage that sent it. For a
//! stage, with `span` = its last completion − its first send:
//!
//! * output tokens/s = output tokens of its successful requests / `span`;
//! * requests/s = its successful requests / `span`;
//! * TTFT = first token − send.
//!
//! llm-d's "summary across QPS" rows are the mean over the ladder's stages
//! of the per-stage throughputs; TTFT p90 and mean there are taken over every
//! request of the ladder (they do not equal the mean of the per-stage
//! percentiles). Warm-up stages are left out of both.

use serde::Serialize;

use crate::engine::RunOutput;
use crate::request::{Outcome, RequestRecord};
use crate::summary::percentile;
use crate::workload::Stage;

/// One stage's figures.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageFigures {
    /// Offered rate, requests per second.
    pub rate: f64,
    /// Requests sent in the stage.
    pub requests: u64,
    /// Output tokens/s over the stage's span.
    pub output_tps: f64,
    /// Completed requests/s over the stage's span.
    pub request_rate: f64,
    /// TTFT p90 of the stage's requests, seconds.
    pub ttft_p90: f64,
    /// Mean TTFT, seconds.
    pub ttft_mean: f64,
    /// Last completion − first send, seconds.
    pub span_s: f64,
}

/// A ladder run summarised as llm-d reports it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StageReport {
    /// Policy.
    pub policy: String,
    /// Mean over stages of the per-stage output tokens/s.
    pub output_tps: f64,
    /// Mean over stages of the per-stage requests/s.
    pub request_rate: f64,
    /// TTFT p90 over every request of the ladder (warm-up excluded), seconds.
    pub ttft_p90: f64,
    /// Mean TTFT over the same requests, seconds.
    pub ttft_mean: f64,
    /// Per stage, in ladder order (warm-up stages left out).
    pub stages: Vec<StageFigures>,
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn ttfts(recs: &[&RequestRecord]) -> Vec<f64> {
    let mut t: Vec<f64> = recs
        .iter()
        .filter(|r| r.outcome == Outcome::Completed)
        .filter_map(|r| r.ttft())
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

impl StageReport {
    /// Splits `out`'s requests by the stage of `ladder` that sent them.
    /// `None` when the ladder has no stage other than warm-ups.
    pub fn of(out: &RunOutput, ladder: &[Stage]) -> Option<StageReport> {
        let mut bounds = Vec::with_capacity(ladder.len());
        let mut t = 0.0;
        for s in ladder {
            bounds.push((t, t + s.duration_s));
            t += s.duration_s;
        }
        let mut stages = Vec::new();
        let mut all: Vec<&RequestRecord> = Vec::new();
        for (k, (s, &(from, to))) in ladder.iter().zip(&bounds).enumerate() {
            if s.warmup {
                continue;
            }
            // The stage a request names, else the one whose span it
            // arrived in (drained stages start later than their span).
            let recs: Vec<&RequestRecord> = out
                .records
                .iter()
                .filter(|r| match r.stage {
                    Some(stage) => stage as usize == k,
                    None => r.arrival >= from && r.arrival < to,
                })
                .collect();
            // A stage that sent nothing (rate × duration under 1 with
            // drained stages) has no figures to average.
            if recs.is_empty() {
                continue;
            }
            all.extend(&recs);
            let first = recs.iter().map(|r| r.arrival).fold(f64::INFINITY, f64::min);
            let last = recs
                .iter()
                .map(|r| r.finished.unwrap_or(r.arrival))
                .fold(f64::NEG_INFINITY, f64::max);
            let span = if last > first { last - first } else { 0.0 };
            let ok: Vec<&&RequestRecord> = recs
                .iter()
                .filter(|r| r.outcome == Outcome::Completed)
                .collect();
            let tokens: u64 = ok.iter().map(|r| u64::from(r.output_tokens)).sum();
            let per_s = |n: f64| if span > 0.0 { n / span } else { 0.0 };
            let t = ttfts(&recs);
            stages.push(StageFigures {
                rate: s.rate,
                requests: recs.len() as u64,
                output_tps: per_s(tokens as f64),
                request_rate: per_s(ok.len() as f64),
                ttft_p90: percentile(&t, 90.0),
                ttft_mean: mean(&t),
                span_s: span,
            });
        }
        if stages.is_empty() {
            return None;
        }
        let t = ttfts(&all);
        Some(StageReport {
            policy: out.policy.clone(),
            output_tps: mean(&stages.iter().map(|s| s.output_tps).collect::<Vec<_>>()),
            request_rate: mean(&stages.iter().map(|s| s.request_rate).collect::<Vec<_>>()),
            ttft_p90: percentile(&t, 90.0),
            ttft_mean: mean(&t),
            stages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Slo;

    fn rec(id: u64, arrival: f64, ttft: f64, end: f64, tokens: u32, ok: bool) -> RequestRecord {
        RequestRecord {
            id,
            arrival,
            worker: Some(0),
            prefill_worker: None,
            prompt_tokens: 10,
            cached_tokens: 0,
            output_tokens: if ok { tokens } else { 0 },
            first_token: ok.then_some(arrival + ttft),
            finished: Some(end),
            preemptions: 0,
            outcome: if ok {
                Outcome::Completed
            } else {
                Outcome::Failed("client timeout (300 s)".into())
            },
            slo: Slo::default(),
            priority: 0,
            stage: None,
        }
    }

    fn stage(rate: f64, duration_s: f64, warmup: bool) -> Stage {
        Stage {
            rate,
            duration_s,
            warmup,
        }
    }

    #[test]
    fn per_stage_spans_and_means_follow_inference_perf() {
        let out = RunOutput {
            policy: "p".into(),
            records: vec![
                rec(0, 1.0, 5.0, 9.0, 100, true), // warm-up: left out
                rec(1, 10.0, 1.0, 20.0, 100, true),
                rec(2, 15.0, 2.0, 30.0, 100, true),
                rec(3, 21.0, 3.0, 40.0, 300, true),
                rec(4, 25.0, 0.0, 50.0, 0, false), // failed: ends the span
            ],
            metrics: vec![],
            worker_names: vec![],
            per_worker: vec![],
            sim_seconds: 50.0,
            wall_seconds: 0.0,
            event_batches: 0,
            steps: 0,
            index_mismatches: vec![],
            invariant_violations: vec![],
            prediction_errors: None,
            not_executed: Vec::new(),
        };
        let ladder = [
            stage(1.0, 10.0, true),
            stage(2.0, 10.0, false),
            stage(3.0, 10.0, false),
        ];
        let r = StageReport::of(&out, &ladder).expect("two measured stages");
        assert_eq!(r.stages.len(), 2);
        // Stage 2: 200 tokens, 2 requests over 30 - 10 s.
        assert!((r.stages[0].output_tps - 10.0).abs() < 1e-12);
        assert!((r.stages[0].request_rate - 0.1).abs() < 1e-12);
        // Stage 3: 300 tokens of the one success over 50 - 21 s.
        assert!((r.stages[1].output_tps - 300.0 / 29.0).abs() < 1e-12);
        assert_eq!(r.stages[1].requests, 2);
        assert!((r.output_tps - (10.0 + 300.0 / 29.0) / 2.0).abs() < 1e-12);
        // TTFT over the ladder's successes: 1, 2, 3 (warm-up's 5 left out).
        assert_eq!(r.ttft_p90, 3.0);
        assert!((r.ttft_mean - 2.0).abs() < 1e-12);
        assert!(StageReport::of(&out, &ladder[..1]).is_none());
    }
}
