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
/// The values are read once (each is an endpoint's gauge, behind a pointer);
/// one value per slot of `out`: values beyond it are not read, slots beyond
/// the values are left as they are.
pub fn min_max_inverse(values: impl Iterator<Item = f64>, out: &mut [f64]) {
    let mut n = 0;
    for (o, v) in out.iter_mut().zip(values) {
        *o = v;
        n += 1;
    }
    let out = &mut out[..n];
    let (lo, hi) = crate::framework::reduce::min_max_of(out);
    for o in out.iter_mut() {
        *o = if hi > lo { (hi - *o) / (hi - lo) } else { 1.0 };
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

/// llm-d-router's `multicluster-queue-scorer` / `multicluster-kv-cache-utilization-scorer`:
/// an endpoint standing for a peer cluster is scored on that pool's average
/// queue size or KV-cache utilization, which the host sets as the endpoint
/// labels [`PeerGaugeScorer::QUEUE_LABEL`] / [`PeerGaugeScorer::KV_LABEL`]
/// (llm-d's `multicluster-metrics-extractor` writes the same attribute keys
/// from the peer's `llm_d_epp_average_*` gauges). Queue: min-max inverse over
/// the endpoints that have the label (1.0 when all equal); KV: `1 − util`.
/// An endpoint without the label (or with an unparsable one) scores 0.
#[derive(Clone, Copy, Debug)]
pub struct PeerGaugeScorer {
    label: &'static str,
    queue: bool,
}

impl PeerGaugeScorer {
    /// Label carrying a peer pool's average queue size.
    pub const QUEUE_LABEL: &'static str = "llm-d.ai/multicluster-queue-size";
    /// Label carrying a peer pool's average KV-cache utilization (0 to 1).
    pub const KV_LABEL: &'static str = "llm-d.ai/multicluster-kv-cache-utilization";

    /// `multicluster-queue-scorer`.
    pub fn queue() -> Self {
        PeerGaugeScorer {
            label: Self::QUEUE_LABEL,
            queue: true,
        }
    }

    /// `multicluster-kv-cache-utilization-scorer`.
    pub fn kv_cache() -> Self {
        PeerGaugeScorer {
            label: Self::KV_LABEL,
            queue: false,
        }
    }
}

impl Scorer for PeerGaugeScorer {
    fn score(&self, ctx: &CycleContext<'_>, candidates: &[EndpointIndex], out: &mut [f64]) {
        let values: Vec<Option<f64>> = candidates
            .iter()
            .map(|&i| {
                ctx.endpoint(i)
                    .label(self.label)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite())
            })
            .collect();
        if !self.queue {
            for (o, v) in out.iter_mut().zip(&values) {
                *o = v.map_or(0.0, |u| 1.0 - u);
            }
            return;
        }
        let present = values.iter().flatten();
        let lo = present.clone().copied().fold(f64::INFINITY, f64::min);
        let hi = present.copied().fold(f64::NEG_INFINITY, f64::max);
        for (o, v) in out.iter_mut().zip(&values) {
            *o = match v {
                None => 0.0,
                Some(_) if hi <= lo => 1.0,
                Some(q) => (hi - q) / (hi - lo),
            };
        }
    }
}
