//! One scheduling cycle.

use crate::model::Prompt;
use crate::trace_context::{TraceContext, HEADER_TRACEPARENT, HEADER_TRACESTATE};
use std::sync::atomic::Ordering;

use super::{Fleet, Scheduler, MAX_ROUNDS};
use crate::decision::{
    Decision, Target, HEADER_DATA_PARALLEL, HEADER_DESTINATION, HEADER_ENCODERS, HEADER_PREFER,
    HEADER_PREFILLER, HEADER_SUBSET,
};
use crate::error::ScheduleError;
use crate::framework::{
    CycleContext, Decided, DecisionExplanation, EndpointIndex, ExplanationRecord, ProfileRecord,
};
use crate::lifecycle::Record;
use crate::model::Request;
use crate::observe::PickFacts;
use crate::plugins::producers::BurstSlot;
use std::sync::Arc;

/// Headers by which a decision steers the decode sidecar; never taken from
/// the client.
const ROUTING_HEADERS: [&str; 4] = [
    HEADER_PREFILLER,
    HEADER_ENCODERS,
    HEADER_DATA_PARALLEL,
    crate::plugins::producers::p2p_source::HEADER,
];

impl Scheduler {
    // ---- scheduling --------------------------------------------------------------

    pub(super) fn candidates(&self, fleet: &Fleet, req: &Request) -> Vec<EndpointIndex> {
        let serving = fleet.serving(&req.model);
        let Some(subset) = req.header_value(HEADER_SUBSET) else {
            return serving.to_vec();
        };
        // Matched by host, as llm-d's director matches the hint (its port
        // dropped, the pod's IP compared): every endpoint of a listed IP,
        // whatever its port (data-parallel ranks listen on their own).
        let subset: Vec<&str> = subset
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(host_of)
            .collect();
        serving
            .iter()
            .copied()
            .filter(|&i| subset.contains(&host_of(fleet.eps[i].address())))
            .collect()
    }

    /// Legacy admission (llm-d's step before candidates are located): without
    /// the flowControl gate, a sheddable request (priority < 0) is refused
    /// when the saturation detector's mean over the pool — the endpoints
    /// serving its model, before the subset hint and the screeners narrow
    /// them — reaches 1; an empty pool counts as saturated.
    fn admit_legacy(&self, fleet: &Fleet, req: &Request, now: u64) -> Result<(), ScheduleError> {
        let (false, Some(d), true) = (
            self.pipeline.flow_control,
            &self.pipeline.saturation_detector,
            req.priority < 0,
        ) else {
            return Ok(());
        };
        let pool = fleet.serving(&req.model);
        let sat = if pool.is_empty() {
            1.0
        } else {
            pool.iter()
                .map(|&i| d.endpoint_saturation(&fleet.eps[i], now))
                .sum::<f64>()
                / pool.len() as f64
        };
        if sat >= 1.0 {
            return Err(ScheduleError::ResourceExhausted {
                profile: None,
                reason: format!(
                    "sheddable request (priority {}) rejected: pool saturation {sat:.2} >= 1",
                    req.priority
                ),
            });
        }
        Ok(())
    }

    /// Runs the screeners over the candidates, in config order.
    fn screen(
        &self,
        ctx: &mut CycleContext<'_>,
        candidates: &mut Vec<EndpointIndex>,
    ) -> Result<(), ScheduleError> {
        for (_, s) in &self.pipeline.screeners {
            s.screen(ctx, candidates)?;
            if candidates.is_empty() {
                return Err(ScheduleError::NoEndpoints {
                    model: ctx.request().model.clone(),
                    reason: Some("a screener left no candidate".into()),
                });
            }
        }
        Ok(())
    }

    /// Runs one scheduling cycle.
    pub fn pick(&self, req: &Request) -> Result<Decision, ScheduleError> {
        self.pick_in_batch(req, &[])
    }

    /// [`Scheduler::pick`] with what a batch decided for the request at
    /// each burst producer.
    pub(super) fn pick_in_batch(
        &self,
        req: &Request,
        burst: &[(Arc<str>, BurstSlot)],
    ) -> Result<Decision, ScheduleError> {
        let mut facts = PickFacts {
            start: self.clock.now_ns(),
            ..PickFacts::default()
        };
        let result = self.pick_cycle(req, &mut facts, burst);
        facts.end = self.clock.now_ns();
        self.metrics.record_pick(req, &result, &facts);
        result
    }

