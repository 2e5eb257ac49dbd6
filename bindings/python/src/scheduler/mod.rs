//! `llmd.Scheduler`: the llm-d-compatible scheduling pipeline.

mod decision;
mod feed;
mod request;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use llmd_sched::{Endpoint, EndpointMetrics, LoadOptions, ScheduleError, Scheduler, Usage};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub(crate) use decision::PyDecision;
use request::PickArgs;

use crate::errors::{error, schedule_error, warn_not_executed, Kind};
use crate::json;

/// Routes requests across vLLM endpoints: filters, weighted scorers and a
/// picker built from an llm-d `EndpointPickerConfig`, fed with endpoint
/// metrics and KV events, told about every request's progress.
#[pyclass(name = "Scheduler", module = "llmd", frozen)]
pub(crate) struct PyScheduler {
    inner: Arc<Scheduler>,
}

/// What every constructor takes besides the config.
struct Settings {
    seed: Option<u64>,
    max_open_requests: Option<usize>,
}

impl Settings {
    /// Checks the arguments: at least one open request.
    fn new(py: Python<'_>, seed: Option<u64>, max_open_requests: Option<usize>) -> PyResult<Self> {
        if max_open_requests == Some(0) {
            return Err(error(
                py,
                Kind::InvalidArgument,
                "max_open_requests must be at least 1",
            ));
        }
        Ok(Settings {
            seed,
            max_open_requests,
        })
    }
}

impl PyScheduler {
    /// The scheduler, shared (a `Feed` drives it from its own threads).
    pub(crate) fn shared(&self) -> Arc<Scheduler> {
        Arc::clone(&self.inner)
    }

    fn wrap(
        py: Python<'_>,
        built: Result<Scheduler, ScheduleError>,
        settings: Settings,
    ) -> PyResult<Self> {
        let mut inner = built.map_err(|e| schedule_error(py, &e))?;
        if let Some(seed) = settings.seed {
            inner = inner.with_seed(seed);
        }
        if let Some(n) = settings.max_open_requests {
            inner = inner.with_max_open_requests(n);
        }
        Ok(PyScheduler {
            inner: Arc::new(inner),
        })
    }

    /// Builds with the strict option, then warns once per configured
    /// setting that is accepted but not executed.
    fn load(
        py: Python<'_>,
        build: impl FnOnce(LoadOptions) -> Result<Scheduler, ScheduleError> + Send,
        strict: bool,
        settings: Settings,
    ) -> PyResult<Self> {
        let opts = LoadOptions {
            strict,
            ..LoadOptions::default()
        };
        let built = py.detach(|| {
            let s = build(opts)?;
            // Tokenizer directories the config names (llmd's tokenizerDir).
            llmd_tokenize::load_configured(&s)
                .map_err(|e| ScheduleError::Config(llmd_sched::ConfigError::doc(e.to_string())))?;
            Ok(s)
        });
        let s = Self::wrap(py, built, settings)?;
        warn_not_executed(py, &s.inner.config_report().not_executed_lines())?;
        Ok(s)
    }

    /// True when `text` is a file name rather than a config document.
    fn looks_like_path(text: &str) -> bool {
        let t = text.trim();
        !t.contains('\n')
            && (t.ends_with(".yaml")
                || t.ends_with(".yml")
                || t.ends_with(".json")
                || std::path::Path::new(t).is_file())
    }

    fn endpoint_from(
        name: String,
        address: String,
        labels: Option<BTreeMap<String, String>>,
        model: Option<String>,
        lora_adapters: Option<Vec<String>>,
    ) -> Endpoint {
        Endpoint {
            labels: labels.unwrap_or_default(),
            model,
            lora_adapters: lora_adapters.unwrap_or_default(),
            ..Endpoint::new(name, address)
        }
    }
}

