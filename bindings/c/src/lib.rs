//! libllmd: the C ABI of llmd.
//!
//! Conventions (see `docs/c-api.md`): opaque handles with `_new`/`_free`
//! pairs (free accepts NULL); borrowed strings as pointer + length; every
//! fallible call returns an [`llmd_status`] and, when the caller passes a
//! non-NULL `llmd_error **`, an owned [`llmd_error`] with the message;
//! outputs are written only on success; every exported body runs inside a
//! panic boundary; the library never calls back into the host.
//!
//! The header `include/llmd.h` is generated from this crate by a pinned
//! cbindgen (`cbindgen.toml`) and committed.
#![deny(missing_docs)]

mod args;
pub mod decision;
pub mod error;
pub mod events;
pub mod feed;
mod handle;
pub mod hasher;
pub mod index;
pub mod index_types;
pub mod ingest;
pub mod lifecycle;
pub mod metrics;
pub mod otlp;
mod panic;
pub mod request;
mod sched_error;
pub mod scheduler;
pub mod status;
pub mod string;
pub mod tokenizer;
pub mod version;
pub mod views;

pub use error::llmd_error;
pub use status::llmd_status;
pub use string::llmd_string;