    fn pick_cycle(
        &self,
        req: &Request,
        facts: &mut PickFacts,
        burst: &[(Arc<str>, BurstSlot)],
    ) -> Result<Decision, ScheduleError> {
        if req.id.is_empty() {
            // The id keys the request's lifecycle (load, latency sample,
            // metrics): two requests without one would share it, and the
            // second would end the first's tracking while it still runs.
            return Err(ScheduleError::InvalidRequest(
                "the request has no id: every request needs one, unique among those in flight"
                    .into(),
            ));
        }
        let empty = match &req.prompt {
            Prompt::Tokens(t) => t.is_empty(),
            Prompt::Text(s) => s.is_empty(),
        };
        if empty {
            // vLLM refuses an empty prompt too; there is nothing to route by.
            return Err(ScheduleError::InvalidRequest(format!(
                "request '{}' has no prompt: give its text or at least one token id",
                req.id
            )));
        }
        let fleet = self.fleet.read().clone();
        let now = self.clock.now_ns();
        self.make_room(now);
        self.admit_legacy(&fleet, req, now)?;
        let mut candidates = self.candidates(&fleet, req);
        if candidates.is_empty() {
            return Err(ScheduleError::NoEndpoints {
                model: req.model.clone(),
                reason: None,
            });
        }
        let n = self.cycles.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let profiles = &self.pipeline.profiles;
        let opening = self.requests.next_serial();
        facts.opening = opening;
        let mut ctx = CycleContext::new(req, &fleet.eps, now, profiles.len(), seed)
            .with_tags(&fleet.tags)
            .with_predictor(self.predictor.as_deref())
            .with_burst(burst)
            .with_opening(opening);
        let screened = self.screen(&mut ctx, &mut candidates);
        let reports = ctx.take_screens();
        if !reports.is_empty() {
            self.metrics.record_screens(&reports);
        }
        screened?;
        for (_, p) in &self.pipeline.producers {
            p.produce(&mut ctx, &candidates);
        }
        for producer in ctx.take_burst_absent() {
            self.metrics.record_burst(&producer, "assigned_absent", 1);
        }
        facts.produced = self.clock.now_ns();
        if self.pipeline.latency_admitter {
            crate::latency::admit(&ctx, &candidates)?;
        }
        let mut traces = Vec::with_capacity(profiles.len());
        for round in 0..MAX_ROUNDS {
            let next = self.pipeline.handler.pick(&mut ctx, profiles, round);
            if next.is_empty() {
                break;
            }
            for p in next {
                let Some(profile) = profiles.get(p) else {
                    continue;
                };
                let mut trace = ProfileRecord {
                    profile: p,
                    ..ProfileRecord::default()
                };
                let r = profile.run_recorded(&ctx, &candidates, &mut trace);
                ctx.set_result(p, r);
                traces.push(trace);
            }
        }
        facts.profiled = self.clock.now_ns();
        let outcome = self.pipeline.handler.process_results(&ctx, profiles)?;
        let primary = ctx
            .result(outcome.primary)
            .map(|r| r.targets.clone())
            .unwrap_or_default();
        let picks: Vec<(&str, EndpointIndex)> = profiles
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                ctx.result(i)
                    .and_then(|r| r.targets.first())
                    .map(|&t| (p.name.as_str(), t))
            })
            .collect();
        // A pipeline that picked no target refuses the request here, before
        // anything is recorded for it (no record, no load to release).
        if primary.is_empty() {
            return Err(ScheduleError::ResourceExhausted {
                profile: Some(profiles[outcome.primary].name.clone()),
                reason: "the pipeline picked no target".into(),
            });
        }
        // Before any PreRequest effect, so a refused request leaves no trace.
        if let Some(&first) = primary.first() {
            if prefers_if_available(req) && !has_cached_prefix(&ctx, first) {
                return Err(ScheduleError::PreconditionFailed {
                    endpoint: fleet.eps[first].name().to_string(),
                });
            }
        }
        let decided = Decided {
            primary_profile: &profiles[outcome.primary].name,
            targets: &primary,
            picks: &picks,
        };
        let mut response_headers = Vec::new();
        let (mut hook_headers, mut hook_removed) = (Vec::new(), Vec::new());
        let mut events = Vec::new();
        for h in &self.pipeline.pre_requests {
            h.pre_request(&ctx, &decided);
            h.response_headers(&ctx, &decided, &mut response_headers);
            h.request_headers(&ctx, &decided, &mut hook_headers, &mut hook_removed);
            h.take_events(&mut events);
        }
        for (plugin, event, n) in events {
            self.metrics.record_plugin_event(&plugin, event, n);
        }
        let target = |i: EndpointIndex| Target {
            name: fleet.eps[i].name().to_string(),
            address: fleet.eps[i].address().to_string(),
        };
        let mut targets: Vec<Target> = primary.iter().map(|&i| target(i)).collect();
        // Data-parallel serving: the rank's own address travels in a header,
        // and the request goes to the pod's primary port.
        let data_parallel = outcome.data_parallel_port.and_then(|port| {
            let rank = targets.first()?.address.clone();
            for t in &mut targets {
                if let Some((host, _)) = t.address.rsplit_once(':') {
                    t.address = format!("{host}:{port}");
                }
            }
            Some(rank)
        });
        let prefill_target = outcome
            .prefill
            .and_then(|p| ctx.result(p))
            .and_then(|r| r.targets.first())
            .map(|&i| target(i));
        let encode_targets: Vec<Target> = outcome
            .encode
            .and_then(|p| ctx.result(p))
            .map(|r| r.targets.iter().map(|&i| target(i)).collect())
            .unwrap_or_default();
        let join = |ts: &[Target]| {
            let mut out = String::with_capacity(ts.iter().map(|t| t.address.len() + 1).sum());
            for (k, t) in ts.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(&t.address);
            }
            out
        };
        let mut headers = Vec::with_capacity(3);
        headers.push((HEADER_DESTINATION.to_string(), join(&targets)));
        let mut remove_headers = Vec::new();
        match &prefill_target {
            Some(t) => headers.push((HEADER_PREFILLER.to_string(), t.address.clone())),
            None if outcome.decision_type != "single" => {
                remove_headers.push(HEADER_PREFILLER.to_string())
            }
            None => {}
        }
        if !encode_targets.is_empty() {
            headers.push((HEADER_ENCODERS.to_string(), join(&encode_targets)));
        }
        if let Some(rank) = data_parallel {
            headers.push((HEADER_DATA_PARALLEL.to_string(), rank));
        }
        hook_removed.retain(|r| !hook_headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(r)));
        headers.extend(hook_headers);
        remove_headers.extend(hook_removed);
        // A routing header the client sent and this decision does not set
        // would steer the sidecar (a prefiller, encoders, a data-parallel
        // rank or a KV source of the client's choosing): it is removed.
        for h in ROUTING_HEADERS {
            let set = |list: &[String]| list.iter().any(|k| k.eq_ignore_ascii_case(h));
            let given = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(h));
            if !given && !set(&remove_headers) && req.header_value(h).is_some() {
                remove_headers.push(h.to_string());
            }
        }
        let (trace, invalid) = TraceContext::child_of(
            req.header_value(HEADER_TRACEPARENT),
            req.header_value(HEADER_TRACESTATE),
            &req.id,
            now,
        );
        if let Some(kind) = invalid {
            self.metrics.record_invalid_trace_context(kind);
        }
        if let Some(t) = &trace {
            headers.push((HEADER_TRACEPARENT.to_string(), t.traceparent()));
            if let Some(state) = &t.tracestate {
                headers.push((HEADER_TRACESTATE.to_string(), state.clone()));
            }
        }
        let latency_info = ctx.take_latency_info();
        let prefill_pick = outcome
            .prefill
            .and_then(|p| ctx.result(p))
            .and_then(|r| r.targets.first().copied());
        let latency = self.pipeline.latency.as_ref().and_then(|settings| {
            let &first = primary.first()?;
            let infos = latency_info.as_ref()?;
            let info = infos.get(first)?.as_ref()?;
            let uid = fleet.eps[first].uid();
            // Under P/D the first token comes from the prefill endpoint: its
            // TTFT is learnt and judged there, as llm-d does; TPOT and the
            // running count stay with the decode endpoint.
            let prefill = prefill_pick
                .filter(|&p| p != first)
                .and_then(|p| Some((p, infos.get(p)?.as_ref()?)))
                .map(|(p, pi)| {
                    self.latency.track(fleet.eps[p].uid());
                    (p, pi)
                })
                .map(|(p, pi)| crate::lifecycle::PrefillLatency {
                    uid: fleet.eps[p].uid(),
                    endpoint: fleet.eps[p].name_arc(),
                    features: pi.features,
                    ttft_ms: pi.prediction.map(|x| x.ttft_ms),
                });
            let tpot_slo_ms = req.tpot_slo_ms().filter(|v| *v > 0.0).unwrap_or(0.0);
            self.latency.dispatched(uid, tpot_slo_ms);
            if let Some(p) = info.prediction {
                self.metrics
                    .observe_predicted_latency(fleet.eps[first].name(), &p);
            }
            Some(crate::lifecycle::LatencySample {
                uid,
                endpoint: fleet.eps[first].name_arc(),
                features: info.features,
                prediction: info.prediction,
                tpot_slo_ms,
                streaming: settings.streaming,
                train: true,
                prefill,
            })
        });
        let replaced = self.requests.open(
            &req.id,
            opening,
            Record {
                latency,
                target: targets.first().map(|t| t.name.clone()).unwrap_or_default(),
                prefill_target: prefill_target.as_ref().map(|t| t.name.clone()),
                prompt_tokens: ctx.prompt_tokens() as u64,
                scheduled_at_ns: now,
                first_token_at_ns: None,
                output_tokens: 0,
            },
        );
        // A reused id replaces an open request: the latency model's
        // in-flight count and smallest TPOT objective drop it, as the load
        // and metrics tables drop theirs.
        if let Some(s) = replaced.and_then(|r| r.latency) {
            self.latency.finished(s.uid, s.tpot_slo_ms);
        }
        facts.set_predicted_hits(&ctx, primary.first().copied(), prefill_pick);
        let explanation = DecisionExplanation::new(ExplanationRecord {
            request_id: req.id.clone(),
            model: req.model.clone(),
            prompt_tokens: ctx.prompt_tokens(),
            notes: ctx.take_notes(),
            endpoints: fleet,
            names: self.names.clone(),
            candidates,
            profiles: traces,
            primary: outcome.primary,
            decision_type: outcome.decision_type,
            latency: latency_info,
        });
        Ok(Decision {
            targets,
            prefill_target,
            encode_targets,
            headers,
            remove_headers,
            response_headers,
            trace,
            explanation,
        })
    }
}

