//! `llmd.decode_event_batch` and the decoded event classes.

use llmd_kvindex::events::{
    decode_event_batch, BlockRemoved, BlockStored, DecodeError, ExtraValue, HashValue, KvEvent,
    SeqStatus,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::errors::{error, Kind};

/// A KV-event payload: `bytes` are read in place (immutable, so safe to read
/// without the GIL); anything else `bytes()` accepts (a `memoryview` such as
/// pyzmq's `Frame.buffer`, a `bytearray`, a list of byte values) is copied
/// into a new `bytes` first, by `bytes()` itself: one copy, not one Python
/// int per byte.
pub(crate) struct Payload<'py>(Bound<'py, PyBytes>);

impl<'py> Payload<'py> {
    pub(crate) fn from_object(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        match obj.cast::<PyBytes>() {
            Ok(b) => Ok(Payload(b.clone())),
            // `bytes(n)` would make n zero bytes out of an int.
            Err(_) if obj.is_instance_of::<pyo3::types::PyInt>() => {
                Err(pyo3::exceptions::PyTypeError::new_err(
                    "a KV-event payload is bytes-like, not an int",
                ))
            }
            Err(_) => {
                let b = obj.py().get_type::<PyBytes>().call1((obj,))?;
                Ok(Payload(b.cast_into::<PyBytes>()?))
            }
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// `EventDecodeError` with the stable `code` and byte `offset` of the defect.
pub(crate) fn decode_err(py: Python<'_>, e: &DecodeError) -> PyErr {
    let err = error(py, Kind::EventDecode, e.to_string());
    let value = err.value(py);
    // Attributes are a convenience; the message already carries both facts.
    let _ = value.setattr("code", e.kind.code());
    let _ = value.setattr("offset", e.offset);
    err
}

/// One decoded vLLM `EventBatch`.
#[pyclass(name = "EventBatch", module = "llmd", frozen)]
pub(crate) struct PyEventBatch {
    /// `time.time()` of the publisher when the batch was built.
    #[pyo3(get)]
    ts: f64,
    /// Data-parallel rank of the publisher (`None` when absent).
    #[pyo3(get)]
    data_parallel_rank: Option<i64>,
    /// Events with an unknown tag, skipped without failing the batch.
    #[pyo3(get)]
    skipped_events: u32,
    events: Vec<Py<PyAny>>,
}

#[pymethods]
impl PyEventBatch {
    /// The known events, in order: `BlockStored`, `BlockRemoved`, `AllBlocksCleared`.
    #[getter]
    fn events(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        self.events.iter().map(|e| e.clone_ref(py)).collect()
    }

    fn __len__(&self) -> usize {
        self.events.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "EventBatch(ts={}, data_parallel_rank={}, events=<{} events>, skipped_events={})",
            self.ts,
            opt_repr(self.data_parallel_rank),
            self.events.len(),
            self.skipped_events
        )
    }
}

/// Blocks committed to an engine's prefix cache.
#[pyclass(name = "BlockStored", module = "llmd", frozen, eq)]
#[derive(PartialEq)]
pub(crate) struct PyBlockStored(BlockStored);

#[pymethods]
impl PyBlockStored {
    /// 64-bit keys of the stored blocks in chain order (what `BlockHasher.block_hashes` computes).
    #[getter]
    fn block_hashes(&self) -> Vec<u64> {
        keys(&self.0.block_hashes)
    }
    /// The hashes as published: ints, or digest bytes.
    #[getter]
    fn raw_block_hashes(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        self.0
            .block_hashes
            .iter()
            .map(|h| raw_hash(py, h))
            .collect()
    }
    /// 64-bit key of the block before the first one (`None` from block 0).
    #[getter]
    fn parent_block_hash(&self) -> Option<u64> {
        self.0.parent_block_hash.as_ref().map(|h| h.key().0)
    }
    /// The parent hash as published.
    #[getter]
    fn raw_parent_block_hash(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.0
            .parent_block_hash
            .as_ref()
            .map(|h| raw_hash(py, h))
            .transpose()
    }
    /// Tokens of the stored blocks.
    #[getter]
    fn token_ids(&self) -> Vec<u64> {
        self.0.token_ids.clone()
    }
    /// Tokens per block of this KV-cache group.
    #[getter]
    fn block_size(&self) -> i64 {
        self.0.block_size
    }
    /// Integer LoRA adapter id.
    #[getter]
    fn lora_id(&self) -> Option<i64> {
        self.0.lora_id
    }
    /// `"GPU"`, `"CPU"`, `"STORAGE"` or `None` (GPU).
    #[getter]
    fn medium(&self) -> Option<String> {
        self.0.medium.clone()
    }
    /// LoRA adapter name.
    #[getter]
    fn lora_name(&self) -> Option<String> {
        self.0.lora_name.clone()
    }
    /// Per block: `None` or the block's extra keys as a tuple.
    #[getter]
    fn extra_keys(&self, py: Python<'_>) -> PyResult<Option<Vec<Option<Py<PyAny>>>>> {
        let Some(per_block) = &self.0.extra_keys else {
            return Ok(None);
        };
        per_block
            .iter()
            .map(|keys| keys.as_ref().map(|k| extra_tuple(py, k)).transpose())
            .collect::<PyResult<_>>()
            .map(Some)
    }
    /// KV-cache group.
    #[getter]
    fn group_idx(&self) -> Option<i64> {
        self.0.group_idx
    }
    /// KV-cache spec kind, e.g. `"full_attention"`.
    #[getter]
    fn kv_cache_spec_kind(&self) -> Option<String> {
        self.0.kv_cache_spec_kind.clone()
    }
    /// Window of a sliding-window group.
    #[getter]
    fn kv_cache_spec_sliding_window(&self) -> Option<i64> {
        self.0.kv_cache_spec_sliding_window
    }
    /// `"LOCAL"` / `"REMOTE"` for offloaded copies.
    #[getter]
    fn locality(&self) -> Option<String> {
        self.0.locality.clone()
    }
    /// Opaque owner of an offloaded copy.
    #[getter]
    fn ownership(&self) -> Option<String> {
        self.0.ownership.clone()
    }
    /// Request session id.
    #[getter]
    fn session_id(&self) -> Option<String> {
        self.0.session_id.clone()
    }
    /// Per block, the lookahead tokens its hash covers.
    #[getter]
    fn lookahead_token_ids(&self) -> Option<Vec<Vec<u64>>> {
        self.0.lookahead_token_ids.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "BlockStored(block_hashes={:?}, parent_block_hash={}, block_size={}, medium={})",
            self.block_hashes(),
            opt_repr(self.parent_block_hash()),
            self.0.block_size,
            opt_str_repr(self.0.medium.as_deref()),
        )
    }
}

/// Blocks evicted from an engine's cache.
#[pyclass(name = "BlockRemoved", module = "llmd", frozen, eq)]
#[derive(PartialEq)]
pub(crate) struct PyBlockRemoved(BlockRemoved);

#[pymethods]
impl PyBlockRemoved {
    /// 64-bit keys of the evicted blocks.
    #[getter]
    fn block_hashes(&self) -> Vec<u64> {
        keys(&self.0.block_hashes)
    }
    /// The hashes as published: ints, or digest bytes.
    #[getter]
    fn raw_block_hashes(&self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        self.0
            .block_hashes
            .iter()
            .map(|h| raw_hash(py, h))
            .collect()
    }
    /// Medium the blocks were evicted from (`None` = GPU).
    #[getter]
    fn medium(&self) -> Option<String> {
        self.0.medium.clone()
    }
    /// KV-cache group.
    #[getter]
    fn group_idx(&self) -> Option<i64> {
        self.0.group_idx
    }
    /// `"LOCAL"` / `"REMOTE"`.
    #[getter]
    fn locality(&self) -> Option<String> {
        self.0.locality.clone()
    }
    /// Opaque owner.
    #[getter]
    fn ownership(&self) -> Option<String> {
        self.0.ownership.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "BlockRemoved(block_hashes={:?}, medium={})",
            self.block_hashes(),
            opt_str_repr(self.0.medium.as_deref()),
        )
    }
}

