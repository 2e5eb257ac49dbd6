//! The discrete-event loop: arrivals, engine steps, scrapes and KV
//! transfers in time order (ties in insertion order), all randomness seeded.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use llmd_kvindex::events::{EventBatch, EventLayout};

use crate::calibration::Calibration;
use crate::cost::CostModel;
use crate::error::{Result, SimError};
use crate::keyer;
use crate::request::{Outcome, RequestRecord, RequestSpec};
use crate::router::{FleetView, PreciseIndex, Role, Route, RouteRequest, Router};
use crate::scenario::Scenario;
use crate::tokens::BlockKeyer;
use crate::wire::Publisher;
use crate::worker::{render_metrics, Progress, Seq, SeqKind, Snapshot, Worker};
use crate::workload::Workload;

enum Kind {
    StepDone(usize),
    Scrape,
    KvReady(usize, Box<Seq>),
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
    /// Requests decoded per worker.
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
}

/// Runs `scenario`'s workload through `router`.
pub fn run<'a>(
    scenario: &'a Scenario,
    router: Box<dyn Router>,
    opts: RunOptions<'a>,
) -> Result<RunOutput> {
    let calib = match &scenario.calibration {
        Some(p) => {
            let path = scenario.base_dir.join(p);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| SimError::io(path.display().to_string(), e))?;
            Calibration::from_json(&text)?
        }
        None => Calibration::embedded()?,
    };
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

struct Sim<'a> {
    sc: &'a Scenario,
    cost: CostModel,
    router: Box<dyn Router>,
    workload: Box<dyn Workload>,
    opts: RunOptions<'a>,
    keyer: Arc<dyn BlockKeyer>,
    workers: Vec<Worker>,
    names: Vec<String>,
    roles: Vec<Role>,
    decode_set: Vec<usize>,
    prefill_set: Vec<usize>,
    scraped: Vec<Snapshot>,
    heap: BinaryHeap<Ev>,
    n: u64,
    now: f64,
    next: Option<RequestSpec>,
    records: Vec<RequestRecord>,
    routes: Vec<Route>,
    out_len: Vec<u32>,
    active: u64,
    done: u64,
    publishers: Vec<Publisher>,
    batches: u64,
    mirror: Option<PreciseIndex>,
    violations: Vec<String>,
    progress: Vec<Progress>,
}

impl<'a> Sim<'a> {
    fn new(
        sc: &'a Scenario,
        cost: CostModel,
        router: Box<dyn Router>,
        workload: Box<dyn Workload>,
        opts: RunOptions<'a>,
        keyer: Arc<dyn BlockKeyer>,
    ) -> Self {
        let f = &sc.fleet;
        let mut roles = vec![Role::Both; f.workers as usize];
        roles.extend(std::iter::repeat(Role::Prefill).take(f.prefill as usize));
        roles.extend(std::iter::repeat(Role::Decode).take(f.decode as usize));
        let names: Vec<String> = (0..roles.len())
            .map(|i| format!("10.0.0.{}:8000", i + 1))
            .collect();
        let vocab = cost.shape().config.vocab;
        let workers = (0..roles.len())
            .map(|i| Worker::new(i, names[i].clone(), sc.engine.clone(), vocab))
            .collect();
        let decode_set = (0..roles.len())
            .filter(|&i| roles[i] != Role::Prefill)
            .collect();
        let prefill_set = (0..roles.len())
            .filter(|&i| roles[i] == Role::Prefill)
            .collect();
        let mirror = opts
            .verify_index
            .then(|| PreciseIndex::new(sc.engine.block_size as usize));
        Sim {
            sc,
            cost,
            router,
            workload,
            opts,
            keyer,
            workers,
            scraped: vec![Snapshot::default(); roles.len()],
            publishers: names
                .iter()
                .map(|n| Publisher::new(n, &sc.model_name, EventLayout::V0_33))
                .collect(),
            names,
            roles,
            decode_set,
            prefill_set,
            heap: BinaryHeap::new(),
            n: 0,
            now: 0.0,
            next: None,
            records: Vec::new(),
            routes: Vec::new(),
            out_len: Vec::new(),
            active: 0,
            done: 0,
            batches: 0,
            mirror,
            violations: Vec::new(),
            progress: Vec::new(),
        }
    }

    fn push(&mut self, t: f64, kind: Kind) {
        self.n += 1;
        self.heap.push(Ev { t, n: self.n, kind });
    }

