//! The scheduler: endpoints, the built pipeline, in-flight state, and `pick`.

mod batch;
mod endpoints;
mod openai;
pub use openai::{ESTIMATE_NOTE, MULTIMODAL_ESTIMATE_NOTE};
mod pick;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use llmd_kvindex::events::{SeqStatus, SeqTracker};
use parking_lot::{Mutex, RwLock};

use crate::config::{self, ConfigReport, LoadOptions, Pipeline};
use crate::error::ScheduleError;
use crate::framework::{EndpointIndex, EndpointNames, LatencyPredictor, ProfileNames};
use crate::inflight::InFlightTable;
use crate::kv::ApplyStats;
use crate::lifecycle::{RequestErrorKind, RequestSummary, Requests};
use crate::model::{Clock, EndpointState, EndpointTag, PromptTokenizer, SystemClock};
use crate::observe::{ErrorKind, Metrics, Usage};

/// Requests held open between `pick` and completion unless
/// [`Scheduler::with_max_open_requests`] says otherwise: 2^20, far above
/// any gateway's concurrency.
pub const DEFAULT_MAX_OPEN_REQUESTS: usize = 1 << 20;

/// Profile-handler rounds are bounded so a misbehaving custom handler cannot spin.
const MAX_ROUNDS: usize = 16;

#[derive(Debug, Default)]
struct Fleet {
    eps: Vec<Arc<EndpointState>>,
    by_name: HashMap<String, usize>,
    /// Every endpoint index, in order: the candidates of a request without a model.
    all: Vec<EndpointIndex>,
    /// Per model or adapter name, the endpoints serving it plus those that
    /// declare no model, in order; endpoint info is fixed for the snapshot's
    /// lifetime, so `pick` reads its candidates instead of comparing strings.
    by_model: HashMap<String, Vec<EndpointIndex>>,
    /// Endpoints that declare no model: the candidates for a model no endpoint names.
    unlabeled: Vec<EndpointIndex>,
    /// Each endpoint's tag, side by side ([`EndpointTag`]).
    tags: Vec<EndpointTag>,
}

impl Fleet {
    fn new(eps: Vec<Arc<EndpointState>>, by_name: HashMap<String, usize>) -> Self {
        let mut by_model: HashMap<String, Vec<EndpointIndex>> = HashMap::new();
        for e in &eps {
            let info = e.info();
            for m in info.model.iter().chain(&info.lora_adapters) {
                by_model.entry(m.clone()).or_default();
            }
        }
        for (model, list) in by_model.iter_mut() {
            list.extend(eps.iter().enumerate().filter_map(|(i, e)| {
                let info = e.info();
                let serves = match &info.model {
                    Some(m) => m == model || info.lora_adapters.iter().any(|a| a == model),
                    None => true,
                };
                serves.then_some(i)
            }));
        }
        let unlabeled = (0..eps.len())
            .filter(|&i| eps[i].info().model.is_none())
            .collect();
        Fleet {
            all: (0..eps.len()).collect(),
            tags: eps.iter().map(|e| e.tag()).collect(),
            eps,
            by_name,
            by_model,
            unlabeled,
        }
    }

    /// Endpoints that may serve `model` (every endpoint when it is empty).
    fn serving(&self, model: &str) -> &[EndpointIndex] {
        if model.is_empty() {
            return &self.all;
        }
        self.by_model.get(model).unwrap_or(&self.unlabeled)
    }
}

impl EndpointNames for Fleet {
    fn endpoint_name(&self, i: EndpointIndex) -> Arc<str> {
        self.eps
            .get(i)
            .map_or_else(|| Arc::from(""), |e| e.name_arc())
    }
}

/// The scheduling library's entry point. `Send + Sync`; `pick` takes `&self`.
pub struct Scheduler {
    pipeline: Pipeline,
    /// Plugin names per profile, shared with every decision's explanation.
    names: Arc<[ProfileNames]>,
    fleet: RwLock<Arc<Fleet>>,
    /// Serialises endpoint additions, replacements and removals (picks never
    /// take it).
    membership: Mutex<()>,
    /// The online latency model (trained when a `predicted-latency-producer`
    /// is configured).
    latency: Arc<crate::latency::OnlineLatencyModel>,
    inflight: Arc<InFlightTable>,
    requests: Requests,
    /// Most requests held open ([`Scheduler::open_requests_limit`]).
    max_open_requests: usize,
    /// Held by the pick that makes room at the limit: concurrent picks do
    /// not each expire a sixteenth.
    making_room: Mutex<()>,
    clock: Arc<dyn Clock>,
    seed: u64,
    cycles: AtomicU64,
    predictor: Option<Arc<dyn LatencyPredictor>>,
    seqs: Mutex<SeqTracker>,
    metrics: Arc<Metrics>,
    tokenizers: RwLock<HashMap<String, Arc<dyn PromptTokenizer>>>,
}

