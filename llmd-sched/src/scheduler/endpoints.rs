//! Endpoint registration, metrics updates and KV-event ingestion.

use std::sync::Arc;

use llmd_kvindex::events::{decode_event_batch, EventBatch, KvEvent, SeqStatus};

use super::{Fleet, IngestReport, Scheduler};
use crate::error::ScheduleError;
use crate::kv::ApplyStats;
use crate::metrics_text::parse_metrics_text;
use crate::model::{Endpoint, EndpointMetrics, EndpointState};

impl Scheduler {
    // ---- endpoints ---------------------------------------------------------------

    /// Adds an endpoint, or replaces the one with the same name (its state is
    /// reset). Fails when a producer refuses it: a prefix index whose
    /// endpoint slots (`max_endpoints`) are all taken gives
    /// [`ScheduleError::Index`], counted in `llmd_kvindex_endpoints_refused_total`;
    /// a refused replacement removes the old registration too.
    pub fn add_endpoint(&self, ep: Endpoint) -> Result<(), ScheduleError> {
        if ep.name.is_empty() {
            return Err(ScheduleError::InvalidRequest(
                "endpoint name must not be empty".into(),
            ));
        }
        if ep.address.is_empty() {
            return Err(ScheduleError::InvalidRequest(format!(
                "endpoint '{}' has no address",
                ep.name
            )));
        }
        let mut guard = self.fleet.write();
        let mut eps = guard.eps.clone();
        let mut by_name = guard.by_name.clone();
        // Metrics pools follow the P/D role label, so prefill and decode
        // endpoints report separately.
        let ep_name = ep.name.clone();
        let ep_pool = ep.labels.get(crate::model::ROLE_LABEL).cloned();
        let state = Arc::new(EndpointState::new(ep));
        let existing = by_name.get(state.name()).copied();
        // A replaced registration gives its producer state (index slots)
        // back first, so re-adding at a limit succeeds.
        if let Some(i) = existing {
            self.forget(eps[i].uid());
        }
        if let Err(e) = self.admit(state.uid()) {
            drop(guard);
            if existing.is_some() {
                // The old registration already gave its index state back:
                // it goes too, rather than stay in the pool unmatchable.
                let _ = self.remove_endpoint(&ep_name);
            }
            self.metrics.record_endpoint_refused();
            return Err(e);
        }
        match existing {
            Some(i) => eps[i] = state,
            None => {
                by_name.insert(state.name().to_string(), eps.len());
                eps.push(state);
            }
        }
        *guard = Arc::new(Fleet::new(eps, by_name));
        drop(guard);
        self.metrics.register_endpoint(&ep_name, ep_pool.as_deref());
        Ok(())
    }

