//! The simulation state and its event handlers for arrivals and steps.

use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Instant;

use llmd_kvindex::events::EventLayout;

use crate::cost::CostModel;
use crate::error::Result;
use crate::request::{Outcome, RequestRecord, RequestSpec};
use crate::router::{FleetView, PreciseIndex, Refusal, Role, Route, RouteRequest, Router};
use crate::scenario::Scenario;
use crate::tokens::BlockKeyer;
use crate::wire::Publisher;
use crate::worker::{render_metrics, Progress, Seq, SeqKind, Snapshot, Worker};
use crate::workload::Workload;

use super::{Ev, Kind, RunOptions, RunOutput};

pub(super) struct Sim<'a> {
    pub(super) sc: &'a Scenario,
    pub(super) cost: CostModel,
    pub(super) router: Box<dyn Router>,
    pub(super) workload: Box<dyn Workload>,
    pub(super) opts: RunOptions<'a>,
    pub(super) keyer: Arc<dyn BlockKeyer>,
    pub(super) workers: Vec<Worker>,
    pub(super) names: Vec<String>,
    pub(super) roles: Vec<Role>,
    pub(super) decode_set: Vec<usize>,
    pub(super) prefill_set: Vec<usize>,
    pub(super) scraped: Vec<Snapshot>,
    pub(super) heap: BinaryHeap<Ev>,
    pub(super) n: u64,
    pub(super) now: f64,
    pub(super) next: Option<RequestSpec>,
    pub(super) records: Vec<RequestRecord>,
    pub(super) routes: Vec<Route>,
    pub(super) out_len: Vec<u32>,
    pub(super) active: u64,
    pub(super) done: u64,
    pub(super) publishers: Vec<Publisher>,
    pub(super) batches: u64,
    pub(super) mirror: Option<PreciseIndex>,
    pub(super) violations: Vec<String>,
    pub(super) progress: Vec<Progress>,
    /// Drained ladder stages (`arrivals.drain_stages`).
    pub(super) drain: Option<Drain>,
}

/// Where a drained ladder stands: the stage sending, when it started, and
/// per stage the requests sent and ended. `next`'s arrival is placed (made
/// absolute) once its stage has started; a request of a later stage waits,
/// held, until every request of the current one has ended.
#[derive(Debug, Default)]
pub(super) struct Drain {
    stage: u32,
    start: f64,
    gap: f64,
    sent: Vec<u64>,
    ended: Vec<u64>,
    held: bool,
}

impl Drain {
    fn count(v: &mut Vec<u64>, stage: u32) -> &mut u64 {
        let i = stage as usize;
        if v.len() <= i {
            v.resize(i + 1, 0);
        }
        &mut v[i]
    }

    /// Whether every request the current stage sent has ended.
    fn drained(&mut self) -> bool {
        let s = self.stage;
        *Drain::count(&mut self.ended, s) == *Drain::count(&mut self.sent, s)
    }
}

