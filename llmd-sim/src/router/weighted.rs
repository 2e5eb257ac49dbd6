//! llm-d style weighted scoring: each scorer's value is clamped to [0, 1],
//! multiplied by its weight and summed; the highest total wins and ties
//! break uniformly at random (the max-score picker).

use ahash::AHashMap;
use llmd_kvindex::events::EventBatch;

use super::{ApproxIndex, FleetView, PreciseIndex, Route, RouteRequest, Router};

/// Scorer weights (0 disables a scorer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// `queue-scorer` on scraped waiting requests (min-max).
    pub queue: f64,
    /// `kv-cache-utilization-scorer`: 1 − scraped KV usage.
    pub kv_util: f64,
    /// `prefix-cache-scorer`: matched blocks / prompt blocks.
    pub prefix: f64,
    /// `active-request-scorer` on the router's own in-flight counts.
    pub active: f64,
}

/// Where prefix matches come from.
#[derive(Debug)]
pub enum PrefixSource {
    /// No prefix scorer.
    None,
    /// Routing-time index (llm-d `approx-prefix-cache-producer`).
    Approx(ApproxIndex),
    /// KV-event index (llm-d `precise-prefix-cache-producer`).
    Precise(PreciseIndex),
}

/// A weighted-scorer policy.
#[derive(Debug)]
pub struct Weighted {
    name: String,
    weights: Weights,
    prefix: PrefixSource,
    inflight: Vec<u32>,
    routes: AHashMap<u64, (Route, bool)>,
    rng: fastrand::Rng,
    ratio: Vec<f64>,
}

impl Weighted {
    /// A policy over `workers` workers.
    pub fn new(
        name: &str,
        weights: Weights,
        prefix: PrefixSource,
        workers: usize,
        seed: u64,
    ) -> Self {
        Weighted {
            name: name.to_string(),
            weights,
            prefix,
            inflight: vec![0; workers],
            routes: AHashMap::new(),
            rng: fastrand::Rng::with_seed(seed ^ 0x3E16),
            ratio: vec![0.0; workers],
        }
    }

    fn pick(&mut self, set: &[usize], fleet: &FleetView<'_>) -> Option<usize> {
        let w = self.weights;
        let (mut qmin, mut qmax) = (u32::MAX, 0);
        let mut amax = 0;
        for &e in set {
            qmin = qmin.min(fleet.scraped[e].waiting);
            qmax = qmax.max(fleet.scraped[e].waiting);
            amax = amax.max(self.inflight[e]);
        }
        let mut best: Vec<usize> = Vec::new();
        let mut best_score = f64::NEG_INFINITY;
        for &e in set {
            let q = fleet.scraped[e].waiting;
            let queue = if qmax == qmin {
                1.0
            } else {
                f64::from(qmax - q) / f64::from(qmax - qmin)
            };
            let kv = 1.0 - fleet.scraped[e].kv_usage;
            let c = self.inflight[e];
            let active = if c == 0 {
                1.0
            } else {
                f64::from(amax - c) / f64::from(amax)
            };
            let score = w.queue * queue.clamp(0.0, 1.0)
                + w.kv_util * kv.clamp(0.0, 1.0)
                + w.prefix * self.ratio[e].clamp(0.0, 1.0)
                + w.active * active.clamp(0.0, 1.0);
            if score > best_score + 1e-12 {
                best_score = score;
                best.clear();
                best.push(e);
            } else if (score - best_score).abs() <= 1e-12 {
                best.push(e);
            }
        }
        (!best.is_empty()).then(|| best[self.rng.usize(0..best.len())])
    }
}

impl Router for Weighted {
    fn name(&self) -> &str {
        &self.name
    }

    fn route(&mut self, req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, String> {
        let model = req.spec.lora.as_deref().unwrap_or("base");
        let mut approx_hashes = Vec::new();
        match &self.prefix {
            PrefixSource::None => self.ratio.iter_mut().for_each(|v| *v = 0.0),
            PrefixSource::Precise(ix) => {
                ix.longest_prefix(req.keys, &mut self.ratio);
                let total = req.keys.len().max(1) as f64;
                self.ratio.iter_mut().for_each(|v| *v = v.floor() / total);
            }
            PrefixSource::Approx(ix) => {
                approx_hashes = ix.hashes(&req.spec.prompt, model);
                ix.matches(&approx_hashes, &mut self.ratio);
                let total = approx_hashes.len().max(1) as f64;
                self.ratio.iter_mut().for_each(|v| *v /= total);
            }
        }
        let decode = self
            .pick(fleet.decode, fleet)
            .ok_or("no decode endpoints")?;
        let prefill = self.pick(fleet.prefill, fleet);
        if let PrefixSource::Approx(ix) = &mut self.prefix {
            ix.insert(decode, &approx_hashes);
            if let Some(p) = prefill {
                ix.insert(p, &approx_hashes);
            }
        }
        let route = Route { decode, prefill };
        self.inflight[decode] += 1;
        if let Some(p) = prefill {
            self.inflight[p] += 1;
        }
        self.routes.insert(req.spec.id, (route, false));
        Ok(route)
    }

    fn on_kv_events(&mut self, worker: usize, _payload: &[u8], _seq: u64, batch: &EventBatch) {
        if let PrefixSource::Precise(ix) = &mut self.prefix {
            ix.apply(worker, batch);
        }
    }

    fn on_first_token(&mut self, req: u64, _route: Route, _now: f64) {
        if let Some((r, first)) = self.routes.get_mut(&req) {
            if !*first {
                *first = true;
                if let Some(p) = r.prefill {
                    self.inflight[p] = self.inflight[p].saturating_sub(1);
                }
            }
        }
    }

    fn on_done(&mut self, req: u64, _route: Route, _now: f64, _ok: bool) {
        if let Some((r, first)) = self.routes.remove(&req) {
            self.inflight[r.decode] = self.inflight[r.decode].saturating_sub(1);
            if let (Some(p), false) = (r.prefill, first) {
                self.inflight[p] = self.inflight[p].saturating_sub(1);
            }
        }
    }
}
