//! Builds a pipeline from an `EndpointPickerConfig`, following llm-d's loader:
//! names, validation, instantiation, scheduling defaults, host-side defaults,
//! default producers.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use super::document::{self, feature_gates, host_refs};
use super::params::Params;
use super::registry::{lookup, lookup_host_owned, known_types, BuildEnv, Built, DataKey, Stability};
use super::schema::{PluginSpec, RawConfig};
use crate::error::ConfigError;
use crate::framework::{
    NamedFilter, NamedPicker, PreRequest, ProfileHandler, Producer, SchedulerProfile, WeightedScorer,
};
use crate::inflight::InFlightTable;
use crate::kv::KvBackend;
use crate::plugins::filters::UtilizationDetector;
use crate::plugins::pickers::MaxScorePicker;
use crate::plugins::profile::SingleProfileHandler;

/// The configuration llm-d uses when none is given (loader step 2).
pub const DEFAULT_CONFIG: &str = r#"
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: metrics-data-source
- type: core-metrics-extractor
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
"#;

/// Loader options.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Accept Alpha plugin types (llm-d: `--allow-experimental-plugins`). The
    /// library accepts them by default and records a warning; set `false` for
    /// llm-d's refusal.
    pub allow_experimental_plugins: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { allow_experimental_plugins: true }
    }
}

/// How the library treats a configured plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum PluginStatus {
    /// Runs in the scheduling cycle.
    Executed,
    /// Accepted (parameters validated where cheap) but run by the host, not the library.
    AcceptedNotExecuted(String),
}

/// One plugin instance in the load report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PluginRecord {
    /// Instance name.
    pub name: String,
    /// Type.
    pub plugin_type: String,
    /// Added by the loader rather than written in the config.
    pub injected: bool,
    /// Executed or not.
    pub status: PluginStatus,
    /// A remark (e.g. the token producer's vllm backend).
    pub remark: Option<String>,
}

/// What the loader did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConfigReport {
    /// apiVersion of the document.
    pub api_version: String,
    /// Feature gates after parsing.
    pub feature_gates: Vec<(String, bool)>,
    /// Every plugin instance, configured and injected.
    pub plugins: Vec<PluginRecord>,
    /// Deprecations, alpha plugins, ignored references.
    pub warnings: Vec<String>,
}

impl ConfigReport {
    /// Plugins accepted but not executed by the library.
    pub fn not_executed(&self) -> impl Iterator<Item = &PluginRecord> {
        self.plugins.iter().filter(|p| matches!(p.status, PluginStatus::AcceptedNotExecuted(_)))
    }
    /// The record of an instance.
    pub fn plugin(&self, name: &str) -> Option<&PluginRecord> {
        self.plugins.iter().find(|p| p.name == name)
    }
}

/// A built pipeline.
#[derive(Clone)]
pub struct Pipeline {
    /// Profiles in configured order.
    pub profiles: Vec<SchedulerProfile>,
    /// The one profile handler.
    pub handler: Arc<dyn ProfileHandler>,
    /// Producers in dependency order.
    pub producers: Vec<(Arc<str>, Arc<dyn Producer>)>,
    /// Post-decision hooks.
    pub pre_requests: Vec<Arc<dyn PreRequest>>,
    /// KV indexes fed by `ingest_kv_events`.
    pub kv_backends: Vec<Arc<dyn KvBackend>>,
    /// The pool saturation detector (legacy admission of sheddable requests).
    pub saturation_detector: Option<UtilizationDetector>,
    /// True when the `flowControl` gate is on (admission is then the host's).
    pub flow_control: bool,
    /// What the loader did.
    pub report: ConfigReport,
}

struct Instance {
    name: String,
    ty: String,
    built: Built,
    injected: bool,
}

type R<T> = Result<T, ConfigError>;