    /// Removes an endpoint and every index entry it had.
    pub fn remove_endpoint(&self, name: &str) -> Result<(), ScheduleError> {
        let mut guard = self.fleet.write();
        let Some(&i) = guard.by_name.get(name) else {
            return Err(ScheduleError::UnknownEndpoint(name.into()));
        };
        let mut eps = guard.eps.clone();
        let old = eps.remove(i);
        let by_name = eps
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name().to_string(), i))
            .collect();
        *guard = Arc::new(Fleet::new(eps, by_name));
        drop(guard);
        self.forget(old.uid());
        self.seqs.lock().forget(name);
        self.metrics.remove_endpoint(name);
        Ok(())
    }

    /// Tells every producer about a new endpoint; on a refusal, those that
    /// accepted it forget it again.
    fn admit(&self, uid: u64) -> Result<(), ScheduleError> {
        for (n, (_, p)) in self.pipeline.producers.iter().enumerate() {
            if let Err(e) = p.on_endpoint_added(uid) {
                for (_, q) in &self.pipeline.producers[..n] {
                    q.on_endpoint_removed(uid);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn forget(&self, uid: u64) {
        for (_, p) in &self.pipeline.producers {
            p.on_endpoint_removed(uid);
        }
    }

    fn endpoint(&self, name: &str) -> Result<Arc<EndpointState>, ScheduleError> {
        let f = self.fleet.read();
        f.by_name
            .get(name)
            .map(|&i| f.eps[i].clone())
            .ok_or_else(|| ScheduleError::UnknownEndpoint(name.into()))
    }

    /// Names of the registered endpoints.
    pub fn endpoint_names(&self) -> Vec<String> {
        self.fleet
            .read()
            .eps
            .iter()
            .map(|e| e.name().to_string())
            .collect()
    }

    /// The live state of an endpoint (metrics, in-flight load).
    pub fn endpoint_state(&self, name: &str) -> Result<Arc<EndpointState>, ScheduleError> {
        self.endpoint(name)
    }

    /// Replaces an endpoint's metrics; a zero timestamp is stamped with the clock.
    pub fn update_endpoint_metrics(
        &self,
        name: &str,
        mut m: EndpointMetrics,
    ) -> Result<(), ScheduleError> {
        if m.updated_at_ns == 0 {
            m.updated_at_ns = self.clock.now_ns().max(1);
        }
        self.endpoint(name)?.set_metrics(&m);
        Ok(())
    }

    /// Parses a vLLM `/metrics` text and stores the snapshot, stamped now.
    pub fn update_endpoint_metrics_text(
        &self,
        name: &str,
        text: &str,
    ) -> Result<(), ScheduleError> {
        let ep = self.endpoint(name)?;
        let m = parse_metrics_text(text, self.clock.now_ns().max(1))
            .map_err(|e| ScheduleError::MetricsText(format!("endpoint '{name}': {e}")))?;
        ep.set_metrics(&m);
        Ok(())
    }

    // ---- KV events ---------------------------------------------------------------

    /// Applies a decoded KV-event batch from `endpoint` to every precise index.
    /// Keys are scoped by the endpoint's served model ([`Endpoint::model`],
    /// "" when none), the same model its prefix matches are looked up under;
    /// a KV-event topic's model part is not used, so an alias in the topic
    /// cannot split one endpoint's entries from its lookups.
    pub fn ingest_kv_batch(
        &self,
        endpoint: &str,
        batch: &EventBatch,
    ) -> Result<ApplyStats, ScheduleError> {
        let ep = self.endpoint(endpoint)?;
        let mut total = ApplyStats::default();
        for b in &self.pipeline.kv_backends {
            total.add(&b.apply_batch(ep.uid(), ep.served_model(), batch));
        }
        Ok(total)
    }

    /// Decodes a vLLM `EventBatch` payload (msgpack, any release's layout) from
    /// `endpoint` and applies it. With a ZMQ sequence number, duplicates are
    /// dropped and a publisher restart clears the endpoint's entries first; a gap
    /// is reported in the result (the batch is still applied).
    pub fn ingest_kv_events(
        &self,
        endpoint: &str,
        payload: &[u8],
        seq: Option<u64>,
    ) -> Result<IngestReport, ScheduleError> {
        self.endpoint(endpoint)?;
        let batch = decode_event_batch(payload).map_err(|e| {
            self.record_kv_decode_error(endpoint);
            ScheduleError::KvEvents(format!("endpoint '{endpoint}': {e}"))
        })?;
        self.ingest_decoded_kv_events(endpoint, &batch, seq)
    }

    /// As [`Scheduler::ingest_kv_events`], for a batch the host already decoded
    /// (for example to report the decoder's typed error itself).
    pub fn ingest_decoded_kv_events(
        &self,
        endpoint: &str,
        batch: &EventBatch,
        seq: Option<u64>,
    ) -> Result<IngestReport, ScheduleError> {
        let ep = self.endpoint(endpoint)?;
        let status = seq.map(|n| {
            self.seqs
                .lock()
                .observe(endpoint, batch.data_parallel_rank.unwrap_or(0), n)
        });
        if status == Some(SeqStatus::Duplicate) {
            return Ok(IngestReport {
                stats: ApplyStats::default(),
                seq: status,
                ignored: true,
            });
        }
        let mut stats = ApplyStats::default();
        if status == Some(SeqStatus::Restart) {
            let clear = EventBatch {
                ts: batch.ts,
                data_parallel_rank: batch.data_parallel_rank,
                events: vec![KvEvent::AllBlocksCleared],
                skipped_events: 0,
            };
            stats = self.ingest_kv_batch(ep.name(), &clear)?;
        }
        stats.add(&self.ingest_kv_batch(ep.name(), batch)?);
        let applied = (!self.pipeline.kv_backends.is_empty()).then_some(&stats);
        self.metrics
            .record_kv_batch(endpoint, Some(batch), applied, status, self.clock.now_ns());
        Ok(IngestReport {
            stats,
            seq: status,
            ignored: false,
        })
    }

    /// Counts a KV-event payload from `endpoint` that failed to decode in the
    /// event-stream health metrics (hosts that decode payloads themselves call
    /// this; [`Scheduler::ingest_kv_events`] does it on its own).
    pub fn record_kv_decode_error(&self, endpoint: &str) {
        self.metrics
            .record_kv_batch(endpoint, None, None, None, self.clock.now_ns());
    }

    /// Periodic maintenance: expires speculative index entries.
    pub fn tick(&self) {
        let now = self.clock.now_ns();
        for b in &self.pipeline.kv_backends {
            b.tick(now);
        }
    }
}
