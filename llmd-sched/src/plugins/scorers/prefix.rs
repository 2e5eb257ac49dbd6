//! `prefix-cache-scorer`: blend of match ratio and absolute matched length.

use std::sync::Arc;

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Scorer};
use crate::plugins::producers::APPROX_PRODUCER;

/// `w * min(1, matched_tokens / scale)^2 + (1 - w) * matchBlocks / totalBlocks`.
#[derive(Clone, Debug)]
pub struct PrefixCacheScorer {
    /// `prefixMatchInfoProducerName` (default: the approximate producer).
    pub producer: Arc<str>,
    /// `matchLengthWeight` (0, in [0, 1]).
    pub length_weight: f64,
    /// `matchLengthScaleTokens` (8192; > 0 when the weight is > 0).
    pub scale_tokens: f64,
}

impl PrefixCacheScorer {
    /// Decodes and validates the parameters.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let producer: Arc<str> = p
            .string("prefixMatchInfoProducerName", APPROX_PRODUCER)?
            .into();
        let length_weight = p.f64("matchLengthWeight", 0.0)?;
        if !(0.0..=1.0).contains(&length_weight) {
            return Err(p.err("matchLengthWeight", "must be in [0, 1]"));
        }
        let scale_tokens = p.f64("matchLengthScaleTokens", 8192.0)?;
        if length_weight > 0.0 && scale_tokens <= 0.0 {
            return Err(p.err(
                "matchLengthScaleTokens",
                "must be > 0 when matchLengthWeight > 0",
            ));
        }
        Ok(PrefixCacheScorer {
            producer,
            length_weight,
            scale_tokens,
        })
    }

    /// A scorer bound to `producer` with the default blend (ratio only).
    pub fn bound_to(producer: &str) -> Self {
        PrefixCacheScorer {
            producer: producer.into(),
            length_weight: 0.0,
            scale_tokens: 8192.0,
        }
    }
}

impl Scorer for PrefixCacheScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let Some(info) = ctx.prefix_info(&self.producer) else {
            return;
        };
        if info.total_blocks == 0 {
            return;
        }
        for (o, &i) in out.iter_mut().zip(candidates) {
            let Some(m) = info.get(i) else { continue };
            let ratio = m.match_blocks as f64 / info.total_blocks as f64;
            let len = if self.length_weight > 0.0 {
                (m.match_blocks as f64 * info.block_size as f64 / self.scale_tokens)
                    .min(1.0)
                    .powi(2)
            } else {
                0.0
            };
            *o = self.length_weight * len + (1.0 - self.length_weight) * ratio;
        }
    }
}
