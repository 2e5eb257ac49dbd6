//! The bucket and checkpoint protocols, exposed only to the loom model checks
//! (`tests/loom_index.rs`, run with `RUSTFLAGS="--cfg loom"`); empty otherwise.
// `loom` is a cfg set only by the loom test run.
#![allow(unexpected_cfgs)]

#[cfg(loom)]
pub use super::bucket::{Bucket, SLOTS, TAG_BITS};
#[cfg(loom)]
pub use super::checkpoints::Checkpoints;
#[cfg(loom)]
pub use super::epochs::Epochs;
