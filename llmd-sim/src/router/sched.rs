//! Any llm-d EndpointPickerConfig, run by the real `llmd_sched::Scheduler`:
//! it is fed the same KV-event bytes and `/metrics` pages a production host
//! would feed it, on the simulation's clock.

use std::collections::HashMap;
use std::sync::Arc;

use llmd_kvindex::events::EventBatch;
use llmd_sched::{
    Endpoint, ManualClock, Request, RequestErrorKind, ScheduleError, Scheduler, Usage,
};

use super::{FleetView, PredictionErrors, Refusal, Role, Route, RouteRequest, Router};

/// A policy backed by the scheduler library.
pub struct SchedRouter {
    name: String,
    sched: Scheduler,
    clock: Arc<ManualClock>,
    names: Vec<String>,
    index: HashMap<String, usize>,
    model: String,
    /// Output tokens of each open request (reported at completion, as the
    /// engine's usage).
    output_len: HashMap<u64, u32>,
    errors: PredictionErrors,
}

impl std::fmt::Debug for SchedRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedRouter")
            .field("name", &self.name)
            .finish()
    }
}

impl SchedRouter {
    /// Builds the scheduler from `config` (YAML or JSON; blank = llm-d's
    /// default) and registers the fleet's endpoints.
    pub fn new(
        name: &str,
        config: &str,
        names: &[String],
        roles: &[Role],
        model: &str,
        seed: u64,
    ) -> Result<Self, String> {
        let clock = Arc::new(ManualClock::new(1));
        let sched = Scheduler::from_config_str(config)
            .map_err(|e| e.to_string())?
            .with_clock(clock.clone())
            .with_seed(seed);
        for (n, role) in names.iter().zip(roles) {
            // Workers named by address keep it; others get a nominal port.
            let address = if n.contains(':') {
                n.clone()
            } else {
                format!("{n}:8000")
            };
            let mut ep = Endpoint::new(n.clone(), address);
            ep.model = Some(model.to_string());
            let ep = match role {
                Role::Both => ep,
                Role::Prefill => ep.with_label("llm-d.ai/role", "prefill"),
                Role::Decode => ep.with_label("llm-d.ai/role", "decode"),
            };
            sched.add_endpoint(ep).map_err(|e| e.to_string())?;
        }
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Ok(SchedRouter {
            name: name.to_string(),
            sched,
            clock,
            names: names.to_vec(),
            index,
            output_len: HashMap::new(),
            errors: PredictionErrors::default(),
            model: model.to_string(),
        })
    }

    fn set_time(&self, now: f64) {
        self.clock.set_ns((now * 1e9) as u64 + 1);
    }
}

