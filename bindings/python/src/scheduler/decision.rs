//! `llmd.Decision`: what `Scheduler.pick` returns, as plain Python data.

use llmd_sched::{Decision, Target};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::json;

/// The outcome of one scheduling cycle.
#[pyclass(name = "Decision", module = "llmd", frozen)]
pub(crate) struct PyDecision {
    pub(crate) request_id: String,
    pub(crate) inner: Decision,
}

fn target_dict<'py>(py: Python<'py>, t: &Target) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &t.name)?;
    d.set_item("address", &t.address)?;
    Ok(d)
}

#[pymethods]
impl PyDecision {
    /// The request id the lifecycle calls take (generated when `pick` got none).
    #[getter]
    fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The chosen endpoint: `{"name": ..., "address": "ip:port"}`.
    #[getter]
    fn target<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner.primary().map(|t| target_dict(py, t)).transpose()
    }

    /// Further targets in preference order, for retries.
    #[getter]
    fn fallbacks<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .targets
            .iter()
            .skip(1)
            .map(|t| target_dict(py, t))
            .collect()
    }

    /// The remote prefill endpoint of a disaggregated (P/D) request.
    #[getter]
    fn prefill_target<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner
            .prefill_target
            .as_ref()
            .map(|t| target_dict(py, t))
            .transpose()
    }

    /// Encoder endpoints when encoding is disaggregated.
    #[getter]
    fn encode_targets<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .encode_targets
            .iter()
            .map(|t| target_dict(py, t))
            .collect()
    }

    /// Headers to set on the upstream request (llm-d's routing headers).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.headers {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Headers to set on the response to the client (the session-affinity
    /// token naming the endpoint that served the request).
    #[getter]
    fn response_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.inner.response_headers {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Headers to remove from the upstream request: a stale prefiller
    /// header, and routing headers the client sent that this decision does
    /// not set.
    #[getter]
    fn remove_headers(&self) -> Vec<String> {
        self.inner.remove_headers.clone()
    }

    /// The scheduling span's W3C trace context when the request carried a
    /// valid `traceparent` (`trace_id`, `parent_span_id`, `span_id` as hex,
    /// `flags`, `tracestate`); its `traceparent` is also in `headers`.
    #[getter]
    fn trace(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json::to_py(py, &self.inner.trace)
    }

    /// Why: every candidate, every filter drop, every scorer's raw and
    /// weighted score, the picker's choice.
    fn explain(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json::to_py(py, &self.inner.explanation)
    }

    /// The explanation as a JSON string.
    fn explain_json(&self) -> String {
        self.inner.explanation.to_json()
    }

    fn __repr__(&self) -> String {
        let target = self.inner.primary().map_or("None", |t| t.name.as_str());
        format!(
            "Decision(request_id={:?}, target={:?}, fallbacks={}, prefill_target={:?})",
            self.request_id,
            target,
            self.inner.targets.len().saturating_sub(1),
            self.inner.prefill_target.as_ref().map(|t| t.name.as_str())
        )
    }
}