/// Loads a document; blank text means llm-d's built-in default configuration.
pub fn load(text: &str, opts: LoadOptions, inflight: Arc<InFlightTable>) -> R<Pipeline> {
    let text = if text.trim().is_empty() { DEFAULT_CONFIG } else { text };
    let mut raw = document::parse(text)?;
    build(&mut raw, opts, inflight)
}

fn build(raw: &mut RawConfig, opts: LoadOptions, inflight: Arc<InFlightTable>) -> R<Pipeline> {
    let mut report = ConfigReport { warnings: document::normalize(raw)?, ..Default::default() };
    report.api_version = raw.api_version.clone().unwrap_or_default();
    report.feature_gates = feature_gates(raw)?;
    let flow_control = report.feature_gates.iter().any(|(n, v)| n == "flowControl" && *v);

    // Names default to the type; types must be registered; names unique.
    for (i, p) in raw.plugins.iter_mut().enumerate() {
        if p.ty.is_empty() {
            return Err(ConfigError::doc_field(format!("plugins[{i}].type"), "required"));
        }
        if p.name.is_empty() {
            p.name = p.ty.clone();
        }
    }
    for (i, p) in raw.plugins.iter().enumerate() {
        if raw.plugins[..i].iter().any(|q| q.name == p.name) {
            return Err(ConfigError::plugin(&p.name, &p.ty, None, "duplicate plugin name"));
        }
        if lookup(&p.ty).is_none() && lookup_host_owned(&p.ty).is_none() {
            return Err(ConfigError::plugin(
                &p.name,
                &p.ty,
                Some("type"),
                format!("plugin type '{}' is not registered (known types: {})", p.ty, known_types().join(", ")),
            ));
        }
    }

    // Instantiate: everything but handlers first, so handlers can resolve deciders.
    let mut env = BuildEnv { inflight, deciders: HashMap::new() };
    let mut instances: Vec<Instance> = Vec::new();
    let is_handler = |p: &PluginSpec| p.ty.ends_with("profile-handler");
    let specs: Vec<PluginSpec> = raw.plugins.clone();
    for spec in specs.iter().filter(|p| !is_handler(p)).chain(specs.iter().filter(|p| is_handler(p))) {
        let inst = instantiate(spec, false, opts, &mut env, &mut report)?;
        if let Some(d) = &inst.built.decider {
            env.deciders.insert(inst.name.clone(), d.clone());
        }
        instances.push(inst);
    }
    // Restore configured order for everything that follows.
    instances.sort_by_key(|i| specs.iter().position(|s| s.name == i.name));

    let profiles = build_profiles(raw, &mut instances, opts, &mut env, &mut report)?;
    let handler = pick_handler(&instances, &profiles, &mut report)?;
    host_defaults(raw, &mut instances, opts, &mut env, &mut report)?;
    let saturation_detector = saturation_detector(raw, &instances)?;
    default_producers(&mut instances, opts, &mut env, &mut report)?;

    let rank = |b: &Built| {
        if b.produces.contains(&DataKey::TokenizedPrompt) {
            0
        } else if b.produces.contains(&DataKey::PrefixCacheMatchInfo) {
            1
        } else if b.produces.contains(&DataKey::InFlightLoad) {
            2
        } else {
            3
        }
    };
    let mut producers: Vec<(usize, Arc<str>, Arc<dyn Producer>)> = instances
        .iter()
        .filter_map(|i| i.built.producer.clone().map(|p| (rank(&i.built), Arc::<str>::from(i.name.as_str()), p)))
        .collect();
    producers.sort_by_key(|p| p.0);
    let pre_requests = instances.iter().filter_map(|i| i.built.pre_request.clone()).collect();
    let kv_backends = instances.iter().filter_map(|i| i.built.kv_backend.clone()).collect();
    for i in &instances {
        let status = match i.built.not_executed {
            Some(r) => PluginStatus::AcceptedNotExecuted(r.to_string()),
            None => PluginStatus::Executed,
        };
        report.plugins.push(PluginRecord {
            name: i.name.clone(),
            plugin_type: i.ty.clone(),
            injected: i.injected,
            status,
            remark: i.built.remark.map(str::to_string),
        });
    }
    Ok(Pipeline {
        profiles,
        handler,
        producers: producers.into_iter().map(|(_, n, p)| (n, p)).collect(),
        pre_requests,
        kv_backends,
        saturation_detector,
        flow_control,
        report,
    })
}

