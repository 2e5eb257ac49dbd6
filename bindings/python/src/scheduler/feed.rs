//! KV events into the scheduler.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::PyScheduler;
use crate::errors::schedule_error;
use crate::events::{seq_fields, Payload};

impl PyScheduler {
    /// `Scheduler.ingest_kv_events`: the scheduler decodes the payload,
    /// checks the sequence number (duplicates are dropped, a restart clears
    /// the endpoint first) and applies it; the result says what changed.
    pub(super) fn ingest<'py>(
        &self,
        py: Python<'py>,
        endpoint: &str,
        payload: &Bound<'py, PyAny>,
        seq: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let payload = Payload::from_object(payload)?;
        let bytes = payload.as_slice();
        let report = py
            .detach(|| self.inner.ingest_kv_events(endpoint, bytes, seq))
            .map_err(|e| schedule_error(py, &e))?;
        let d = PyDict::new(py);
        d.set_item("stored", report.stats.stored)?;
        d.set_item("removed", report.stats.removed)?;
        d.set_item("cleared", report.stats.cleared)?;
        d.set_item("skipped", report.stats.skipped)?;
        d.set_item(
            "skipped_unknown_parent",
            report.stats.skipped_unknown_parent,
        )?;
        d.set_item(
            "skipped_unknown_medium",
            report.stats.skipped_unknown_medium,
        )?;
        d.set_item("skipped_stale", report.stats.skipped_stale)?;
        d.set_item("parity_mismatches", report.stats.parity_mismatches)?;
        d.set_item("superseded", report.stats.superseded)?;
        seq_fields(&d, report.seq)?;
        Ok(d)
    }
}
