//! `llmd.OtlpExporter`: decision spans to an OpenTelemetry collector over
//! OTLP/HTTP (protobuf), from a thread of its own.

use std::time::Duration;

use llmd_feed::otlp::{OtlpExporter, OtlpOptions};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{error, Kind};
use crate::feed::feed_error;
use crate::scheduler::PyDecision;

fn secs(py: Python<'_>, v: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        error(
            py,
            Kind::InvalidArgument,
            format!("{what} must be a non-negative number of seconds"),
        )
    })
}

fn unix_ns(py: Python<'_>, t: f64, what: &str) -> PyResult<u64> {
    if !t.is_finite() || t < 0.0 {
        return Err(error(
            py,
            Kind::InvalidArgument,
            format!("{what} must be a time.time() value"),
        ));
    }
    Ok((t * 1e9) as u64)
}

/// Exports the spans of decisions whose request carried a sampled W3C
/// `traceparent` to an OTLP/HTTP traces endpoint (`http://`), continuing
/// that trace: the scheduling span has the id the decision forwards to the
/// worker. Exporting happens on a thread of its own; `export_decision`
/// only queues (a full queue drops and counts).
#[pyclass(name = "OtlpExporter", module = "llmd", frozen)]
pub(crate) struct PyOtlpExporter {
    inner: OtlpExporter,
}

impl Drop for PyOtlpExporter {
    fn drop(&mut self) {
        // Stopping sends what is queued (up to the timeout per batch) and
        // joins the export thread: without the GIL, so other Python threads
        // run meanwhile.
        Python::attach(|py| py.detach(|| self.inner.stop()));
    }
}

#[pymethods]
impl PyOtlpExporter {
    #[new]
    #[pyo3(signature = (endpoint, *, service_name="llmd", sampling_ratio=1.0, max_queue_spans=65536, max_batch_spans=512, flush_interval=0.5, timeout=5.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        endpoint: &str,
        service_name: &str,
        #[pyo3(from_py_with = crate::convert::float)] sampling_ratio: f64,
        #[pyo3(from_py_with = crate::convert::int)] max_queue_spans: usize,
        #[pyo3(from_py_with = crate::convert::int)] max_batch_spans: usize,
        #[pyo3(from_py_with = crate::convert::float)] flush_interval: f64,
        #[pyo3(from_py_with = crate::convert::float)] timeout: f64,
    ) -> PyResult<Self> {
        let opts = OtlpOptions {
            endpoint: endpoint.to_string(),
            service_name: service_name.to_string(),
            sampling_ratio,
            max_queue_spans,
            max_batch_spans,
            flush_interval: secs(py, flush_interval, "flush_interval")?,
            timeout: secs(py, timeout, "timeout")?,
        };
        OtlpExporter::start(opts)
            .map(|inner| PyOtlpExporter { inner })
            .map_err(|e| feed_error(py, e))
    }

    /// Queues `decision`'s spans, timed from `start` to `end` (Unix seconds,
    /// `time.time()` around the pick). Returns whether they were queued: a
    /// decision without a sampled trace context, outside the sampling
    /// ratio, or beyond the queue is not (and is counted in `stats()`).
    fn export_decision(
        &self,
        py: Python<'_>,
        decision: &PyDecision,
        #[pyo3(from_py_with = crate::convert::float)] start: f64,
        #[pyo3(from_py_with = crate::convert::float)] end: f64,
    ) -> PyResult<bool> {
        let (s, e) = (unix_ns(py, start, "start")?, unix_ns(py, end, "end")?);
        Ok(self.inner.export_decision(&decision.inner, s, e))
    }

    /// Waits until the queued spans are sent (at most `timeout` seconds);
    /// returns whether the queue drained.
    #[pyo3(signature = (timeout=5.0))]
    fn flush(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = crate::convert::float)] timeout: f64,
    ) -> PyResult<bool> {
        let t = secs(py, timeout, "timeout")?;
        Ok(py.detach(|| self.inner.flush(t)))
    }

    /// Counters: `exported_spans`, `dropped_spans`, `failed_spans`,
    /// `unsampled_decisions`.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("exported_spans", s.exported_spans)?;
        d.set_item("dropped_spans", s.dropped_spans)?;
        d.set_item("failed_spans", s.failed_spans)?;
        d.set_item("unsampled_decisions", s.unsampled_decisions)?;
        Ok(d)
    }

    /// Sends what is queued, then stops the export thread (idempotent).
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.inner.stop());
    }
}