impl<'a> Sim<'a> {
    pub(super) fn new(
        sc: &'a Scenario,
        cost: CostModel,
        router: Box<dyn Router>,
        workload: Box<dyn Workload>,
        opts: RunOptions<'a>,
        keyer: Arc<dyn BlockKeyer>,
    ) -> Self {
        let (names, roles) = crate::policy::fleet_endpoints(sc);
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
            drain: sc.workload.arrivals.drain_stages.then(|| Drain {
                gap: sc.workload.arrivals.stage_gap_s,
                ..Drain::default()
            }),
        }
    }

    /// Draws the next request and places it on the clock.
    fn draw_next(&mut self) {
        self.next = self.workload.next_request();
        self.place_next();
    }

    /// With drained stages: makes `next`'s arrival absolute when its stage
    /// is the one sending; a request of a later stage is held until the
    /// current stage has drained (then that stage starts `gap` later).
    fn place_next(&mut self) {
        let now = self.now;
        let (Some(d), Some(r)) = (self.drain.as_mut(), self.next.as_mut()) else {
            return;
        };
        let stage = r.stage.unwrap_or(0);
        if stage != d.stage {
            if !d.drained() {
                d.held = true;
                return;
            }
            // Each stage boundary costs the gap, an empty stage's too.
            d.start = now + d.gap * f64::from(stage.saturating_sub(d.stage));
            d.stage = stage;
        }
        d.held = false;
        r.arrival += d.start;
    }

    /// Counts a request's end; the last of a drained stage starts the next.
    fn ended(&mut self, req: u64) {
        let stage = self.records[req as usize].stage.unwrap_or(0);
        let Some(d) = self.drain.as_mut() else {
            return;
        };
        *Drain::count(&mut d.ended, stage) += 1;
        if d.held && stage == d.stage && d.drained() {
            self.place_next();
        }
    }

    pub(super) fn push(&mut self, t: f64, kind: Kind) {
        self.n += 1;
        self.heap.push(Ev { t, n: self.n, kind });
    }

    pub(super) fn run(mut self) -> Result<RunOutput> {
        let wall = Instant::now();
        self.draw_next();
        self.push(0.0, Kind::Scrape);
        let total = self.sc.workload.max_requests;
        let mut ticks = 0u64;
        loop {
            let held = self.drain.as_ref().is_some_and(|d| d.held);
            if held && self.active == 0 {
                // Nothing in flight, yet the stage has not drained: a
                // request ended uncounted. Reported, and the next stage
                // starts rather than the run waiting for good.
                self.violations.push(format!(
                    "t={:.3} a drained stage's requests all ended but not all were counted",
                    self.now
                ));
                if let Some(d) = self.drain.as_mut() {
                    let s = d.stage;
                    *Drain::count(&mut d.ended, s) = *Drain::count(&mut d.sent, s);
                }
                self.place_next();
                continue;
            }
            let heap_t = self.heap.peek().map(|e| e.t);
            // At the client's cap the next request waits for one to end
            // (something is in flight, so an event comes).
            let capped = self
                .sc
                .client
                .max_in_flight
                .is_some_and(|cap| self.active >= cap);
            let next = self.next.as_ref().filter(|_| !held && !capped);
            let arrival_first = match (next, heap_t) {
                (Some(r), Some(t)) => r.arrival <= t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if arrival_first {
                if let Some(mut r) = self.next.take() {
                    self.now = self.now.max(r.arrival);
                    // Sent now: later than its time when the client's cap
                    // held it back.
                    r.arrival = self.now;
                    if let Some(d) = self.drain.as_mut() {
                        *Drain::count(&mut d.sent, r.stage.unwrap_or(0)) += 1;
                    }
                    self.arrive(r);
                    self.draw_next();
                }
            } else if let Some(ev) = self.heap.pop() {
                if let Kind::ClientTimeout(req) = ev.kind {
                    if self.records[req as usize].finished.is_some() {
                        // The request ended first: its timeout is no event,
                        // and must not carry the clock past the run's end.
                        continue;
                    }
                }
                self.now = ev.t;
                match ev.kind {
                    Kind::StepDone(w) => self.step_done(w),
                    Kind::Scrape => self.scrape(),
                    Kind::KvReady(w, seq) => {
                        // A transfer whose client gave up meanwhile is dropped.
                        if self.records[seq.req as usize].finished.is_none() {
                            self.admit(w, *seq);
                        }
                    }
                    Kind::ClientTimeout(req) => self.client_timeout(req),
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
            // A P/D request loads both of its workers.
            for w in r.worker.into_iter().chain(r.prefill_worker) {
                per_worker[w] += 1;
            }
        }
        Ok(RunOutput {
            prediction_errors: self.router.prediction_errors(),
            not_executed: self.router.not_executed(),
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
                priority: 0,
                stage: None,
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
            priority: r.priority,
            stage: r.stage,
        };
        self.active += 1;
        if let Some(t) = self.sc.client.timeout_s {
            self.push(r.arrival + t, Kind::ClientTimeout(r.id));
        }
        if let Err(e) = hashed {
            return self.fail(r.id, format!("hashing the prompt failed: {e}"));
        }
        if r.prompt.is_empty() {
            // It would never take a step (workloads refuse empty prompts;
            // this keeps any other source from hanging the run).
            return self.fail(r.id, "empty prompt".into());
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
            Err(Refusal::Failed(e)) => return self.fail(r.id, format!("routing failed: {e}")),
            Err(Refusal::Rejected(why)) => return self.end(r.id, Outcome::Rejected(why)),
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
            Err(why) => self.fail(req, why),
        }
    }

    fn fail(&mut self, req: u64, why: String) {
        self.end(req, Outcome::Failed(why))
    }

    /// Ends `req` without completing it.
    fn end(&mut self, req: u64, outcome: Outcome) {
        let rec = &mut self.records[req as usize];
        rec.outcome = outcome;
        rec.finished = Some(self.now);
        self.active -= 1;
        self.done += 1;
        let route = self.routes[req as usize];
        self.router.on_done(req, route, self.now, false);
        self.ended(req);
    }

    /// The client gave up on `req`: every worker holding it aborts it, and it
    /// fails. Nothing happens if it already ended.
    fn client_timeout(&mut self, req: u64) {
        let rec = &self.records[req as usize];
        if rec.finished.is_some() {
            return;
        }
        let route = self.routes[req as usize];
        let mut touched = Vec::with_capacity(2);
        for w in std::iter::once(route.decode).chain(route.prefill) {
            if rec.worker.is_some() && self.workers[w].abort(req) {
                touched.push(w);
            }
        }
        let t = self.sc.client.timeout_s.unwrap_or_default();
        self.fail(req, format!("client timeout ({t} s)"));
        for w in touched {
            self.kick(w);
        }
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

    pub(super) fn handle(&mut self, w: usize, progress: &mut Vec<Progress>) {
        for p in progress.drain(..) {
            // A request whose client gave up while the step ran: the step's
            // work for it is dropped (the worker already let it go).
            let gone = |req: u64| self.records[req as usize].finished.is_some();
            match p {
                Progress::FirstToken { req, .. }
                | Progress::Finished { req }
                | Progress::Token { req }
                    if gone(req) => {}
                Progress::PrefillDone { seq } if gone(seq.req) => {}
                Progress::FirstToken { req, cached_tokens } => {
                    let now = self.now;
                    let rec = &mut self.records[req as usize];
                    rec.first_token = Some(now);
                    rec.output_tokens = 1;
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
                    self.ended(req);
                }
                Progress::Token { req } => {
                    // Counted as they stream, so a request that ends
                    // unfinished (a client timeout) records what it got.
                    let rec = &mut self.records[req as usize];
                    rec.output_tokens = rec.output_tokens.saturating_add(1);
                    let route = self.routes[req as usize];
                    self.router.on_tokens(req, route, self.now);
                }
                Progress::Preempted { req } => self.records[req as usize].preemptions += 1,
                Progress::PrefillDone { seq } => self.hand_over(*seq),
            }
        }
    }
}
