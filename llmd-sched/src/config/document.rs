//! Document-level checks: apiVersion, kind, feature gates, per-version fields,
//! deprecated top-level forms, quantities and durations.

use super::params::parse_duration_ns;
use super::schema::{
    FlowControl, PluginRef, PriorityBand, RawConfig, API_LEGACY, API_V1, API_V1ALPHA1,
};
use crate::error::ConfigError;

/// Feature gates llm-d registers, with their defaults.
pub const FEATURE_GATES: &[(&str, bool)] = &[
    ("flowControl", false),
    ("haPopulateNonLeaderDatastore", true),
];

type R<T> = Result<T, ConfigError>;

/// The longest reader error quoted in a decode error (bytes).
const MAX_ERROR_CHARS: usize = 300;

/// Parses the document (YAML or JSON; JSON is valid YAML) strictly. A
/// `.nan` or `.inf` anywhere is an error naming its place: llm-d converts
/// the YAML to JSON, which has no such numbers, and refuses the file; read
/// into plugin parameters they would otherwise turn into null, that is into
/// the parameter's default, without a word.
pub fn parse(text: &str) -> R<RawConfig> {
    let decode = |e: serde_yaml_ng::Error| {
        // The reader quotes what it found: a whole other file, at worst.
        let mut msg = e.to_string();
        if msg.len() > MAX_ERROR_CHARS {
            let cut = (0..=MAX_ERROR_CHARS)
                .rev()
                .find(|&i| msg.is_char_boundary(i))
                .unwrap_or(0);
            msg.truncate(cut);
            msg.push('…');
        }
        ConfigError::doc(format!("cannot decode EndpointPickerConfig: {msg}"))
    };
    super::yaml_budget::check_yaml_nodes(text, super::yaml_budget::MAX_YAML_NODES)
        .map_err(|e| ConfigError::doc(format!("cannot decode EndpointPickerConfig: {e}")))?;
    let raw = serde_yaml_ng::from_str::<RawConfig>(text).map_err(decode)?;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(decode)?;
    if let Some(path) = non_finite(&doc) {
        return Err(ConfigError::doc_field(
            path,
            "must be a finite number (.nan and .inf are refused, as llm-d refuses them)",
        ));
    }
    Ok(raw)
}

/// The path (`plugins[2].parameters.size`) of the first non-finite number
/// in `v`, depth first.
fn non_finite(v: &serde_yaml_ng::Value) -> Option<String> {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Number(n) if n.as_f64().is_some_and(|f| !f.is_finite()) => Some(String::new()),
        Y::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| non_finite(item).map(|rest| join(&format!("[{i}]"), &rest))),
        Y::Mapping(m) => m.iter().find_map(|(k, item)| {
            let key = match k {
                Y::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other)
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_default(),
            };
            non_finite(item).map(|rest| join(&key, &rest))
        }),
        Y::Tagged(t) => non_finite(&t.value),
        _ => None,
    }
}

/// `head` then `rest` as one dotted path (`[i]` parts join without a dot).
fn join(head: &str, rest: &str) -> String {
    if rest.is_empty() || rest.starts_with('[') {
        format!("{head}{rest}")
    } else {
        format!("{head}.{rest}")
    }
}

