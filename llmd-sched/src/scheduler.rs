//! The scheduler: endpoints, the built pipeline, in-flight state, and `pick`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use llmd_kvindex::events::EventBatch;
use parking_lot::RwLock;

use crate::config::{self, ConfigReport, LoadOptions, Pipeline};
use crate::decision::{Decision, Target, HEADER_DESTINATION, HEADER_ENCODERS, HEADER_PREFILLER, HEADER_SUBSET};
use crate::error::ScheduleError;
use crate::framework::{CycleContext, Decided, EndpointIndex, Explanation, LatencyPredictor, ProfileTrace};
use crate::inflight::InFlightTable;
use crate::kv::ApplyStats;
use crate::lifecycle::{Record, RequestErrorKind, RequestSummary, Requests};
use crate::metrics_text::parse_metrics_text;
use crate::model::{Clock, Endpoint, EndpointMetrics, EndpointState, Request, SystemClock};

/// Profile-handler rounds are bounded so a misbehaving custom handler cannot spin.
const MAX_ROUNDS: usize = 16;

#[derive(Debug, Default)]
struct Fleet {
    eps: Vec<Arc<EndpointState>>,
    by_name: HashMap<String, usize>,
}

/// The scheduling library's entry point. `Send + Sync`; `pick` takes `&self`.
pub struct Scheduler {
    pipeline: Pipeline,
    fleet: RwLock<Arc<Fleet>>,
    inflight: Arc<InFlightTable>,
    requests: Requests,
    clock: Arc<dyn Clock>,
    seed: u64,
    cycles: AtomicU64,
    predictor: Option<Arc<dyn LatencyPredictor>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("profiles", &self.pipeline.profiles)
            .field("endpoints", &self.fleet.read().eps.len())
            .finish()
    }
}

impl Default for Scheduler {
    /// llm-d's built-in default pipeline (queue 2, kv-cache-utilization 2, prefix-cache 3).
    fn default() -> Self {
        match Self::from_config_str_with("", LoadOptions::default()) {
            Ok(s) => s,
            // The embedded default document is fixed; a failure here is a bug in this crate.
            Err(e) => unreachable!("built-in default config failed to load: {e}"),
        }
    }
}

impl Scheduler {
    /// Loads an `EndpointPickerConfig` (YAML or JSON); blank text = llm-d's default.
    pub fn from_config_str(text: &str) -> Result<Self, ScheduleError> {
        Self::from_config_str_with(text, LoadOptions::default())
    }

    /// Like [`Scheduler::from_config_str`] with loader options.
    pub fn from_config_str_with(text: &str, opts: LoadOptions) -> Result<Self, ScheduleError> {
        let inflight = Arc::new(InFlightTable::default());
        let pipeline = config::load(text, opts, inflight.clone())?;
        Ok(Scheduler {
            pipeline,
            fleet: RwLock::new(Arc::default()),
            inflight,
            requests: Requests::default(),
            clock: Arc::new(SystemClock),
            seed: fastrand::u64(..),
            cycles: AtomicU64::new(0),
            predictor: None,
        })
    }

