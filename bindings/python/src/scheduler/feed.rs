//! KV events into the scheduler, with per-publisher sequence tracking.

use llmd_kvindex::events::{decode_event_batch, SeqStatus};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::PyScheduler;
use crate::errors::schedule_error;
use crate::events::{decode_err, seq_fields, Payload};

impl PyScheduler {
    /// `Scheduler.ingest_kv_events`: decodes, checks the sequence number
    /// (duplicates are skipped), applies, and reports what changed.
    pub(super) fn ingest<'py>(
        &self,
        py: Python<'py>,
        endpoint: &str,
        payload: &Bound<'py, PyAny>,
        seq: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let payload = Payload::from_object(payload)?;
        let bytes = payload.as_slice();
        let outcome = py.detach(|| {
            let batch = decode_event_batch(bytes).map_err(Err)?;
            let status = seq.map(|s| {
                let rank = batch.data_parallel_rank.unwrap_or(0);
                self.seqs.lock().observe(endpoint, rank, s)
            });
            if status == Some(SeqStatus::Duplicate) {
                return Ok((status, None));
            }
            let stats = self.inner.ingest_kv_batch(endpoint, &batch).map_err(Ok)?;
            Ok((status, Some(stats)))
        });
        let (status, stats) = outcome.map_err(|e| match e {
            Err(decode) => decode_err(py, &decode),
            Ok(sched) => schedule_error(py, &sched),
        })?;
        let d = PyDict::new(py);
        let stats = stats.unwrap_or_default();
        d.set_item("stored", stats.stored)?;
        d.set_item("removed", stats.removed)?;
        d.set_item("cleared", stats.cleared)?;
        d.set_item("skipped", stats.skipped)?;
        seq_fields(&d, status)?;
        Ok(d)
    }
}
