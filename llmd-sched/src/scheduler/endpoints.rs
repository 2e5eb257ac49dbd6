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

    /// Adds an endpoint. Refused ([`ScheduleError::InvalidRequest`]) when
    /// its name is empty or already registered (use
    /// [`Scheduler::replace_endpoint`]) or its address is not `host:port`
    /// (an IPv6 host in brackets, a port in 1..=65535). Fails when a producer
    /// refuses it: a prefix index whose endpoint slots (`max_endpoints`) are
    /// all taken gives [`ScheduleError::Index`], counted in
    /// `llmd_kvindex_endpoints_refused_total`.
    pub fn add_endpoint(&self, ep: Endpoint) -> Result<(), ScheduleError> {
        self.put_endpoint(ep, false, false)
    }

    /// Replaces the registered endpoint of the same name: its description
    /// changes and its load, cache and index state start over. An unknown
    /// name is [`ScheduleError::UnknownEndpoint`]; a replacement a producer
    /// refuses removes the old registration too.
    pub fn replace_endpoint(&self, ep: Endpoint) -> Result<(), ScheduleError> {
        self.put_endpoint(ep, true, false)
    }

    /// As [`Scheduler::replace_endpoint`] for a change of description
    /// (labels, model, adapters), keeping the scraped metrics the endpoint
    /// has: load-aware scorers do not take it for idle until its next scrape.
    /// What the bindings' replace calls do.
    pub fn update_endpoint(&self, ep: Endpoint) -> Result<(), ScheduleError> {
        self.put_endpoint(ep, true, true)
    }

    /// Adds or (`replace`) replaces a registration; `keep_metrics` carries
    /// the replaced one's scraped metrics over, read under the membership
    /// lock so no other registration change comes between.
    fn put_endpoint(
        &self,
        ep: Endpoint,
        replace: bool,
        keep_metrics: bool,
    ) -> Result<(), ScheduleError> {
        if ep.name.is_empty() {
            return Err(ScheduleError::InvalidRequest(
                "endpoint name must not be empty".into(),
            ));
        }
        check_address(&ep.address).map_err(|why| {
            ScheduleError::InvalidRequest(format!(
                "endpoint '{}': address '{}' {why}",
                ep.name, ep.address
            ))
        })?;
        crate::model::endpoint::kv_bytes_label(&ep.labels).map_err(|why| {
            ScheduleError::InvalidRequest(format!(
                "endpoint '{}': label {} {why}",
                ep.name,
                crate::model::KV_BYTES_LABEL
            ))
        })?;
        // Membership changes are serialised by their own lock; the pool's
        // lock is taken only to publish a new snapshot, so picks never wait
        // for a producer (an index scan takes milliseconds).
        let _membership = self.membership.lock();
        let fleet = self.fleet.read().clone();
        let existing = fleet.by_name.get(&ep.name).copied();
        match (existing.is_some(), replace) {
            (true, false) => {
                return Err(ScheduleError::InvalidRequest(format!(
                    "endpoint '{}' is already registered (replace_endpoint changes it)",
                    ep.name
                )))
            }
            (false, true) => return Err(ScheduleError::UnknownEndpoint(ep.name)),
            _ => {}
        }
        let ep = match existing {
            Some(i) if keep_metrics => Endpoint {
                metrics: fleet.eps[i].metrics(),
                ..ep
            },
            _ => ep,
        };
        let mut eps = fleet.eps.clone();
        // Metrics pools follow the P/D role label, so prefill and decode
        // endpoints report separately.
        let ep_name = ep.name.clone();
        let ep_pool = ep.labels.get(crate::model::ROLE_LABEL).cloned();
        let state = Arc::new(EndpointState::new(ep));
        let registered = Arc::clone(&state);
        let mut old = existing.map(|i| eps[i].uid());
        let mut admitted = self.admit(state.uid());
        let mut slot = existing;
        if let (Err(_), Some(i), Some(uid)) = (&admitted, existing, old) {
            // At a slot limit, the replaced registration leaves the pool and
            // gives its producer state (index slots) back first; the new one
            // then tries again.
            eps.remove(i);
            self.publish(eps.clone());
            self.forget(uid);
            old = None;
            slot = None;
            admitted = self.admit(state.uid());
        }
        if let Err(e) = admitted {
            if existing.is_some() {
                // The old registration already left the pool (above): it is
                // gone, rather than kept unmatchable.
                self.seqs.lock().forget(&ep_name);
                self.metrics.remove_endpoint(&ep_name);
            }
            self.metrics.record_endpoint_refused();
            return Err(e);
        }
        match slot {
            Some(i) => eps[i] = state,
            None => eps.push(state),
        }
        // Before the pool is published: a pick that sees the endpoint finds
        // its series in its own pool (not created in the default pool by the
        // pick and left behind), and its event-sequence tracking starts over
        // (a batch of an earlier registration, racing its removal, must not
        // set where this one's numbering is taken to be).
        self.metrics.register_endpoint(&ep_name, ep_pool.as_deref());
        self.seqs.lock().forget(&ep_name);
        self.publish(eps);
        // The replaced registration's state is dropped after the new pool is
        // published: picks already see only the new registration.
        if let Some(uid) = old {
            self.forget(uid);
        }
        self.record_engine_cache(&registered, &registered.info().metrics);
        Ok(())
    }

    /// Removes an endpoint and every index entry it had.
    pub fn remove_endpoint(&self, name: &str) -> Result<(), ScheduleError> {
        let _membership = self.membership.lock();
        let fleet = self.fleet.read().clone();
        let Some(&i) = fleet.by_name.get(name) else {
            return Err(ScheduleError::UnknownEndpoint(name.into()));
        };
        let mut eps = fleet.eps.clone();
        let old = eps.remove(i);
        self.publish(eps);
        self.forget(old.uid());
        self.seqs.lock().forget(name);
        self.metrics.remove_endpoint(name);
        Ok(())
    }

    /// Makes `eps` the pool picks see (the pool's lock is held only for the
    /// swap).
    fn publish(&self, eps: Vec<Arc<EndpointState>>) {
        let by_name = eps
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name().to_string(), i))
            .collect();
        *self.fleet.write() = Arc::new(Fleet::new(eps, by_name));
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
        let ep = self.endpoint(name)?;
        ep.set_metrics(&m);
        self.record_engine_cache(&ep, &m);
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
        self.record_engine_cache(&ep, &m);
        Ok(())
    }

    /// The engine's KV view of `ep` in the metrics; bytes of a block are
    /// its kv-bytes-per-token label times the engine's block size.
    fn record_engine_cache(&self, ep: &EndpointState, m: &EndpointMetrics) {
        let bytes = ep
            .kv_bytes_per_token()
            .map_or(0, |b| b.saturating_mul(u64::from(m.cache_block_size)));
        self.metrics
            .record_engine_cache(ep.name(), m.kv_cache_usage, m.cache_num_blocks, bytes);
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
    /// this; [`Scheduler::ingest_kv_events`] does it on its own). A name not
    /// registered is not counted.
    pub fn record_kv_decode_error(&self, endpoint: &str) {
        // Only a registered endpoint's: names from the network (ZMQ topics)
        // must not grow the metric series without bound.
        if self.endpoint(endpoint).is_ok() {
            self.metrics
                .record_kv_batch(endpoint, None, None, None, self.clock.now_ns());
        }
    }

    /// Periodic maintenance: expires speculative index entries.
    pub fn tick(&self) {
        let now = self.clock.now_ns();
        for b in &self.pipeline.kv_backends {
            b.tick(now);
        }
    }
}

/// Checks `host:port`: a non-empty host without whitespace (an IPv6 host in
/// brackets) and a decimal port in 1..=65535. Says what is wrong.
fn check_address(addr: &str) -> Result<(), &'static str> {
    let (host, port) = match addr.strip_prefix('[') {
        Some(rest) => {
            let (h, p) = rest.split_once("]:").ok_or("is not [ipv6]:port")?;
            (h, p)
        }
        None => addr.rsplit_once(':').ok_or("has no :port")?,
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err("has no valid host");
    }
    if !addr.starts_with('[') && host.contains(':') {
        return Err("has an IPv6 host without brackets ([host]:port)");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("has no port in 1..=65535"),
    }
}

#[cfg(test)]
mod tests {
    use super::check_address;

    #[test]
    fn addresses() {
        for ok in [
            "10.0.0.1:8000",
            "pod-a.ns.svc:80",
            "[::1]:8000",
            "[fe80::1%eth0]:1",
            "h:65535",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.1",
            "10.0.0.1:",
            ":8000",
            "10.0.0.1:0",
            "10.0.0.1:65536",
            "h:+80",
            "h:8o",
            "::1:8000",
            "[::1]",
            "[::1]8000",
            "a b:80",
            "http://h:80",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