#[pymethods]
impl PyScheduler {
    /// `config` is the text of an llm-d `EndpointPickerConfig` (YAML or
    /// JSON; for a file use `Scheduler.from_file`); `None` builds llm-d's
    /// default pipeline. `seed` makes random tie-breaks reproducible. Each
    /// configured plugin or setting that the library accepts but does not
    /// execute gives a `NotExecutedWarning`; `strict=True` refuses such a
    /// config with `ConfigError` instead. `max_open_requests` bounds the
    /// requests held open between `pick` and `on_complete` (default
    /// 2**20; see `open_requests_limit`); past 2**20 open, the metrics time
    /// no more of them (`llmd_observe_untracked_requests_total`).
    #[new]
    #[pyo3(signature = (config=None, *, seed=None, strict=false, max_open_requests=None))]
    fn new(
        py: Python<'_>,
        config: Option<String>,
        #[pyo3(from_py_with = crate::convert::opt_int)] seed: Option<u64>,
        strict: bool,
        #[pyo3(from_py_with = crate::convert::opt_int)] max_open_requests: Option<usize>,
    ) -> PyResult<Self> {
        let settings = Settings::new(py, seed, max_open_requests)?;
        match config {
            Some(text) if Self::looks_like_path(&text) => Err(error(
                py,
                Kind::Config,
                format!(
                    "Scheduler() takes the config text, and {:?} looks like a file name: use Scheduler.from_file(path)",
                    text.trim()
                ),
            )),
            Some(text) => Self::load(
                py,
                |o| Scheduler::from_config_str_with(&text, o),
                strict,
                settings,
            ),
            None => Self::wrap(py, Ok(py.detach(Scheduler::default)), settings),
        }
    }

    /// Builds from an `EndpointPickerConfig` document (YAML or JSON); warns
    /// or refuses (`strict=True`) and takes `seed` and `max_open_requests`
    /// as the constructor does.
    #[staticmethod]
    #[pyo3(signature = (text, *, seed=None, strict=false, max_open_requests=None))]
    fn from_yaml(
        py: Python<'_>,
        text: String,
        #[pyo3(from_py_with = crate::convert::opt_int)] seed: Option<u64>,
        strict: bool,
        #[pyo3(from_py_with = crate::convert::opt_int)] max_open_requests: Option<usize>,
    ) -> PyResult<Self> {
        let settings = Settings::new(py, seed, max_open_requests)?;
        Self::load(
            py,
            |o| Scheduler::from_config_str_with(&text, o),
            strict,
            settings,
        )
    }

    /// Builds from an `EndpointPickerConfig` file; warns or refuses
    /// (`strict=True`) and takes `seed` and `max_open_requests` as the
    /// constructor does.
    #[staticmethod]
    #[pyo3(signature = (path, *, seed=None, strict=false, max_open_requests=None))]
    fn from_file(
        py: Python<'_>,
        path: std::path::PathBuf,
        #[pyo3(from_py_with = crate::convert::opt_int)] seed: Option<u64>,
        strict: bool,
        #[pyo3(from_py_with = crate::convert::opt_int)] max_open_requests: Option<usize>,
    ) -> PyResult<Self> {
        let settings = Settings::new(py, seed, max_open_requests)?;
        // Read here so that an unreadable file is an `IoError` (an
        // `OSError`), as it is `LLMD_STATUS_IO` in C, not a config error.
        // Without the GIL: a slow file system does not stall other threads.
        let text = py
            .detach(|| std::fs::read_to_string(&path))
            .map_err(|e| error(py, Kind::Io, format!("cannot read {}: {e}", path.display())))?;
        Self::load(
            py,
            |o| Scheduler::from_config_str_with(&text, o),
            strict,
            settings,
        )
    }

    /// What loading the config did: every plugin (configured or injected,
    /// executed or only accepted, with the settings accepted but not
    /// executed), the warnings, and `not_executed`, one line per configured
    /// plugin or setting the library does not execute.
    #[getter]
    fn report(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json::to_py(py, &self.inner.config_report().to_value())
    }

    /// llm-d's default pipeline (queue 2, kv-cache-utilization 2,
    /// prefix-cache 3); `seed` and `max_open_requests` as the constructor
    /// takes them.
    #[staticmethod]
    #[pyo3(signature = (*, seed=None, max_open_requests=None))]
    fn default(
        py: Python<'_>,
        #[pyo3(from_py_with = crate::convert::opt_int)] seed: Option<u64>,
        #[pyo3(from_py_with = crate::convert::opt_int)] max_open_requests: Option<usize>,
    ) -> PyResult<Self> {
        let settings = Settings::new(py, seed, max_open_requests)?;
        Self::wrap(py, Ok(py.detach(Scheduler::default)), settings)
    }