fn instantiate(spec: &PluginSpec, injected: bool, opts: LoadOptions, env: &mut BuildEnv, report: &mut ConfigReport) -> R<Instance> {
    let mut params = Params::new(&spec.name, &spec.ty, spec.parameters.as_ref())?;
    let (stability, built) = match lookup(&spec.ty) {
        Some(e) => {
            let b = (e.build)(&mut params, env)?;
            params.finish()?;
            (e.stability, b)
        }
        None => match lookup_host_owned(&spec.ty) {
            Some((st, reason)) => {
                params.accept_rest();
                (st, Built { not_executed: Some(reason), ..Default::default() })
            }
            None => return Err(ConfigError::plugin(&spec.name, &spec.ty, Some("type"), format!("plugin type '{}' is not registered", spec.ty))),
        },
    };
    match stability {
        Stability::Deprecated => report.warnings.push(format!("plugin '{}': type '{}' is deprecated", spec.name, spec.ty)),
        Stability::Alpha if !opts.allow_experimental_plugins => {
            return Err(ConfigError::plugin(&spec.name, &spec.ty, Some("type"), format!("plugin type '{}' is alpha; enable experimental plugins to use it", spec.ty)))
        }
        Stability::Alpha => report.warnings.push(format!("plugin '{}': type '{}' is alpha (experimental)", spec.name, spec.ty)),
        Stability::Beta => {}
    }
    Ok(Instance { name: spec.name.clone(), ty: spec.ty.clone(), built, injected })
}

fn inject(ty: &str, instances: &mut Vec<Instance>, opts: LoadOptions, env: &mut BuildEnv, report: &mut ConfigReport) -> R<usize> {
    if let Some(i) = instances.iter().position(|i| i.name == ty) {
        return Ok(i);
    }
    let spec = PluginSpec { name: ty.to_string(), ty: ty.to_string(), parameters: None };
    let inst = instantiate(&spec, true, opts, env, report)?;
    instances.push(inst);
    Ok(instances.len() - 1)
}