/// The publisher dropped its whole prefix cache.
#[pyclass(name = "AllBlocksCleared", module = "llmd", frozen, eq)]
#[derive(PartialEq)]
pub(crate) struct PyAllBlocksCleared;

#[pymethods]
impl PyAllBlocksCleared {
    #[new]
    fn new() -> Self {
        PyAllBlocksCleared
    }

    fn __repr__(&self) -> &'static str {
        "AllBlocksCleared()"
    }
}

/// Decodes one msgpack `EventBatch` (frame 2 of a vLLM KV-event message), in
/// the layout of any vLLM release.
#[pyfunction(name = "decode_event_batch")]
pub(crate) fn py_decode_event_batch(
    py: Python<'_>,
    payload: &Bound<'_, PyAny>,
) -> PyResult<PyEventBatch> {
    let payload = Payload::from_object(payload)?;
    let bytes = payload.as_slice();
    let batch = py
        .detach(|| decode_event_batch(bytes))
        .map_err(|e| decode_err(py, &e))?;
    let events = batch
        .events
        .into_iter()
        .map(|event| match event {
            KvEvent::BlockStored(e) => PyBlockStored(e).into_py_any(py),
            KvEvent::BlockRemoved(e) => PyBlockRemoved(e).into_py_any(py),
            KvEvent::AllBlocksCleared => PyAllBlocksCleared.into_py_any(py),
        })
        .collect::<PyResult<_>>()?;
    Ok(PyEventBatch {
        ts: batch.ts,
        data_parallel_rank: batch.data_parallel_rank,
        skipped_events: batch.skipped_events,
        events,
    })
}