    /// The most requests held open between `pick` and `on_complete`
    /// (`max_open_requests`, default 2**20). A pick that finds this many
    /// open first closes the oldest sixteenth as `expire_requests` would,
    /// counted in `llmd_open_requests_expired_at_limit_total`.
    #[getter]
    fn open_requests_limit(&self) -> usize {
        self.inner.open_requests_limit()
    }

    // ---- endpoints ---------------------------------------------------------

    /// Registers an endpoint. A name already registered, or an address that
    /// is not `host:port` (IPv6 in brackets), raises `InvalidArgumentError`;
    /// `update_endpoint` changes a registered one.
    #[pyo3(signature = (name, address, *, labels=None, model=None, lora_adapters=None))]
    fn add_endpoint(
        &self,
        py: Python<'_>,
        name: String,
        address: String,
        labels: Option<&Bound<'_, PyAny>>,
        model: Option<String>,
        lora_adapters: Option<Vec<String>>,
    ) -> PyResult<()> {
        let labels = json::str_map(labels, "labels")?;
        let ep = Self::endpoint_from(name, address, labels, model, lora_adapters);
        py.detach(|| self.inner.add_endpoint(ep))
            .map_err(|e| schedule_error(py, &e))
    }

    /// Replaces a registered endpoint's description (its metrics are kept;
    /// its load, cache and index state start over); raises
    /// `UnknownEndpointError` when it is not registered.
    #[pyo3(signature = (name, address, *, labels=None, model=None, lora_adapters=None))]
    fn update_endpoint(
        &self,
        py: Python<'_>,
        name: String,
        address: String,
        labels: Option<&Bound<'_, PyAny>>,
        model: Option<String>,
        lora_adapters: Option<Vec<String>>,
    ) -> PyResult<()> {
        let labels = json::str_map(labels, "labels")?;
        let ep = Self::endpoint_from(name, address, labels, model, lora_adapters);
        py.detach(|| self.inner.update_endpoint(ep))
            .map_err(|e| schedule_error(py, &e))
    }

    /// Removes an endpoint and everything known about its cache.
    fn remove_endpoint(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach(|| self.inner.remove_endpoint(name))
            .map_err(|e| schedule_error(py, &e))
    }

