//! vLLM KV-cache events: decoding, ZMQ framing and sequence tracking.

pub mod model;

pub use model::{BlockRemoved, BlockStored, EventBatch, ExtraValue, HashValue, KvEvent};
