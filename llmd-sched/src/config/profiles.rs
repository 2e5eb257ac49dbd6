//! Scheduling profiles and the profile handler (loader step 6 and 12).

use std::sync::Arc;

use super::loader::{inject, Instance, WeightedRef, R};
use super::registry::BuildEnv;
use super::report::{ConfigReport, PluginRecord, PluginStatus};
use super::schema::RawConfig;
use super::LoadOptions;
use crate::error::ConfigError;
use crate::framework::{
    NamedFilter, NamedPicker, ProfileHandler, SchedulerProfile, WeightedScorer,
};
use crate::plugins::pickers::MaxScorePicker;
use crate::plugins::profile::SingleProfileHandler;

pub(super) fn build_profiles(
    raw: &RawConfig,
    instances: &mut Vec<Instance>,
    opts: &LoadOptions,
    env: &mut BuildEnv,
    report: &mut ConfigReport,
) -> R<Vec<SchedulerProfile>> {
    // No profiles: one `default` profile with every filter, scorer and picker.
    let specs: Vec<(String, Vec<WeightedRef>)> = if raw.scheduling_profiles.is_empty() {
        let refs = instances
            .iter()
            .filter(|i| {
                i.built.filter.is_some() || i.built.scorer.is_some() || i.built.picker.is_some()
            })
            .map(|i| (i.name.clone(), None))
            .collect();
        vec![("default".to_string(), refs)]
    } else {
        raw.scheduling_profiles
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.plugins
                        .iter()
                        .map(|r| (r.plugin_ref.clone(), r.weight))
                        .collect(),
                )
            })
            .collect()
    };
    let mut out = Vec::new();
    for (pi, (name, refs)) in specs.iter().enumerate() {
        if name.is_empty() {
            return Err(ConfigError::doc_field(
                format!("schedulingProfiles[{pi}].name"),
                "required",
            ));
        }
        if specs[..pi].iter().any(|s| &s.0 == name) {
            return Err(ConfigError::doc_field(
                format!("schedulingProfiles[{pi}].name"),
                format!("duplicate profile name '{name}'"),
            ));
        }
        let (mut filters, mut scorers, mut picker) = (Vec::new(), Vec::new(), None::<NamedPicker>);
        for (ri, (r, weight)) in refs.iter().enumerate() {
            let field = format!("schedulingProfiles[{pi}].plugins[{ri}].pluginRef");
            if let Some(w) = weight.filter(|w| !w.is_finite()) {
                return Err(ConfigError::doc_field(
                    format!("schedulingProfiles[{pi}].plugins[{ri}].weight"),
                    format!("must be a finite number, got {w}"),
                ));
            }
            let inst = instances.iter().find(|i| &i.name == r).ok_or_else(|| {
                ConfigError::doc_field(
                    &field,
                    format!("'{r}' does not name a configured plugin (profile '{name}')"),
                )
            })?;
            let n: Arc<str> = inst.name.as_str().into();
            let b = &inst.built;
            if let Some(f) = &b.filter {
                filters.push(NamedFilter {
                    name: n.clone(),
                    filter: f.clone(),
                });
            }
            if let Some(s) = &b.scorer {
                scorers.push(WeightedScorer {
                    name: n.clone(),
                    scorer: s.clone(),
                    weight: weight.unwrap_or(1.0),
                });
            }
            if let Some(p) = &b.picker {
                if let Some(prev) = &picker {
                    return Err(ConfigError::doc_field(
                        &field,
                        format!(
                            "profile '{name}' already has picker '{}'; a profile takes exactly one",
                            prev.name
                        ),
                    ));
                }
                picker = Some(NamedPicker {
                    name: n.clone(),
                    picker: p.clone(),
                });
            }
            if weight.is_some() && b.scorer.is_none() {
                report.warnings.push(format!(
                    "profile '{name}': plugin '{r}' is not a scorer; its weight has no effect"
                ));
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
                let p = i
                    .built
                    .picker
                    .clone()
                    .unwrap_or_else(|| Arc::new(MaxScorePicker { max: 1 }));
                NamedPicker {
                    name: i.name.as_str().into(),
                    picker: p,
                }
            }
        };
        out.push(SchedulerProfile {
            name: name.clone(),
            filters,
            scorers,
            picker,
        });
    }
    Ok(out)
}

pub(super) fn pick_handler(
    instances: &[Instance],
    profiles: &[SchedulerProfile],
    report: &mut ConfigReport,
) -> R<Arc<dyn ProfileHandler>> {
    let handlers: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.built.handler.is_some())
        .collect();
    let h = match handlers.as_slice() {
        [] if profiles.len() == 1 => {
            report.plugins.push(PluginRecord {
                name: "single-profile-handler".into(),
                plugin_type: "single-profile-handler".into(),
                injected: true,
                status: PluginStatus::Executed,
                remark: None,
                parameters: serde_json::Value::Null,
                settings_not_executed: Vec::new(),
            });
            return Ok(Arc::new(SingleProfileHandler));
        }
        [] => {
            return Err(ConfigError::doc(
                "no profile handler configured (required with more than one profile)",
            ))
        }
        [one] => one,
        _ => {
            let names: Vec<&str> = handlers.iter().map(|i| i.name.as_str()).collect();
            return Err(ConfigError::doc(format!(
                "multiple profile handlers found: {}",
                names.join(", ")
            )));
        }
    };
    if h.ty == "single-profile-handler" && profiles.len() > 1 {
        return Err(ConfigError::plugin(
            &h.name,
            &h.ty,
            None,
            format!(
                "single-profile-handler needs exactly one profile, found {}",
                profiles.len()
            ),
        ));
    }
    h.built
        .handler
        .clone()
        .ok_or_else(|| ConfigError::doc("internal: handler vanished"))
}

/// Notes on the configured handler each stage it expects whose profile the
/// configuration does not define (a decider for it then does nothing):
/// reported as not executed, and refused by a strict load.
pub(super) fn note_missing_profiles(
    instances: &mut [Instance],
    handler: &dyn ProfileHandler,
    profiles: &[SchedulerProfile],
) {
    let Some(h) = instances.iter_mut().find(|i| i.built.handler.is_some()) else {
        return;
    };
    let missing = |name: &str| !profiles.iter().any(|p| p.name == name);
    let mut notes = Vec::new();
    // llm-d loads these and fails every request: so does the library, and
    // says so (a strict load refuses them).
    for (setting, profile) in handler.required_profiles() {
        if missing(&profile) {
            notes.push((
                setting,
                format!(
                    "no scheduling profile is named '{profile}': every pick fails, as in llm-d"
                ),
            ));
        }
    }
    if h.ty == "data-parallel-profile-handler" && profiles.len() != 1 {
        notes.push(("schedulingProfiles", format!("the handler runs exactly one profile, {} are configured: every pick fails, as in llm-d", profiles.len())));
    }
    for (setting, profile, why) in handler.expected_profiles(profiles) {
        if missing(&profile) {
            notes.push((
                setting,
                format!("no scheduling profile is named '{profile}': {why}"),
            ));
        }
    }
    h.built
        .settings_not_executed
        .extend(notes.into_iter().map(|(s, why)| (s.to_string(), why)));
}
