//! `llmd.Feed`: the live connection to vLLM pods (KV events over ZMQ with
//! replay, `/metrics` scraping, discovery) on Rust threads.

use std::path::PathBuf;
use std::time::Duration;

use llmd_feed::{seconds, Discovery, Feed, FeedError, FeedOverrides, PodSpec};
use pyo3::prelude::*;

use crate::errors::{error, schedule_error, Kind};
use crate::json;
use crate::scheduler::PyScheduler;

pub(crate) fn feed_error(py: Python<'_>, e: FeedError) -> PyErr {
    match e {
        FeedError::Schedule(s) => schedule_error(py, &s),
        FeedError::UnknownPod(_) => {
            let err = error(py, Kind::UnknownEndpoint, e.to_string());
            let _ = err.value(py).setattr("code", "unknown_pod");
            err
        }
        FeedError::Config(_) => error(py, Kind::InvalidArgument, e.to_string()),
        FeedError::Io(_) => error(py, Kind::Io, e.to_string()),
    }
}

/// Follows vLLM pods for a `Scheduler`: subscribes to their KV events
/// (ZMQ, with vLLM's replay on gaps and restarts), scrapes their `/metrics`,
/// and adds and removes them as discovery says. Runs on its own threads
/// (no GIL held); `start()` / `stop()` or `with feed:`. A stopped feed
/// cannot start again: `add_pod`, `sync_pods`, `bind_events`,
/// `discover_dns` and `watch_file` then raise `InvalidArgumentError`.
///
/// Built from the scheduler's config: a precise producer's `kvEventsConfig`
/// (topic filter, concurrency, `socketPort` / `replaySocketPort` for every
/// pod, a bound `zmqEndpoint`), the `metrics-data-source` and
/// `file-discovery` are executed; `settings` lists each. Keyword arguments
/// override the config.
#[pyclass(name = "Feed", module = "llmd", frozen)]
pub(crate) struct PyFeed {
    inner: Feed,
}

