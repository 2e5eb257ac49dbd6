//! Python bindings for llmd: the native half of the `llmd` package.
//!
//! The extension is the private module `llmd._native`; the Python package
//! `llmd` (in `python/llmd`) re-exports what is public and carries the typed
//! stubs. Every method that does real work first converts its arguments into
//! Rust values, then releases the GIL (`Python::detach`) around the work, so
//! threads sharing one object run in parallel. Shared objects are `frozen`
//! pyclasses over thread-safe Rust values, and the module declares that it
//! does not need the GIL (free-threaded CPython).
#![deny(missing_docs)]

use pyo3::prelude::*;

mod convert;
mod errors;
mod events;
mod feed;
mod hasher;
mod index;
mod json;
mod otlp;
mod scheduler;
mod tokenizer;
mod zmq;

/// The native module. Classes are added here as one list; the Python package
/// decides which names are public.
#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("NEWEST_VLLM_VERSION", hasher::newest_vllm_version())?;
    m.add_class::<hasher::PyBlockHasher>()?;
    m.add_class::<hasher::PyHashChain>()?;
    m.add_class::<events::PyEventBatch>()?;
    m.add_class::<events::PyBlockStored>()?;
    m.add_class::<events::PyBlockRemoved>()?;
    m.add_class::<events::PyAllBlocksCleared>()?;
    m.add_function(wrap_pyfunction!(events::py_decode_event_batch, m)?)?;
    m.add_class::<zmq::PyTopic>()?;
    m.add_function(wrap_pyfunction!(zmq::py_parse_topic, m)?)?;
    m.add_function(wrap_pyfunction!(zmq::py_parse_seq, m)?)?;
    m.add("REPLAY_END_SEQ", llmd_kvindex::events::zmq::REPLAY_END_SEQ)?;
    m.add_class::<index::PyKvIndex>()?;
    m.add_class::<scheduler::PyScheduler>()?;
    m.add_class::<feed::PyFeed>()?;
    m.add_class::<otlp::PyOtlpExporter>()?;
    m.add_class::<tokenizer::PyTokenizer>()?;
    m.add_class::<tokenizer::PyChatSession>()?;
    m.add_class::<scheduler::PyDecision>()?;
    Ok(())
}
