//! `inflight-load-producer`: this request's uncached tokens per endpoint, and the
//! recording of routed requests into the in-flight table.

use std::sync::Arc;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, Decided, EndpointIndex, PreRequest, Producer};
use crate::inflight::{InFlightTable, Share};

use super::APPROX_PRODUCER;

/// Profile name llm-d hard-codes for the prefill stage.
const PREFILL_PROFILE: &str = "prefill";

/// The producer.
#[derive(Debug)]
pub struct InFlightLoadProducer {
    /// `addEstimatedOutputTokens` (false).
    pub add_output: bool,
    /// `outputRatio` (1.5).
    pub output_ratio: f64,
    /// `maxEstimatedOutputTokens` (none).
    pub max_output: Option<u64>,
    /// `prefixMatchInfoProducerName`.
    pub producer: Arc<str>,
    table: Arc<InFlightTable>,
}

/// The largest output estimate: a prompt's worth of tokens could never
/// exceed it, and sums of many stay far from `i64::MAX`.
const MAX_ESTIMATE: u64 = 1 << 40;

impl InFlightLoadProducer {
    /// Decodes the parameters; `table` is the scheduler's in-flight table.
    pub fn from_params(p: &mut Params, table: Arc<InFlightTable>) -> Result<Self, ConfigError> {
        let add_output = p.bool("addEstimatedOutputTokens", false)?;
        let output_ratio = p.f64("outputRatio", 1.5)?;
        if output_ratio < 0.0 {
            return Err(p.err("outputRatio", "must be >= 0"));
        }
        let max_output = p.opt_i64("maxEstimatedOutputTokens")?;
        if max_output.is_some_and(|m| m < 0) {
            return Err(p.err("maxEstimatedOutputTokens", "must be >= 0"));
        }
        let producer: Arc<str> = p
            .string("prefixMatchInfoProducerName", APPROX_PRODUCER)?
            .into();
        // Cross-replica state is not shared (listed in the config report).
        p.bool("syncCrossReplicaState", true)?;
        Ok(InFlightLoadProducer {
            add_output,
            output_ratio,
            max_output: max_output.map(|m| m as u64),
            producer,
            table,
        })
    }

    /// llm-d's estimate (`input × outputRatio`, capped by
    /// `maxEstimatedOutputTokens`), also capped by the request's own
    /// `max_tokens` when it gives one (an llmd refinement: llm-d ignores it).
    fn output_estimate(&self, input: u64, max_tokens: Option<u64>) -> u64 {
        if !self.add_output {
            return 0;
        }
        // `as` saturates: a huge `outputRatio` gives u64::MAX, then capped
        // below i64::MAX so the in-flight sums cannot overflow.
        let est = ((input as f64 * self.output_ratio).round() as u64).min(MAX_ESTIMATE);
        let est = self.max_output.map_or(est, |m| est.min(m));
        max_tokens.map_or(est, |m| est.min(m))
    }
}

impl Producer for InFlightLoadProducer {
    fn produce(&self, ctx: &mut CycleContext<'_>, candidates: &[EndpointIndex]) {
        let p = ctx.prompt_tokens() as u64;
        let mut uncached = vec![p; ctx.endpoints().len()];
        if let Some(info) = ctx.prefix_info(&self.producer) {
            let bs = info.block_size as u64;
            let covered = info.total_blocks as u64 * bs;
            let tail = p.saturating_sub(covered);
            for &i in candidates {
                if let Some(m) = info.get(i) {
                    uncached[i] = (info.total_blocks as u64).saturating_sub(m.match_blocks as u64)
                        * bs
                        + tail;
                }
            }
        }
        ctx.set_uncached_tokens(uncached);
    }
}

impl PreRequest for InFlightLoadProducer {
    fn pre_request(&self, ctx: &CycleContext<'_>, decided: &Decided<'_>) {
        let shares = decided
            .picks
            .iter()
            .map(|&(profile, i)| {
                let input = ctx.uncached_tokens(i).unwrap_or(ctx.prompt_tokens() as u64);
                Share {
                    ep: Arc::clone(&ctx.endpoints()[i]),
                    input_tokens: input.min(MAX_ESTIMATE) as i64,
                    output_tokens: self.output_estimate(input, ctx.request().max_output_tokens)
                        as i64,
                    prefill: profile == PREFILL_PROFILE,
                }
            })
            .collect();
        self.table.record(&ctx.request().id, ctx.opening(), shares);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A huge `outputRatio` (llm-d sets no upper bound) gives a large but
    /// bounded estimate: the in-flight token sums it feeds cannot overflow
    /// into negative load.
    #[test]
    fn a_huge_output_ratio_gives_a_bounded_estimate() {
        let v = serde_json::json!({"addEstimatedOutputTokens": true, "outputRatio": 1e300});
        let mut p = Params::new("inflight", "inflight-load-producer", Some(&v)).unwrap();
        let producer = InFlightLoadProducer::from_params(&mut p, Arc::default()).unwrap();
        let est = producer.output_estimate(u64::MAX, None);
        assert_eq!(est, MAX_ESTIMATE);
        assert!((est as i64).checked_mul(1 << 20).is_some());
        assert_eq!(producer.output_estimate(1_000, Some(16)), 16);
    }
}
