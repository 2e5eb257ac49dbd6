//! Configuration: llm-d `EndpointPickerConfig` documents, strictly decoded and
//! built into a pipeline with llm-d's defaults.

pub mod builtins;
mod defaults;
pub mod document;
pub mod host_owned;
pub mod legacy_prefix;
pub mod loader;
pub mod params;
mod profiles;
pub mod registry;
pub mod report;
pub mod schema;
pub mod text_file;
pub mod yaml_budget;

pub use loader::{load, LoadOptions, Pipeline, DEFAULT_CONFIG};
pub use report::{ConfigReport, PluginRecord, PluginStatus, SettingNotExecuted};
