//! llmd-kvindex: vLLM-exact prefix-block hashing, KV-event decoding and the
//! concurrent KV-block index.
#![deny(missing_docs)]

pub mod events;
pub mod hash;
pub mod index;
pub mod types;

pub use types::{BlockKey, Tier};
