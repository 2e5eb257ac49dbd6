//! Load-blind and queue-only baselines.

use super::{FleetView, Refusal, Route, RouteRequest, Router};

fn pick_prefill(rng: &mut fastrand::Rng, fleet: &FleetView<'_>) -> Option<usize> {
    (!fleet.prefill.is_empty()).then(|| fleet.prefill[rng.usize(0..fleet.prefill.len())])
}

/// Uniformly random.
#[derive(Debug)]
pub struct RandomRouter {
    rng: fastrand::Rng,
}

impl RandomRouter {
    /// A seeded random router.
    pub fn new(seed: u64) -> Self {
        RandomRouter {
            rng: fastrand::Rng::with_seed(seed ^ 0x52A4D),
        }
    }
}

impl Router for RandomRouter {
    fn name(&self) -> &str {
        "random"
    }

    fn route(&mut self, _req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, Refusal> {
        if fleet.decode.is_empty() {
            return Err("no decode endpoints".into());
        }
        let decode = fleet.decode[self.rng.usize(0..fleet.decode.len())];
        Ok(Route {
            decode,
            prefill: pick_prefill(&mut self.rng, fleet),
        })
    }
}

/// Kubernetes-Service style round robin.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: usize,
    next_prefill: usize,
}

impl Router for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn route(&mut self, _req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, Refusal> {
        if fleet.decode.is_empty() {
            return Err("no decode endpoints".into());
        }
        let decode = fleet.decode[self.next % fleet.decode.len()];
        self.next += 1;
        let prefill = (!fleet.prefill.is_empty()).then(|| {
            self.next_prefill += 1;
            fleet.prefill[(self.next_prefill - 1) % fleet.prefill.len()]
        });
        Ok(Route { decode, prefill })
    }
}

/// Fewest scraped waiting requests, then fewest running, ties at random.
#[derive(Debug)]
pub struct LeastQueue {
    rng: fastrand::Rng,
}

impl LeastQueue {
    /// A seeded least-queue router.
    pub fn new(seed: u64) -> Self {
        LeastQueue {
            rng: fastrand::Rng::with_seed(seed ^ 0x1EA57),
        }
    }

    fn best(&mut self, set: &[usize], fleet: &FleetView<'_>) -> Option<usize> {
        let key = |w: usize| (fleet.scraped[w].waiting, fleet.scraped[w].running);
        let min = set.iter().map(|&w| key(w)).min()?;
        let ties: Vec<usize> = set.iter().copied().filter(|&w| key(w) == min).collect();
        Some(ties[self.rng.usize(0..ties.len())])
    }
}

impl Router for LeastQueue {
    fn name(&self) -> &str {
        "least-queue"
    }

    fn route(&mut self, _req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, Refusal> {
        let decode = self
            .best(fleet.decode, fleet)
            .ok_or("no decode endpoints")?;
        let prefill = self.best(fleet.prefill, fleet);
        Ok(Route { decode, prefill })
    }
}
