//! Host-side defaults (flow-control policies, parsers, saturation detector,
//! data layer; loader steps 7-11) and default producers (step 13).

use super::document::host_refs;
use super::loader::{inject, inject_with, Instance, R};
use super::registry::{lookup_host_owned, BuildEnv, DataKey};
use super::report::ConfigReport;
use super::schema::RawConfig;
use super::LoadOptions;
use crate::error::ConfigError;
use crate::plugins::filters::SaturationDetector;

/// Flow-control policies, parsers, saturation detector, data layer (loader steps 7-11).
pub(super) fn host_defaults(
    raw: &RawConfig,
    instances: &mut Vec<Instance>,
    opts: &LoadOptions,
    env: &mut BuildEnv,
    report: &mut ConfigReport,
) -> R<()> {
    for ty in [
        "fcfs-ordering-policy",
        "global-strict-fairness-policy",
        "static-usage-limit-policy",
    ] {
        if !instances.iter().any(|i| i.ty == ty) {
            inject(ty, instances, opts, env, report)?;
        }
    }
    let parsers = raw
        .request_handler
        .as_ref()
        .map(|r| r.parsers.clone())
        .unwrap_or_default();
    if parsers.is_empty() {
        for ty in [
            "openai-parser",
            "anthropic-parser",
            "vllmhttp-parser",
            "passthrough-parser",
        ] {
            inject(ty, instances, opts, env, report)?;
        }
    } else {
        for p in &parsers {
            if !instances.iter().any(|i| i.name == p.plugin_ref)
                && p.plugin_ref.ends_with("-parser")
                && lookup_host_owned(&p.plugin_ref).is_some()
            {
                inject(&p.plugin_ref, instances, opts, env, report)?;
            }
        }
    }
    let detector_ref = raw
        .flow_control
        .as_ref()
        .and_then(|f| f.saturation_detector.as_ref())
        .map(|s| s.plugin_ref.clone())
        .unwrap_or_default();
    if detector_ref.is_empty() && !instances.iter().any(|i| i.name == "utilization-detector") {
        inject("utilization-detector", instances, opts, env, report)?;
    }
    let inject_defaults = raw
        .data_layer
        .as_ref()
        .and_then(|d| d.inject_defaults)
        .unwrap_or(true);
    let has_metrics_source = raw.data_layer.as_ref().is_some_and(|d| {
        d.sources.iter().any(|s| {
            instances
                .iter()
                .any(|i| i.name == s.plugin_ref && i.ty == "metrics-data-source")
        })
    });
    if inject_defaults && !has_metrics_source {
        inject("metrics-data-source", instances, opts, env, report)?;
        inject("core-metrics-extractor", instances, opts, env, report)?;
    }
    for (field, r) in host_refs(raw) {
        if !instances.iter().any(|i| i.name == r) {
            return Err(ConfigError::doc_field(
                field,
                format!("'{r}' does not name a configured plugin"),
            ));
        }
    }
    Ok(())
}