    fn run(mut self) -> Result<RunOutput> {
        let wall = Instant::now();
        self.next = self.workload.next_request();
        self.push(0.0, Kind::Scrape);
        let total = self.sc.workload.max_requests;
        let mut ticks = 0u64;
        loop {
            let heap_t = self.heap.peek().map(|e| e.t);
            let arrival_first = match (&self.next, heap_t) {
                (Some(r), Some(t)) => r.arrival <= t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if arrival_first {
                if let Some(r) = self.next.take() {
                    self.now = self.now.max(r.arrival);
                    self.arrive(r);
                    self.next = self.workload.next_request();
                }
            } else if let Some(ev) = self.heap.pop() {
                self.now = ev.t;
                match ev.kind {
                    Kind::StepDone(w) => self.step_done(w),
                    Kind::Scrape => self.scrape(),
                    Kind::KvReady(w, seq) => self.admit(w, *seq),
                }
            }
            ticks += 1;
            if ticks % 4096 == 0 {
                if let Some(p) = self.opts.progress.as_mut() {
                    p(self.done, total);
                }
            }
        }
        if let Some(p) = self.opts.progress.as_mut() {
            p(self.done, total);
        }
        let mismatches = self.verify();
        let metrics = self
            .workers
            .iter()
            .map(|w| render_metrics(w, &self.sc.model_name))
            .collect();
        let mut per_worker = vec![0u64; self.workers.len()];
        for r in &self.records {
            if let Some(w) = r.worker {
                per_worker[w] += 1;
            }
        }
        Ok(RunOutput {
            policy: self.router.name().to_string(),
            sim_seconds: self.now,
            wall_seconds: wall.elapsed().as_secs_f64(),
            event_batches: self.batches,
            steps: self.workers.iter().map(|w| w.counters.steps).sum(),
            records: self.records,
            metrics,
            worker_names: self.names,
            per_worker,
            index_mismatches: mismatches,
            invariant_violations: self.violations,
        })
    }

    fn arrive(&mut self, r: RequestSpec) {
        let bs = self.sc.engine.block_size as usize;
        let mut chain = self.keyer.start(bs, r.lora.as_deref());
        let mut keys = Vec::with_capacity(r.prompt.len() / bs + 1);
        let hashed = chain.extend(&r.prompt, &mut keys);
        let id = r.id as usize;
        self.records
            .resize_with(self.records.len().max(id + 1), || RequestRecord {
                id: 0,
                arrival: 0.0,
                worker: None,
                prefill_worker: None,
                prompt_tokens: 0,
                cached_tokens: 0,
                output_tokens: 0,
                first_token: None,
                finished: None,
                preemptions: 0,
                outcome: Outcome::Failed("never arrived".into()),
                slo: r.slo,
            });
        self.routes.resize(
            self.records.len(),
            Route {
                decode: 0,
                prefill: None,
            },
        );
        self.out_len.resize(self.records.len(), 0);
        self.out_len[id] = r.output_len;
        self.records[id] = RequestRecord {
            id: r.id,
            arrival: r.arrival,
            worker: None,
            prefill_worker: None,
            prompt_tokens: r.prompt.len() as u32,
            cached_tokens: 0,
            output_tokens: 0,
            first_token: None,
            finished: None,
            preemptions: 0,
            outcome: Outcome::Failed("in flight at the end".into()),
            slo: r.slo,
        };
        self.active += 1;
        if let Err(e) = hashed {
            return self.fail(r.id, format!("hashing the prompt failed: {e}"));
        }
        let view = FleetView {
            names: &self.names,
            roles: &self.roles,
            scraped: &self.scraped,
            decode: &self.decode_set,
            prefill: &self.prefill_set,
            now: self.now,
        };
        let req = RouteRequest {
            spec: &r,
            keys: &keys,
            block_size: bs,
        };
        let route = match self.router.route(&req, &view) {
            Ok(route)
                if route.decode < self.workers.len()
                    && route.prefill.map_or(true, |p| p < self.workers.len()) =>
            {
                route
            }
            Ok(_) => return self.fail(r.id, "router picked an unknown endpoint".into()),
            Err(e) => return self.fail(r.id, format!("routing failed: {e}")),
        };
        self.routes[id] = route;
        self.records[id].worker = Some(route.decode);
        let (target, kind) = match route.prefill {
            Some(p) if p != route.decode => {
                self.records[id].prefill_worker = Some(p);
                (p, SeqKind::PrefillOnly)
            }
            _ => (route.decode, SeqKind::Full),
        };
        let seq = Seq::new(
            r.id,
            kind,
            r.prompt.clone(),
            r.output_len,
            r.output_seed,
            chain,
            keys,
        );
        self.admit(target, seq);
    }

    fn admit(&mut self, w: usize, seq: Seq) {
        let req = seq.req;
        match self.workers[w].enqueue(seq) {
            Ok(()) => self.kick(w),
            Err((_, why)) => self.fail(req, why),
        }
    }

    fn fail(&mut self, req: u64, why: String) {
        let rec = &mut self.records[req as usize];
        rec.outcome = Outcome::Failed(why);
        rec.finished = Some(self.now);
        self.active -= 1;
        self.done += 1;
        let route = self.routes[req as usize];
        self.router.on_done(req, route, self.now, false);
    }

    fn kick(&mut self, w: usize) {
        if self.workers[w].busy() {
            return;
        }
        let mut progress = std::mem::take(&mut self.progress);
        if let Some(d) = self.workers[w].begin_step(&self.cost, &mut progress) {
            self.push(self.now + d, Kind::StepDone(w));
        }
        self.handle(w, &mut progress);
        self.progress = progress;
    }

    fn step_done(&mut self, w: usize) {
        let mut progress = std::mem::take(&mut self.progress);
        self.workers[w].finish_step(&mut progress);
        if self.opts.check_invariants {
            if let Err(e) = self.workers[w].check_invariants() {
                self.violations
                    .push(format!("t={:.3} worker {w}: {e}", self.now));
            }
        }
        self.publish(w);
        self.handle(w, &mut progress);
        self.progress = progress;
        self.kick(w);
    }

    fn handle(&mut self, w: usize, progress: &mut Vec<Progress>) {
        for p in progress.drain(..) {
            match p {
                Progress::FirstToken { req, cached_tokens } => {
                    let now = self.now;
                    let rec = &mut self.records[req as usize];
                    rec.first_token = Some(now);
                    if rec.prefill_worker.is_none() {
                        rec.cached_tokens = cached_tokens;
                    }
                    let ttft = now - rec.arrival;
                    self.workers[w].ttft_hist.observe(ttft);
                    let route = self.routes[req as usize];
                    self.router.on_first_token(req, route, now);
                }
                Progress::Finished { req } => {
                    let rec = &mut self.records[req as usize];
                    rec.finished = Some(self.now);
                    rec.output_tokens = self.out_len[req as usize];
                    rec.outcome = Outcome::Completed;
                    self.active -= 1;
                    self.done += 1;
                    let route = self.routes[req as usize];
                    self.router.on_done(req, route, self.now, true);
                }
                Progress::Preempted { req } => self.records[req as usize].preemptions += 1,
                Progress::PrefillDone { seq } => self.hand_over(*seq),
            }
        }
    }

    /// P/D: ship the prompt's KV (what the decode worker lacks) over the link.
    fn hand_over(&mut self, seq: Seq) {
        let req = seq.req as usize;
        let d = self.routes[req].decode;
        self.records[req].cached_tokens = seq.cached_tokens;
        let bs = self.sc.engine.block_size as usize;
        let max = (seq.prompt_len().saturating_sub(1) as usize / bs).min(seq.keys.len());
        let (local, _) = self.workers[d].kv().gpu_prefix(&seq.keys, max);
        let missing = f64::from(seq.prompt_len()) - (local * bs) as f64;
        let link = &self.sc.fleet.kv_transfer;
        let t = link.latency_ms / 1e3
            + missing.max(0.0) * self.cost.kv_bytes_per_token() / (link.bandwidth_gbps * 1e9);
        let next = Seq::new(
            seq.req,
            SeqKind::RemoteKv,
            seq.prompt.clone(),
            seq.output_len,
            seq.output_seed,
            seq.chain,
            seq.keys,
        );
        self.push(self.now + t, Kind::KvReady(d, Box::new(next)));
    }

    fn publish(&mut self, w: usize) {
        let events = self.workers[w].take_events();
        if events.is_empty() {
            return;
        }
        let batch = EventBatch {
            ts: self.now,
            data_parallel_rank: Some(0),
            events,
            skipped_events: 0,
        };
        self.batches += 1;
        let got = match self.publishers[w].send(&batch) {
            Ok(got) => got,
            Err(e) => {
                self.violations
                    .push(format!("worker {w}: published batch does not decode: {e}"));
                return;
            }
        };
        if let Some(m) = self.mirror.as_mut() {
            m.apply(w, &got.batch);
        }
        self.router
            .on_kv_events(w, &got.payload, got.seq, &got.batch);
    }

    fn scrape(&mut self) {
        let text = self.router.wants_metrics_text();
        for w in 0..self.workers.len() {
            self.scraped[w] = self.workers[w].snapshot(self.now);
            if text {
                let page = render_metrics(&self.workers[w], &self.sc.model_name);
                self.router.on_scrape(w, &page);
            }
        }
        if self.next.is_some() || self.active > 0 {
            self.push(
                self.now + self.sc.fleet.scrape_interval_ms / 1e3,
                Kind::Scrape,
            );
        }
    }

    fn verify(&self) -> Vec<String> {
        let Some(m) = &self.mirror else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, w) in self.workers.iter().enumerate() {
            let mut gpu: Vec<u64> = w.kv().gpu_keys().collect();
            gpu.sort_unstable();
            if gpu != m.keys_of(i, llmd_kvindex::Tier::Gpu) {
                out.push(format!(
                    "worker {i}: GPU keys differ from the event-fed index"
                ));
            }
            let mut cpu = w.kv().cpu_keys();
            cpu.sort_unstable();
            if cpu != m.keys_of(i, llmd_kvindex::Tier::Cpu) {
                out.push(format!(
                    "worker {i}: CPU keys differ from the event-fed index"
                ));
            }
        }
        out
    }
}
