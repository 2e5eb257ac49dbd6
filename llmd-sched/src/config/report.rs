//! What the loader did: every plugin (configured or injected, executed or
//! only accepted) and the warnings.

use serde::Serialize;

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
        self.plugins
            .iter()
            .filter(|p| matches!(p.status, PluginStatus::AcceptedNotExecuted(_)))
    }
    /// The record of an instance.
    pub fn plugin(&self, name: &str) -> Option<&PluginRecord> {
        self.plugins.iter().find(|p| p.name == name)
    }
}
