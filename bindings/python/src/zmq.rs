//! vLLM KV-event ZMQ framing: topic (`kv@<pod>@<model>`) and sequence frames.

use llmd_kvindex::events::zmq::{parse_seq, parse_topic, FrameError};
use pyo3::prelude::*;

use crate::errors::{error, Kind};

fn frame_err(py: Python<'_>, e: &FrameError) -> PyErr {
    let err = error(py, Kind::EventDecode, e.to_string());
    // An attribute is a convenience; the message already says what is wrong.
    let _ = err.value(py).setattr("code", e.code());
    err
}

/// A parsed topic frame. `pod` and `model` follow llm-d's `kv@<pod>@<model>`
/// convention; other topics give `pod` = the whole topic and `model` = "".
#[pyclass(name = "Topic", module = "llmd", frozen, eq)]
#[derive(PartialEq)]
pub(crate) struct PyTopic {
    /// The whole topic.
    #[pyo3(get)]
    topic: String,
    /// Publisher (pod) identity.
    #[pyo3(get)]
    pod: String,
    /// Model name ("" when the topic carries none).
    #[pyo3(get)]
    model: String,
    /// Three `@`-separated parts and the first is `kv`.
    #[pyo3(get)]
    conforms_to_convention: bool,
}

#[pymethods]
impl PyTopic {
    fn __repr__(&self) -> String {
        format!(
            "Topic(topic={:?}, pod={:?}, model={:?}, conforms_to_convention={})",
            self.topic,
            self.pod,
            self.model,
            if self.conforms_to_convention {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// Parses frame 0 of a KV-event message (UTF-8 topic).
#[pyfunction(name = "parse_topic")]
pub(crate) fn py_parse_topic(py: Python<'_>, frame: &[u8]) -> PyResult<PyTopic> {
    let t = parse_topic(frame).map_err(|e| frame_err(py, &e))?;
    Ok(PyTopic {
        topic: t.topic.to_owned(),
        pod: t.pod.to_owned(),
        model: t.model.to_owned(),
        conforms_to_convention: t.conforms_to_convention,
    })
}

/// Parses frame 1 of a KV-event message: exactly 8 bytes, unsigned big-endian.
/// `REPLAY_END_SEQ` marks the end of a replay.
#[pyfunction(name = "parse_seq")]
pub(crate) fn py_parse_seq(py: Python<'_>, frame: &[u8]) -> PyResult<u64> {
    parse_seq(frame).map_err(|e| frame_err(py, &e))
}
