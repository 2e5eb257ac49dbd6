//! The `EndpointPickerConfig` document, decoded strictly (unknown fields are errors).
//! One superset shape covers `v1alpha1` (both group names) and `llm-d.ai/v1`; the
//! loader checks which fields each version allows.

use serde::Deserialize;
use serde_json::Value;

/// The current API version at the llm-d basis commit.
pub const API_V1ALPHA1: &str = "llm-d.ai/v1alpha1";
/// The GIE-era name of the same schema.
pub const API_LEGACY: &str = "inference.networking.x-k8s.io/v1alpha1";
/// llm-d >= v1.0.
pub const API_V1: &str = "llm-d.ai/v1";

/// The whole document.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// `apiVersion`.
    pub api_version: Option<String>,
    /// `kind` (must be `EndpointPickerConfig`).
    pub kind: Option<String>,
    /// `featureGates`: `"gate"` or `"gate=<bool>"`.
    #[serde(default)]
    pub feature_gates: Vec<String>,
    /// Plugin instances.
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
    /// Scheduling profiles.
    #[serde(default)]
    pub scheduling_profiles: Vec<ProfileSpec>,
    /// Data layer wiring (host-owned; validated and recorded).
    pub data_layer: Option<DataLayer>,
    /// Request handling (parsers).
    pub request_handler: Option<RequestHandler>,
    /// Flow control (host-owned; validated and recorded).
    pub flow_control: Option<FlowControl>,
    /// Deprecated top-level saturation detector (v1alpha1).
    pub saturation_detector: Option<PluginRef>,
    /// Deprecated top-level parser (v1alpha1).
    pub parser: Option<PluginRef>,
}

/// One plugin instance.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginSpec {
    /// Instance name; defaults to `type`.
    #[serde(default)]
    pub name: String,
    /// Registered plugin type.
    #[serde(default, rename = "type")]
    pub ty: String,
    /// Parameters, decoded by the plugin.
    pub parameters: Option<Value>,
}

/// A profile.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileSpec {
    /// Profile name (required, unique).
    #[serde(default)]
    pub name: String,
    /// Plugin references in order.
    #[serde(default)]
    pub plugins: Vec<ProfilePluginRef>,
}

/// A plugin reference inside a profile.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfilePluginRef {
    /// Plugin instance name.
    #[serde(default)]
    pub plugin_ref: String,
    /// Scorer weight (default 1.0).
    pub weight: Option<f64>,
}

/// `{pluginRef: ...}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginRef {
    /// Plugin instance name.
    #[serde(default)]
    pub plugin_ref: String,
}

/// A data source with its extractors.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DataSource {
    /// The source plugin.
    #[serde(default)]
    pub plugin_ref: String,
    /// Extractor plugins.
    #[serde(default)]
    pub extractors: Vec<PluginRef>,
}

/// `dataLayer.discovery`: v1alpha1 allows `pluginRef` (deprecated) or the v1 nested form.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Discovery {
    /// Deprecated flat form (v1alpha1 only).
    pub plugin_ref: Option<String>,
    /// Endpoint discovery.
    pub endpoints: Option<PluginRef>,
    /// Peer (EPP replica) discovery.
    pub peers: Option<PluginRef>,
}

/// `dataLayer.crossReplica` (v1).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CrossReplica {
    /// Syncer plugin.
    pub syncer_plugin_ref: Option<String>,
    /// Sync interval.
    pub sync_interval: Option<String>,
    /// Publish timeout.
    pub publish_timeout: Option<String>,
}

/// `dataLayer`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DataLayer {
    /// `false` = do not add the default metrics source and extractor.
    pub inject_defaults: Option<bool>,
    /// Sources.
    #[serde(default)]
    pub sources: Vec<DataSource>,
    /// Discovery.
    pub discovery: Option<Discovery>,
    /// v1alpha1 peer discovery.
    pub peer_discovery: Option<PluginRef>,
    /// v1alpha1 cross-replica syncer.
    pub cross_replica_syncer_plugin_ref: Option<String>,
    /// v1alpha1 sync interval.
    pub cross_replica_sync_interval: Option<String>,
    /// v1alpha1 publish timeout.
    pub cross_replica_publish_timeout: Option<String>,
    /// v1 cross-replica block.
    pub cross_replica: Option<CrossReplica>,
}

/// `requestHandler`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestHandler {
    /// Parsers in order.
    #[serde(default)]
    pub parsers: Vec<PluginRef>,
    /// Forward the objective priority to the model server.
    pub propagate_priority: Option<bool>,
}

/// A flow-control priority band.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PriorityBand {
    /// Priority of the band.
    pub priority: Option<i64>,
    /// Byte cap (quantity).
    pub max_bytes: Option<Value>,
    /// Request cap (quantity).
    pub max_requests: Option<Value>,
    /// Fairness policy plugin.
    pub fairness_policy_ref: Option<String>,
    /// Ordering policy plugin.
    pub ordering_policy_ref: Option<String>,
    /// Queue TTL for the band.
    #[serde(rename = "defaultRequestTTL")]
    pub default_request_ttl: Option<String>,
}

/// `flowControl`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlowControl {
    /// Global byte cap (quantity).
    pub max_bytes: Option<Value>,
    /// Global request cap (quantity).
    pub max_requests: Option<Value>,
    /// Default queue TTL.
    #[serde(rename = "defaultRequestTTL")]
    pub default_request_ttl: Option<String>,
    /// Queue TTL when no endpoint exists.
    #[serde(rename = "noEndpointRequestTTL")]
    pub no_endpoint_request_ttl: Option<String>,
    /// Band for priorities without their own.
    pub default_priority_band: Option<PriorityBand>,
    /// Band for negative priorities.
    pub default_negative_priority_band: Option<PriorityBand>,
    /// Explicit bands.
    #[serde(default)]
    pub priority_bands: Vec<PriorityBand>,
    /// Usage-limit policy plugin.
    pub usage_limit_policy_plugin_ref: Option<String>,
    /// Saturation detector plugin.
    pub saturation_detector: Option<PluginRef>,
    /// Evict queued sheddable requests.
    pub enable_eviction: Option<bool>,
}
