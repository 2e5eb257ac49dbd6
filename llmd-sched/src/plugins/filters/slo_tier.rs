//! `slo-headroom-tier-filter`: prefer endpoints predicted to meet the request's SLOs.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter};

/// Splits candidates into those predicted to meet the TTFT/TPOT objectives and
/// the rest; keeps the positive tier with probability `1 - epsilon`.
///
/// Without objectives on the request or without a latency predictor, every
/// candidate is kept. An endpoint without a prediction is in the negative tier.
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
        let req = ctx.request();
        let (ttft, tpot) = (req.ttft_slo_ms(), req.tpot_slo_ms());
        if (ttft.is_none() && tpot.is_none()) || !ctx.has_predictor() {
            return;
        }
        let (pos, neg): (Vec<EndpointIndex>, Vec<EndpointIndex>) =
            candidates.iter().partition(|&&i| {
                ctx.predict(i).is_some_and(|p| {
                    ttft.map_or(true, |s| p.ttft_ms <= s) && tpot.map_or(true, |s| p.tpot_ms <= s)
                })
            });
        let explore_neg = ctx.random_f64() < self.epsilon;
        *candidates = match (explore_neg, pos.is_empty(), neg.is_empty()) {
            (false, false, _) | (true, false, true) => pos,
            _ => neg,
        };
    }
}
