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
    /// The plugin's `parameters` as configured (after legacy conversion;
    /// `null` when none): what a host or a feed reads to execute settings the
    /// library only accepts, such as a precise producer's `kvEventsConfig`.
    pub parameters: serde_json::Value,
    /// Settings of an executed plugin that were accepted (validated) but that
    /// the library does not act on, e.g. a precise producer's
    /// `kvEventsConfig`: the host (or a feed) must do what they ask.
    pub settings_not_executed: Vec<SettingNotExecuted>,
}

/// A setting accepted but not executed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingNotExecuted {
    /// Dotted path inside the plugin's `parameters`, e.g. `kvEventsConfig.zmqEndpoint`.
    pub setting: String,
    /// What the host does instead.
    pub reason: String,
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
    /// Document-level settings (outside any plugin's parameters) accepted but
    /// not executed, e.g. `flowControl.maxRequests` or
    /// `requestHandler.propagatePriority`; `setting` is the document path.
    pub document_not_executed: Vec<SettingNotExecuted>,
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

    /// One line per configured plugin or setting that was accepted but is
    /// not executed by the library (what a host should warn about, or what a
    /// strict load refuses). Host-owned plugins the loader injects as llm-d's
    /// defaults (parsers, flow-control policies, the metrics data source) are
    /// not listed: nobody asked for them. Empty when everything configured runs.
    pub fn not_executed_lines(&self) -> Vec<String> {
        self.not_executed_lines_where(|_, _| true)
    }

    /// [`ConfigReport::not_executed_lines`] of the plugins and settings
    /// `keep` accepts (the setting `None` for a plugin not executed as a
    /// whole), after the document-level settings: for a host that executes
    /// some of the plugins' itself.
    pub fn not_executed_lines_where(
        &self,
        keep: impl Fn(&PluginRecord, Option<&SettingNotExecuted>) -> bool,
    ) -> Vec<String> {
        let mut out: Vec<String> = self
            .document_not_executed
            .iter()
            .map(|s| {
                format!(
                    "setting '{}' is accepted but not executed: {}",
                    s.setting, s.reason
                )
            })
            .collect();
        for p in self.plugins.iter().filter(|p| !p.injected) {
            if let PluginStatus::AcceptedNotExecuted(why) = &p.status {
                if keep(p, None) {
                    out.push(format!(
                        "plugin '{}' ({}) is accepted but not executed: {why}",
                        p.name, p.plugin_type
                    ));
                }
            }
            for s in p.settings_not_executed.iter().filter(|s| keep(p, Some(s))) {
                out.push(format!(
                    "plugin '{}' ({}): setting '{}' is accepted but not executed: {}",
                    p.name, p.plugin_type, s.setting, s.reason
                ));
            }
        }
        out
    }

    /// The report as JSON data, with `not_executed` (the lines of
    /// [`ConfigReport::not_executed_lines`]) added: the bindings' format.
    pub fn to_value(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("not_executed".into(), self.not_executed_lines().into());
        }
        v
    }

    /// [`ConfigReport::to_value`] as JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}
