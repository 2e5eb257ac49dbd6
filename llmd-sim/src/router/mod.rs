//! Routing policies the simulator compares. A policy sees what a real
//! router sees: each request, the workers' scraped metrics (as stale as the
//! scrape interval makes them), their KV events, and its own decisions.

mod approx;
mod baseline;
mod precise;
mod sched;
mod weighted;

pub use approx::ApproxIndex;
pub use baseline::{LeastQueue, RandomRouter, RoundRobin};
pub use precise::PreciseIndex;
pub use sched::SchedRouter;
pub use weighted::{PrefixSource, Weighted, Weights};

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

/// A routing policy under simulation.
pub trait Router: Send {
    /// Display name.
    fn name(&self) -> &str;

    /// Places one request; an error fails the request with that reason.
    fn route(&mut self, req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, String>;

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

    /// The request finished or failed.
    fn on_done(&mut self, _req: u64, _route: Route, _now: f64, _ok: bool) {}
}

/// Built-in policy names, in report order.
pub const BUILTINS: [&str; 7] = [
    "random",
    "round-robin",
    "least-queue",
    "load-aware",
    "llm-d-default",
    "approx-prefix",
    "precise-prefix",
];

/// Builds a built-in policy by name.
pub fn builtin(
    name: &str,
    workers: usize,
    block_size: usize,
    num_blocks: usize,
    seed: u64,
) -> Option<Box<dyn Router>> {
    let w = |q, kv, p, a| Weights {
        queue: q,
        kv_util: kv,
        prefix: p,
        active: a,
    };
    Some(match name {
        "random" => Box::new(RandomRouter::new(seed)),
        "round-robin" => Box::new(RoundRobin::default()),
        "least-queue" => Box::new(LeastQueue::new(seed)),
        // llm-d's scoring without prefix affinity (the blog's "load" policy).
        "load-aware" => Box::new(Weighted::new(
            name,
            w(2.0, 2.0, 0.0, 0.0),
            PrefixSource::None,
            workers,
            seed,
        )),
        // What the EPP runs with no config: queue 2, kv 2, approximate prefix 3.
        "llm-d-default" => Box::new(Weighted::new(
            name,
            w(2.0, 2.0, 3.0, 0.0),
            PrefixSource::Approx(ApproxIndex::new(workers, 64, num_blocks)),
            workers,
            seed,
        )),
        // Routing-time prefix index plus the router's own in-flight counts.
        "approx-prefix" => Box::new(Weighted::new(
            name,
            w(0.0, 1.0, 3.0, 2.0),
            PrefixSource::Approx(ApproxIndex::new(workers, 64, num_blocks)),
            workers,
            seed,
        )),
        // Prefix index rebuilt from the engines' KV events.
        "precise-prefix" => Box::new(Weighted::new(
            name,
            w(0.0, 1.0, 3.0, 2.0),
            PrefixSource::Precise(PreciseIndex::new(block_size)),
            workers,
            seed,
        )),
        _ => return None,
    })
}