impl Router for SchedRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn route(&mut self, req: &RouteRequest<'_>, fleet: &FleetView<'_>) -> Result<Route, Refusal> {
        self.set_time(fleet.now);
        let spec = req.spec;
        let mut r = Request::with_tokens(
            spec.id.to_string(),
            self.model.clone(),
            spec.prompt.to_vec(),
        );
        if let Some(l) = &spec.lora {
            r.lora = Some(llmd_sched::model::LoraRef {
                id: None,
                name: l.clone(),
                path: Some(format!("/adapters/{l}")),
            });
        }
        if let Some(s) = &spec.session {
            r.session_id = Some(s.clone());
            r = r.header("x-session-id", s.clone());
        }
        r.slo.ttft_ms = Some(spec.slo.ttft_s * 1e3);
        r.slo.tpot_ms = Some(spec.slo.tpot_s * 1e3);
        r.priority = spec.priority;
        let d = self.sched.pick(&r).map_err(|e| match e {
            ScheduleError::ResourceExhausted { .. } => Refusal::Rejected(e.to_string()),
            e => Refusal::Failed(e.to_string()),
        })?;
        self.output_len.insert(spec.id, spec.output_len);
        let target = d.targets.first().ok_or("decision without a target")?;
        let decode = *self.index.get(&target.name).ok_or("unknown target")?;
        let prefill = match &d.prefill_target {
            Some(t) => Some(*self.index.get(&t.name).ok_or("unknown prefill target")?),
            None => None,
        };
        Ok(Route { decode, prefill })
    }

    fn on_kv_events(&mut self, worker: usize, payload: &[u8], seq: u64, _batch: &EventBatch) {
        // A malformed payload would be a simulator bug; the scheduler reports
        // it and keeps its index as it was, which a production host also does.
        let _ = self
            .sched
            .ingest_kv_events(&self.names[worker], payload, Some(seq));
    }

    fn on_scrape(&mut self, worker: usize, text: &str) {
        let _ = self
            .sched
            .update_endpoint_metrics_text(&self.names[worker], text);
        if worker == 0 {
            self.sched.tick();
        }
    }

    fn wants_metrics_text(&self) -> bool {
        true
    }

    fn on_first_token(&mut self, req: u64, _route: Route, now: f64) {
        self.set_time(now);
        self.sched.on_first_token(&req.to_string());
    }

    fn on_tokens(&mut self, req: u64, _route: Route, now: f64) {
        self.set_time(now);
        self.sched.on_tokens(&req.to_string(), 1);
    }

    fn on_done(&mut self, req: u64, _route: Route, now: f64, ok: bool) {
        self.set_time(now);
        let id = req.to_string();
        let output = self.output_len.remove(&req);
        if !ok {
            self.sched.on_error(&id, RequestErrorKind::Upstream);
            return;
        }
        let usage = Usage {
            output_tokens: output,
            ..Usage::default()
        };
        if let Some(s) = self.sched.on_complete_with_usage(&id, usage) {
            self.errors.add(&s);
        }
    }

    fn prediction_errors(&self) -> Option<PredictionErrors> {
        (!self.errors.is_empty()).then(|| self.errors.clone())
    }

    fn not_executed(&self) -> Vec<String> {
        self.sched
            .config_report()
            .not_executed_lines_where(|p, setting| {
                let ty = p.plugin_type.as_str();
                match setting {
                    None => !SIMULATOR_EXECUTES.contains(&ty),
                    Some(s) => {
                        let head = s.setting.split('.').next().unwrap_or_default();
                        !SIMULATOR_EXECUTES_SETTINGS.contains(&(ty, head))
                    }
                }
            })
    }
}

/// Host-owned plugin types whose work the simulator does as the host: it
/// scrapes every worker's `/metrics` into the scheduler, registers the
/// fleet's endpoints, and builds each request (token ids, session id) itself.
const SIMULATOR_EXECUTES: &[&str] = &[
    "metrics-data-source",
    "core-metrics-extractor",
    "models-data-source",
    "models-data-extractor",
    "endpoint-notification-source",
    "k8s-notification-source",
    "openai-parser",
    "vllmhttp-parser",
    "passthrough-parser",
    "session-id-producer",
];

/// Settings (plugin type, top-level key) the simulator executes as the
/// host: it delivers every worker's KV events to the scheduler, and its
/// requests carry their token ids (no tokenizer service to call).
const SIMULATOR_EXECUTES_SETTINGS: &[(&str, &str)] = &[
    ("precise-prefix-cache-producer", "kvEventsConfig"),
    ("precise-prefix-cache-scorer", "kvEventsConfig"),
    ("token-producer", "modelName"),
    ("token-producer", "vllm"),
    ("tokenizer", "modelName"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn router(config: &str) -> SchedRouter {
        let names = vec!["w0".to_string(), "w1".to_string()];
        SchedRouter::new("p", config, &names, &[Role::Both, Role::Both], "m", 1).expect("router")
    }

    /// What the simulator does as the host (KV events, scrapes, endpoints)
    /// is not reported; what nobody executes is, naming the setting.
    #[test]
    fn reports_only_what_the_simulator_does_not_execute() {
        let hosted = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  parameters:\n    kvEventsConfig: {topicFilter: 'kv@', concurrency: 2}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: metrics-data-source\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";
        assert_eq!(router(hosted).not_executed(), Vec::<String>::new());
        let dropped = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  parameters:\n    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {podCacheSize: 3}}}\n- type: fcfs-ordering-policy\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: max-score-picker\n";
        let lines = router(dropped).not_executed();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines.iter().any(|l| l.contains("podCacheSize")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("fcfs-ordering-policy")),
            "{lines:?}"
        );
    }
}