/// Checks `apiVersion` / `kind` and the fields each version allows; applies
/// the v1alpha1 deprecations. Returns warnings.
pub fn normalize(raw: &mut RawConfig) -> R<Vec<String>> {
    let mut warnings = Vec::new();
    let api = raw
        .api_version
        .clone()
        .ok_or_else(|| ConfigError::doc_field("apiVersion", "required"))?;
    let v1 = match api.as_str() {
        API_V1ALPHA1 => false,
        API_LEGACY => {
            warnings.push(format!("apiVersion {API_LEGACY} is deprecated; use {API_V1ALPHA1}"));
            false
        }
        API_V1 => true,
        other => {
            return Err(ConfigError::doc_field(
                "apiVersion",
                format!("unsupported apiVersion '{other}' (expected {API_V1ALPHA1}, {API_LEGACY} or {API_V1})"),
            ))
        }
    };
    match raw.kind.as_deref() {
        Some("EndpointPickerConfig") => {}
        Some(k) => {
            return Err(ConfigError::doc_field(
                "kind",
                format!("expected EndpointPickerConfig, got '{k}'"),
            ))
        }
        None => {
            return Err(ConfigError::doc_field(
                "kind",
                "required (EndpointPickerConfig)",
            ))
        }
    }
    if let Some(dl) = &raw.data_layer {
        let legacy_fields = [
            ("dataLayer.peerDiscovery", dl.peer_discovery.is_some()),
            (
                "dataLayer.discovery.pluginRef",
                dl.discovery
                    .as_ref()
                    .is_some_and(|d| d.plugin_ref.is_some()),
            ),
        ]
        .into_iter()
        .chain(cross_replica_fields(dl).1);
        for (field, present) in legacy_fields {
            if v1 && present {
                return Err(ConfigError::doc_field(field, format!("is a v1alpha1 field; {API_V1} regroups it under dataLayer.discovery / dataLayer.crossReplica")));
            }
        }
        if !v1 && dl.cross_replica.is_some() {
            return Err(ConfigError::doc_field(
                "dataLayer.crossReplica",
                format!("requires apiVersion {API_V1}"),
            ));
        }
        if let Some(d) = &dl.discovery {
            if d.plugin_ref.is_some() && d.endpoints.is_some() {
                return Err(ConfigError::doc_field(
                    "dataLayer.discovery",
                    "set either pluginRef or endpoints.pluginRef, not both",
                ));
            }
        }
        for (f, v) in [
            (
                "dataLayer.crossReplicaSyncInterval",
                &dl.cross_replica_sync_interval,
            ),
            (
                "dataLayer.crossReplicaPublishTimeout",
                &dl.cross_replica_publish_timeout,
            ),
            (
                "dataLayer.crossReplica.syncInterval",
                &dl.cross_replica
                    .as_ref()
                    .and_then(|c| c.sync_interval.clone()),
            ),
            (
                "dataLayer.crossReplica.publishTimeout",
                &dl.cross_replica
                    .as_ref()
                    .and_then(|c| c.publish_timeout.clone()),
            ),
        ] {
            duration(f, v)?;
        }
    }
    if let Some(sd) = raw.saturation_detector.take() {
        warnings.push(
            "top-level saturationDetector is deprecated; moved to flowControl.saturationDetector"
                .into(),
        );
        let fc = raw.flow_control.get_or_insert_with(FlowControl::default);
        if fc.saturation_detector.is_none() {
            fc.saturation_detector = Some(sd);
        }
    }
    if let Some(p) = raw.parser.take() {
        warnings.push("top-level parser is deprecated; moved to requestHandler.parsers".into());
        let rh = raw.request_handler.get_or_insert_with(Default::default);
        if rh.parsers.is_empty() {
            rh.parsers.push(p);
        }
    }
    if let Some(fc) = &raw.flow_control {
        check_flow_control(fc)?;
    }
    Ok(warnings)
}

