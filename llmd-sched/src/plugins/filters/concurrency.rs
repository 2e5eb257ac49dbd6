//! `concurrency-detector` used as a filter: bound the scheduler's own in-flight
//! concurrency per endpoint (fail-open).

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter};

/// What is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConcurrencyMode {
    /// In-flight requests.
    Requests,
    /// In-flight tokens.
    Tokens,
    /// Both.
    Hybrid,
}

/// Keeps endpoints under `max * (1 + headroom)`; if none qualify, keeps all.
#[derive(Clone, Copy, Debug)]
pub struct ConcurrencyDetector {
    /// `concurrencyMode` (requests).
    pub mode: ConcurrencyMode,
    /// `maxConcurrency` (100).
    pub max_requests: f64,
    /// `maxTokenConcurrency` (1e6).
    pub max_tokens: f64,
    /// `headroom` (0).
    pub headroom: f64,
}

impl ConcurrencyDetector {
    /// Decodes and validates the parameters.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let mode = match p.string("concurrencyMode", "requests")?.as_str() {
            "requests" => ConcurrencyMode::Requests,
            "tokens" => ConcurrencyMode::Tokens,
            "hybrid" => ConcurrencyMode::Hybrid,
            other => {
                return Err(p.err(
                    "concurrencyMode",
                    format!("unknown mode '{other}' (expected requests, tokens or hybrid)"),
                ))
            }
        };
        let max_requests = p.f64("maxConcurrency", 100.0)?;
        let max_tokens = p.f64("maxTokenConcurrency", 1e6)?;
        let headroom = p.f64("headroom", 0.0)?;
        if max_requests <= 0.0 {
            return Err(p.err("maxConcurrency", "must be > 0"));
        }
        if max_tokens <= 0.0 {
            return Err(p.err("maxTokenConcurrency", "must be > 0"));
        }
        if headroom < 0.0 {
            return Err(p.err("headroom", "must be >= 0"));
        }
        Ok(ConcurrencyDetector {
            mode,
            max_requests,
            max_tokens,
            headroom,
        })
    }
}

impl ConcurrencyDetector {
    /// Saturation of `ep` as a saturation detector: its in-flight requests
    /// over `maxConcurrency` (tokens over `maxTokenConcurrency`; hybrid: the
    /// larger). `headroom` widens only the filter, as the utilization
    /// detector's does.
    pub fn endpoint_saturation(&self, ep: &crate::model::EndpointState) -> f64 {
        let r = ep.inflight_requests() as f64 / self.max_requests;
        let t = ep.inflight_tokens() as f64 / self.max_tokens;
        match self.mode {
            ConcurrencyMode::Requests => r,
            ConcurrencyMode::Tokens => t,
            ConcurrencyMode::Hybrid => r.max(t),
        }
    }
}

impl Filter for ConcurrencyDetector {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        let f = 1.0 + self.headroom;
        let kept: Vec<EndpointIndex> = candidates
            .iter()
            .copied()
            .filter(|&i| {
                let ep = ctx.endpoint(i);
                let r = (ep.inflight_requests() as f64) < self.max_requests * f;
                let t = (ep.inflight_tokens() as f64) < self.max_tokens * f;
                match self.mode {
                    ConcurrencyMode::Requests => r,
                    ConcurrencyMode::Tokens => t,
                    ConcurrencyMode::Hybrid => r && t,
                }
            })
            .collect();
        if !kept.is_empty() {
            *candidates = kept;
        }
    }
}
