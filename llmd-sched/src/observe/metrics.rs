//! [`Metrics`]: the registry, the handle caches and the lifecycle table.

use super::config::{MetricsConfig, ObserveError};
use super::families::Families;
use super::inflight::{InFlight, Inserted, PrefillLeg, RequestTable};
use super::labels::{Interner, Outcome, PdDecision, NONE};
use super::record::{DecisionRecord, RejectRecord};
use super::routes::RouteCache;
use super::series::{
    Cache, EndpointSeries, LatencySeries, PredictedSeries, ProfileSeries, RequestSeries, Route,
    StageSeries,
};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

type RequestKey = (Arc<str>, Arc<str>, Arc<str>, Arc<str>);

/// Token-level metrics of one scheduler: record decisions and lifecycle
/// events, render Prometheus text. Shareable across threads (`&self` only).
#[derive(Debug)]
pub struct Metrics {
    pub(super) cfg: MetricsConfig,
    pub(super) fam: Families,
    pub(super) registry: Registry,
    models: Interner,
    profiles: Interner,
    endpoint_names: Interner,
    pub(super) default_pool: Arc<str>,
    none: Arc<str>,
    pub(super) endpoints: Cache<Box<str>, EndpointSeries>,
    latency: Cache<(Arc<str>, Arc<str>), LatencySeries>,
    requests: Cache<RequestKey, RequestSeries>,
    decisions: Cache<Arc<str>, [Counter; 5]>,
    routes: RouteCache,
    pub(super) table: RequestTable,
    pub(super) sched: super::sched::SchedHandles,
    /// Last event-batch time per endpoint label, for staleness.
    pub(super) last_event: Mutex<ahash::AHashMap<Arc<str>, Duration>>,
    /// Endpoints removed and not registered again (most recent
    /// [`REMOVED_KEPT`]), so a decision or event batch racing with the
    /// removal cannot bring their gauges back.
    removed: Mutex<Removed>,
    /// Revisions with a share series, per screener.
    pub(super) revisions: Mutex<ahash::AHashMap<String, Vec<String>>>,
}

/// Removed endpoint names remembered: a stale decision or event batch comes
/// within moments of the removal, so a bounded window suffices.
const REMOVED_KEPT: usize = 4096;

#[derive(Debug, Default)]
struct Removed {
    names: ahash::AHashSet<Box<str>>,
    order: std::collections::VecDeque<Box<str>>,
}

impl Default for Metrics {
    /// Metrics with [`MetricsConfig::default`] (vLLM's buckets, no default SLOs).
    fn default() -> Self {
        match Metrics::new(MetricsConfig::default()) {
            Ok(m) => m,
            // The default caps are all non-zero.
            Err(e) => unreachable!("default metrics config rejected: {e}"),
        }
    }
}