/// Parses `featureGates` against the registered gates.
pub fn feature_gates(raw: &RawConfig) -> R<Vec<(String, bool)>> {
    let mut out: Vec<(String, bool)> = FEATURE_GATES
        .iter()
        .map(|(n, d)| (n.to_string(), *d))
        .collect();
    for (i, g) in raw.feature_gates.iter().enumerate() {
        let field = format!("featureGates[{i}]");
        let (name, value) = match g.split_once('=') {
            None => (g.trim(), true),
            Some((n, v)) => match v.trim() {
                "true" => (n.trim(), true),
                "false" => (n.trim(), false),
                other => {
                    return Err(ConfigError::doc_field(
                        field,
                        format!("gate value must be true or false, got '{other}'"),
                    ))
                }
            },
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => {
                let known: Vec<&str> = FEATURE_GATES.iter().map(|g| g.0).collect();
                return Err(ConfigError::doc_field(
                    field,
                    format!(
                        "unknown feature gate '{name}' (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

fn duration(field: &str, v: &Option<String>) -> R<()> {
    if let Some(s) = v {
        parse_duration_ns(s).map_err(|e| ConfigError::doc_field(field, e))?;
    }
    Ok(())
}

/// A Kubernetes resource quantity: a number with an optional SI or binary suffix.
pub fn check_quantity(field: &str, v: &Option<serde_json::Value>) -> R<()> {
    let bad = |s: &str| {
        ConfigError::doc_field(
            field,
            format!("invalid quantity '{s}' (expected e.g. 1000, \"2k\", \"8Gi\")"),
        )
    };
    match v {
        None => Ok(()),
        Some(serde_json::Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => Ok(()),
        Some(serde_json::Value::String(s)) => {
            let t = s.trim();
            let split = t
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len());
            let (num, suffix) = t.split_at(split);
            let ok_num = !num.is_empty() && num.parse::<f64>().is_ok();
            let ok_suffix = matches!(
                suffix,
                "" | "m"
                    | "k"
                    | "M"
                    | "G"
                    | "T"
                    | "P"
                    | "E"
                    | "Ki"
                    | "Mi"
                    | "Gi"
                    | "Ti"
                    | "Pi"
                    | "Ei"
            );
            if ok_num && ok_suffix {
                Ok(())
            } else {
                Err(bad(s))
            }
        }
        Some(other) => Err(bad(&other.to_string())),
    }
}

fn check_band(prefix: &str, b: &PriorityBand) -> R<()> {
    check_quantity(&format!("{prefix}.maxBytes"), &b.max_bytes)?;
    check_quantity(&format!("{prefix}.maxRequests"), &b.max_requests)?;
    duration(
        &format!("{prefix}.defaultRequestTTL"),
        &b.default_request_ttl,
    )
}

fn check_flow_control(fc: &FlowControl) -> R<()> {
    check_quantity("flowControl.maxBytes", &fc.max_bytes)?;
    check_quantity("flowControl.maxRequests", &fc.max_requests)?;
    duration("flowControl.defaultRequestTTL", &fc.default_request_ttl)?;
    duration(
        "flowControl.noEndpointRequestTTL",
        &fc.no_endpoint_request_ttl,
    )?;
    if let Some(b) = &fc.default_priority_band {
        check_band("flowControl.defaultPriorityBand", b)?;
    }
    if let Some(b) = &fc.default_negative_priority_band {
        check_band("flowControl.defaultNegativePriorityBand", b)?;
    }
    let mut seen = Vec::new();
    for (i, b) in fc.priority_bands.iter().enumerate() {
        let prefix = format!("flowControl.priorityBands[{i}]");
        let p = b
            .priority
            .ok_or_else(|| ConfigError::doc_field(format!("{prefix}.priority"), "required"))?;
        if seen.contains(&p) {
            return Err(ConfigError::doc_field(
                format!("{prefix}.priority"),
                format!("duplicate priority {p}"),
            ));
        }
        seen.push(p);
        check_band(&prefix, b)?;
    }
    Ok(())
}

/// Every plugin name the document's data layer, request handler and flow control reference,
/// with the field that references it.
pub fn host_refs(raw: &RawConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |field: String, r: &str| {
        if !r.is_empty() {
            out.push((field, r.to_string()));
        }
    };
    if let Some(dl) = &raw.data_layer {
        for (i, s) in dl.sources.iter().enumerate() {
            push(format!("dataLayer.sources[{i}].pluginRef"), &s.plugin_ref);
            for (j, e) in s.extractors.iter().enumerate() {
                push(
                    format!("dataLayer.sources[{i}].extractors[{j}].pluginRef"),
                    &e.plugin_ref,
                );
            }
        }
        if let Some(d) = &dl.discovery {
            if let Some(r) = &d.plugin_ref {
                push("dataLayer.discovery.pluginRef".into(), r);
            }
            if let Some(PluginRef { plugin_ref }) = &d.endpoints {
                push("dataLayer.discovery.endpoints.pluginRef".into(), plugin_ref);
            }
            if let Some(PluginRef { plugin_ref }) = &d.peers {
                push("dataLayer.discovery.peers.pluginRef".into(), plugin_ref);
            }
        }
        if let Some(p) = &dl.peer_discovery {
            push("dataLayer.peerDiscovery.pluginRef".into(), &p.plugin_ref);
        }
        if let Some(r) = &dl.cross_replica_syncer_plugin_ref {
            push("dataLayer.crossReplicaSyncerPluginRef".into(), r);
        }
        if let Some(r) = dl
            .cross_replica
            .as_ref()
            .and_then(|c| c.syncer_plugin_ref.as_ref())
        {
            push("dataLayer.crossReplica.syncerPluginRef".into(), r);
        }
    }
    if let Some(rh) = &raw.request_handler {
        for (i, p) in rh.parsers.iter().enumerate() {
            push(
                format!("requestHandler.parsers[{i}].pluginRef"),
                &p.plugin_ref,
            );
        }
    }
    if let Some(fc) = &raw.flow_control {
        if let Some(r) = &fc.usage_limit_policy_plugin_ref {
            push("flowControl.usageLimitPolicyPluginRef".into(), r);
        }
        let bands = fc
            .default_priority_band
            .iter()
            .map(|b| ("flowControl.defaultPriorityBand".to_string(), b))
            .chain(
                fc.default_negative_priority_band
                    .iter()
                    .map(|b| ("flowControl.defaultNegativePriorityBand".to_string(), b)),
            )
            .chain(
                fc.priority_bands
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (format!("flowControl.priorityBands[{i}]"), b)),
            );
        for (prefix, b) in bands {
            if let Some(r) = &b.fairness_policy_ref {
                push(format!("{prefix}.fairnessPolicyRef"), r);
            }
            if let Some(r) = &b.ordering_policy_ref {
                push(format!("{prefix}.orderingPolicyRef"), r);
            }
        }
    }
    out
}

/// The document-level settings present in `raw` that the library accepts but
/// does not execute, with what the host does instead; and warnings for the
/// flow-control settings that llm-d itself ignores without the `flowControl`
/// gate.
pub fn settings_not_executed(
    raw: &RawConfig,
    flow_control_gate: bool,
    warnings: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(fc) = &raw.flow_control {
        let present = [
            ("maxBytes", fc.max_bytes.is_some()),
            ("maxRequests", fc.max_requests.is_some()),
            ("defaultRequestTTL", fc.default_request_ttl.is_some()),
            ("noEndpointRequestTTL", fc.no_endpoint_request_ttl.is_some()),
            ("defaultPriorityBand", fc.default_priority_band.is_some()),
            (
                "defaultNegativePriorityBand",
                fc.default_negative_priority_band.is_some(),
            ),
            ("priorityBands", !fc.priority_bands.is_empty()),
            (
                "usageLimitPolicyPluginRef",
                fc.usage_limit_policy_plugin_ref.is_some(),
            ),
            ("enableEviction", fc.enable_eviction.is_some()),
        ];
        for (k, _) in present.iter().filter(|(_, p)| *p) {
            if flow_control_gate {
                out.push((
                    format!("flowControl.{k}"),
                    "the library has no flow-control queue: the host queues, bounds, orders and evicts requests (legacy admission by the saturation detector is executed)".to_string(),
                ));
            } else {
                warnings.push(format!(
                    "flowControl.{k} is ignored without the flowControl feature gate (as llm-d ignores it); only flowControl.saturationDetector applies"
                ));
            }
        }
    }
    if raw
        .request_handler
        .as_ref()
        .is_some_and(|r| r.propagate_priority.is_some())
    {
        out.push((
            "requestHandler.propagatePriority".into(),
            "the host forwards the request's priority to the model server".into(),
        ));
    }
    if let Some(dl) = &raw.data_layer {
        let (v1_fields, legacy) = cross_replica_fields(dl);
        for (k, present) in v1_fields.into_iter().chain(legacy) {
            if present {
                out.push((
                    k.to_string(),
                    "router replicas do not share state through the library: each scheduler learns from its own picks and feed".into(),
                ));
            }
        }
    }
    out
}

/// The cross-replica sync settings and whether each is set: the v1
/// spellings, and the v1alpha1 ones.
type Fields = [(&'static str, bool); 3];
fn cross_replica_fields(dl: &super::schema::DataLayer) -> (Fields, Fields) {
    let cross = dl.cross_replica.as_ref();
    (
        [
            (
                "dataLayer.crossReplica.syncerPluginRef",
                cross.is_some_and(|c| c.syncer_plugin_ref.is_some()),
            ),
            (
                "dataLayer.crossReplica.syncInterval",
                cross.is_some_and(|c| c.sync_interval.is_some()),
            ),
            (
                "dataLayer.crossReplica.publishTimeout",
                cross.is_some_and(|c| c.publish_timeout.is_some()),
            ),
        ],
        [
            (
                "dataLayer.crossReplicaSyncerPluginRef",
                dl.cross_replica_syncer_plugin_ref.is_some(),
            ),
            (
                "dataLayer.crossReplicaSyncInterval",
                dl.cross_replica_sync_interval.is_some(),
            ),
            (
                "dataLayer.crossReplicaPublishTimeout",
                dl.cross_replica_publish_timeout.is_some(),
            ),
        ],
    )
}
