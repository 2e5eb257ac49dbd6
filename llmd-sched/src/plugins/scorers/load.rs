//! Load scorers over scraped metrics: `queue-scorer`, `running-requests-size-scorer`,
//! `kv-cache-utilization-scorer`, `load-aware-scorer`.

use crate::config::params::Params;
use crate::error::ConfigError;
use crate::framework::{CycleContext, EndpointIndex, Scorer};

/// Which scraped gauge a min-max scorer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gauge {
    /// `WaitingQueueSize` (`queue-scorer`).
    WaitingQueue,
    /// `RunningRequestsSize` (`running-requests-size-scorer`).
    RunningRequests,
}

/// `(max - v) / (max - min)` over the candidates; all equal gives 1.0.
#[derive(Clone, Copy, Debug)]
pub struct MinMaxScorer {
    gauge: Gauge,
}

impl MinMaxScorer {
    /// A scorer over one gauge.
    pub fn new(gauge: Gauge) -> Self {
        MinMaxScorer { gauge }
    }
}

/// Writes `(max - v) / (max - min)` for each value; 1.0 when all are equal.
pub fn min_max_inverse(values: impl Iterator<Item = f64> + Clone, out: &mut [f64]) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.clone() {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    for (o, v) in out.iter_mut().zip(values) {
        *o = if hi > lo { (hi - v) / (hi - lo) } else { 1.0 };
    }
}

impl Scorer for MinMaxScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let gauge = self.gauge;
        let values = candidates.iter().map(move |&i| {
            let ep = ctx.endpoint(i);
            match gauge {
                Gauge::WaitingQueue => ep.waiting_queue_size() as f64,
                Gauge::RunningRequests => ep.running_requests_size() as f64,
            }
        });
        min_max_inverse(values, out);
    }
}

/// `1 - KVCacheUsagePercent`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvCacheUtilizationScorer;

impl Scorer for KvCacheUtilizationScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        for (o, &i) in out.iter_mut().zip(candidates) {
            *o = 1.0 - ctx.endpoint(i).kv_cache_usage();
        }
    }
}

/// `load-aware-scorer`: empty queue 0.5, else `0.5 * (1 - min(q, T) / T)`.
#[derive(Clone, Copy, Debug)]
pub struct LoadAwareScorer {
    /// `threshold` (128; values <= 0 fall back to 128).
    pub threshold: f64,
}

impl LoadAwareScorer {
    /// Decodes `threshold`.
    pub fn from_params(p: &mut Params) -> Result<Self, ConfigError> {
        let t = p.f64("threshold", 128.0)?;
        Ok(LoadAwareScorer {
            threshold: if t <= 0.0 { 128.0 } else { t },
        })
    }
}

impl Scorer for LoadAwareScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        for (o, &i) in out.iter_mut().zip(candidates) {
            let q = ctx.endpoint(i).waiting_queue_size() as f64;
            *o = if q == 0.0 {
                0.5
            } else {
                0.5 * (1.0 - q.min(self.threshold) / self.threshold)
            };
        }
    }
}
