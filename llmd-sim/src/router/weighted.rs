//! llm-d style load scoring without prefix affinity: the queue scorer
//! (min-max over scraped waiting requests) and the KV-utilization scorer
//! (1 − scraped usage), each clamped to [0, 1], weighted and summed; the
//! highest total wins and ties break uniformly at random (the max-score picker).

use super::{FleetView, Refusal, Route, RouteRequest, Router};

/// A load-scoring policy.
#[derive(Debug)]
pub struct Weighted {
    name: String,
    queue: f64,
    kv_util: f64,
    rng: fastrand::Rng,
    best: Vec<usize>,
}

impl Weighted {
    /// A policy weighting the queue scorer by `queue` and the KV-utilization
    /// scorer by `kv_util`.
    pub fn new(name: &str, queue: f64, kv_util: f64, workers: usize, seed: u64) -> Self {
        Weighted {
            name: name.to_string(),
            queue,
            kv_util,
            rng: fastrand::Rng::with_seed(seed ^ 0x3E16),
            best: Vec::with_capacity(workers),
        }
    }

    fn pick(&mut self, set: &[usize], fleet: &FleetView<'_>) -> Option<usize> {
        let (mut qmin, mut qmax) = (u32::MAX, 0);
        for &e in set {
            qmin = qmin.min(fleet.scraped[e].waiting);
            qmax = qmax.max(fleet.scraped[e].waiting);
        }
        self.best.clear();
        let mut best_score = f64::NEG_INFINITY;
        for &e in set {
            let q = fleet.scraped[e].waiting;
            let queue = if qmax == qmin {
                1.0
            } else {
                f64::from(qmax - q) / f64::from(qmax - qmin)
            };
            let kv = 1.0 - fleet.scraped[e].kv_usage;
            let score = self.queue * queue.clamp(0.0, 1.0) + self.kv_util * kv.clamp(0.0, 1.0);
            if score > best_score + 1e-12 {
                best_score = score;
                self.best.clear();
                self.best.push(e);
            } else if (score - best_score).abs() <= 1e-12 {
                self.best.push(e);
            }
        }
        (!self.best.is_empty()).then(|| self.best[self.rng.usize(0..self.best.len())])
    }
}

impl Router for Weighted {
    fn name(&self) -> &str {
        &self.name
    }

    fn route(&mut self, _req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, Refusal> {
        let decode = self
            .pick(fleet.decode, fleet)
            .ok_or("no decode endpoints")?;
        let prefill = self.pick(fleet.prefill, fleet);
        Ok(Route { decode, prefill })
    }
}
