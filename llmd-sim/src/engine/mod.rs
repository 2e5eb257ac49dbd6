//! The discrete-event loop: arrivals, engine steps, scrapes and KV
//! transfers in time order (ties in insertion order), all randomness seeded.

mod io;
mod sim;

use std::cmp::Ordering;
use std::sync::Arc;

use crate::cost::CostModel;
use crate::error::Result;
use crate::keyer;
use crate::request::RequestRecord;
use crate::router::Router;
use crate::scenario::Scenario;
use crate::worker::Seq;
use sim::Sim;

enum Kind {
    StepDone(usize),
    Scrape,
    KvReady(usize, Box<Seq>),
    /// The client of a request gives up (`client.timeout_s`).
    ClientTimeout(u64),
}

struct Ev {
    t: f64,
    n: u64,
    kind: Kind,
}

impl PartialEq for Ev {
    fn eq(&self, o: &Self) -> bool {
        self.t == o.t && self.n == o.n
    }
}
impl Eq for Ev {}
impl Ord for Ev {
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.n.cmp(&self.n))
    }
}
impl PartialOrd for Ev {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Options of one run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Called now and then with (requests done, requests expected if known).
    pub progress: Option<&'a mut dyn FnMut(u64, Option<u64>)>,
    /// Keep a second index fed only by the published event bytes and check
    /// at the end that it equals every worker's cache.
    pub verify_index: bool,
    /// Check each worker's block accounting after every step.
    pub check_invariants: bool,
}

/// Everything one run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Policy name.
    pub policy: String,
    /// One record per request, by id.
    pub records: Vec<RequestRecord>,
    /// Final `/metrics` page of every worker.
    pub metrics: Vec<String>,
    /// Worker names.
    pub worker_names: Vec<String>,
    /// Requests served per worker (prefill and decode both count).
    pub per_worker: Vec<u64>,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// KV-event batches published.
    pub event_batches: u64,
    /// Engine steps run.
    pub steps: u64,
    /// Mismatches between the event-fed index and the caches (verify mode).
    pub index_mismatches: Vec<String>,
    /// Invariant violations (check mode).
    pub invariant_violations: Vec<String>,
    /// The router's latency-prediction errors (routers with a latency model).
    pub prediction_errors: Option<crate::router::PredictionErrors>,
    /// The router's settings accepted but not executed
    /// ([`crate::router::Router::not_executed`]).
    pub not_executed: Vec<String>,
}

/// Runs `scenario`'s workload through `router`.
pub fn run<'a>(
    scenario: &'a Scenario,
    router: Box<dyn Router>,
    opts: RunOptions<'a>,
) -> Result<RunOutput> {
    let calib = scenario.calibration()?;
    let shape = calib.shape(&scenario.model)?;
    let cost = CostModel::new(shape, scenario.cost.clone())?.with_h2d_gbps(calib.copy.h2d_gbps);
    let workload = scenario.workload.build(
        scenario.seed,
        shape.config.vocab,
        scenario.slo,
        &scenario.base_dir,
    )?;
    let e = &scenario.engine;
    let keyer = keyer::for_engine(
        &e.prefix_caching_hash_algo,
        &e.vllm_version,
        e.block_size as usize,
        e.python_hash_seed.as_deref(),
    )?;
    Sim::new(scenario, cost, router, workload, opts, Arc::from(keyer)).run()
}
