//! Pre-resolved metric handles. Label sets are resolved once per
//! (model, pool, ...) combination and cached, so recording is a map lookup
//! under a read lock followed by atomic adds.

use super::families::Families;
use super::histogram::AtomicHistogram;
use super::labels::{Labels, Outcome, SloKind};
use ahash::AHashMap;
use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::{Arc, OnceLock};

/// A read-mostly map from a key to shared handles.
#[derive(Debug)]
pub struct Cache<K, V>(RwLock<AHashMap<K, Arc<V>>>);

impl<K: Hash + Eq, V> Default for Cache<K, V> {
    fn default() -> Self {
        Cache(RwLock::new(AHashMap::new()))
    }
}

impl<K: Hash + Eq, V> Cache<K, V> {
    /// The cached value for `key`, if any.
    pub fn get<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.read().get(key).cloned()
    }

    /// The cached value for `key`, built with `make` on first use.
    pub fn get_or_make<Q>(&self, key: &Q, make: impl FnOnce() -> (K, V)) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.0.read().get(key) {
            return v.clone();
        }
        let mut w = self.0.write();
        if let Some(v) = w.get(key) {
            return v.clone();
        }
        let (k, v) = make();
        let v = Arc::new(v);
        w.insert(k, v.clone());
        v
    }

    /// Removes `key`; returns the handles it had.
    pub fn remove<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.write().remove(key)
    }

    /// Removes every entry whose key `drop` says; returns their handles.
    pub fn remove_where(&self, drop: impl Fn(&K) -> bool) -> Vec<Arc<V>> {
        let mut w = self.0.write();
        let mut out = Vec::new();
        w.retain(|k, v| {
            if drop(k) {
                out.push(v.clone());
                false
            } else {
                true
            }
        });
        out
    }
}

