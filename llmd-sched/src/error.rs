//! The crate's error type, with stable codes the bindings map from.

use thiserror::Error;

/// A configuration problem, naming the plugin, the field and the reason.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// Plugin instance name (or `None` for document-level problems).
    pub plugin: Option<String>,
    /// Plugin type, when known.
    pub plugin_type: Option<String>,
    /// Dotted path of the offending field, when there is one.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    /// A document-level error.
    pub fn doc(reason: impl Into<String>) -> Self {
        ConfigError {
            plugin: None,
            plugin_type: None,
            field: None,
            reason: reason.into(),
        }
    }
    /// An error about a document field.
    pub fn doc_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            plugin: None,
            plugin_type: None,
            field: Some(field.into()),
            reason: reason.into(),
        }
    }
    /// An error about one plugin instance.
    pub fn plugin(name: &str, ty: &str, field: Option<&str>, reason: impl Into<String>) -> Self {
        ConfigError {
            plugin: Some(name.to_string()),
            plugin_type: Some(ty.to_string()),
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
    fn render(&self) -> String {
        let mut s = String::new();
        if let Some(p) = &self.plugin {
            s.push_str(&format!("plugin '{p}'"));
            if let Some(t) = &self.plugin_type {
                s.push_str(&format!(" (type '{t}')"));
            }
            s.push_str(": ");
        }
        if let Some(f) = &self.field {
            s.push_str(&format!("field '{f}': "));
        }
        s.push_str(&self.reason);
        s
    }
}

/// Every error the scheduler returns.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum ScheduleError {
    /// No candidate endpoints at all (llm-d: 503, `rejected-no-endpoints`).
    #[error(
        "no endpoints available for model '{model}'{}",
        .reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
    )]
    NoEndpoints {
        /// Requested model.
        model: String,
        /// Why, when endpoints serve the model but a screener left none.
        reason: Option<String>,
    },
    /// Filters removed every endpoint in a profile that must succeed (llm-d: 429,
    /// `rejected-saturated`), or a sheddable request met a saturated pool.
    #[error("resource exhausted: {reason}")]
    ResourceExhausted {
        /// Profile that failed, if any.
        profile: Option<String>,
        /// Why.
        reason: String,
    },
    /// The configuration could not be loaded or built.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// The request itself is malformed (llm-d: 400).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// An endpoint name the scheduler does not know.
    #[error("unknown endpoint '{0}'")]
    UnknownEndpoint(String),
    /// A `/metrics` text could not be parsed.
    #[error("metrics text: {0}")]
    MetricsText(String),
    /// A KV-event payload could not be decoded or applied.
    #[error("kv events: {0}")]
    KvEvents(String),
    /// The KV-block index refused an operation.
    #[error("kv index: {0}")]
    Index(String),
    /// Block hashing failed.
    #[error("hashing: {0}")]
    Hash(String),
    /// Conditional decode (`Prefer: if-available`) and the primary pick holds no
    /// cached prefix of the prompt (llm-d: 412).
    #[error(
        "precondition failed: endpoint '{endpoint}' holds no cached prefix (Prefer: if-available)"
    )]
    PreconditionFailed {
        /// The primary pick that was rejected.
        endpoint: String,
    },
}

impl ScheduleError {
    /// Stable numeric code. Scheduling outcomes use llm-d's HTTP statuses
    /// (503, 429, 412, 400); library-side errors use codes from 1000 that are never reused.
    pub fn code(&self) -> u16 {
        match self {
            ScheduleError::NoEndpoints { .. } => 503,
            ScheduleError::ResourceExhausted { .. } => 429,
            ScheduleError::InvalidRequest(_) => 400,
            ScheduleError::Config(_) => 1001,
            ScheduleError::UnknownEndpoint(_) => 1002,
            ScheduleError::MetricsText(_) => 1003,
            ScheduleError::KvEvents(_) => 1004,
            ScheduleError::Index(_) => 1005,
            ScheduleError::Hash(_) => 1006,
            ScheduleError::PreconditionFailed { .. } => 412,
        }
    }

    /// Stable lowercase name of the error's kind, the `code` every binding
    /// reports (C `llmd_error_code`, Python `.code`, Go `Error.Code`); the
    /// numeric [`ScheduleError::code`] is the detail beside it.
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleError::NoEndpoints { .. } => "no_endpoints",
            ScheduleError::ResourceExhausted { .. } => "resource_exhausted",
            ScheduleError::Config(_) => "config",
            ScheduleError::InvalidRequest(_) => "invalid_request",
            ScheduleError::UnknownEndpoint(_) => "unknown_endpoint",
            ScheduleError::MetricsText(_) => "metrics_parse",
            ScheduleError::KvEvents(_) => "kv_events",
            ScheduleError::Index(_) => "index",
            ScheduleError::Hash(_) => "hash",
            ScheduleError::PreconditionFailed { .. } => "precondition_failed",
        }
    }

    /// The `x-llm-d-request-dropped-reason` value llm-d sends with this error, if any.
    pub fn dropped_reason(&self) -> Option<&'static str> {
        match self {
            ScheduleError::NoEndpoints { .. } => Some("rejected-no-endpoints"),
            ScheduleError::ResourceExhausted {
                profile: Some(_), ..
            } => Some("rejected-saturated"),
            _ => None,
        }
    }
}
