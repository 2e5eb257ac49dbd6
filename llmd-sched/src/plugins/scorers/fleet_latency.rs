//! `fleet-latency-scorer` (llmd's own; llm-d has no such plugin): scores
//! endpoints by the latency the fleet pays for placing the request there —
//! its own predicted TTFT, plus the prefill its cache miss adds ahead of the
//! requests queued there.
//!
//! llm-d's `latency-scorer` ranks endpoints by the request's own predicted
//! headroom. A cache miss is then a cost to the request only, and near
//! capacity that is not where it falls: the endpoint without the prefix has
//! the shorter queue, so the request goes there, the fleet prefills the
//! whole prompt again, and every request queued there waits for it. In the
//! simulator the built-in `slo-aware` policy (llm-d's SLO plugins as llm-d
//! configures them) tips a fleet at capacity into overload that way
//! (docs/benchmarks.md). This scorer charges a miss for that:
//!
//! ```text
//! cost(e) = TTFT(e) + k · (uncached(e) − min uncached) · prefill_ms_per_token(e) · (1 + waiting(e))
//! score(e) = (max cost − cost(e)) / (max cost − min cost)     (1 when all costs are equal)
//! ```
//!
//! over the candidates with a prediction. `TTFT(e)`, `uncached(e)` (the
//! prompt tokens the endpoint does not hold), `waiting(e)` (the scraped
//! queue) and `prefill_ms_per_token(e)` (the model's marginal TTFT per
//! uncached token) are what the `predicted-latency-producer` published for
//! the endpoint; `k` is `missCostFactor`. A candidate without a prediction
//! scores 0.5; with no prediction at all every candidate scores 0 (no
//! preference, as the SLO plugins fail open).

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, LatencyInfo, Scorer};

/// `missCostFactor` when absent: the smallest of the factors measured (1, 2,
/// 5) that did not tip the simulated default fleet up to 37 QPS, past its
/// capacity (docs/benchmarks.md).
pub const DEFAULT_MISS_COST_FACTOR: f64 = 5.0;

/// Score of a candidate without a prediction among candidates with one.
const UNPREDICTED: f64 = 0.5;

/// `fleet-latency-scorer`; see the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetLatencyScorer {
    /// `missCostFactor` (`k`, ≥ 0): how many times the extra prefill a miss
    /// makes each queued request wait counts against the endpoint.
    pub miss_cost_factor: f64,
}

impl FleetLatencyScorer {
    /// Decodes `missCostFactor` (a finite number ≥ 0; default 5).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let k = p.f64("missCostFactor", DEFAULT_MISS_COST_FACTOR)?;
        if !(k.is_finite() && k >= 0.0) {
            return Err(p.err("missCostFactor", "must be a finite number >= 0"));
        }
        Ok(FleetLatencyScorer {
            miss_cost_factor: k,
        })
    }

    /// The cost of `info`'s endpoint when the fewest uncached tokens of any
    /// candidate is `min_uncached`; `None` without a prediction.
    #[inline]
    fn cost(&self, info: Option<&LatencyInfo>, min_uncached: f64) -> Option<f64> {
        let info = info?;
        let ttft = info.prediction?.ttft_ms;
        let f = &info.features;
        let extra = (f.uncached_tokens - min_uncached).max(0.0);
        let queued = 1.0 + f.waiting.max(0.0);
        Some(ttft + self.miss_cost_factor * extra * info.prefill_ms_per_token * queued)
    }
}

