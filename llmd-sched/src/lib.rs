//! llmd-sched: the llm-d-compatible scheduling pipeline.
#![deny(missing_docs)]

pub mod observe;