/// What `ingest_kv_events` did with one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestReport {
    /// Blocks stored / removed / cleared / skipped.
    pub stats: ApplyStats,
    /// Sequence status when a sequence number was given.
    pub seq: Option<SeqStatus>,
    /// True when the batch was dropped as a duplicate.
    pub ignored: bool,
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
        let latency = Arc::new(crate::latency::OnlineLatencyModel::new());
        let pipeline = config::load(text, opts, inflight.clone(), latency.clone())?;
        Ok(Scheduler {
            names: ProfileNames::of(&pipeline.profiles),
            pipeline,
            fleet: RwLock::new(Arc::default()),
            membership: Mutex::new(()),
            latency,
            inflight,
            requests: Requests::default(),
            max_open_requests: DEFAULT_MAX_OPEN_REQUESTS,
            making_room: Mutex::new(()),
            clock: Arc::new(SystemClock),
            seed: fastrand::u64(..),
            cycles: AtomicU64::new(0),
            predictor: None,
            seqs: Mutex::new(SeqTracker::new()),
            metrics: Arc::new(Metrics::default()),
            tokenizers: RwLock::new(HashMap::new()),
        })
    }

    /// Loads a config file.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, ScheduleError> {
        Self::from_config_file_with(path, LoadOptions::default())
    }

    /// As [`Scheduler::from_config_file`], with loader options.
    pub fn from_config_file_with(
        path: impl AsRef<Path>,
        opts: LoadOptions,
    ) -> Result<Self, ScheduleError> {
        let p = path.as_ref();
        let text =
            crate::config::text_file::read_text_file(p, crate::config::text_file::MAX_CONFIG_BYTES)
                .map_err(|e| {
                    ScheduleError::Config(crate::error::ConfigError::doc(format!(
                        "cannot read {}: {e}",
                        p.display()
                    )))
                })?;
        Self::from_config_str_with(&text, opts)
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

    /// Holds at most `n` requests open between `pick` and completion
    /// (at least 1; default [`DEFAULT_MAX_OPEN_REQUESTS`]); see
    /// [`Scheduler::open_requests_limit`]. The metrics follow at most their
    /// own `MetricsConfig::max_tracked_requests` (2^20 by default): above
    /// it, requests are routed and released as usual, and counted in
    /// `llmd_observe_untracked_requests_total` without per-request timings.
    pub fn with_max_open_requests(mut self, n: usize) -> Self {
        self.max_open_requests = n.max(1);
        self
    }

    /// Records into `metrics` (e.g. one built with SLO defaults or other
    /// buckets) instead of the default one. Endpoints added earlier are
    /// registered with it on their next decision, in the default pool.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The token-level metrics this scheduler records.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Prometheus text of [`Scheduler::metrics`], at the clock's current time.
    pub fn render_metrics(&self) -> String {
        self.refresh_index_metrics();
        self.metrics
            .render(std::time::Duration::from_nanos(self.clock.now_ns()))
    }

    /// The prefix producers' index sizes and evictions, read at exposition.
    fn refresh_index_metrics(&self) {
        self.metrics.refresh_index_tables(
            self.pipeline
                .producers
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.index_stats()?))),
        );
    }

    /// Attaches a latency model (read by `slo-headroom-tier-filter`).
    pub fn with_latency_predictor(mut self, p: Arc<dyn LatencyPredictor>) -> Self {
        self.predictor = Some(p);
        self
    }

    fn profile_mut(
        &mut self,
        profile: &str,
    ) -> Result<&mut crate::framework::SchedulerProfile, ScheduleError> {
        self.pipeline
            .profiles
            .iter_mut()
            .find(|p| p.name == profile)
            .ok_or_else(|| {
                ScheduleError::Config(crate::error::ConfigError::doc(format!(
                    "no scheduling profile named '{profile}'"
                )))
            })
    }

    /// Appends a scorer (a closure `|ctx, ep| -> f64` or any [`crate::framework::Scorer`]) to a profile.
    pub fn with_scorer(
        mut self,
        profile: &str,
        name: &str,
        weight: f64,
        scorer: impl crate::framework::Scorer + 'static,
    ) -> Result<Self, ScheduleError> {
        let s = crate::framework::WeightedScorer {
            name: name.into(),
            scorer: Arc::new(scorer),
            weight,
        };
        self.profile_mut(profile)?.scorers.push(s);
        self.names = ProfileNames::of(&self.pipeline.profiles);
        Ok(self)
    }

    /// Appends a filter (a closure `|ctx, ep| -> bool` or any [`crate::framework::Filter`]) to a profile.
    pub fn with_filter(
        mut self,
        profile: &str,
        name: &str,
        filter: impl crate::framework::Filter + 'static,
    ) -> Result<Self, ScheduleError> {
        let f = crate::framework::NamedFilter {
            name: name.into(),
            filter: Arc::new(filter),
        };
        self.profile_mut(profile)?.filters.push(f);
        self.names = ProfileNames::of(&self.pipeline.profiles);
        Ok(self)
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

    // ---- request lifecycle -----------------------------------------------------------
    //
    // Every call names a request by the id its decision carries. An id that
    // is not open (never picked, already completed or failed) is a no-op in
    // every call: `false` / `None` is returned, nothing changes, and it is
    // counted in `llmd_observe_unknown_request_calls_total`. Token counts:
    // `on_first_token` counts one token, `on_tokens(n)` adds `n`.

    /// The first token arrived: prompt tokens stop counting as load and the
    /// prefill endpoint's share ends. Returns false for an unknown request id.
    pub fn on_first_token(&self, req_id: &str) -> bool {
        let now = self.clock.now_ns();
        let a = self.inflight.first_token(req_id);
        self.metrics
            .on_first_token(req_id, std::time::Duration::from_nanos(now));
        match self.requests.first_token(req_id, now) {
            None => a,
            Some(sample) => {
                if let Some((s, _)) = &sample {
                    self.latency.token_event(s.uid, now);
                }
                self.first_token_seen(sample);
                true
            }
        }
    }

    /// A request's first token came, `since` after it was scheduled: a
    /// streaming request's TTFT is learnt.
    fn first_token_seen(&self, sample: Option<(crate::lifecycle::LatencySample, u64)>) {
        if let Some((s, since)) = sample.filter(|(s, _)| s.streaming) {
            self.learn_ttft(&s, since);
        }
    }

    /// The request is served by `endpoint` instead of its decision's
    /// primary target: the host fell back to another target (the decision's
    /// `fallbacks`, or one of its own) after the first could not be reached.
    /// Its in-flight load, its in-flight gauges, the endpoint label of its
    /// request and output-token series (its latency series go to the new
    /// endpoint's pool), and the latency model's in-flight accounting move
    /// there; the latency model does not learn from it (its features
    /// described the first target), and its latency and cache-hit
    /// predictions are dropped. The load moved is what was estimated for the
    /// first target (its uncached prompt tokens there). Under P/D only the
    /// decode leg moves. Call it when the request is sent to the new target,
    /// before the other lifecycle calls that follow.
    ///
    /// Returns `Ok(false)` for an unknown request id (a no-op, as in every
    /// lifecycle call) and an error for an endpoint that is not registered.
    /// The prefix index is not changed: what the first target was recorded
    /// to hold (approximate or speculative entries) ages out as usual.
    pub fn on_served_by(&self, req_id: &str, endpoint: &str) -> Result<bool, ScheduleError> {
        let ep = self.endpoint_state(endpoint)?;
        let observed = self.metrics.on_served_by(req_id, endpoint);
        // The load and the latency model's accounting move while the
        // request's record is held: a completion racing this call finds
        // them where the record says.
        let moved = self
            .requests
            .reassign(req_id, endpoint, ep.uid(), |was, sample| {
                self.inflight.reassign(req_id, was, &ep);
                if let Some(s) = sample {
                    self.latency.finished(s.uid, s.tpot_slo_ms);
                    self.latency.dispatched(ep.uid(), s.tpot_slo_ms);
                }
            });
        Ok(moved.is_some() || observed)
    }

    /// Trains the latency model on an observed TTFT and records its error.
    fn learn_ttft(&self, s: &crate::lifecycle::LatencySample, ttft_ns: u64) {
        if !s.train {
            return;
        }
        let ms = ttft_ns as f64 / 1e6;
        // Under P/D, where the first token was made: the prefill endpoint.
        let (uid, endpoint, features, predicted) = match &s.prefill {
            Some(p) => (p.uid, &p.endpoint, &p.features, p.ttft_ms),
            None => (
                s.uid,
                &s.endpoint,
                &s.features,
                s.prediction.map(|p| p.ttft_ms),
            ),
        };
        self.latency.observe_ttft(uid, features, ms);
        if let Some(p) = predicted {
            self.metrics.observe_latency_error(endpoint, "ttft", p, ms);
        }
    }

    /// A request left its endpoint: the latency model's in-flight accounting
    /// drops it, and (when it succeeded) learns its TTFT (outside streaming
    /// mode: the whole request, as llm-d records it) or its TPOT.
    fn learn_completion(
        &self,
        summary: &RequestSummary,
        sample: Option<crate::lifecycle::LatencySample>,
    ) {
        let Some(s) = sample else { return };
        self.latency.finished(s.uid, s.tpot_slo_ms);
        if summary.error.is_some() || !s.train {
            return;
        }
        if !s.streaming {
            let e2e = summary
                .finished_at_ns
                .saturating_sub(summary.scheduled_at_ns);
            self.learn_ttft(&s, e2e);
            return;
        }
        let (Some(first), n) = (summary.first_token_at_ns, summary.output_tokens) else {
            return;
        };
        if n < 2 {
            return;
        }
        let ms = summary.finished_at_ns.saturating_sub(first) as f64 / 1e6 / (n - 1) as f64;
        // A sample no engine gives is neither learnt nor judged against
        // the prediction.
        if !crate::latency::TPOT_SAMPLE_MS.contains(&ms) {
            return;
        }
        self.latency.observe_tpot(s.uid, &s.features, ms);
        if let Some(t) = s.prediction.and_then(|p| p.tpot_ms) {
            self.metrics
                .observe_latency_error(&s.endpoint, "tpot", t, ms);
        }
    }

    /// Under P/D, the prefill endpoint finished its leg (its answer reached
    /// the decode side); only the metrics use it.
    pub fn on_prefill_done(&self, req_id: &str) -> bool {
        let now = std::time::Duration::from_nanos(self.clock.now_ns());
        self.metrics.on_prefill_done(req_id, now)
    }

    /// `n` more output tokens (after the first) were generated. A host that
    /// reports no first token has its first chunk taken for it, as the
    /// metrics take it: the first token's handling (the prompt's in-flight
    /// load released, TTFT learnt) happens then.
    pub fn on_tokens(&self, req_id: &str, n: u64) -> bool {
        let now_ns = self.clock.now_ns();
        let now = std::time::Duration::from_nanos(now_ns);
        let seen = self.requests.tokens(req_id, n, now_ns);
        if seen.as_ref().is_some_and(|s| s.first.is_some()) {
            self.inflight.first_token(req_id);
        }
        let a = self.inflight.tokens(req_id, n);
        self.metrics
            .on_tokens(req_id, u32::try_from(n).unwrap_or(u32::MAX), now);
        match seen {
            None => a,
            Some(s) => {
                if let Some(uid) = s.uid.filter(|_| n > 0) {
                    self.latency.token_event(uid, now_ns);
                }
                if let Some(first) = s.first {
                    self.first_token_seen(first);
                }
                true
            }
        }
    }

    /// The request completed; `cached_tokens` is the engine's reported
    /// prefix-cache hit. As [`Scheduler::on_complete_with_usage`] with only
    /// that count reported.
    pub fn on_complete(&self, req_id: &str, cached_tokens: Option<u32>) -> Option<RequestSummary> {
        self.on_complete_with_usage(
            req_id,
            Usage {
                cached_tokens,
                ..Usage::default()
            },
        )
    }

    /// The request completed with the engine's `usage` (OpenAI `usage`:
    /// `prompt_tokens`, `completion_tokens`,
    /// `prompt_tokens_details.cached_tokens`; see [`Usage::from_openai`]).
    /// Reported output tokens replace the count of the token calls in the
    /// metrics and the summary, so a non-streaming reply (no token calls)
    /// still records its output; without any token call, TTFT is the whole
    /// request (the answer arrived at once).
    pub fn on_complete_with_usage(&self, req_id: &str, usage: Usage) -> Option<RequestSummary> {
        self.inflight.finish(req_id);
        let now = self.clock.now_ns();
        self.metrics
            .on_complete(req_id, usage, std::time::Duration::from_nanos(now));
        let (summary, sample) = self.requests.close(req_id, now, usage, None)?;
        self.learn_completion(&summary, sample);
        Some(summary)
    }

    /// The request failed or was cancelled; everything it held is released.
    pub fn on_error(&self, req_id: &str, kind: RequestErrorKind) -> Option<RequestSummary> {
        self.inflight.finish(req_id);
        let now = self.clock.now_ns();
        let k = match kind {
            RequestErrorKind::Cancelled => ErrorKind::Cancelled,
            RequestErrorKind::Upstream => ErrorKind::Engine,
            RequestErrorKind::Other => ErrorKind::Other,
        };
        self.metrics
            .on_error(req_id, k, std::time::Duration::from_nanos(now));
        let (summary, sample) = self
            .requests
            .close(req_id, now, Usage::default(), Some(kind))?;
        self.learn_completion(&summary, sample);
        Some(summary)
    }

    /// Releases the requests picked more than `max_age` ago that never
    /// finished (a host that dropped a request without `on_complete` or
    /// `on_error`): their endpoint load, in-flight gauges and latency-model
    /// accounting, counted in the metrics with outcome `expired`. Returns how
    /// many. Call it now and then with an age no request legitimately
    /// reaches (say, the gateway's request timeout); nothing calls it for
    /// the host. Without it the open requests are still bounded: see
    /// [`Scheduler::open_requests_limit`].
    pub fn expire_requests(&self, max_age: std::time::Duration) -> usize {
        let now = self.clock.now_ns();
        let cutoff = now.saturating_sub(u64::try_from(max_age.as_nanos()).unwrap_or(u64::MAX));
        self.metrics
            .expire(std::time::Duration::from_nanos(now), max_age);
        self.release_expired(self.requests.older_than(cutoff), now, |_, _| {})
    }

    /// The most requests held open between `pick` and completion
    /// ([`DEFAULT_MAX_OPEN_REQUESTS`] unless set with
    /// [`Scheduler::with_max_open_requests`]). A pick that finds the table
    /// full first expires the oldest sixteenth of the open requests, as
    /// [`Scheduler::expire_requests`] would (outcome `expired`), counted in
    /// `llmd_open_requests_expired_at_limit_total`: a host that never
    /// completes its requests holds bounded memory and endpoint load, and
    /// sees it in the metrics. Set it above the most requests the host can
    /// have in flight.
    pub fn open_requests_limit(&self) -> usize {
        self.max_open_requests
    }

    /// At the limit on open requests, expires the oldest sixteenth of them
    /// (at least one) before a pick opens another. One pass over the table
    /// per sixteenth of the limit, so O(1) amortised per pick.
    fn make_room(&self, now: u64) {
        let limit = self.open_requests_limit();
        if self.requests.len() < limit {
            return;
        }
        // One pick makes room; the others go on (the table may pass the
        // limit by the picks in flight meanwhile).
        let Some(_making) = self.making_room.try_lock() else {
            return;
        };
        let open = self.requests.len();
        if open < limit {
            return;
        }
        let n = (open - limit + 1).max(limit / 16);
        let released = self.release_expired(self.requests.oldest(n), now, |id, opening| {
            // This opening's record, not a later request's that took the id.
            self.metrics
                .expire_request(id, opening, std::time::Duration::from_nanos(now));
        });
        self.metrics.count_expired_at_limit(released);
    }

    /// Closes the listed requests that are still the ones listed, releasing
    /// their load and teaching the latency model; `metrics` expires each
    /// one's metrics record. Returns how many were closed.
    fn release_expired(
        &self,
        listed: Vec<crate::lifecycle::Listed>,
        now: u64,
        metrics: impl Fn(&str, u64),
    ) -> usize {
        let mut released = 0;
        for item in listed {
            // Only if still open and still the one listed: a completion may
            // have raced it, or a new request may have taken its id since
            // (its load is its own: released by its opening's serial).
            if let Some((summary, sample)) = self.requests.close_listed(&item, now) {
                self.inflight.finish_opening(&item.0, item.1);
                metrics(&item.0, item.1);
                self.learn_completion(&summary, sample);
                released += 1;
            }
        }
        released
    }

    /// The online latency model (trained when the config has a
    /// `predicted-latency-producer`): its predictions for any endpoint and
    /// request features, and its sample counts.
    pub fn latency_model(&self) -> &crate::latency::OnlineLatencyModel {
        &self.latency
    }

    /// Requests picked and not yet completed.
    pub fn open_requests(&self) -> usize {
        self.requests.len()
    }
}
