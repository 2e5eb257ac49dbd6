//! P/D deciders: `prefix-based-pd-decider`, `always-disagg-pd-decider`,
//! `always-disagg-multimodal-decider`.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, Decider, EndpointIndex};
use crate::plugins::producers::APPROX_PRODUCER;

/// Disaggregate when the prompt is long enough and enough of it is uncached on
/// the decode pick (llm-d §d.2, exactly).
#[derive(Clone, Copy, Debug)]
pub struct PrefixBasedPdDecider {
    /// `nonCachedTokens` (0 disables P/D).
    pub non_cached_tokens: u64,
    /// `promptTokens` (0 disables the length gate).
    pub prompt_tokens: u64,
}

impl PrefixBasedPdDecider {
    /// Decodes `nonCachedTokens`, `promptTokens` (both >= 0).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let n = p.i64("nonCachedTokens", 0)?;
        if n < 0 {
            return Err(p.err("nonCachedTokens", "must be >= 0"));
        }
        let t = p.i64("promptTokens", 0)?;
        if t < 0 {
            return Err(p.err("promptTokens", "must be >= 0"));
        }
        Ok(PrefixBasedPdDecider {
            non_cached_tokens: n as u64,
            prompt_tokens: t as u64,
        })
    }
}

impl Decider for PrefixBasedPdDecider {
    fn disaggregate(&self, ctx: &CycleContext<'_>, peer: Option<EndpointIndex>) -> bool {
        if self.non_cached_tokens == 0 {
            return false;
        }
        let p = ctx.prompt_tokens() as u64;
        if self.prompt_tokens > 0 && p < self.prompt_tokens {
            return false;
        }
        if p < self.non_cached_tokens {
            return false;
        }
        // llm-d reads the default approximate producer's key only.
        let Some(info) = ctx.prefix_info(APPROX_PRODUCER) else {
            return false;
        };
        let Some(m) = peer.and_then(|e| info.get(e)) else {
            return false;
        };
        let hit = m.cached_blocks as u64 * info.block_size as u64;
        p.saturating_sub(hit) >= self.non_cached_tokens
    }
}

/// Always disaggregate.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysDisaggDecider;

impl Decider for AlwaysDisaggDecider {
    fn disaggregate(&self, _ctx: &CycleContext<'_>, _peer: Option<EndpointIndex>) -> bool {
        true
    }
}

/// Disaggregate encoding when the request carries multimodal items.
#[derive(Clone, Copy, Debug, Default)]
pub struct MultimodalDecider;

impl Decider for MultimodalDecider {
    fn disaggregate(&self, ctx: &CycleContext<'_>, _peer: Option<EndpointIndex>) -> bool {
        ctx.request().multimodal
    }
}
