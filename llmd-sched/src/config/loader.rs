//! Builds a pipeline from an `EndpointPickerConfig`, following llm-d's loader:
//! names, validation, instantiation, scheduling defaults, host-side defaults,
//! default producers.

use std::collections::HashMap;
use std::sync::Arc;

use super::defaults::{
    check_inflight_sources, default_producers, host_defaults, one_shared_producer,
    saturation_detector,
};
use super::document::{self, feature_gates};
use super::params::Params;
use super::profiles::{build_profiles, note_missing_profiles, pick_handler};
use super::registry::{
    known_types, lookup, lookup_host_owned, BuildEnv, Built, DataKey, Stability,
};
use super::report::{ConfigReport, PluginRecord, PluginStatus, SettingNotExecuted};
use super::schema::{PluginSpec, RawConfig};
use crate::error::ConfigError;
use crate::framework::{PreRequest, Producer, ProfileHandler, SchedulerProfile, Screener};
use crate::inflight::InFlightTable;
use crate::kv::KvBackend;
use crate::plugins::filters::SaturationDetector;

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
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Accept Alpha plugin types (llm-d: `--allow-experimental-plugins`). The
    /// library accepts them by default and records a warning; set `false` for
    /// llm-d's refusal.
    pub allow_experimental_plugins: bool,
    /// The engines' prefix-cache hashing (algorithm, block size, seed, vLLM
    /// version). When set, precise prefix producers hash prompts exactly as vLLM
    /// does and use KV-event keys as published; otherwise they run in router-key mode.
    pub engine_hasher: Option<llmd_kvindex::hash::HasherConfig>,
    /// Refuse a configuration with any plugin or setting that is accepted
    /// but not executed ([`ConfigReport::not_executed_lines`]); default
    /// `false` (they load and are listed in the report).
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            allow_experimental_plugins: true,
            engine_hasher: None,
            strict: false,
        }
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
    /// Screeners by instance name, in config order: each narrows the
    /// candidates before the producers and profiles run.
    pub screeners: Vec<(Arc<str>, Arc<dyn Screener>)>,
    /// KV indexes fed by `ingest_kv_events`.
    pub kv_backends: Vec<Arc<dyn KvBackend>>,
    /// The pool saturation detector (legacy admission of sheddable requests).
    pub saturation_detector: Option<SaturationDetector>,
    /// True when the `flowControl` gate is on (admission is then the host's).
    pub flow_control: bool,
    /// What the loader did.
    pub report: ConfigReport,
    /// Set when a `predicted-latency-producer` is configured: the scheduler
    /// then trains its online latency model from the lifecycle calls.
    pub latency: Option<crate::plugins::producers::LatencySettings>,
    /// A `latency-slo-admitter` is configured (run after the producers).
    pub latency_admitter: bool,
}

pub(super) struct Instance {
    pub name: String,
    pub ty: String,
    pub built: Built,
    pub injected: bool,
    /// The `parameters` as configured (after legacy conversion).
    pub parameters: serde_json::Value,
}

pub(super) type R<T> = Result<T, ConfigError>;

/// A profile's plugin reference with its optional weight.
pub(super) type WeightedRef = (String, Option<f64>);

/// Loads a document; blank text means llm-d's built-in default configuration.
pub fn load(
    text: &str,
    opts: LoadOptions,
    inflight: Arc<InFlightTable>,
    latency: Arc<crate::latency::OnlineLatencyModel>,
) -> R<Pipeline> {
    let text = if text.trim().is_empty() {
        DEFAULT_CONFIG
    } else {
        text
    };
    let mut raw = document::parse(text)?;
    build(&mut raw, &opts, inflight, latency)
}