fn l(pairs: &[(&'static str, &Arc<str>)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).clone())).collect()
}

fn lit(v: &'static str) -> Arc<str> {
    Arc::from(v)
}

/// Handles of one endpoint: its label values and load gauges.
#[derive(Debug)]
pub struct EndpointSeries {
    /// `endpoint` label value (capped).
    pub endpoint: Arc<str>,
    /// `pool` label value.
    pub pool: Arc<str>,
    /// In-flight requests.
    pub inflight_requests: Gauge,
    /// In-flight tokens.
    pub inflight_tokens: Gauge,
    /// Its `llmd_predicted_*` histograms, made at its first prediction
    /// ([`super::Metrics::observe_predicted_latency`]).
    pub predicted: OnceLock<PredictedSeries>,
}

/// `llmd_predicted_ttft_seconds` and `llmd_predicted_tpot_seconds` of one
/// endpoint.
#[derive(Debug)]
pub struct PredictedSeries {
    /// Predicted TTFT.
    pub ttft: AtomicHistogram,
    /// Predicted TPOT.
    pub tpot: AtomicHistogram,
}

impl PredictedSeries {
    /// Resolves the histograms of `endpoint`.
    pub fn new(f: &Families, endpoint: &Arc<str>) -> Self {
        let labels = l(&[("endpoint", endpoint)]);
        PredictedSeries {
            ttft: f.predicted_ttft.get_or_create_owned(&labels),
            tpot: f.predicted_tpot.get_or_create_owned(&labels),
        }
    }

    /// Histograms in no family, for a removed endpoint (updated, never
    /// exported).
    pub fn detached() -> Self {
        PredictedSeries {
            ttft: AtomicHistogram::new(Arc::from([])),
            tpot: AtomicHistogram::new(Arc::from([])),
        }
    }
}

impl EndpointSeries {
    /// Gauges that belong to no family: for an endpoint removed while a
    /// decision about it was in flight (updated, never exported).
    pub fn detached(endpoint: Arc<str>, pool: Arc<str>) -> Self {
        EndpointSeries {
            inflight_requests: Gauge::default(),
            inflight_tokens: Gauge::default(),
            predicted: OnceLock::new(),
            endpoint,
            pool,
        }
    }

    /// Resolves the gauges of (`endpoint`, `pool`).
    pub fn new(f: &Families, endpoint: Arc<str>, pool: Arc<str>) -> Self {
        let labels = l(&[("endpoint", &endpoint), ("pool", &pool)]);
        EndpointSeries {
            inflight_requests: f.inflight_requests.get_or_create_owned(&labels),
            inflight_tokens: f.inflight_tokens.get_or_create_owned(&labels),
            predicted: OnceLock::new(),
            endpoint,
            pool,
        }
    }
}

/// Latency, token, goodput and KV handles of one (model, pool).
#[derive(Debug)]
pub struct LatencySeries {
    /// TTFT.
    pub ttft: AtomicHistogram,
    /// TPOT.
    pub tpot: AtomicHistogram,
    /// Inter-token latency.
    pub itl: AtomicHistogram,
    /// End-to-end latency.
    pub e2e: AtomicHistogram,
    /// Router queue time.
    pub queue: AtomicHistogram,
    /// Prefill time, `[colocated, disaggregated]`.
    pub prefill: [AtomicHistogram; 2],
    /// Decode time, `[colocated, disaggregated]`.
    pub decode: [AtomicHistogram; 2],
    /// P/D hand-off.
    pub handoff: AtomicHistogram,
    /// P/D KV transfer, blocks.
    pub pd_transfer_blocks: AtomicHistogram,
    /// P/D KV transfer, bytes.
    pub pd_transfer_bytes: AtomicHistogram,
    /// Input tokens.
    pub input_tokens: AtomicHistogram,
    /// Engine-reported cached tokens.
    pub cached_tokens: AtomicHistogram,
    /// Objectives met, indexed like [`SloKind::ALL`].
    pub slo_met: [Counter; 4],
    /// Objectives evaluated, indexed like [`SloKind::ALL`].
    pub slo_evaluated: [Counter; 4],
    /// Requests with reported cache usage.
    pub kv_requests: Counter,
    /// Of those, engine-reported hits.
    pub kv_hits: Counter,
    /// Of those, router-predicted hits.
    pub kv_predicted_hits: Counter,
    /// Their prompt tokens.
    pub kv_prompt_tokens: Counter,
    /// Their cached tokens, `[predicted, reported]`.
    pub kv_cached_tokens: [Counter; 2],
    /// Predicted hit blocks at decision time.
    pub kv_predicted_blocks: AtomicHistogram,
}

impl LatencySeries {
    /// Resolves every handle of (`model`, `pool`).
    pub fn new(f: &Families, model: &Arc<str>, pool: &Arc<str>) -> Self {
        let mp = l(&[("model", model), ("pool", pool)]);
        let with = |k: &'static str, v: &'static str| {
            let mut x = mp.clone();
            x.push((k, lit(v)));
            x
        };
        let slo = |fam: &super::families::CounterFamily| {
            SloKind::ALL.map(|k| fam.get_or_create_owned(&with("slo", k.as_str())))
        };
        let modes = |fam: &super::families::HistogramFamily| {
            ["colocated", "disaggregated"].map(|m| fam.get_or_create_owned(&with("mode", m)))
        };
        LatencySeries {
            ttft: f.ttft.get_or_create_owned(&mp),
            tpot: f.tpot.get_or_create_owned(&mp),
            itl: f.itl.get_or_create_owned(&mp),
            e2e: f.e2e.get_or_create_owned(&mp),
            queue: f.queue.get_or_create_owned(&mp),
            prefill: modes(&f.prefill),
            decode: modes(&f.decode),
            handoff: f.handoff.get_or_create_owned(&mp),
            pd_transfer_blocks: f.pd_transfer_blocks.get_or_create_owned(&mp),
            pd_transfer_bytes: f.pd_transfer_bytes.get_or_create_owned(&mp),
            input_tokens: f.input_tokens.get_or_create_owned(&mp),
            cached_tokens: f.cached_tokens.get_or_create_owned(&mp),
            slo_met: slo(&f.slo_met),
            slo_evaluated: slo(&f.slo_evaluated),
            kv_requests: f.kv_requests.get_or_create_owned(&mp),
            kv_hits: f.kv_hits.get_or_create_owned(&mp),
            kv_predicted_hits: f.kv_predicted_hits.get_or_create_owned(&mp),
            kv_prompt_tokens: f.kv_prompt_tokens.get_or_create_owned(&mp),
            kv_cached_tokens: ["predicted", "reported"]
                .map(|s| f.kv_cached_tokens.get_or_create_owned(&with("source", s))),
            kv_predicted_blocks: f.kv_predicted_blocks.get_or_create_owned(&mp),
        }
    }
}

/// Request-count handles of one (model, pool, profile, endpoint); the
/// per-outcome series are created on first use, except `ok` of a real
/// endpoint, which exists from the start so that `rate()` sees the first
/// completion.
#[derive(Debug)]
pub struct RequestSeries {
    labels: Labels,
    outcomes: [OnceLock<(Counter, AtomicHistogram)>; 9],
    /// Its endpoint left ([`RequestSeries::remove_from`]): requests still
    /// in flight there finish uncounted, and no series is made again.
    removed: std::sync::atomic::AtomicBool,
}

impl RequestSeries {
    /// Resolves the series of (`model`, `pool`, `profile`, `endpoint`).
    pub fn new(
        f: &Families,
        model: &Arc<str>,
        pool: &Arc<str>,
        profile: &Arc<str>,
        endpoint: &Arc<str>,
    ) -> Self {
        let s = Self::labelled(model, pool, profile, endpoint, false);
        // Rejections (no endpoint) can never complete.
        if &**endpoint != super::labels::NONE {
            s.outcome(f, Outcome::Ok);
        }
        s
    }

    /// The request counter and output-token histogram of `outcome`.
    pub fn outcome(&self, f: &Families, outcome: Outcome) -> &(Counter, AtomicHistogram) {
        self.outcomes[outcome.index()].get_or_init(|| {
            let mut labels = self.labels.clone();
            labels.push(("outcome", lit(outcome.as_str())));
            (
                f.requests.get_or_create_owned(&labels),
                f.output_tokens.get_or_create_owned(&labels),
            )
        })
    }

    /// Handles of (`model`, `pool`, `profile`, `endpoint`) for an endpoint
    /// already removed: nothing is registered and nothing is counted.
    pub fn removed(
        model: &Arc<str>,
        pool: &Arc<str>,
        profile: &Arc<str>,
        endpoint: &Arc<str>,
    ) -> Self {
        Self::labelled(model, pool, profile, endpoint, true)
    }

    fn labelled(
        model: &Arc<str>,
        pool: &Arc<str>,
        profile: &Arc<str>,
        endpoint: &Arc<str>,
        removed: bool,
    ) -> Self {
        RequestSeries {
            labels: l(&[
                ("model", model),
                ("pool", pool),
                ("profile", profile),
                ("endpoint", endpoint),
            ]),
            outcomes: Default::default(),
            removed: std::sync::atomic::AtomicBool::new(removed),
        }
    }

    /// Drops the series this made from the families (its endpoint left);
    /// none is made again.
    pub fn remove_from(&self, f: &Families) {
        use std::sync::atomic::{fence, Ordering::SeqCst};
        self.removed.store(true, SeqCst);
        // Pairs with `finish`'s fence: a series `finish` made after this
        // store is seen made here, or `finish` sees the store (and removes
        // it itself); removing twice is harmless.
        fence(SeqCst);
        for (i, made) in self.outcomes.iter().enumerate() {
            if made.get().is_some() {
                self.drop_outcome(f, Outcome::ALL[i]);
            }
        }
    }

    fn drop_outcome(&self, f: &Families, outcome: Outcome) {
        let mut labels = self.labels.clone();
        labels.push(("outcome", lit(outcome.as_str())));
        f.requests.remove(&labels);
        f.output_tokens.remove(&labels);
    }

    /// Counts one finished request with `output_tokens` (nothing once its
    /// endpoint left).
    pub fn finish(&self, f: &Families, outcome: Outcome, output_tokens: u64) {
        use std::sync::atomic::{fence, Ordering::SeqCst};
        if self.removed.load(SeqCst) {
            return;
        }
        let (count, tokens) = self.outcome(f, outcome);
        count.inc();
        tokens.observe(output_tokens as f64);
        fence(SeqCst);
        if self.removed.load(SeqCst) {
            // The endpoint left while this was counted: a series made now
            // would outlive it.
            self.drop_outcome(f, outcome);
        }
    }
}

/// Score handles of one scheduling profile and its scorers, in the order the
/// profile runs them. Build once per pipeline with
/// [`super::Metrics::profile_series`] and keep it beside the profile.
#[derive(Clone, Debug)]
pub struct ProfileSeries {
    routing_score: AtomicHistogram,
    margin: AtomicHistogram,
    scorers: Vec<AtomicHistogram>,
}

impl ProfileSeries {
    /// Resolves the handles of `profile` and `scorers`.
    pub fn new(f: &Families, profile: &str, scorers: &[&str]) -> Self {
        let p: Arc<str> = Arc::from(profile);
        let pl = l(&[("profile", &p)]);
        ProfileSeries {
            routing_score: f.routing_score.get_or_create_owned(&pl),
            margin: f.score_margin.get_or_create_owned(&pl),
            scorers: scorers
                .iter()
                .map(|s| {
                    let s: Arc<str> = Arc::from(*s);
                    f.scorer_score
                        .get_or_create_owned(&l(&[("profile", &p), ("scorer", &s)]))
                })
                .collect(),
        }
    }

    /// Records a profile run's pick: the winner's raw score per scorer (same
    /// order as at construction; extra entries are ignored), its weighted
    /// total, and the runner-up's weighted total when there was one.
    #[inline]
    pub fn record(&self, winner_raw: &[f64], winner_total: f64, runner_up_total: Option<f64>) {
        for (h, s) in self.scorers.iter().zip(winner_raw) {
            h.observe(*s);
        }
        self.routing_score.observe(winner_total);
        if let Some(r) = runner_up_total {
            self.margin.observe((winner_total - r).max(0.0));
        }
    }
}

/// Latency handle of one scheduler stage (`total`, `produce`, `profiles`,
/// `finish`).
#[derive(Clone, Debug)]
pub struct StageSeries(AtomicHistogram);

impl StageSeries {
    /// Resolves the histogram of `stage`.
    pub fn new(f: &Families, stage: &str) -> Self {
        let s: Arc<str> = Arc::from(stage);
        StageSeries(
            f.scheduler_duration
                .get_or_create_owned(&l(&[("stage", &s)])),
        )
    }

    /// Records one run of the stage.
    #[inline]
    pub fn observe(&self, d: std::time::Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

/// Every handle a decision to (model, profile, endpoint) touches, resolved
/// together so the decision path does one lookup.
#[derive(Debug)]
pub struct Route {
    /// Interned model label.
    pub model: Arc<str>,
    /// Interned profile label.
    pub profile: Arc<str>,
    /// The endpoint's handles.
    pub endpoint: Arc<EndpointSeries>,
    /// Latency handles of (model, endpoint's pool).
    pub latency: Arc<LatencySeries>,
    /// Decision counters of the model, indexed like `PdDecision::ALL`.
    pub decisions: Arc<[Counter; 5]>,
    /// Request counters; created when the endpoint is a decode target, so
    /// prefill-only endpoints get no request series.
    pub requests: OnceLock<Arc<RequestSeries>>,
}