fn build_profiles(raw: &RawConfig, instances: &mut Vec<Instance>, opts: LoadOptions, env: &mut BuildEnv, report: &mut ConfigReport) -> R<Vec<SchedulerProfile>> {
    // No profiles: one `default` profile with every filter, scorer and picker.
    let specs: Vec<(String, Vec<(String, Option<f64>)>)> = if raw.scheduling_profiles.is_empty() {
        let refs = instances
            .iter()
            .filter(|i| i.built.filter.is_some() || i.built.scorer.is_some() || i.built.picker.is_some())
            .map(|i| (i.name.clone(), None))
            .collect();
        vec![("default".to_string(), refs)]
    } else {
        raw.scheduling_profiles
            .iter()
            .map(|p| (p.name.clone(), p.plugins.iter().map(|r| (r.plugin_ref.clone(), r.weight)).collect()))
            .collect()
    };
    let mut out = Vec::new();
    for (pi, (name, refs)) in specs.iter().enumerate() {
        if name.is_empty() {
            return Err(ConfigError::doc_field(format!("schedulingProfiles[{pi}].name"), "required"));
        }
        if specs[..pi].iter().any(|s| &s.0 == name) {
            return Err(ConfigError::doc_field(format!("schedulingProfiles[{pi}].name"), format!("duplicate profile name '{name}'")));
        }
        let (mut filters, mut scorers, mut picker) = (Vec::new(), Vec::new(), None::<NamedPicker>);
        for (ri, (r, weight)) in refs.iter().enumerate() {
            let field = format!("schedulingProfiles[{pi}].plugins[{ri}].pluginRef");
            let inst = instances
                .iter()
                .find(|i| &i.name == r)
                .ok_or_else(|| ConfigError::doc_field(&field, format!("'{r}' does not name a configured plugin (profile '{name}')")))?;
            let n: Arc<str> = inst.name.as_str().into();
            let b = &inst.built;
            if let Some(f) = &b.filter {
                filters.push(NamedFilter { name: n.clone(), filter: f.clone() });
            }
            if let Some(s) = &b.scorer {
                scorers.push(WeightedScorer { name: n.clone(), scorer: s.clone(), weight: weight.unwrap_or(1.0) });
            }
            if let Some(p) = &b.picker {
                if let Some(prev) = &picker {
                    return Err(ConfigError::doc_field(&field, format!("profile '{name}' already has picker '{}'; a profile takes exactly one", prev.name)));
                }
                picker = Some(NamedPicker { name: n.clone(), picker: p.clone() });
            }
            if b.filter.is_none() && b.scorer.is_none() && b.picker.is_none() {
                report.warnings.push(format!("profile '{name}': plugin '{r}' is not a filter, scorer or picker; ignored there"));
            }
        }
        let picker = match picker {
            Some(p) => p,
            None => {
                // The first configured picker, else a new max-score-picker.
                let idx = match instances.iter().position(|i| i.built.picker.is_some()) {
                    Some(i) => i,
                    None => inject("max-score-picker", instances, opts, env, report)?,
                };
                let i = &instances[idx];
                let p = i.built.picker.clone().unwrap_or_else(|| Arc::new(MaxScorePicker { max: 1 }));
                NamedPicker { name: i.name.as_str().into(), picker: p }
            }
        };
        out.push(SchedulerProfile { name: name.clone(), filters, scorers, picker });
    }
    Ok(out)
}

fn pick_handler(instances: &[Instance], profiles: &[SchedulerProfile], report: &mut ConfigReport) -> R<Arc<dyn ProfileHandler>> {
    let handlers: Vec<&Instance> = instances.iter().filter(|i| i.built.handler.is_some()).collect();
    let h = match handlers.as_slice() {
        [] if profiles.len() == 1 => {
            report.plugins.push(PluginRecord {
                name: "single-profile-handler".into(),
                plugin_type: "single-profile-handler".into(),
                injected: true,
                status: PluginStatus::Executed,
                remark: None,
            });
            return Ok(Arc::new(SingleProfileHandler));
        }
        [] => return Err(ConfigError::doc("no profile handler configured (required with more than one profile)")),
        [one] => one,
        _ => {
            let names: Vec<&str> = handlers.iter().map(|i| i.name.as_str()).collect();
            return Err(ConfigError::doc(format!("multiple profile handlers found: {}", names.join(", "))));
        }
    };
    if h.ty == "single-profile-handler" && profiles.len() > 1 {
        return Err(ConfigError::plugin(&h.name, &h.ty, None, format!("single-profile-handler needs exactly one profile, found {}", profiles.len())));
    }
    h.built.handler.clone().ok_or_else(|| ConfigError::doc("internal: handler vanished"))
}