#[pymethods]
impl PyFeed {
    #[new]
    #[pyo3(signature = (scheduler, *, topics=None, concurrency=None, events_port=None, replay_port=None, scrape_interval=None, scrape_timeout=None, replay_timeout=None, remove_after=None, clear_on_unrecoverable_gap=None, heartbeat_interval=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        scheduler: &PyScheduler,
        topics: Option<Vec<String>>,
        #[pyo3(from_py_with = crate::convert::opt_int)] concurrency: Option<usize>,
        #[pyo3(from_py_with = crate::convert::opt_int)] events_port: Option<u16>,
        #[pyo3(from_py_with = crate::convert::opt_int)] replay_port: Option<u16>,
        #[pyo3(from_py_with = crate::convert::opt_float)] scrape_interval: Option<f64>,
        #[pyo3(from_py_with = crate::convert::opt_float)] scrape_timeout: Option<f64>,
        #[pyo3(from_py_with = crate::convert::opt_float)] replay_timeout: Option<f64>,
        #[pyo3(from_py_with = crate::convert::opt_float)] remove_after: Option<f64>,
        clear_on_unrecoverable_gap: Option<bool>,
        #[pyo3(from_py_with = crate::convert::opt_float)] heartbeat_interval: Option<f64>,
    ) -> PyResult<Self> {
        let overrides = FeedOverrides {
            topics,
            concurrency,
            events_port,
            replay_port,
            scrape_interval,
            scrape_timeout,
            replay_timeout,
            remove_after,
            clear_on_unrecoverable_gap,
            heartbeat_interval,
        };
        let feed = Feed::from_scheduler_with(scheduler.shared(), &overrides)
            .map_err(|e| feed_error(py, e))?;
        Ok(PyFeed { inner: feed })
    }

    /// Follows a pod: registers it in the scheduler (unless an endpoint of
    /// that name exists), subscribes to `events` (a ZMQ endpoint such as
    /// `tcp://10.0.0.7:5557`; by default `tcp://<host>:<socketPort>` when the
    /// config discovers pods), replays gaps from `replay`, and scrapes
    /// `metrics_url` (default `http://<address>/metrics`; `scrape=False`
    /// turns scraping off).
    #[pyo3(signature = (name, address, *, events=None, replay=None, metrics_url=None, scrape=true, data_parallel_size=1))]
    #[allow(clippy::too_many_arguments)]
    fn add_pod(
        &self,
        py: Python<'_>,
        name: String,
        address: String,
        events: Option<String>,
        replay: Option<String>,
        metrics_url: Option<String>,
        scrape: bool,
        #[pyo3(from_py_with = crate::convert::int)] data_parallel_size: u16,
    ) -> PyResult<()> {
        // As `sync_pods` refuses it: a pod has at least one rank.
        if data_parallel_size == 0 {
            return Err(error(
                py,
                Kind::InvalidArgument,
                "'data_parallel_size' must be an integer >= 1, got 0",
            ));
        }
        let spec = PodSpec {
            events,
            replay,
            metrics_url,
            scrape,
            data_parallel_size,
            ..PodSpec::new(name, address)
        };
        py.detach(|| self.inner.add_pod(spec))
            .map_err(|e| feed_error(py, e))
    }

    /// Stops following a pod and removes it (and its index entries) from
    /// the scheduler; its batches still in flight are not applied.
    fn remove_pod(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        py.detach(|| self.inner.remove_pod(name))
            .map_err(|e| feed_error(py, e))
    }

    /// Makes the followed pods exactly `pods` (for a host with its own
    /// discovery, e.g. a Kubernetes watch): each a dict with `name` and
    /// `address`, and optionally `events`, `replay`, `metrics_url`, `scrape`,
    /// `data_parallel_size` as in `add_pod`. New names are added, missing
    /// ones removed (with their index entries), changed ones replaced; pods
    /// from DNS or file discovery are left alone. An unknown key or a value
    /// of the wrong type raises `InvalidArgumentError` naming it.
    fn sync_pods(&self, py: Python<'_>, pods: &Bound<'_, PyAny>) -> PyResult<()> {
        // Any sequence of mappings (a list of dicts, a tuple, ...).
        let serde_json::Value::Array(items) = json::from_py(pods, "pods")? else {
            return Err(error(
                py,
                Kind::InvalidArgument,
                "pods must be a sequence of mappings",
            ));
        };
        let specs = items
            .iter()
            .map(PodSpec::from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| feed_error(py, e))?;
        py.detach(|| self.inner.sync_pods(specs))
            .map_err(|e| feed_error(py, e))
    }

    /// Binds a socket for pods that dial in (vLLM with a `tcp://host:port`
    /// events endpoint, llm-d-inference-sim); messages go to the pod their
    /// topic (`kv@<pod>@<model>`) names. Returns the bound endpoint.
    fn bind_events(&self, py: Python<'_>, endpoint: &str) -> PyResult<String> {
        py.detach(|| self.inner.bind_events(endpoint))
            .map(|e| e.to_string())
            .map_err(|e| feed_error(py, e))
    }

    /// Follows every address a DNS name resolves to (a headless service),
    /// re-resolving every `interval` seconds; pods are named by IP.
    #[pyo3(signature = (host, port, *, interval=5.0))]
    fn discover_dns(
        &self,
        py: Python<'_>,
        host: String,
        #[pyo3(from_py_with = crate::convert::int)] port: u16,
        #[pyo3(from_py_with = crate::convert::float)] interval: f64,
    ) -> PyResult<()> {
        let interval =
            seconds("interval", interval).map_err(|m| error(py, Kind::InvalidArgument, m))?;
        self.inner
            .add_discovery(Discovery::Dns {
                host,
                port,
                interval,
            })
            .map_err(|e| feed_error(py, e))
    }

    /// Follows the pods of llm-d's endpoint file (`endpoints: [{name,
    /// namespace, address, port, labels}]`), re-read when it changes when
    /// `watch` is true.
    #[pyo3(signature = (path, *, watch=true))]
    fn watch_file(&self, py: Python<'_>, path: PathBuf, watch: bool) -> PyResult<()> {
        self.inner
            .add_discovery(Discovery::File {
                path,
                watch,
                interval: Duration::from_secs(1),
            })
            .map_err(|e| feed_error(py, e))
    }

    /// Starts the threads (idempotent while running; a stopped feed cannot
    /// be started again).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.start())
            .map_err(|e| feed_error(py, e))
    }

    /// Stops every thread and closes every socket; pods stay registered.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.inner.stop())
    }

    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().start(slf.py())?;
        Ok(slf)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop(py);
        false
    }

    /// True between `start()` and `stop()`.
    #[getter]
    fn running(&self) -> bool {
        self.inner.is_running()
    }

    /// Names of the followed pods.
    #[getter]
    fn pods(&self) -> Vec<String> {
        self.inner.pods()
    }

    /// The endpoints bound for pods that dial in (`bind_events` and the
    /// configuration's `zmqEndpoint`), as this host dials them: a port 0
    /// asked for is the port given, a wildcard host `*` is `127.0.0.1`.
    /// Empty once the feed is stopped.
    #[getter]
    fn bound_endpoints(&self) -> Vec<String> {
        self.inner
            .bound_endpoints()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Per-pod counters by name: events, blocks, gaps, duplicates, restarts,
    /// replays (ok / too old / incomplete / failed), clears, reconnects,
    /// heartbeat timeouts, connect failures, malformed messages, decode
    /// errors, queue drops,
    /// scrapes and scrape errors, evictions, registration failures, last
    /// event and scrape ages, up,
    /// registered.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json::to_py(py, &self.inner.stats())
    }

    /// Config settings this feed executes or not, each with a note.
    #[getter]
    fn settings(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json::to_py(py, &self.inner.settings())
    }

    /// Messages on bound sockets whose topic named no followed pod.
    #[getter]
    fn unknown_publisher_messages(&self) -> u64 {
        self.inner.unknown_publisher_messages()
    }

    /// The `llmd_feed_*` metrics in Prometheus text format (serve them
    /// beside `Scheduler.render_metrics()`).
    fn render_metrics(&self, py: Python<'_>) -> String {
        py.detach(|| self.inner.render_metrics())
    }

    fn __repr__(&self) -> String {
        format!(
            "Feed(pods={}, running={})",
            self.inner.pods().len(),
            if self.inner.is_running() {
                "True"
            } else {
                "False"
            }
        )
    }
}

impl Drop for PyFeed {
    fn drop(&mut self) {
        // Joining the feed's threads can take a while (a replay or a scrape
        // finishing): other Python threads run meanwhile.
        Python::attach(|py| py.detach(|| self.inner.stop()));
    }
}