    /// Names of the registered endpoints.
    fn endpoints(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| self.inner.endpoint_names())
    }

    /// An endpoint's live state: its metrics and in-flight load.
    fn endpoint_state<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let st = py
            .detach(|| self.inner.endpoint_state(name))
            .map_err(|e| schedule_error(py, &e))?;
        let d = PyDict::new(py);
        d.set_item("name", st.name())?;
        d.set_item("address", st.address())?;
        d.set_item("metrics", json::to_py(py, &st.metrics())?)?;
        d.set_item("inflight_requests", st.inflight_requests())?;
        d.set_item("inflight_tokens", st.inflight_tokens())?;
        Ok(d)
    }

    /// Stores a metrics snapshot given as numbers (stamped now).
    #[pyo3(signature = (name, *, waiting_queue_size=0, running_requests_size=0, kv_cache_usage=0.0,
        active_models=None, waiting_models=None, max_active_models=0, cache_block_size=0, cache_num_blocks=0))]
    #[allow(clippy::too_many_arguments)] // reason: one parameter per Python keyword argument
    fn update_metrics(
        &self,
        py: Python<'_>,
        name: &str,
        #[pyo3(from_py_with = crate::convert::int)] waiting_queue_size: u32,
        #[pyo3(from_py_with = crate::convert::int)] running_requests_size: u32,
        #[pyo3(from_py_with = crate::convert::float)] kv_cache_usage: f64,
        active_models: Option<Vec<String>>,
        waiting_models: Option<Vec<String>>,
        #[pyo3(from_py_with = crate::convert::int)] max_active_models: u32,
        #[pyo3(from_py_with = crate::convert::int)] cache_block_size: u32,
        #[pyo3(from_py_with = crate::convert::int)] cache_num_blocks: u64,
    ) -> PyResult<()> {
        if !(0.0..=1.0).contains(&kv_cache_usage) {
            return Err(error(
                py,
                Kind::InvalidArgument,
                format!("kv_cache_usage must be in [0, 1], got {kv_cache_usage}"),
            ));
        }
        let m = EndpointMetrics {
            waiting_queue_size,
            running_requests_size,
            kv_cache_usage,
            active_models: active_models.unwrap_or_default(),
            waiting_models: waiting_models.unwrap_or_default(),
            max_active_models,
            cache_block_size,
            cache_num_blocks,
            ..EndpointMetrics::default()
        };
        py.detach(|| self.inner.update_endpoint_metrics(name, m))
            .map_err(|e| schedule_error(py, &e))
    }

    /// Parses a vLLM `/metrics` response body and stores the snapshot.
    fn update_metrics_text(&self, py: Python<'_>, name: &str, text: &str) -> PyResult<()> {
        py.detach(|| self.inner.update_endpoint_metrics_text(name, text))
            .map_err(|e| schedule_error(py, &e))
    }

    // ---- KV events -----------------------------------------------------------

    /// Applies one KV-event message payload (msgpack `EventBatch`) from
    /// `endpoint`. With `seq` (the message's sequence number) duplicates are
    /// skipped, gaps and restarts reported in the result, and a gap's lost
    /// batches from the replay socket, in order, applied as "replayed" (stop
    /// reading the replay after the gap's last number: the later batches it
    /// sends were applied live and would read as a restart).
    #[pyo3(signature = (endpoint, payload, seq=None))]
    fn ingest_kv_events<'py>(
        &self,
        py: Python<'py>,
        endpoint: &str,
        payload: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = crate::convert::opt_int)] seq: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.ingest(py, endpoint, payload, seq)
    }

    /// Periodic maintenance (expires speculative cache entries); call it
    /// every few hundred milliseconds.
    fn tick(&self, py: Python<'_>) {
        py.detach(|| self.inner.tick());
    }

    /// Releases the requests picked more than `max_age` seconds ago that
    /// never finished (dropped without `on_complete` / `on_error`): their
    /// endpoint load, in-flight gauges and latency-model accounting, counted
    /// with outcome `expired`. Returns how many. A negative or non-finite
    /// age raises `InvalidArgumentError`. Without it the open requests are
    /// still bounded: a pick that finds `open_requests_limit` open expires
    /// the oldest sixteenth first (`llmd_open_requests_expired_at_limit_total`).
    fn expire_requests(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = crate::convert::float)] max_age: f64,
    ) -> PyResult<usize> {
        if !(max_age.is_finite() && max_age >= 0.0) {
            return Err(error(
                py,
                Kind::InvalidArgument,
                format!("max_age must be a finite number of seconds >= 0, got {max_age}"),
            ));
        }
        // An age too long for a Duration expires nothing, as the longest does.
        let age =
            std::time::Duration::try_from_secs_f64(max_age).unwrap_or(std::time::Duration::MAX);
        Ok(py.detach(|| self.inner.expire_requests(age)))
    }

    // ---- scheduling ------------------------------------------------------------

    /// Runs one scheduling cycle for a request described by the keyword
    /// arguments (the fields of the Rust `Request`). `mm_items` identifies
    /// the request's multimodal items (any stable string per image, video
    /// or audio, e.g. a hash of its URL or bytes) for the
    /// `mm-embeddings-cache` plugins; giving any implies `multimodal`.
    /// `ttft_slo_ms` and `tpot_slo_ms` are None or 0 (no objective) or a
    /// positive finite number of milliseconds; anything else raises
    /// `InvalidArgumentError`.
    #[pyo3(signature = (*, model="", prompt=None, tokens=None, request_id=None,
        lora_name=None, lora_id=None, lora_path=None, cache_salt=None, session_id=None,
        headers=None, priority=0, ttft_slo_ms=None, tpot_slo_ms=None, multimodal=false,
        arrived_at=None, mm_items=None))]
    #[allow(clippy::too_many_arguments)] // reason: one parameter per Python keyword argument
    fn pick<'py>(
        &self,
        py: Python<'py>,
        model: &str,
        prompt: Option<String>,
        tokens: Option<&Bound<'py, PyAny>>,
        request_id: Option<String>,
        lora_name: Option<String>,
        #[pyo3(from_py_with = crate::convert::opt_int)] lora_id: Option<i64>,
        lora_path: Option<String>,
        cache_salt: Option<String>,
        session_id: Option<String>,
        headers: Option<&Bound<'py, PyAny>>,
        #[pyo3(from_py_with = crate::convert::int)] priority: i32,
        #[pyo3(from_py_with = crate::convert::opt_float)] ttft_slo_ms: Option<f64>,
        #[pyo3(from_py_with = crate::convert::opt_float)] tpot_slo_ms: Option<f64>,
        multimodal: bool,
        #[pyo3(from_py_with = crate::convert::opt_float)] arrived_at: Option<f64>,
        mm_items: Option<Vec<String>>,
    ) -> PyResult<PyDecision> {
        let req = PickArgs {
            model: model.to_owned(),
            prompt,
            tokens,
            request_id,
            lora_name,
            lora_id,
            lora_path,
            cache_salt,
            session_id,
            headers: json::str_map(headers, "headers")?,
            priority,
            ttft_slo_ms,
            tpot_slo_ms,
            multimodal,
            arrived_at,
            mm_items: mm_items.unwrap_or_default(),
        }
        .into_request(py)?;
        let inner = py
            .detach(|| self.inner.pick(&req))
            .map_err(|e| schedule_error(py, &e))?;
        Ok(PyDecision {
            request_id: req.id,
            inner,
        })
    }

    /// Picks a window of requests together (each a dict of `pick`'s keyword
    /// arguments), for a `burst-prefix-cache-producer`: requests sharing a
    /// prompt go to the same replica, as llm-d assigns a window. Returns one
    /// entry per request, in order: its `Decision`, or the `LlmdError` that
    /// `pick` would have raised for it. A malformed dict raises at once.
    fn pick_batch<'py>(
        &self,
        py: Python<'py>,
        requests: Vec<Bound<'py, PyDict>>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let reqs = requests
            .iter()
            .map(|d| request::request_from_dict(py, d))
            .collect::<PyResult<Vec<_>>>()?;
        let results = py.detach(|| self.inner.pick_batch(&reqs));
        reqs.into_iter()
            .zip(results)
            .map(|(req, r)| match r {
                Ok(inner) => Ok(Py::new(
                    py,
                    PyDecision {
                        request_id: req.id,
                        inner,
                    },
                )?
                .into_any()),
                Err(e) => Ok(schedule_error(py, &e).into_value(py).into_any()),
            })
            .collect()
    }

    /// Seconds a host should collect requests for `pick_batch` (the longest
    /// `windowDurationMs` of the configured burst producers); `None` without
    /// one.
    #[getter]
    fn burst_window(&self) -> Option<f64> {
        self.inner.burst_window().map(|d| d.as_secs_f64())
    }

    /// Picks for an OpenAI request body as the gateway received it: `path`
    /// is `/v1/completions` or `/v1/chat/completions`, `body` the bytes (or
    /// a dict). With a tokenizer for the model (`set_tokenizer`), the
    /// prompt's ids are the engine's (chat templates rendered as vLLM
    /// does); without one they are estimated from the text and the
    /// decision's explanation says so. Malformed bodies raise
    /// `InvalidArgumentError` naming the field.
    #[pyo3(signature = (path, body, *, headers=None, request_id=None))]
    fn pick_openai<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        body: &Bound<'py, PyAny>,
        headers: Option<&Bound<'py, PyAny>>,
        request_id: Option<String>,
    ) -> PyResult<PyDecision> {
        let headers = json::str_map(headers, "headers")?;
        let bytes = body_bytes(py, body)?;
        let id = request_id.unwrap_or_else(request::next_request_id);
        let headers = headers.unwrap_or_default();
        let inner = py
            .detach(|| self.inner.pick_openai(&id, path, &bytes, &headers))
            .map_err(|e| schedule_error(py, &e))?;
        Ok(PyDecision {
            request_id: id,
            inner,
        })
    }

    /// Uses `tokenizer` for requests to `model` ("" for every model without
    /// its own) in `pick_openai`.
    fn set_tokenizer(&self, model: &str, tokenizer: &crate::tokenizer::PyTokenizer) {
        self.inner.set_tokenizer(model, tokenizer.shared());
    }

    /// Benchmark helper: seconds per `pick` of the same request, timed in
    /// Rust over `iterations` calls (the Rust side of the binding overhead).
    #[pyo3(signature = (iterations, *, model="", prompt=None, tokens=None, request_id=None))]
    fn _time_pick<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = crate::convert::int)] iterations: u32,
        model: &str,
        prompt: Option<String>,
        tokens: Option<&Bound<'py, PyAny>>,
        request_id: Option<String>,
    ) -> PyResult<f64> {
        let req = PickArgs {
            model: model.to_owned(),
            prompt,
            tokens,
            request_id,
            lora_name: None,
            lora_id: None,
            lora_path: None,
            cache_salt: None,
            session_id: None,
            headers: None,
            priority: 0,
            ttft_slo_ms: None,
            tpot_slo_ms: None,
            multimodal: false,
            arrived_at: None,
            mm_items: Vec::new(),
        }
        .into_request(py)?;
        let iterations = iterations.max(1);
        py.detach(|| {
            let start = Instant::now();
            for _ in 0..iterations {
                std::hint::black_box(self.inner.pick(std::hint::black_box(&req)))?;
            }
            Ok(start.elapsed().as_secs_f64() / f64::from(iterations))
        })
        .map_err(|e: ScheduleError| schedule_error(py, &e))
    }

    /// Benchmark helper: seconds per `pick_openai` of the same body, timed
    /// in Rust over `iterations` calls.
    #[pyo3(signature = (iterations, path, body, *, request_id="bench"))]
    fn _time_pick_openai(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = crate::convert::int)] iterations: u32,
        path: &str,
        body: &[u8],
        request_id: &str,
    ) -> PyResult<f64> {
        let iterations = iterations.max(1);
        let headers = BTreeMap::new();
        py.detach(|| {
            let start = Instant::now();
            for _ in 0..iterations {
                std::hint::black_box(self.inner.pick_openai(request_id, path, body, &headers))?;
            }
            Ok(start.elapsed().as_secs_f64() / f64::from(iterations))
        })
        .map_err(|e: ScheduleError| schedule_error(py, &e))
    }

    // ---- request lifecycle -----------------------------------------------------

    /// The first output token arrived. False for an unknown request id.
    fn on_first_token(&self, py: Python<'_>, request_id: &str) -> bool {
        py.detach(|| self.inner.on_first_token(request_id))
    }

    /// The remote prefill of a disaggregated request finished (the KV cache
    /// is on the decode endpoint). False for an unknown request id.
    fn on_prefill_done(&self, py: Python<'_>, request_id: &str) -> bool {
        py.detach(|| self.inner.on_prefill_done(request_id))
    }

    /// The request is served by `endpoint` instead of its decision's first
    /// target: the host fell back to another target (one of the decision's
    /// fallbacks, or its own) after the first could not be reached. Its
    /// in-flight load and gauges, the endpoint label of its request series
    /// and the latency model's in-flight accounting move there, and its
    /// timings train no endpoint's latency model. Call it when the request
    /// is sent to the new target, before the lifecycle calls that follow.
    /// False for an unknown request id; an endpoint that is not registered
    /// raises `UnknownEndpointError`.
    fn on_served_by(&self, py: Python<'_>, request_id: &str, endpoint: &str) -> PyResult<bool> {
        py.detach(|| self.inner.on_served_by(request_id, endpoint))
            .map_err(|e| schedule_error(py, &e))
    }

    /// `n` more output tokens arrived. False for an unknown request id.
    fn on_tokens(
        &self,
        py: Python<'_>,
        request_id: &str,
        #[pyo3(from_py_with = crate::convert::int)] n: u64,
    ) -> bool {
        py.detach(|| self.inner.on_tokens(request_id, n))
    }

    /// The request finished. `usage` is the response's OpenAI `usage`
    /// object as the engine returned it (`prompt_tokens`,
    /// `completion_tokens`, `prompt_tokens_details.cached_tokens`): its
    /// completion tokens replace the counted ones, so a non-streaming reply
    /// records its output too. `cached_tokens`, when given, is the engine's
    /// prefix-cache hit and wins over `usage`'s (-1, like None, means not
    /// reported, as in the C and Go bindings). Returns the request's
    /// summary, or None for an unknown id. A `usage` that is not plain data,
    /// a count in it or a `cached_tokens` that is not an integer in
    /// 0 ..= 2^32-1 raises `InvalidArgumentError` after the request is
    /// completed without that value, so a bad argument never leaves a
    /// request counted as in flight.
    #[pyo3(signature = (request_id, cached_tokens=None, *, usage=None))]
    fn on_complete(
        &self,
        py: Python<'_>,
        request_id: &str,
        cached_tokens: Option<&Bound<'_, PyAny>>,
        usage: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let bad = |msg: String| error(py, Kind::InvalidArgument, msg);
        let (mut u, mut problem) = match usage {
            Some(obj) if !obj.is_none() => match json::from_py(obj, "usage") {
                Ok(v) => (
                    Usage::from_openai(&v),
                    Usage::openai_problem(&v)
                        .map(|m| bad(format!("{m}; the request was completed without it"))),
                ),
                Err(e) => (Usage::default(), Some(e)),
            },
            _ => (Usage::default(), None),
        };
        // -1 means "not reported", as in the C and Go bindings.
        let given = cached_tokens
            .filter(|c| !c.is_none())
            .filter(|c| c.extract::<i64>().ok() != Some(-1));
        match given.map(|c| c.extract::<u32>()) {
            Some(Ok(n)) => u.cached_tokens = Some(n),
            Some(Err(_)) => {
                let shown = cached_tokens.map_or_else(String::new, |c| c.to_string());
                problem = Some(bad(format!(
                    "cached_tokens {shown} is not a token count (0 ..= 2^32-1); the request was completed without it"
                )));
            }
            None => {}
        }
        let summary = py.detach(|| self.inner.on_complete_with_usage(request_id, u));
        match problem {
            Some(e) => Err(e),
            None => json::to_py(py, &summary),
        }
    }

    /// The request failed: `kind` is `"cancelled"` (the client went away),
    /// `"upstream"` (the endpoint failed) or `"other"`. An unknown kind
    /// still closes the request (as `"other"`: it must not stay in flight),
    /// then raises `InvalidArgumentError`.
    #[pyo3(signature = (request_id, kind="upstream"))]
    fn on_error(&self, py: Python<'_>, request_id: &str, kind: &str) -> PyResult<Py<PyAny>> {
        let (known, problem) = match request::error_kind(py, kind) {
            Ok(k) => (k, None),
            Err(e) => (llmd_sched::RequestErrorKind::Other, Some(e)),
        };
        let summary = py.detach(|| self.inner.on_error(request_id, known));
        match problem {
            Some(e) => Err(e),
            None => json::to_py(py, &summary),
        }
    }

    /// The scheduler's metrics in the Prometheus text format (TTFT, TPOT,
    /// cache hits, routing scores, decisions, KV-event health), for a
    /// `/metrics` endpoint.
    fn render_metrics(&self, py: Python<'_>) -> String {
        py.detach(|| self.inner.render_metrics())
    }

    /// Requests picked and not finished yet.
    #[getter]
    fn open_requests(&self, py: Python<'_>) -> usize {
        py.detach(|| self.inner.open_requests())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let n = py.detach(|| self.inner.endpoint_names().len());
        format!("Scheduler(endpoints={n})")
    }
}

/// An OpenAI body given as bytes, str, or a JSON-serializable dict.
pub(crate) fn body_bytes(py: Python<'_>, body: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = body.cast::<pyo3::types::PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(s) = body.extract::<String>() {
        return Ok(s.into_bytes());
    }
    Ok(crate::json::dumps(py, body, "body")?.into_bytes())
}