/// Flow-control policies, parsers, saturation detector, data layer (loader steps 7-11).
fn host_defaults(raw: &RawConfig, instances: &mut Vec<Instance>, opts: LoadOptions, env: &mut BuildEnv, report: &mut ConfigReport) -> R<()> {
    for ty in ["fcfs-ordering-policy", "global-strict-fairness-policy", "static-usage-limit-policy"] {
        if !instances.iter().any(|i| i.ty == ty) {
            inject(ty, instances, opts, env, report)?;
        }
    }
    let parsers = raw.request_handler.as_ref().map(|r| r.parsers.clone()).unwrap_or_default();
    if parsers.is_empty() {
        for ty in ["openai-parser", "anthropic-parser", "vllmhttp-parser", "passthrough-parser"] {
            inject(ty, instances, opts, env, report)?;
        }
    } else {
        for p in &parsers {
            if !instances.iter().any(|i| i.name == p.plugin_ref) && p.plugin_ref.ends_with("-parser") && lookup_host_owned(&p.plugin_ref).is_some() {
                inject(&p.plugin_ref, instances, opts, env, report)?;
            }
        }
    }
    let detector_ref = raw.flow_control.as_ref().and_then(|f| f.saturation_detector.as_ref()).map(|s| s.plugin_ref.clone()).unwrap_or_default();
    if detector_ref.is_empty() && !instances.iter().any(|i| i.name == "utilization-detector") {
        inject("utilization-detector", instances, opts, env, report)?;
    }
    let inject_defaults = raw.data_layer.as_ref().and_then(|d| d.inject_defaults).unwrap_or(true);
    let has_metrics_source = raw.data_layer.as_ref().is_some_and(|d| {
        d.sources.iter().any(|s| instances.iter().any(|i| i.name == s.plugin_ref && i.ty == "metrics-data-source"))
    });
    if inject_defaults && !has_metrics_source {
        inject("metrics-data-source", instances, opts, env, report)?;
        inject("core-metrics-extractor", instances, opts, env, report)?;
    }
    for (field, r) in host_refs(raw) {
        if !instances.iter().any(|i| i.name == r) {
            return Err(ConfigError::doc_field(field, format!("'{r}' does not name a configured plugin")));
        }
    }
    Ok(())
}

fn saturation_detector(raw: &RawConfig, instances: &[Instance]) -> R<Option<UtilizationDetector>> {
    let r = raw.flow_control.as_ref().and_then(|f| f.saturation_detector.as_ref()).map(|s| s.plugin_ref.as_str()).filter(|s| !s.is_empty()).unwrap_or("utilization-detector");
    let inst = instances.iter().find(|i| i.name == r).ok_or_else(|| ConfigError::doc_field("flowControl.saturationDetector.pluginRef", format!("'{r}' does not name a configured plugin")))?;
    match (&inst.built.detector, inst.built.filter.is_some()) {
        (Some(d), _) => Ok(Some(d.clone())),
        // A concurrency detector gates through its filter form; admission stays with the host.
        (None, true) if inst.ty == "concurrency-detector" => Ok(None),
        _ => Err(ConfigError::doc_field("flowControl.saturationDetector.pluginRef", format!("plugin '{r}' (type '{}') is not a saturation detector", inst.ty))),
    }
}

/// Loader step 13: create default producers for consumed keys nobody produces.
fn default_producers(instances: &mut Vec<Instance>, opts: LoadOptions, env: &mut BuildEnv, report: &mut ConfigReport) -> R<()> {
    loop {
        let mut missing: Option<(String, String, DataKey, String)> = None;
        for i in instances.iter() {
            for (key, producer) in &i.built.consumes {
                let ok = instances.iter().any(|p| &p.name == producer && p.built.produces.contains(key))
                    || (*key == DataKey::UncachedRequestTokens && instances.iter().any(|p| p.built.produces.contains(key)));
                if ok {
                    continue;
                }
                if let Some(p) = instances.iter().find(|p| &p.name == producer) {
                    return Err(ConfigError::plugin(&i.name, &i.ty, None, format!("plugin '{}' (type '{}') does not produce {key:?}", p.name, p.ty)));
                }
                match key.default_producer() {
                    None => {
                        return Err(ConfigError::plugin(&i.name, &i.ty, None, format!("requires {key:?}, which has no default producer: list inflight-load-producer explicitly")))
                    }
                    Some(ty) if ty == producer => {
                        if missing.is_none() {
                            missing = Some((i.name.clone(), i.ty.clone(), *key, ty.to_string()));
                        }
                    }
                    Some(_) => {
                        return Err(ConfigError::plugin(&i.name, &i.ty, None, format!("producer '{producer}' for {key:?} is not configured")))
                    }
                }
            }
        }
        match missing {
            None => return Ok(()),
            Some((_, _, _, ty)) => {
                inject(&ty, instances, opts, env, report)?;
            }
        }
    }
}