/// `Prefer: if-available` (RFC 7240 preference list, case-insensitive).
fn prefers_if_available(req: &Request) -> bool {
    req.header_value(HEADER_PREFER).is_some_and(|v| {
        v.split(',')
            .any(|p| p.trim().eq_ignore_ascii_case("if-available"))
    })
}

/// True when some prefix producer matched at least one block on `ep`.
fn has_cached_prefix(ctx: &CycleContext<'_>, ep: EndpointIndex) -> bool {
    ctx.prefix_infos()
        .iter()
        .any(|p| p.get(ep).is_some_and(|m| m.match_blocks > 0))
}

/// The host of `host:port` (`[v6]:port` without its brackets); an address
/// without a port is its own host.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn ep(name: &str, model: Option<&str>, adapters: &[&str]) -> Endpoint {
        let mut e = Endpoint::new(name, format!("{name}:8000"));
        e.model = model.map(Into::into);
        e.lora_adapters = adapters.iter().map(|a| a.to_string()).collect();
        e
    }

    fn names(s: &Scheduler, model: &str, subset: Option<&str>) -> Vec<String> {
        let mut req = Request::with_tokens("r", model, vec![1, 2, 3]);
        if let Some(v) = subset {
            req.headers.insert(HEADER_SUBSET.into(), v.into());
        }
        let fleet = s.fleet.read().clone();
        s.candidates(&fleet, &req)
            .into_iter()
            .map(|i| fleet.eps[i].name().to_string())
            .collect()
    }

    #[test]
    fn candidates_follow_model_adapters_and_subset() {
        let s = Scheduler::default();
        for e in [
            ep("a", Some("m1"), &["lora-x"]),
            ep("b", None, &[]),
            ep("c", Some("m2"), &[]),
            ep("d", Some("m1"), &[]),
        ] {
            s.add_endpoint(e).unwrap();
        }
        assert_eq!(names(&s, "m1", None), ["a", "b", "d"]);
        assert_eq!(names(&s, "lora-x", None), ["a", "b"]);
        assert_eq!(names(&s, "m2", None), ["b", "c"]);
        assert_eq!(names(&s, "unknown", None), ["b"]);
        assert_eq!(names(&s, "", None), ["a", "b", "c", "d"]);
        assert_eq!(names(&s, "m1", Some("d:8000, c:8000")), ["d"]);
        s.remove_endpoint("b").unwrap();
        assert_eq!(names(&s, "m2", None), ["c"]);
        assert!(names(&s, "unknown", None).is_empty());
    }
}