fn keys(hashes: &[HashValue]) -> Vec<u64> {
    hashes.iter().map(|h| h.key().0).collect()
}

fn raw_hash(py: Python<'_>, h: &HashValue) -> PyResult<Py<PyAny>> {
    match h {
        HashValue::Int(v) => v.into_py_any(py),
        HashValue::Bytes(b) => PyBytes::new(py, b).into_py_any(py),
    }
}

fn extra_tuple(py: Python<'_>, items: &[ExtraValue]) -> PyResult<Py<PyAny>> {
    let items = items
        .iter()
        .map(|v| extra_value(py, v))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)?.into_py_any(py)
}

fn extra_value(py: Python<'_>, v: &ExtraValue) -> PyResult<Py<PyAny>> {
    match v {
        ExtraValue::Nil => Ok(py.None()),
        ExtraValue::Int(i) => i.into_py_any(py),
        ExtraValue::Str(s) => s.into_py_any(py),
        ExtraValue::Bytes(b) => PyBytes::new(py, b).into_py_any(py),
        ExtraValue::Array(a) => extra_tuple(py, a),
    }
}

fn opt_repr<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_owned(), |v| v.to_string())
}

fn opt_str_repr(v: Option<&str>) -> String {
    v.map_or_else(|| "None".to_owned(), |v| format!("{v:?}"))
}

/// Adds `seq_status` (`None` without a sequence number) and `missing` (the
/// batches lost before this one) to an ingestion result.
pub(crate) fn seq_fields(d: &Bound<'_, PyDict>, status: Option<SeqStatus>) -> PyResult<()> {
    let (name, missing) = match status {
        None => (None, 0),
        Some(SeqStatus::First) => (Some("first"), 0),
        Some(SeqStatus::InOrder) => (Some("in_order"), 0),
        Some(SeqStatus::Gap { missing }) => (Some("gap"), missing),
        Some(SeqStatus::Restart) => (Some("restart"), 0),
        Some(SeqStatus::Duplicate) => (Some("duplicate"), 0),
        Some(SeqStatus::Replayed) => (Some("replayed"), 0),
    };
    d.set_item("seq_status", name)?;
    d.set_item("missing", missing)
}
