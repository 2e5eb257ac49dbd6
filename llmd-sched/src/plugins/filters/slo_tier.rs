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

/// A candidate's tier.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    Meets,
    Misses,
    Unpredicted,
}

impl Filter for SloHeadroomTierFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        if candidates.len() <= 1 {
            return;
        }
        let tiers: Vec<Tier> = candidates
            .iter()
            .map(|&i| match latency::view(ctx, i) {
                Some(v) if v.ttft_headroom_ms >= 0.0 && v.tpot_headroom_ms >= 0.0 => Tier::Meets,
                Some(_) => Tier::Misses,
                None => Tier::Unpredicted,
            })
            .collect();
        let count = |t: Tier| tiers.iter().filter(|&&x| x == t).count();
        let (meets, misses) = (count(Tier::Meets), count(Tier::Misses));
        if meets == 0 && misses == 0 {
            return;
        }
        // The negative tier: those predicted to miss, then the unpredicted.
        let rest = candidates.len() - meets;
        let keep_meets = match (meets > 0, rest > 0) {
            (true, true) => ctx.random_f64() >= self.epsilon,
            (true, false) => true,
            (false, _) => false,
        };
        if keep_meets {
            let mut t = tiers.iter();
            candidates.retain(|_| t.next() == Some(&Tier::Meets));
        } else {
            let mut negative = Vec::with_capacity(rest);
            for want in [Tier::Misses, Tier::Unpredicted] {
                let of = candidates.iter().zip(&tiers);
                negative.extend(of.filter(|(_, &t)| t == want).map(|(&i, _)| i));
            }
            *candidates = negative;
        }
    }
}
