//! `prefix-cache-affinity-filter`: stick to endpoints with a good prefix match
//! unless that costs too much estimated TTFT.

use std::sync::Arc;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter};
use crate::plugins::producers::APPROX_PRODUCER;

/// Where the TTFT estimate for the penalty gate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtftSource {
    /// `inFlightTokens / peakPrefillThroughput`.
    PrefillThroughput,
    /// The latency predictor; without predictions every TTFT is unknown (+inf).
    LatencyPredictor,
}

/// The filter with llm-d's defaults.
#[derive(Clone, Debug)]
pub struct PrefixCacheAffinityFilter {
    /// `affinityThreshold` (0.80).
    pub threshold: f64,
    /// `explorationProbability` (0).
    pub exploration: f64,
    /// `maxTTFTPenaltyMs` (18000; 0 = always stick).
    pub max_penalty_ms: f64,
    /// `ttftSource`.
    pub source: TtftSource,
    /// `peakPrefillThroughput` tokens/s (15928).
    pub peak_throughput: f64,
    /// `prefixMatchInfoProducerName`.
    pub producer: Arc<str>,
}

impl PrefixCacheAffinityFilter {
    /// Decodes and validates the parameters.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let threshold = p.f64("affinityThreshold", 0.80)?;
        if threshold > 1.0 {
            return Err(p.err("affinityThreshold", "must be <= 1"));
        }
        let exploration = p.f64("explorationProbability", 0.0)?;
        if !(0.0..=1.0).contains(&exploration) {
            return Err(p.err("explorationProbability", "must be in [0, 1]"));
        }
        let max_penalty_ms = p.f64("maxTTFTPenaltyMs", 18000.0)?;
        if max_penalty_ms < 0.0 {
            return Err(p.err("maxTTFTPenaltyMs", "must be >= 0"));
        }
        let source = match p.string("ttftSource", "prefillThroughput")?.as_str() {
            "prefillThroughput" => TtftSource::PrefillThroughput,
            "latencyPredictor" => TtftSource::LatencyPredictor,
            other => {
                return Err(p.err(
                    "ttftSource",
                    format!(
                        "unknown source '{other}' (expected prefillThroughput or latencyPredictor)"
                    ),
                ))
            }
        };
        let peak_throughput = p.f64("peakPrefillThroughput", 15928.0)?;
        if source == TtftSource::PrefillThroughput && peak_throughput <= 0.0 {
            return Err(p.err(
                "peakPrefillThroughput",
                "must be > 0 when ttftSource is prefillThroughput",
            ));
        }
        let producer: Arc<str> = p
            .string("prefixMatchInfoProducerName", APPROX_PRODUCER)?
            .into();
        Ok(PrefixCacheAffinityFilter {
            threshold,
            exploration,
            max_penalty_ms,
            source,
            peak_throughput,
            producer,
        })
    }

    fn ttft_ms(&self, ctx: &CycleContext<'_>, i: EndpointIndex) -> f64 {
        match self.source {
            TtftSource::PrefillThroughput => {
                ctx.endpoint(i).inflight_tokens() as f64 / self.peak_throughput * 1000.0
            }
            // The predicted-latency producer's TTFT (missing = +inf, as llm-d).
            TtftSource::LatencyPredictor => {
                crate::latency::view(ctx, i).map_or(f64::INFINITY, |v| v.ttft_ms)
            }
        }
    }
}

impl Filter for PrefixCacheAffinityFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        if candidates.len() <= 1 || self.threshold <= 0.0 {
            return;
        }
        if self.exploration > 0.0 && ctx.random_f64() < self.exploration {
            return;
        }
        let info = ctx.prefix_info(&self.producer);
        let ratio = |i: EndpointIndex| info.map_or(0.0, |p| p.ratio(i));
        let (sticky, rest): (Vec<EndpointIndex>, Vec<EndpointIndex>) = candidates
            .iter()
            .partition(|&&i| ratio(i) >= self.threshold);
        if sticky.is_empty() {
            return;
        }
        if self.max_penalty_ms > 0.0 && !rest.is_empty() {
            let best = |set: &[EndpointIndex]| {
                set.iter()
                    .map(|&i| self.ttft_ms(ctx, i))
                    .fold(f64::INFINITY, f64::min)
            };
            if best(&sticky) - best(&rest) > self.max_penalty_ms {
                return;
            }
        }
        *candidates = sticky;
    }
}