impl Metrics {
    /// Builds the registry and families described by `cfg`.
    pub fn new(cfg: MetricsConfig) -> Result<Metrics, ObserveError> {
        cfg.validate()?;
        let fam = Families::new(&cfg);
        let registry = fam.registry();
        Ok(Metrics {
            models: Interner::new(cfg.max_models),
            profiles: Interner::new(64),
            endpoint_names: Interner::new(cfg.max_endpoints),
            default_pool: Arc::from(cfg.default_pool.as_str()),
            none: Arc::from(NONE),
            endpoints: Cache::default(),
            latency: Cache::default(),
            requests: Cache::default(),
            decisions: Cache::default(),
            routes: RouteCache::default(),
            table: RequestTable::new(cfg.max_tracked_requests),
            sched: Default::default(),
            last_event: Mutex::new(ahash::AHashMap::new()),
            removed: Mutex::new(Removed::default()),
            revisions: Mutex::default(),
            registry,
            fam,
            cfg,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &MetricsConfig {
        &self.cfg
    }

    /// The underlying registry, for hosts that merge it into their own
    /// exposition or encode it as OpenMetrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Declares an endpoint and its pool (the default pool when `None`) so its
    /// gauges exist from the start. Decisions naming an undeclared endpoint
    /// declare it with the default pool.
    pub fn register_endpoint(&self, name: &str, pool: Option<&str>) {
        let mut removed = self.removed.lock();
        if removed.names.remove(name) {
            removed.order.retain(|n| &**n != name);
        }
        let old = self.endpoints.remove(name);
        self.clear_routes();
        let new = self.endpoint_series_locked(name, pool, &removed);
        if let Some(old) = old.filter(|o| o.pool != new.pool) {
            // The series are per registration: the old pool's go (requests
            // already in flight keep their own handles to them).
            let labels = vec![
                ("endpoint", old.endpoint.clone()),
                ("pool", old.pool.clone()),
            ];
            self.fam.inflight_requests.remove(&labels);
            self.fam.inflight_tokens.remove(&labels);
            self.fam.engine_kv_usage.remove(&labels);
            self.fam.engine_kv_blocks.remove(&labels);
            self.fam.engine_kv_block_bytes.remove(&labels);
        }
    }

    /// Runs `f` (which may create gauges of endpoint `name`) unless `name`
    /// was removed and not registered again, holding the lock that
    /// `remove_endpoint` takes, so the two cannot interleave.
    pub(super) fn unless_removed<R>(&self, name: &str, f: impl FnOnce() -> R) -> Option<R> {
        let removed = self.removed.lock();
        (!removed.names.contains(name)).then(f)
    }

    fn clear_routes(&self) {
        self.routes.clear();
    }

    /// The handles of (`model`, `profile`, `endpoint`): one hash and one
    /// read lock when cached.
    pub(super) fn route(&self, model: &str, profile: &str, endpoint: &str) -> Arc<Route> {
        if let Some(r) = self.routes.get(model, profile, endpoint) {
            return r;
        }
        let generation = self.routes.generation();
        let model_l = self.models.get(model);
        let ep = self.endpoint_series(endpoint, None);
        let overflow = self.models.is_overflow(&model_l);
        let route = Arc::new(Route {
            latency: self.latency_series(&model_l, &ep.pool),
            decisions: self.decision_counters(&model_l),
            profile: self.profiles.get(profile),
            model: model_l,
            endpoint: ep,
            requests: std::sync::OnceLock::new(),
        });
        // Routes of models past the label cap (or too long for a label) are
        // not cached: a client's made-up names must not fill the cache.
        if overflow {
            return route;
        }
        self.routes
            .insert(model, profile, endpoint, route, generation)
    }

    /// The route of `from`'s model and profile to `endpoint` (a request
    /// moved there). A model past the label cap keeps its overflow label
    /// and its route is not cached, as [`Metrics::route`] does.
    pub(super) fn reroute(&self, from: &Route, endpoint: &str) -> Arc<Route> {
        if !self.models.is_overflow(&from.model) {
            // The label is the model's name.
            return self.route(&from.model, &from.profile, endpoint);
        }
        let ep = self.endpoint_series(endpoint, None);
        Arc::new(Route {
            latency: self.latency_series(&from.model, &ep.pool),
            decisions: from.decisions.clone(),
            profile: from.profile.clone(),
            model: from.model.clone(),
            endpoint: ep,
            requests: std::sync::OnceLock::new(),
        })
    }

    /// The request counters of a decode route.
    pub(super) fn route_requests(&self, r: &Route) -> Arc<RequestSeries> {
        r.requests
            .get_or_init(|| {
                self.request_series((
                    r.model.clone(),
                    r.endpoint.pool.clone(),
                    r.profile.clone(),
                    r.endpoint.endpoint.clone(),
                ))
            })
            .clone()
    }

    /// Drops the per-endpoint series of a removed endpoint (in-flight gauges,
    /// index blocks, staleness, predictions, and its request and
    /// output-token series: with pods coming and going under new names,
    /// kept ones would grow without bound). Its requests still in flight
    /// finish uncounted there.
    pub fn remove_endpoint(&self, name: &str) {
        // Under the lock that series creation takes, so no decision can
        // recreate the gauges between the check and the removal.
        let mut removed = self.removed.lock();
        if removed.names.insert(name.into()) {
            removed.order.push_back(name.into());
            if removed.order.len() > REMOVED_KEPT {
                if let Some(old) = removed.order.pop_front() {
                    removed.names.remove(&old);
                }
            }
        }
        let Some(ep) = self.endpoints.remove(name) else {
            return;
        };
        self.clear_routes();
        // Its label's place is free for the next endpoint. Past the cap many
        // endpoints share the `other` series, which stay for the others.
        if self.endpoint_names.is_overflow(&ep.endpoint) {
            return;
        }
        self.endpoint_names.release(name);
        let labels = vec![("endpoint", ep.endpoint.clone()), ("pool", ep.pool.clone())];
        self.fam.inflight_requests.remove(&labels);
        self.fam.inflight_tokens.remove(&labels);
        self.fam.engine_kv_usage.remove(&labels);
        self.fam.engine_kv_blocks.remove(&labels);
        self.fam.engine_kv_block_bytes.remove(&labels);
        let by_endpoint = vec![("endpoint", ep.endpoint.clone())];
        self.fam.predicted_ttft.remove(&by_endpoint);
        self.fam.predicted_tpot.remove(&by_endpoint);
        for kind in ["ttft", "tpot"] {
            let labels = vec![("endpoint", ep.endpoint.clone()), ("kind", Arc::from(kind))];
            self.fam.prediction_error.remove(&labels);
        }
        for s in self.requests.remove_where(|k| k.3 == ep.endpoint) {
            s.remove_from(&self.fam);
        }
        self.forget_index_endpoint(&ep.endpoint);
    }

    /// Records the latency model's prediction (ms) for a request sent to `name`.
    pub fn observe_predicted_latency(&self, name: &str, p: &crate::framework::LatencyPrediction) {
        // A host predictor's value that is no duration (NaN, infinite,
        // negative) is left out: one infinity would hold `_sum` there.
        let seconds = |ms: f64| (ms.is_finite() && ms >= 0.0).then_some(ms / 1e3);
        let ep = self.endpoint_series(name, None);
        let series = ep.predicted.get_or_init(|| {
            // Made under the lock `remove_endpoint` takes before dropping
            // them, so none is made after a removal looked; a removed
            // endpoint's series (the handles of a decision racing it) are
            // in no family.
            let removed = self.removed.lock();
            if removed.names.contains(name) {
                return PredictedSeries::detached();
            }
            PredictedSeries::new(&self.fam, &ep.endpoint)
        });
        if let Some(s) = seconds(p.ttft_ms) {
            series.ttft.observe(s);
        }
        if let Some(s) = p.tpot_ms.and_then(seconds) {
            series.tpot.observe(s);
        }
    }

    /// Records how far a prediction (ms) was from what the request measured (ms).
    pub fn observe_latency_error(
        &self,
        name: &str,
        kind: &'static str,
        predicted: f64,
        measured: f64,
    ) {
        if !(measured > 0.0 && predicted.is_finite()) {
            return;
        }
        self.unless_removed(name, || {
            let labels = vec![
                ("endpoint", self.endpoint_names.get(name)),
                ("kind", Arc::from(kind)),
            ];
            self.fam
                .prediction_error
                .get_or_create(&labels)
                .observe((predicted - measured).abs() / measured);
        });
    }

    /// Records the engine's own view of endpoint `name`'s KV cache, from its
    /// reported metrics: usage (0 to 1; not finite counts as 0), capacity
    /// in blocks and bytes per block (0: unknown, no series).
    pub fn record_engine_cache(&self, name: &str, usage: f64, blocks: u64, block_bytes: u64) {
        // Under the lock registration and removal take, so the labels are
        // those of the registration in force and a removed endpoint's
        // gauges never come back.
        let removed = self.removed.lock();
        if removed.names.contains(name) {
            return;
        }
        let ep = self.endpoint_series_locked(name, None, &removed);
        let labels = vec![("endpoint", ep.endpoint.clone()), ("pool", ep.pool.clone())];
        let usage = if usage.is_finite() {
            usage.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.fam.engine_kv_usage.get_or_create(&labels).set(usage);
        for (fam, v) in [
            (&self.fam.engine_kv_blocks, blocks),
            (&self.fam.engine_kv_block_bytes, block_bytes),
        ] {
            if v > 0 {
                fam.get_or_create(&labels)
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            } else {
                fam.remove(&labels);
            }
        }
    }

    pub(super) fn endpoint_series(&self, name: &str, pool: Option<&str>) -> Arc<EndpointSeries> {
        if let Some(s) = self.endpoints.get(name) {
            return s;
        }
        let removed = self.removed.lock();
        self.endpoint_series_locked(name, pool, &removed)
    }

    /// As [`Metrics::endpoint_series`], with the removed-endpoint lock held:
    /// a removed endpoint gets handles that are not in any family (updated,
    /// never exported).
    fn endpoint_series_locked(
        &self,
        name: &str,
        pool: Option<&str>,
        removed: &Removed,
    ) -> Arc<EndpointSeries> {
        if removed.names.contains(name) {
            return Arc::new(EndpointSeries::detached(
                Arc::from(name),
                self.default_pool.clone(),
            ));
        }
        self.endpoints.get_or_make(name, || {
            let pool = pool
                .map(Arc::from)
                .unwrap_or_else(|| self.default_pool.clone());
            let label = self.endpoint_names.get(name);
            (Box::from(name), EndpointSeries::new(&self.fam, label, pool))
        })
    }

    pub(super) fn latency_series(&self, model: &Arc<str>, pool: &Arc<str>) -> Arc<LatencySeries> {
        let key = (model.clone(), pool.clone());
        self.latency.get_or_make(&key, || {
            let v = LatencySeries::new(&self.fam, model, pool);
            (key.clone(), v)
        })
    }

    fn request_series(&self, key: RequestKey) -> Arc<RequestSeries> {
        if let Some(s) = self.requests.get(&key) {
            return s;
        }
        // A decision racing its endpoint's removal: counted in a series of
        // its own that is neither kept nor exported. The lock is held while
        // the series is made (`remove_endpoint` takes it before dropping
        // them), so none is made after the removal looked.
        let removed = self.removed.lock();
        if removed.names.contains(&*key.3) {
            return Arc::new(RequestSeries::removed(&key.0, &key.1, &key.2, &key.3));
        }
        let s = self.requests.get_or_make(&key, || {
            let v = RequestSeries::new(&self.fam, &key.0, &key.1, &key.2, &key.3);
            (key.clone(), v)
        });
        drop(removed);
        s
    }

    fn decision_counters(&self, model: &Arc<str>) -> Arc<[Counter; 5]> {
        self.decisions.get_or_make(model, || {
            let c = PdDecision::ALL.map(|d| {
                self.fam.decisions.get_or_create_owned(&vec![
                    ("model", model.clone()),
                    ("decision", Arc::from(d.as_str())),
                ])
            });
            (model.clone(), c)
        })
    }

    /// Pre-creates the zero-valued series of (`model`, `profile`, `endpoint`)
    /// so that `rate()` counts the very first request. Optional: series are
    /// created on first use anyway.
    pub fn preregister(&self, model: &str, profile: &str, endpoint: &str) {
        let model = self.models.get(model);
        let ep = self.endpoint_series(endpoint, None);
        self.latency_series(&model, &ep.pool);
        self.decision_counters(&model);
        self.request_series((
            model,
            ep.pool.clone(),
            self.profiles.get(profile),
            ep.endpoint.clone(),
        ));
    }

    /// Score handles for a profile and its scorers (in run order).
    pub fn profile_series(&self, profile: &str, scorers: &[&str]) -> ProfileSeries {
        ProfileSeries::new(&self.fam, profile, scorers)
    }

    /// Latency handle for a scheduler stage.
    pub fn stage_series(&self, stage: &str) -> StageSeries {
        StageSeries::new(&self.fam, stage)
    }

    /// Records a decision and starts tracking the request's lifecycle.
    pub fn on_decision(&self, d: &DecisionRecord<'_>) {
        let route = self.route(d.model, d.profile, d.decode.endpoint);
        let requests = self.route_requests(&route);
        let pd = PdDecision::of(d.encode, d.prefill.is_some());
        route.decisions[pd as usize].inc();
        route
            .latency
            .queue
            .observe(d.decided.saturating_sub(d.arrived).as_secs_f64());

        if d.prefill.is_some() && d.block_size > 0 {
            // vLLM's P/D connectors pull the prompt tokens the decode side
            // has not computed: everything past its cached full blocks,
            // the partial last block included.
            let cached = d.decode.predicted_hit_blocks.saturating_mul(d.block_size);
            let tokens = d.prompt_tokens.saturating_sub(cached);
            let blocks = tokens.div_ceil(d.block_size);
            route.latency.pd_transfer_blocks.observe(f64::from(blocks));
            let per_token = d.kv_bytes_per_token.or_else(|| {
                let cfg = &self.cfg.kv_bytes_per_token;
                cfg.get(d.model).or_else(|| cfg.get("")).copied()
            });
            if let Some(bpt) = per_token {
                let bytes = u64::from(tokens).saturating_mul(bpt);
                route.latency.pd_transfer_bytes.observe(bytes as f64);
            }
        }
        let prefill = d.prefill.map(|leg| {
            let route = self.route(d.model, d.profile, leg.endpoint);
            route.endpoint.inflight_requests.inc();
            route
                .endpoint
                .inflight_tokens
                .inc_by(i64::from(d.prompt_tokens));
            PrefillLeg {
                route,
                open: true,
                done: None,
            }
        });
        // The endpoint that computes the prompt is the one whose cache counts.
        let (cache_route, blocks) = match (&prefill, d.prefill) {
            (Some(p), Some(leg)) => (&p.route, leg.predicted_hit_blocks),
            _ => (&route, d.decode.predicted_hit_blocks),
        };
        cache_route
            .latency
            .kv_predicted_blocks
            .observe(f64::from(blocks));
        let predicted_tokens = blocks.saturating_mul(d.block_size).min(d.prompt_tokens);

        route.endpoint.inflight_requests.inc();
        route
            .endpoint
            .inflight_tokens
            .inc_by(i64::from(d.prompt_tokens));
        let entry = InFlight {
            arrived: d.arrived,
            decided: d.decided,
            first: None,
            last: None,
            tokens: 0,
            prompt: d.prompt_tokens,
            predicted_tokens,
            slo: d.slo.or(self.cfg.default_slo),
            requests,
            route,
            prefill,
            opening: d.opening,
        };
        match self.table.insert(d.request_id, entry) {
            Inserted::New => {}
            // A reused id: the earlier opening can no longer be followed.
            Inserted::Replaced(old) => self.finish(old, Outcome::Expired, None, d.decided),
            // The scheduler's limit expired this opening before its record came.
            Inserted::Expired(late) => self.finish(late, Outcome::Expired, None, d.decided),
            Inserted::Full(untracked) => {
                self.fam.untracked.inc();
                self.release(&untracked);
            }
        }
    }

    /// Records a refused request.
    pub fn on_rejected(&self, r: &RejectRecord<'_>) {
        let model = self.models.get(r.model);
        let pool = self.default_pool.clone();
        let latency = self.latency_series(&model, &pool);
        self.decision_counters(&model)[PdDecision::Rejected as usize].inc();
        latency
            .queue
            .observe(r.decided.saturating_sub(r.arrived).as_secs_f64());
        let requests =
            self.request_series((model, pool, self.profiles.get(r.profile), self.none.clone()));
        requests.finish(&self.fam, r.reason.into(), 0);
        super::goodput::count_failure(&latency, r.slo.or(self.cfg.default_slo), false);
    }

    /// Drops requests decided more than `max_age` before `now` that never
    /// finished, counting them with outcome `expired`
    /// ([`crate::Scheduler::expire_requests`] calls it and releases the
    /// scheduler's own accounting of them too).
    pub fn expire(&self, now: Duration, max_age: Duration) -> usize {
        let old = self.table.drain_older(now.saturating_sub(max_age));
        let n = old.len();
        for r in old {
            self.finish(r, Outcome::Expired, None, now);
        }
        n
    }

    /// Releases the in-flight gauges held by `r`.
    pub(super) fn release(&self, r: &InFlight) {
        let tokens = i64::from(r.prompt) + r.tokens as i64;
        r.route.endpoint.inflight_requests.dec();
        r.route.endpoint.inflight_tokens.dec_by(tokens);
        if let Some(p) = &r.prefill {
            if p.open {
                p.route.endpoint.inflight_requests.dec();
                p.route.endpoint.inflight_tokens.dec_by(i64::from(r.prompt));
            }
        }
    }

    /// Renders every metric in the Prometheus text format (0.0.4), with
    /// staleness gauges evaluated at `now`.
    pub fn render(&self, now: Duration) -> String {
        self.refresh_staleness(now);
        let mut out = String::with_capacity(64 * 1024);
        // Writing into a String cannot fail; an encoder error would only come
        // from a metric refusing to encode, which ours never do.
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Renders every metric in the OpenMetrics text format (ends in `# EOF`).
    pub fn render_openmetrics(&self, now: Duration) -> String {
        self.refresh_staleness(now);
        let mut out = String::with_capacity(64 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