impl Scorer for FleetLatencyScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let predicted = |i: EndpointIndex| ctx.latency_info(i).filter(|l| l.prediction.is_some());
        let min_uncached = candidates
            .iter()
            .filter_map(|&i| predicted(i))
            .map(|l| l.features.uncached_tokens)
            .fold(f64::INFINITY, f64::min);
        if min_uncached == f64::INFINITY {
            out.fill(0.0);
            return;
        }
        // Costs first (NaN marks "no prediction"), then their range.
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (o, &i) in out.iter_mut().zip(candidates) {
            *o = match self.cost(ctx.latency_info(i), min_uncached) {
                Some(c) if c.is_finite() => {
                    lo = lo.min(c);
                    hi = hi.max(c);
                    c
                }
                _ => f64::NAN,
            };
        }
        let range = hi - lo;
        for o in out.iter_mut() {
            *o = if o.is_nan() {
                UNPREDICTED
            } else if range > 1e-9 {
                (hi - *o) / range
            } else {
                1.0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::LatencyPrediction;
    use crate::latency::LatencyFeatures;

    fn info(ttft_ms: f64, uncached: f64, waiting: f64, ms_per_token: f64) -> LatencyInfo {
        LatencyInfo {
            features: LatencyFeatures {
                input_tokens: 3300.0,
                uncached_tokens: uncached,
                waiting,
                ..LatencyFeatures::default()
            },
            prediction: Some(LatencyPrediction {
                ttft_ms,
                tpot_ms: None,
            }),
            source: None,
            ttft_valid: true,
            tpot_valid: true,
            ttft_headroom_ms: 0.0,
            tpot_headroom_ms: 0.0,
            dispatched: 0,
            prefill_ms_per_token: ms_per_token,
        }
    }

    fn k(miss_cost_factor: f64) -> FleetLatencyScorer {
        FleetLatencyScorer { miss_cost_factor }
    }

    /// The endpoint holding the prefix costs its TTFT; one without it pays
    /// the extra prefill once per request queued there, times k.
    #[test]
    fn a_miss_costs_its_prefill_for_every_queued_request() {
        let s = k(5.0);
        let holder = info(400.0, 300.0, 4.0, 0.05);
        assert_eq!(s.cost(Some(&holder), 300.0), Some(400.0));
        let idle_miss = info(200.0, 3300.0, 0.0, 0.05);
        // 200 + 5 · 3000 · 0.05 · 1
        assert_eq!(s.cost(Some(&idle_miss), 300.0), Some(950.0));
        let busy_miss = info(200.0, 3300.0, 3.0, 0.05);
        assert_eq!(s.cost(Some(&busy_miss), 300.0), Some(200.0 + 750.0 * 4.0));
        // k = 0 is the request's own TTFT: the miss wins.
        assert!(k(0.0).cost(Some(&idle_miss), 300.0) < k(0.0).cost(Some(&holder), 300.0));
        let mut none = holder;
        none.prediction = None;
        assert_eq!(s.cost(Some(&none), 300.0), None);
        assert_eq!(s.cost(None, 300.0), None);
    }

    /// Scores through a cycle: costs normalised over the candidates, the
    /// holder of the prefix ahead of a faster endpoint that must prefill it
    /// for a queue, 0.5 without a prediction, 1 for equal costs, 0 for all
    /// without any prediction.
    #[test]
    fn scores_normalise_the_costs_over_the_candidates() {
        use crate::model::{Endpoint, EndpointState, Request};
        use std::sync::Arc;
        let eps: Vec<Arc<EndpointState>> = (0..4)
            .map(|i| {
                Arc::new(EndpointState::new(Endpoint::new(
                    format!("e{i}"),
                    "10.0.0.1:8000",
                )))
            })
            .collect();
        let req = Request::with_tokens("r", "m", vec![1]);
        let score = |infos: Vec<Option<LatencyInfo>>, candidates: &[usize]| {
            let mut ctx = CycleContext::new(&req, &eps, 0, 1, 0);
            ctx.set_latency_info(infos);
            let mut out = vec![f64::NAN; candidates.len()];
            k(5.0).score(&ctx, candidates, &mut out);
            out
        };
        // e0 holds the prefix (300 uncached, 400 ms); e1 is faster but must
        // prefill 3,000 more tokens ahead of 2 queued requests; e2 likewise
        // with none queued; e3 has no prediction.
        let mut none = info(0.0, 0.0, 0.0, 0.0);
        none.prediction = None;
        let infos = vec![
            Some(info(400.0, 300.0, 0.0, 0.05)),
            Some(info(150.0, 3300.0, 2.0, 0.05)),
            Some(info(150.0, 3300.0, 0.0, 0.05)),
            Some(none),
        ];
        // Costs 400, 150 + 750 · 3 = 2400, 150 + 750 = 900.
        let out = score(infos.clone(), &[0, 1, 2, 3]);
        assert_eq!(out[0], 1.0);
        assert_eq!(out[1], 0.0);
        assert!((out[2] - 1500.0 / 2000.0).abs() < 1e-12, "{out:?}");
        assert_eq!(out[3], UNPREDICTED);
        // A miss is charged against the best candidate present: without the
        // holder, e1 and e2 cost their TTFT alone (equal costs: 1 each).
        assert_eq!(score(infos.clone(), &[1, 2]), vec![1.0, 1.0]);
        assert_eq!(score(infos.clone(), &[0, 2]), vec![1.0, 0.0]);
        assert_eq!(score(infos.clone(), &[2]), vec![1.0]);
        // No candidate with a prediction: no preference.
        assert_eq!(score(infos.clone(), &[3]), vec![0.0]);
        assert_eq!(score(vec![None; 4], &[0, 1]), vec![0.0, 0.0]);
    }

    #[test]
    fn decodes_and_refuses_bad_factors() {
        let mut p = Params::new("fleet", "fleet-latency-scorer", None).unwrap();
        assert_eq!(
            FleetLatencyScorer::from_params(&mut p).unwrap(),
            k(DEFAULT_MISS_COST_FACTOR)
        );
        for bad in [
            serde_json::json!({"missCostFactor": -1.0}),
            serde_json::json!({"missCostFactor": "x"}),
        ] {
            let mut p = Params::new("fleet", "fleet-latency-scorer", Some(&bad)).unwrap();
            let e = FleetLatencyScorer::from_params(&mut p).unwrap_err();
            assert!(e.to_string().contains("missCostFactor"), "{e}");
        }
    }
}
