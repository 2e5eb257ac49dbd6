//! Scorers over the scheduler's own in-flight load: `token-load-scorer`, `active-request-scorer`.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Scorer};

/// `t = inflight tokens + this request's uncached tokens`; `t <= 0` → 1, else `1 - min(t, T)/T`.
#[derive(Clone, Copy, Debug)]
pub struct TokenLoadScorer {
    /// `queueThresholdTokens` (4194304; <= 0 falls back to the default).
    pub threshold: f64,
}

impl TokenLoadScorer {
    /// Decodes `queueThresholdTokens` (the loader reads
    /// `inFlightLoadProducerName`).
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let t = p.f64("queueThresholdTokens", 4_194_304.0)?;
        Ok(TokenLoadScorer {
            threshold: if t <= 0.0 { 4_194_304.0 } else { t },
        })
    }
}

impl Scorer for TokenLoadScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        for (o, &i) in out.iter_mut().zip(candidates) {
            let t = ctx.endpoint(i).inflight_tokens() as f64
                + ctx.uncached_tokens(i).unwrap_or(0) as f64;
            *o = if t <= 0.0 {
                1.0
            } else {
                1.0 - t.min(self.threshold) / self.threshold
            };
        }
    }
}

/// `c = inflight requests`, `M = max c`; `c <= idle` → 1, else `(M - c)/M * maxBusyScore`.
#[derive(Clone, Copy, Debug)]
pub struct ActiveRequestScorer {
    /// `idleThreshold` (0).
    pub idle_threshold: f64,
    /// `maxBusyScore` (1.0, in [0, 1]).
    pub max_busy_score: f64,
}

impl ActiveRequestScorer {
    /// Decodes the parameters; `requestTimeout` (deprecated) is accepted and
    /// ignored, as llm-d does, and listed in the config report.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let idle_threshold = p.f64("idleThreshold", 0.0)?;
        if idle_threshold < 0.0 {
            return Err(p.err("idleThreshold", "must be >= 0"));
        }
        let max_busy_score = p.f64("maxBusyScore", 1.0)?;
        if !(0.0..=1.0).contains(&max_busy_score) {
            return Err(p.err("maxBusyScore", "must be in [0, 1]"));
        }
        p.take("requestTimeout");
        Ok(ActiveRequestScorer {
            idle_threshold,
            max_busy_score,
        })
    }
}

impl Scorer for ActiveRequestScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let max = candidates
            .iter()
            .map(|&i| ctx.endpoint(i).inflight_requests())
            .max()
            .unwrap_or(0) as f64;
        for (o, &i) in out.iter_mut().zip(candidates) {
            let c = ctx.endpoint(i).inflight_requests() as f64;
            *o = if c <= self.idle_threshold || max <= 0.0 {
                1.0
            } else {
                (max - c) / max * self.max_busy_score
            };
        }
    }
}
