//! Several router replicas in front of one fleet, as a gateway runs more
//! than one Endpoint Picker for availability: requests are spread over the
//! replicas in turn, and each replica hears only about the requests it
//! placed (their first tokens and completions), while every replica
//! subscribes to every worker's KV events and scrapes every worker.
//!
//! This is where an index built from routing decisions (llm-d's approximate
//! prefix producer) and one built from the engines' KV events part ways: the
//! first sees only its own share of the traffic, the second sees all of it.

use std::collections::HashMap;

use llmd_kvindex::events::EventBatch;

use super::{FleetView, PredictionErrors, Refusal, Route, RouteRequest, Router};

/// `n` replicas of one policy behind a round-robin spreader.
pub struct Replicated {
    name: String,
    replicas: Vec<Box<dyn Router>>,
    /// Request → the replica that placed it, until it ends.
    owner: HashMap<u64, usize>,
    next: usize,
    wants_text: bool,
}

impl Replicated {
    /// Wraps `replicas` (at least one), all of the same policy `name`.
    pub fn new(name: &str, replicas: Vec<Box<dyn Router>>) -> Self {
        let wants_text = replicas.iter().any(|r| r.wants_metrics_text());
        Replicated {
            name: name.to_string(),
            replicas,
            owner: HashMap::new(),
            next: 0,
            wants_text,
        }
    }
}

impl Router for Replicated {
    fn name(&self) -> &str {
        &self.name
    }

    fn route(&mut self, req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, Refusal> {
        let i = self.next % self.replicas.len();
        self.next = self.next.wrapping_add(1);
        let route = self.replicas[i].route(req, fleet)?;
        self.owner.insert(req.spec.id, i);
        Ok(route)
    }

    fn on_kv_events(&mut self, worker: usize, payload: &[u8], seq: u64, batch: &EventBatch) {
        for r in &mut self.replicas {
            r.on_kv_events(worker, payload, seq, batch);
        }
    }

    fn on_scrape(&mut self, worker: usize, text: &str) {
        for r in &mut self.replicas {
            r.on_scrape(worker, text);
        }
    }

    fn wants_metrics_text(&self) -> bool {
        self.wants_text
    }

    fn on_first_token(&mut self, req: u64, route: Route, now: f64) {
        if let Some(&i) = self.owner.get(&req) {
            self.replicas[i].on_first_token(req, route, now);
        }
    }

    fn on_tokens(&mut self, req: u64, route: Route, now: f64) {
        if let Some(&i) = self.owner.get(&req) {
            self.replicas[i].on_tokens(req, route, now);
        }
    }

    fn on_done(&mut self, req: u64, route: Route, now: f64, ok: bool) {
        if let Some(i) = self.owner.remove(&req) {
            self.replicas[i].on_done(req, route, now, ok);
        }
    }

    fn not_executed(&self) -> Vec<String> {
        // Every replica runs the same config.
        self.replicas
            .first()
            .map(|r| r.not_executed())
            .unwrap_or_default()
    }

    fn prediction_errors(&self) -> Option<PredictionErrors> {
        let mut all = PredictionErrors::default();
        for r in &self.replicas {
            if let Some(e) = r.prediction_errors() {
                all.extend(&e);
            }
        }
        (!all.is_empty()).then_some(all)
    }
}