pub(super) fn saturation_detector(
    raw: &RawConfig,
    instances: &[Instance],
) -> R<Option<SaturationDetector>> {
    let r = raw
        .flow_control
        .as_ref()
        .and_then(|f| f.saturation_detector.as_ref())
        .map(|s| s.plugin_ref.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("utilization-detector");
    let inst = instances.iter().find(|i| i.name == r).ok_or_else(|| {
        ConfigError::doc_field(
            "flowControl.saturationDetector.pluginRef",
            format!("'{r}' does not name a configured plugin"),
        )
    })?;
    match &inst.built.detector {
        Some(d) => Ok(Some(d.clone())),
        None => Err(ConfigError::doc_field(
            "flowControl.saturationDetector.pluginRef",
            format!(
                "plugin '{r}' (type '{}') is not a saturation detector",
                inst.ty
            ),
        )),
    }
}

/// Loader step 13: create default producers for consumed keys nobody produces.
pub(super) fn default_producers(
    instances: &mut Vec<Instance>,
    opts: &LoadOptions,
    env: &mut BuildEnv,
    report: &mut ConfigReport,
) -> R<()> {
    loop {
        let mut missing: Option<(String, String, DataKey, String)> = None;
        for i in instances.iter() {
            for (key, producer) in &i.built.consumes {
                let ok = instances
                    .iter()
                    .any(|p| &p.name == producer && p.built.produces.contains(key))
                    || (*key == DataKey::UncachedRequestTokens
                        && instances.iter().any(|p| p.built.produces.contains(key)));
                if ok {
                    continue;
                }
                if let Some(p) = instances.iter().find(|p| &p.name == producer) {
                    return Err(ConfigError::plugin(
                        &i.name,
                        &i.ty,
                        None,
                        format!(
                            "plugin '{}' (type '{}') does not produce {key:?}",
                            p.name, p.ty
                        ),
                    ));
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
            Some((consumer, _, DataKey::InFlightLoad, ty)) => {
                // The in-flight producer counts each request's uncached
                // prompt by a prefix source; injected, it reads the one the
                // plugin that needs it reads, rather than a default that may
                // not be configured (every prompt would count as uncached).
                let source = instances
                    .iter()
                    .find(|i| i.name == consumer)
                    .and_then(|i| {
                        i.built
                            .consumes
                            .iter()
                            .find(|(k, _)| *k == DataKey::PrefixCacheMatchInfo)
                    })
                    .map(|(_, producer)| producer.clone());
                let params = source.map(|s| serde_json::json!({ PREFIX_SOURCE: s }));
                inject_with(&ty, params, instances, opts, env, report)?;
            }
            Some((_, _, _, ty)) => {
                inject(&ty, instances, opts, env, report)?;
            }
        }
    }
}

/// The parameter naming a plugin's prefix-match source.
const PREFIX_SOURCE: &str = "prefixMatchInfoProducerName";

/// Refuses a second `inflight-load-producer`: every instance records into
/// the scheduler's one in-flight table, so two would count each request
/// twice (or the last one's parameters would silently win). Likewise a
/// second `predicted-latency-producer`: a cycle holds one set of latency
/// predictions and the scheduler trains one model, so the last one's
/// predictions and settings would silently win.
pub(super) fn one_shared_producer(instances: &[Instance]) -> R<()> {
    for (ty, shared) in [
        (
            crate::plugins::producers::INFLIGHT_PRODUCER,
            "they would share the scheduler's one in-flight table; configure one and name it in the consumers' inFlightLoadProducerName",
        ),
        (
            super::registry::LATENCY_PRODUCER,
            "a cycle holds one set of latency predictions and the scheduler trains one model; configure one",
        ),
    ] {
        let mut it = instances.iter().filter(|i| i.ty == ty);
        if let (Some(a), Some(b)) = (it.next(), it.next()) {
            return Err(ConfigError::plugin(
                &b.name,
                &b.ty,
                None,
                format!("a second {ty} (after '{}'): {shared}", a.name),
            ));
        }
    }
    Ok(())
}

/// Reports an `inflight-load-producer` whose prefix-match source is not a
/// configured prefix producer: it then counts every prompt token as uncached.
pub(super) fn check_inflight_sources(instances: &[Instance], report: &mut ConfigReport) {
    for i in instances
        .iter()
        .filter(|i| i.ty == "inflight-load-producer")
    {
        let source = i
            .parameters
            .get(PREFIX_SOURCE)
            .and_then(|v| v.as_str())
            .unwrap_or(crate::plugins::producers::APPROX_PRODUCER);
        let found = instances
            .iter()
            .any(|p| p.name == source && p.built.produces.contains(&DataKey::PrefixCacheMatchInfo));
        if !found {
            report.warnings.push(format!(
                "plugin '{}': {PREFIX_SOURCE} '{source}' is not a configured prefix producer; every prompt token counts as uncached in-flight load",
                i.name
            ));
        }
    }
}
