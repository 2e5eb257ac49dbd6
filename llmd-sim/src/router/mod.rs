//! Routing policies the simulator compares. A policy sees what a real
//! router sees: each request, the workers' scraped metrics (as stale as the
//! scrape interval makes them), their KV events, and its own decisions.

mod baseline;
mod builtin;
mod precise;
mod replicas;
mod sched;
mod weighted;

pub use baseline::{LeastQueue, RandomRouter, RoundRobin};
pub use builtin::{builtin, builtin_config, BuiltinFleet, BUILTINS, EXTRA_BUILTINS};
pub use precise::PreciseIndex;
pub use replicas::Replicated;
pub use sched::SchedRouter;
pub use weighted::Weighted;

use llmd_kvindex::events::EventBatch;

use crate::request::RequestSpec;
use crate::worker::Snapshot;

/// Role of a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Prefill and decode.
    Both,
    /// Prefill only (P/D).
    Prefill,
    /// Decode only (P/D).
    Decode,
}

/// The fleet as a router sees it.
#[derive(Debug)]
pub struct FleetView<'a> {
    /// Endpoint names.
    pub names: &'a [String],
    /// Roles.
    pub roles: &'a [Role],
    /// Last scrape of every worker.
    pub scraped: &'a [Snapshot],
    /// Workers that may decode.
    pub decode: &'a [usize],
    /// Workers that may prefill for another (empty without P/D).
    pub prefill: &'a [usize],
    /// Simulated time, seconds.
    pub now: f64,
}

/// A request to place.
#[derive(Debug)]
pub struct RouteRequest<'a> {
    /// The request.
    pub spec: &'a RequestSpec,
    /// The prompt's engine block keys (full blocks).
    pub keys: &'a [u64],
    /// Engine block size.
    pub block_size: usize,
}

/// Where a request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Worker that decodes (and prefills, without P/D).
    pub decode: usize,
    /// Worker that prefills first, with P/D.
    pub prefill: Option<usize>,
}

/// Why a router did not place a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Admission control refused it (the scheduler's `ResourceExhausted`):
    /// the request is rejected, as a gateway answers 429.
    Rejected(String),
    /// Routing failed.
    Failed(String),
}

impl From<String> for Refusal {
    fn from(e: String) -> Self {
        Refusal::Failed(e)
    }
}

impl From<&str> for Refusal {
    fn from(e: &str) -> Self {
        Refusal::Failed(e.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Rejected(e) => write!(f, "rejected: {e}"),
            Refusal::Failed(e) => f.write_str(e),
        }
    }
}

/// A routing policy under simulation.
pub trait Router: Send {
    /// Display name.
    fn name(&self) -> &str;

    /// Places one request; a refusal rejects or fails it with its reason.
    fn route(&mut self, req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, Refusal>;

    /// A KV-event batch published by `worker`: the wire bytes (ZMQ payload
    /// frame) and their decoding.
    fn on_kv_events(&mut self, _worker: usize, _payload: &[u8], _seq: u64, _batch: &EventBatch) {}

    /// A fresh scrape of `worker`: the parsed gauges and the page's text.
    fn on_scrape(&mut self, _worker: usize, _text: &str) {}

    /// Whether the router wants the scraped page text (rendering costs time).
    fn wants_metrics_text(&self) -> bool {
        false
    }

    /// The request's first token reached the client.
    fn on_first_token(&mut self, _req: u64, _route: Route, _now: f64) {}

    /// One more output token of the request reached the client (a router
    /// relaying a stream sees each).
    fn on_tokens(&mut self, _req: u64, _route: Route, _now: f64) {}

    /// The request finished or failed.
    fn on_done(&mut self, _req: u64, _route: Route, _now: f64, _ok: bool) {}

    /// How far the router's latency predictions were from what its requests
    /// measured (routers with a `predicted-latency-producer`).
    fn prediction_errors(&self) -> Option<PredictionErrors> {
        None
    }

    /// Settings of the router's config that were accepted but are not
    /// executed (the scheduler's config report), one line each: printed
    /// beside the results, so no policy runs with a setting silently
    /// dropped.
    fn not_executed(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Absolute relative errors of latency predictions, one per checked request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictionErrors {
    /// |predicted − measured| / measured TTFT.
    pub ttft: Vec<f64>,
    /// |predicted − measured| / measured TPOT.
    pub tpot: Vec<f64>,
}

impl PredictionErrors {
    /// Adds a completed request's prediction and measurements.
    pub fn add(&mut self, s: &llmd_sched::RequestSummary) {
        let Some(p) = s.predicted else { return };
        if let Some(first) = s.first_token_at_ns {
            let ttft = first.saturating_sub(s.scheduled_at_ns) as f64 / 1e6;
            if ttft > 0.0 {
                self.ttft.push((p.ttft_ms - ttft).abs() / ttft);
            }
            if let (Some(t), true) = (p.tpot_ms, s.output_tokens > 1) {
                let tpot = s.finished_at_ns.saturating_sub(first) as f64
                    / 1e6
                    / (s.output_tokens - 1) as f64;
                if tpot > 0.0 {
                    self.tpot.push((t - tpot).abs() / tpot);
                }
            }
        }
    }

    /// True when nothing was checked.
    pub fn is_empty(&self) -> bool {
        self.ttft.is_empty() && self.tpot.is_empty()
    }

    /// Appends another router's errors.
    pub fn extend(&mut self, o: &PredictionErrors) {
        self.ttft.extend_from_slice(&o.ttft);
        self.tpot.extend_from_slice(&o.tpot);
    }
}
