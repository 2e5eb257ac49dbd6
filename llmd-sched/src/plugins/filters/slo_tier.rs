//! `slo-headroom-tier-filter`: prefer endpoints predicted to meet the request's SLOs.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter};
use crate::latency;

/// llm-d's tiering: endpoints with a prediction and no negative headroom
/// (TTFT and TPOT) form the positive tier; the others with a prediction, then
/// those without one, the negative tier. The positive tier is kept, except
/// with probability `epsilonExploreNeg` when both tiers exist. With at most
/// one candidate, or no prediction for any, every candidate is kept.
///
/// Predictions come from a `predicted-latency-producer` (or a host-attached
/// predictor when the config has no producer).
#[derive(Clone, Debug)]
pub struct SloHeadroomTierFilter {
    /// `epsilonExploreNeg` (0.01).
    pub epsilon: f64,
}

impl SloHeadroomTierFilter {
    /// Decodes `epsilonExploreNeg` (in [0, 1]).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let epsilon = p.f64("epsilonExploreNeg", 0.01)?;
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(p.err("epsilonExploreNeg", "must be in [0, 1]"));
        }
        Ok(SloHeadroomTierFilter { epsilon })
    }
}

impl Filter for SloHeadroomTierFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        if candidates.len() <= 1 {
            return;
        }
        let mut pos = Vec::with_capacity(candidates.len());
        let mut neg = Vec::new();
        let mut unpredicted = Vec::new();
        for &i in candidates.iter() {
            match latency::view(ctx, i) {
                Some(v) if v.ttft_headroom_ms >= 0.0 && v.tpot_headroom_ms >= 0.0 => pos.push(i),
                Some(_) => neg.push(i),
                None => unpredicted.push(i),
            }
        }
        if pos.is_empty() && neg.is_empty() {
            return;
        }
        neg.extend(unpredicted);
        *candidates = match (pos.is_empty(), neg.is_empty()) {
            (false, false) if ctx.random_f64() < self.epsilon => neg,
            (false, _) => pos,
            (true, _) => neg,
        };
    }
}
