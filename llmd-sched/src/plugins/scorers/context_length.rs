//! `context-length-aware`: match prompt length to endpoints' declared context ranges
//! (label `llm-d.ai/context-length-range: "min-max"`); a scorer and, optionally, a filter.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter, Scorer};

/// Default range label.
pub const CONTEXT_RANGE_LABEL: &str = "llm-d.ai/context-length-range";

/// The plugin.
#[derive(Clone, Debug)]
pub struct ContextLengthAware {
    /// Label holding `min-max`.
    pub label: String,
    /// `enableFiltering`: also drop endpoints whose range excludes the prompt.
    pub filtering: bool,
}

/// Parsed label: `None` = no label, `Some(None)` = malformed.
fn range(ctx: &CycleContext<'_>, i: EndpointIndex, label: &str) -> Option<Option<(f64, f64)>> {
    let v = ctx.endpoint(i).label(label)?;
    let (a, b) = match v.split_once('-') {
        Some(x) => x,
        None => return Some(None),
    };
    match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
        (Ok(lo), Ok(hi)) if lo <= hi => Some(Some((lo as f64, hi as f64))),
        _ => Some(None),
    }
}

impl ContextLengthAware {
    /// Decodes `label`, `enableFiltering`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let label = p.string("label", CONTEXT_RANGE_LABEL)?;
        if label.is_empty() {
            return Err(p.err("label", "must not be empty"));
        }
        let filtering = p.bool("enableFiltering", false)?;
        Ok(ContextLengthAware { label, filtering })
    }

    /// The score for prompt length `l` against a parsed label.
    pub fn score_for(parsed: Option<Option<(f64, f64)>>, l: f64) -> f64 {
        match parsed {
            None => 0.5,
            Some(None) => 0.0,
            Some(Some((lo, hi))) if l >= lo && l <= hi => {
                let width = hi - lo;
                if width == 0.0 {
                    return 1.0;
                }
                let raw = 0.7 / (1.0 + width / 10000.0) + 0.3 * (hi - l) / width;
                0.3 + 0.7 * raw
            }
            Some(Some((lo, hi))) => {
                let d = if l < lo { lo - l } else { l - hi };
                0.3 / (1.0 + d / 1000.0)
            }
        }
    }
}

impl Scorer for ContextLengthAware {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let l = ctx.prompt_tokens() as f64;
        for (o, &i) in out.iter_mut().zip(candidates) {
            *o = Self::score_for(range(ctx, i, &self.label), l);
        }
    }
}

impl Filter for ContextLengthAware {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        if !self.filtering {
            return;
        }
        let l = ctx.prompt_tokens() as f64;
        candidates.retain(|&i| match range(ctx, i, &self.label) {
            Some(Some((lo, hi))) => l >= lo && l <= hi,
            Some(None) => false,
            None => true,
        });
    }
}
