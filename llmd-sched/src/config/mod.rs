//! Configuration: llm-d `EndpointPickerConfig` documents, strictly decoded and
//! built into a pipeline with llm-d's defaults.

pub mod document;
pub mod loader;
pub mod params;
pub mod registry;
pub mod schema;

pub use loader::{load, ConfigReport, LoadOptions, Pipeline, PluginRecord, PluginStatus, DEFAULT_CONFIG};