    /// Loads a config file.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, ScheduleError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p).map_err(|e| {
            ScheduleError::Config(crate::error::ConfigError::doc(format!("cannot read {}: {e}", p.display())))
        })?;
        Self::from_config_str(&text)
    }

    /// Uses `clock` for every timestamp (tests and the simulator use a manual clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Makes random choices reproducible: cycle `n` draws from a generator seeded by `(seed, n)`.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self.cycles.store(0, Ordering::Relaxed);
        self
    }

    /// Attaches a latency model (read by `slo-headroom-tier-filter`).
    pub fn with_latency_predictor(mut self, p: Arc<dyn LatencyPredictor>) -> Self {
        self.predictor = Some(p);
        self
    }

    /// What the loader did: plugins executed or only accepted, injected defaults, warnings.
    pub fn config_report(&self) -> &ConfigReport {
        &self.pipeline.report
    }

    /// The built pipeline.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Current clock time.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    // ---- endpoints ---------------------------------------------------------------

    /// Adds an endpoint, or replaces the one with the same name (its state is reset).
    pub fn add_endpoint(&self, ep: Endpoint) -> Result<(), ScheduleError> {
        if ep.name.is_empty() {
            return Err(ScheduleError::InvalidRequest("endpoint name must not be empty".into()));
        }
        if ep.address.is_empty() {
            return Err(ScheduleError::InvalidRequest(format!("endpoint '{}' has no address", ep.name)));
        }
        let mut guard = self.fleet.write();
        let mut fleet = Fleet { eps: guard.eps.clone(), by_name: guard.by_name.clone() };
        let state = Arc::new(EndpointState::new(ep));
        let replaced = match fleet.by_name.get(state.name()) {
            Some(&i) => Some(std::mem::replace(&mut fleet.eps[i], state)),
            None => {
                fleet.by_name.insert(state.name().to_string(), fleet.eps.len());
                fleet.eps.push(state);
                None
            }
        };
        *guard = Arc::new(fleet);
        drop(guard);
        if let Some(old) = replaced {
            self.forget(old.uid());
        }
        Ok(())
    }

    /// Removes an endpoint and every index entry it had.
    pub fn remove_endpoint(&self, name: &str) -> Result<(), ScheduleError> {
        let mut guard = self.fleet.write();
        let Some(&i) = guard.by_name.get(name) else { return Err(ScheduleError::UnknownEndpoint(name.into())) };
        let mut eps = guard.eps.clone();
        let old = eps.remove(i);
        let by_name = eps.iter().enumerate().map(|(i, e)| (e.name().to_string(), i)).collect();
        *guard = Arc::new(Fleet { eps, by_name });
        drop(guard);
        self.forget(old.uid());
        Ok(())
    }

    fn forget(&self, uid: u64) {
        for (_, p) in &self.pipeline.producers {
            p.on_endpoint_removed(uid);
        }
    }

    fn endpoint(&self, name: &str) -> Result<Arc<EndpointState>, ScheduleError> {
        let f = self.fleet.read();
        f.by_name.get(name).map(|&i| f.eps[i].clone()).ok_or_else(|| ScheduleError::UnknownEndpoint(name.into()))
    }

    /// Names of the registered endpoints.
    pub fn endpoint_names(&self) -> Vec<String> {
        self.fleet.read().eps.iter().map(|e| e.name().to_string()).collect()
    }

    /// The live state of an endpoint (metrics, in-flight load).
    pub fn endpoint_state(&self, name: &str) -> Result<Arc<EndpointState>, ScheduleError> {
        self.endpoint(name)
    }

    /// Replaces an endpoint's metrics; a zero timestamp is stamped with the clock.
    pub fn update_endpoint_metrics(&self, name: &str, mut m: EndpointMetrics) -> Result<(), ScheduleError> {
        if m.updated_at_ns == 0 {
            m.updated_at_ns = self.clock.now_ns().max(1);
        }
        self.endpoint(name)?.set_metrics(&m);
        Ok(())
    }

    /// Parses a vLLM `/metrics` text and stores the snapshot, stamped now.
    pub fn update_endpoint_metrics_text(&self, name: &str, text: &str) -> Result<(), ScheduleError> {
        let ep = self.endpoint(name)?;
        let m = parse_metrics_text(text, self.clock.now_ns().max(1)).map_err(|e| ScheduleError::MetricsText(format!("endpoint '{name}': {e}")))?;
        ep.set_metrics(&m);
        Ok(())
    }

    // ---- KV events ---------------------------------------------------------------

    /// Applies a decoded KV-event batch from `endpoint` to every precise index.
    /// Keys are scoped by the endpoint's served model ([`Endpoint::model`]).
    pub fn ingest_kv_batch(&self, endpoint: &str, batch: &EventBatch) -> Result<ApplyStats, ScheduleError> {
        let ep = self.endpoint(endpoint)?;
        let model = ep.info().model.clone().unwrap_or_default();
        let mut total = ApplyStats::default();
        for b in &self.pipeline.kv_backends {
            let s = b.apply_batch(ep.uid(), &model, batch);
            total.stored += s.stored;
            total.removed += s.removed;
            total.cleared += s.cleared;
            total.skipped += s.skipped;
        }
        Ok(total)
    }

    /// Periodic maintenance: expires speculative index entries.
    pub fn tick(&self) {
        let now = self.clock.now_ns();
        for b in &self.pipeline.kv_backends {
            b.tick(now);
        }
    }

    // ---- scheduling --------------------------------------------------------------

    fn candidates(&self, fleet: &Fleet, req: &Request) -> Vec<EndpointIndex> {
        let subset: Option<Vec<&str>> = req.header_value(HEADER_SUBSET).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
        fleet
            .eps
            .iter()
            .enumerate()
            .filter(|(_, e)| match (&e.info().model, req.model.is_empty()) {
                (Some(m), false) => m == &req.model || e.info().lora_adapters.iter().any(|a| a == &req.model),
                _ => true,
            })
            .filter(|(_, e)| subset.as_ref().map_or(true, |s| s.contains(&e.address())))
            .map(|(i, _)| i)
            .collect()
    }

    /// Runs one scheduling cycle.
    pub fn pick(&self, req: &Request) -> Result<Decision, ScheduleError> {
        let fleet = self.fleet.read().clone();
        let now = self.clock.now_ns();
        let candidates = self.candidates(&fleet, req);
        if candidates.is_empty() {
            return Err(ScheduleError::NoEndpoints { model: req.model.clone() });
        }
        if let (false, Some(d)) = (self.pipeline.flow_control, &self.pipeline.saturation_detector) {
            if req.priority < 0 {
                let sat = candidates.iter().map(|&i| d.endpoint_saturation(&fleet.eps[i], now)).sum::<f64>() / candidates.len() as f64;
                if sat >= 1.0 {
                    return Err(ScheduleError::ResourceExhausted {
                        profile: None,
                        reason: format!("sheddable request (priority {}) rejected: pool saturation {sat:.2} >= 1", req.priority),
                    });
                }
            }
        }
        let n = self.cycles.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let profiles = &self.pipeline.profiles;
        let mut ctx = CycleContext::new(req, &fleet.eps, now, profiles.len(), seed).with_predictor(self.predictor.as_deref());
        for (_, p) in &self.pipeline.producers {
            p.produce(&mut ctx, &candidates);
        }
        let mut traces = Vec::new();
        for round in 0..MAX_ROUNDS {
            let next = self.pipeline.handler.pick(&mut ctx, profiles, round);
            if next.is_empty() {
                break;
            }
            for p in next {
                let Some(profile) = profiles.get(p) else { continue };
                let mut trace = ProfileTrace::default();
                let r = profile.run(&ctx, &candidates, &mut trace);
                ctx.set_result(p, r);
                traces.push(trace);
            }
        }
        let outcome = self.pipeline.handler.process_results(&ctx, profiles)?;
        let primary = ctx.result(outcome.primary).map(|r| r.targets.clone()).unwrap_or_default();
        let picks: Vec<(&str, EndpointIndex)> = profiles
            .iter()
            .enumerate()
            .filter_map(|(i, p)| ctx.result(i).and_then(|r| r.targets.first()).map(|&t| (p.name.as_str(), t)))
            .collect();
        let decided = Decided { primary_profile: &profiles[outcome.primary].name, targets: &primary, picks: &picks };
        for h in &self.pipeline.pre_requests {
            h.pre_request(&ctx, &decided);
        }
        let target = |i: EndpointIndex| Target { name: fleet.eps[i].name().to_string(), address: fleet.eps[i].address().to_string() };
        let targets: Vec<Target> = primary.iter().map(|&i| target(i)).collect();
        let prefill_target = outcome.prefill.and_then(|p| ctx.result(p)).and_then(|r| r.targets.first()).map(|&i| target(i));
        let encode_targets: Vec<Target> = outcome.encode.and_then(|p| ctx.result(p)).map(|r| r.targets.iter().map(|&i| target(i)).collect()).unwrap_or_default();
        let join = |ts: &[Target]| ts.iter().map(|t| t.address.as_str()).collect::<Vec<_>>().join(",");
        let mut headers = vec![(HEADER_DESTINATION.to_string(), join(&targets))];
        let mut remove_headers = Vec::new();
        match &prefill_target {
            Some(t) => headers.push((HEADER_PREFILLER.to_string(), t.address.clone())),
            None if outcome.decision_type != "single" => remove_headers.push(HEADER_PREFILLER.to_string()),
            None => {}
        }
        if !encode_targets.is_empty() {
            headers.push((HEADER_ENCODERS.to_string(), join(&encode_targets)));
        }
        self.requests.open(
            &req.id,
            Record {
                target: targets.first().map(|t| t.name.clone()).unwrap_or_default(),
                prefill_target: prefill_target.as_ref().map(|t| t.name.clone()),
                prompt_tokens: ctx.prompt_tokens() as u64,
                scheduled_at_ns: now,
                first_token_at_ns: None,
                output_tokens: 0,
            },
        );
        let explanation = Explanation {
            request_id: req.id.clone(),
            model: req.model.clone(),
            candidates: candidates.iter().map(|&i| fleet.eps[i].name_arc()).collect(),
            prompt_tokens: ctx.prompt_tokens(),
            notes: ctx.take_notes(),
            profiles: traces,
            primary_profile: Some(profiles[outcome.primary].name.clone()),
            decision_type: Some(outcome.decision_type),
        };
        Ok(Decision { targets, prefill_target, encode_targets, headers, remove_headers, explanation })
    }

    // ---- request lifecycle -----------------------------------------------------------

    /// The first token arrived: prompt tokens stop counting as load and the
    /// prefill endpoint's share ends. Returns false for an unknown request id.
    pub fn on_first_token(&self, req_id: &str) -> bool {
        let now = self.clock.now_ns();
        let a = self.inflight.first_token(req_id);
        self.requests.first_token(req_id, now) || a
    }

    /// `n` more output tokens (after the first) were generated.
    pub fn on_tokens(&self, req_id: &str, n: u64) -> bool {
        let a = self.inflight.tokens(req_id, n);
        self.requests.tokens(req_id, n) || a
    }

    /// The request completed; `cached_tokens` is the engine's reported prefix-cache hit.
    pub fn on_complete(&self, req_id: &str, cached_tokens: Option<u32>) -> Option<RequestSummary> {
        self.inflight.finish(req_id);
        self.requests.close(req_id, self.clock.now_ns(), cached_tokens, None)
    }

    /// The request failed or was cancelled; everything it held is released.
    pub fn on_error(&self, req_id: &str, kind: RequestErrorKind) -> Option<RequestSummary> {
        self.inflight.finish(req_id);
        self.requests.close(req_id, self.clock.now_ns(), None, Some(kind))
    }

    /// Requests picked and not yet completed.
    pub fn open_requests(&self) -> usize {
        self.requests.len()
    }
}
