//! Built-in plugins, named and parameterised as in llm-d.

pub mod attributes;
pub mod filters;
pub mod pickers;
pub mod producers;
pub mod profile;
pub mod scorers;
pub mod screeners;