fn build(
    raw: &mut RawConfig,
    opts: &LoadOptions,
    inflight: Arc<InFlightTable>,
    latency: Arc<crate::latency::OnlineLatencyModel>,
) -> R<Pipeline> {
    let mut report = ConfigReport {
        warnings: document::normalize(raw)?,
        ..Default::default()
    };
    report.api_version = raw.api_version.clone().unwrap_or_default();
    report.feature_gates = feature_gates(raw)?;
    let flow_control = report
        .feature_gates
        .iter()
        .any(|(n, v)| n == "flowControl" && *v);
    report.document_not_executed =
        document::settings_not_executed(raw, flow_control, &mut report.warnings)
            .into_iter()
            .map(|(setting, reason)| SettingNotExecuted { setting, reason })
            .collect();

    // Names default to the type; types must be registered; names unique.
    for (i, p) in raw.plugins.iter_mut().enumerate() {
        if p.ty.is_empty() {
            return Err(ConfigError::doc_field(
                format!("plugins[{i}].type"),
                "required",
            ));
        }
        if p.name.is_empty() {
            p.name = p.ty.clone();
        }
    }
    for (i, p) in raw.plugins.iter().enumerate() {
        if raw.plugins[..i].iter().any(|q| q.name == p.name) {
            return Err(ConfigError::plugin(
                &p.name,
                &p.ty,
                None,
                "duplicate plugin name",
            ));
        }
        if lookup(&p.ty).is_none() && lookup_host_owned(&p.ty).is_none() {
            return Err(ConfigError::plugin(
                &p.name,
                &p.ty,
                Some("type"),
                format!(
                    "plugin type '{}' is not registered (known types: {})",
                    p.ty,
                    known_types().join(", ")
                ),
            ));
        }
    }

    // Instantiate: everything but handlers first, so handlers can resolve deciders.
    let mut env = BuildEnv {
        inflight,
        deciders: HashMap::new(),
        engine_hasher: opts.engine_hasher.clone(),
        latency,
        latency_settings: None,
        latency_admitter: false,
        precise_producers: raw
            .plugins
            .iter()
            .filter(|p| p.ty == "precise-prefix-cache-producer")
            .map(|p| p.name.clone())
            .collect(),
    };
    let mut instances: Vec<Instance> = Vec::new();
    let is_handler = |p: &PluginSpec| p.ty.ends_with("profile-handler");
    let specs: Vec<PluginSpec> = raw.plugins.clone();
    for spec in specs
        .iter()
        .filter(|p| !is_handler(p))
        .chain(specs.iter().filter(|p| is_handler(p)))
    {
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
    note_missing_profiles(&mut instances, &*handler, &profiles);
    host_defaults(raw, &mut instances, opts, &mut env, &mut report)?;
    let saturation_detector = saturation_detector(raw, &instances)?;
    default_producers(&mut instances, opts, &mut env, &mut report)?;
    one_shared_producer(&instances)?;
    check_inflight_sources(&instances, &mut report);

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
        .filter_map(|i| {
            i.built
                .producer
                .clone()
                .map(|p| (rank(&i.built), Arc::<str>::from(i.name.as_str()), p))
        })
        .collect();
    producers.sort_by_key(|p| p.0);
    let pre_requests = instances
        .iter()
        .filter_map(|i| i.built.pre_request.clone())
        .collect();
    let screeners = instances
        .iter()
        .filter_map(|i| {
            let s = i.built.screener.clone()?;
            Some((Arc::<str>::from(i.name.as_str()), s))
        })
        .collect();
    let kv_backends = instances
        .iter()
        .filter_map(|i| i.built.kv_backend.clone())
        .collect();
    // A filter, scorer or picker that no profile uses (every profile names
    // its own, none falls back to it) does nothing.
    let used = |name: &str| {
        profiles.iter().any(|p| {
            &*p.picker.name == name
                || p.filters.iter().any(|f| &*f.name == name)
                || p.scorers.iter().any(|s| &*s.name == name)
        })
    };
    for i in &instances {
        let b = &i.built;
        let profile_only = (b.filter.is_some() || b.scorer.is_some() || b.picker.is_some())
            && b.producer.is_none()
            && b.pre_request.is_none()
            && b.screener.is_none()
            && b.handler.is_none()
            && b.decider.is_none()
            && b.detector.is_none()
            && b.kv_backend.is_none();
        let status = match b.not_executed {
            Some(r) => PluginStatus::AcceptedNotExecuted(r.to_string()),
            None if profile_only && !used(&i.name) => {
                PluginStatus::AcceptedNotExecuted("no scheduling profile references it".to_string())
            }
            None => PluginStatus::Executed,
        };
        report.plugins.push(PluginRecord {
            name: i.name.clone(),
            plugin_type: i.ty.clone(),
            injected: i.injected,
            status,
            remark: i.built.remark.map(str::to_string),
            parameters: i.parameters.clone(),
            settings_not_executed: i
                .built
                .settings_not_executed
                .iter()
                .map(|(setting, reason)| SettingNotExecuted {
                    setting: setting.clone(),
                    reason: reason.clone(),
                })
                .collect(),
        });
    }
    if opts.strict {
        let lines = report.not_executed_lines();
        if !lines.is_empty() {
            return Err(ConfigError::doc(format!(
                "strict load: {} setting(s) would be accepted but not executed: {}",
                lines.len(),
                lines.join("; ")
            )));
        }
    }
    Ok(Pipeline {
        profiles,
        handler,
        producers: producers.into_iter().map(|(_, n, p)| (n, p)).collect(),
        pre_requests,
        screeners,
        kv_backends,
        saturation_detector,
        flow_control,
        report,
        latency: env.latency_settings.take(),
        latency_admitter: env.latency_admitter,
    })
}

fn instantiate(
    spec: &PluginSpec,
    injected: bool,
    opts: &LoadOptions,
    env: &mut BuildEnv,
    report: &mut ConfigReport,
) -> R<Instance> {
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
                (
                    st,
                    Built {
                        not_executed: Some(reason),
                        ..Default::default()
                    },
                )
            }
            None => {
                return Err(ConfigError::plugin(
                    &spec.name,
                    &spec.ty,
                    Some("type"),
                    format!("plugin type '{}' is not registered", spec.ty),
                ))
            }
        },
    };
    match stability {
        Stability::Deprecated => report.warnings.push(format!(
            "plugin '{}': type '{}' is deprecated",
            spec.name, spec.ty
        )),
        Stability::Alpha if !opts.allow_experimental_plugins => {
            return Err(ConfigError::plugin(
                &spec.name,
                &spec.ty,
                Some("type"),
                format!(
                    "plugin type '{}' is alpha; enable experimental plugins to use it",
                    spec.ty
                ),
            ))
        }
        Stability::Alpha => report.warnings.push(format!(
            "plugin '{}': type '{}' is alpha (experimental)",
            spec.name, spec.ty
        )),
        Stability::Beta => {}
    }
    Ok(Instance {
        name: spec.name.clone(),
        ty: spec.ty.clone(),
        built,
        injected,
        parameters: spec.parameters.clone().unwrap_or(serde_json::Value::Null),
    })
}

pub(super) fn inject(
    ty: &str,
    instances: &mut Vec<Instance>,
    opts: &LoadOptions,
    env: &mut BuildEnv,
    report: &mut ConfigReport,
) -> R<usize> {
    inject_with(ty, None, instances, opts, env, report)
}

/// [`inject`] with parameters (`None`: the type's defaults).
pub(super) fn inject_with(
    ty: &str,
    parameters: Option<serde_json::Value>,
    instances: &mut Vec<Instance>,
    opts: &LoadOptions,
    env: &mut BuildEnv,
    report: &mut ConfigReport,
) -> R<usize> {
    if let Some(i) = instances.iter().position(|i| i.name == ty) {
        return Ok(i);
    }
    let spec = PluginSpec {
        name: ty.to_string(),
        ty: ty.to_string(),
        parameters,
    };
    let inst = instantiate(&spec, true, opts, env, report)?;
    instances.push(inst);
    Ok(instances.len() - 1)
}
