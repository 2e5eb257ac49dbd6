//! `utilization-detector` used as a filter (fail-open) and the alpha `utilization-filter`.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Filter};
use crate::model::EndpointState;

/// `utilization-detector` parameters (also the pool saturation detector).
#[derive(Clone, Debug, PartialEq)]
pub struct UtilizationDetector {
    /// `queueDepthThreshold` (5).
    pub queue_threshold: f64,
    /// `kvCacheUtilThreshold` (0.8).
    pub kv_threshold: f64,
    /// `metricsStalenessThreshold` ("200ms"), in nanoseconds.
    pub staleness_ns: u64,
    /// `headroom` (0): filter limit multiplier.
    pub headroom: f64,
}

impl Default for UtilizationDetector {
    fn default() -> Self {
        UtilizationDetector {
            queue_threshold: 5.0,
            kv_threshold: 0.8,
            staleness_ns: 200_000_000,
            headroom: 0.0,
        }
    }
}

impl UtilizationDetector {
    /// Decodes the parameters; thresholds must be positive, headroom non-negative.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let d = UtilizationDetector::default();
        let queue_threshold = p.f64("queueDepthThreshold", d.queue_threshold)?;
        let kv_threshold = p.f64("kvCacheUtilThreshold", d.kv_threshold)?;
        let staleness_ns = p
            .opt_duration_ns("metricsStalenessThreshold")?
            .unwrap_or(d.staleness_ns);
        let headroom = p.f64("headroom", d.headroom)?;
        if queue_threshold <= 0.0 {
            return Err(p.err("queueDepthThreshold", "must be > 0"));
        }
        if kv_threshold <= 0.0 || kv_threshold > 1.0 {
            return Err(p.err("kvCacheUtilThreshold", "must be in (0, 1]"));
        }
        if headroom < 0.0 {
            return Err(p.err("headroom", "must be >= 0"));
        }
        Ok(UtilizationDetector {
            queue_threshold,
            kv_threshold,
            staleness_ns,
            headroom,
        })
    }

    fn fresh(&self, ep: &EndpointState, now_ns: u64) -> bool {
        let t = ep.metrics_updated_at_ns();
        t != 0 && now_ns.saturating_sub(t) <= self.staleness_ns
    }

    /// Per-endpoint saturation `max(q/qT, kv/kvT)`; missing or stale metrics count as 1.0.
    pub fn endpoint_saturation(&self, ep: &EndpointState, now_ns: u64) -> f64 {
        if !self.fresh(ep, now_ns) {
            return 1.0;
        }
        (ep.waiting_queue_size() as f64 / self.queue_threshold)
            .max(ep.kv_cache_usage() / self.kv_threshold)
    }

    /// Pool saturation: mean endpoint saturation; an empty pool is 1.0.
    pub fn pool_saturation(&self, eps: &[std::sync::Arc<EndpointState>], now_ns: u64) -> f64 {
        if eps.is_empty() {
            return 1.0;
        }
        eps.iter()
            .map(|e| self.endpoint_saturation(e, now_ns))
            .sum::<f64>()
            / eps.len() as f64
    }
}

impl Filter for UtilizationDetector {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        let q_lim = self.queue_threshold * (1.0 + self.headroom);
        let kv_lim = self.kv_threshold * (1.0 + self.headroom);
        let now = ctx.now_ns();
        let kept: Vec<EndpointIndex> = candidates
            .iter()
            .copied()
            .filter(|&i| {
                let ep = ctx.endpoint(i);
                self.fresh(ep, now)
                    && (ep.waiting_queue_size() as f64) < q_lim
                    && ep.kv_cache_usage() < kv_lim
            })
            .collect();
        // Fail open: when everything looks saturated, keep everything.
        if !kept.is_empty() {
            *candidates = kept;
        }
    }
}

/// A metric the utilization filter can bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UtilMetric {
    /// Requests in flight from this scheduler.
    ActiveRequests,
    /// `vllm:num_requests_running`.
    RunningRequests,
    /// `vllm:num_requests_waiting`.
    WaitingQueue,
    /// `vllm:kv_cache_usage_perc`.
    KvCacheUtilization,
}

/// Alpha `utilization-filter`: drop an endpoint if any condition's metric exceeds its max.
#[derive(Clone, Debug)]
pub struct UtilizationFilter {
    conditions: Vec<(UtilMetric, f64)>,
    fallback_on_empty: bool,
}

impl UtilizationFilter {
    /// Decodes `conditions`, `fallbackOnEmpty`, `inFlightLoadProducerName`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let mut conditions = Vec::new();
        for mut c in p.objects("conditions")? {
            let m = c
                .opt_string("metric")?
                .ok_or_else(|| c.err("metric", "required"))?;
            let metric = match m.as_str() {
                "active-requests" => UtilMetric::ActiveRequests,
                "running-requests" => UtilMetric::RunningRequests,
                "waiting-queue" => UtilMetric::WaitingQueue,
                "kv-cache-utilization" => UtilMetric::KvCacheUtilization,
                other => return Err(c.err("metric", format!("unknown metric '{other}' (expected active-requests, running-requests, waiting-queue, kv-cache-utilization)"))),
            };
            let max = c
                .opt_f64("maxValue")?
                .ok_or_else(|| c.err("maxValue", "required"))?;
            if max < 0.0 {
                return Err(c.err("maxValue", "must be >= 0"));
            }
            if metric == UtilMetric::KvCacheUtilization && max > 1.0 {
                return Err(c.err("maxValue", "must be <= 1 for kv-cache-utilization"));
            }
            c.finish()?;
            conditions.push((metric, max));
        }
        if conditions.is_empty() {
            return Err(p.err("conditions", "at least one condition is required"));
        }
        let fallback_on_empty = p.bool("fallbackOnEmpty", false)?;
        let _ = p.opt_string("inFlightLoadProducerName")?;
        Ok(UtilizationFilter {
            conditions,
            fallback_on_empty,
        })
    }
}

impl Filter for UtilizationFilter {
    fn filter(&self, ctx: &CycleContext<'_>, candidates: &mut Vec<EndpointIndex>) {
        let before = candidates.clone();
        candidates.retain(|&i| {
            let ep = ctx.endpoint(i);
            self.conditions.iter().all(|&(m, max)| {
                let v = match m {
                    UtilMetric::ActiveRequests => ep.inflight_requests() as f64,
                    UtilMetric::RunningRequests => ep.running_requests_size() as f64,
                    UtilMetric::WaitingQueue => ep.waiting_queue_size() as f64,
                    UtilMetric::KvCacheUtilization => ep.kv_cache_usage(),
                };
                v <= max
            })
        });
        if candidates.is_empty() && self.fallback_on_empty {
            *candidates = before;
        }
    }
}
