//! `llmd.KvIndex`: the concurrent KV-block index, fed with KV events.

use std::time::Instant;

use llmd_kvindex::events::{decode_event_batch, SeqStatus, SeqTracker};
use llmd_kvindex::index::{IndexConfig, IndexError, KeyMode, KvIndex, PrefixMatches, TierWeights};
use llmd_kvindex::BlockKey;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict};

use crate::convert;
use crate::errors::{error, Kind};
use crate::events::{decode_err, seq_fields, Payload};
use crate::hasher::{request_extras, PyBlockHasher};

/// Which endpoints hold which blocks, in which tier (GPU, CPU, storage).
/// Reads never wait for writers; writes to different endpoints run in parallel.
#[pyclass(name = "KvIndex", module = "llmd", frozen)]
pub(crate) struct PyKvIndex {
    inner: KvIndex,
    seqs: Mutex<SeqTracker>,
    /// Origin of the index's clock (speculative entries' time to live).
    epoch: Instant,
}

fn index_err(py: Python<'_>, e: &IndexError) -> PyErr {
    let kind = match e {
        IndexError::EndpointsFull { .. } | IndexError::OutOfMemory { .. } => {
            Kind::ResourceExhausted
        }
        IndexError::Hash(_) => Kind::Hash,
        _ => Kind::InvalidArgument,
    };
    let err = error(py, kind, e.to_string());
    // The code C gives every index error (`LLMD_STATUS_INDEX`), and the
    // scheduler's for the same failures: one name whichever object raised.
    let _ = err.value(py).setattr("code", "index");
    err
}

/// Tokens per block of an index built without a hasher (vLLM's default).
const DEFAULT_BLOCK_SIZE: usize = 16;

impl PyKvIndex {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn keys(obj: &Bound<'_, PyAny>) -> PyResult<Vec<BlockKey>> {
        Ok(convert::tokens(obj)?.into_iter().map(BlockKey).collect())
    }
}

#[pymethods]
impl PyKvIndex {
    /// `block_size` is tokens per block: 16 by default, the hasher's when one
    /// is given (another value is an `InvalidArgumentError`).
    /// `mode` is `"engine_parity"` (keys are vLLM's own, prompts hashed by
    /// `hasher` exactly as the engines do; the default when a hasher is
    /// given), `"router_keys"` (events' token ids re-hashed with the index's
    /// own chain: works whatever seed or algorithm the engines use; the
    /// default otherwise) or `"approximate"` (no events; entries come from
    /// `record_routing`). `approx_capacity_per_endpoint` (approximate mode:
    /// blocks remembered per endpoint, llm-d's `lruCapacityPerServer`),
    /// `speculative_capacity` (live speculative entries) and
    /// `engine_map_capacity_per_endpoint` (router keys: engine-key mappings
    /// kept per endpoint) bound the rest of the index's memory.
    #[new]
    #[pyo3(signature = (*, block_size=None, mode=None, hasher=None, capacity_blocks=1048576, max_endpoints=1024,
        gpu_weight=1.0, cpu_weight=0.8, storage_weight=0.5, speculative_weight=0.9, speculative_ttl_s=2.0,
        approx_capacity_per_endpoint=31250, speculative_capacity=65536, engine_map_capacity_per_endpoint=262144))]
    #[allow(clippy::too_many_arguments)] // reason: one parameter per Python keyword argument
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = crate::convert::opt_int)] block_size: Option<usize>,
        mode: Option<&str>,
        hasher: Option<PyRef<'_, PyBlockHasher>>,
        #[pyo3(from_py_with = crate::convert::int)] capacity_blocks: usize,
        #[pyo3(from_py_with = crate::convert::int)] max_endpoints: usize,
        #[pyo3(from_py_with = crate::convert::float)] gpu_weight: f64,
        #[pyo3(from_py_with = crate::convert::float)] cpu_weight: f64,
        #[pyo3(from_py_with = crate::convert::float)] storage_weight: f64,
        #[pyo3(from_py_with = crate::convert::float)] speculative_weight: f64,
        #[pyo3(from_py_with = crate::convert::float)] speculative_ttl_s: f64,
        #[pyo3(from_py_with = crate::convert::int)] approx_capacity_per_endpoint: usize,
        #[pyo3(from_py_with = crate::convert::int)] speculative_capacity: usize,
        #[pyo3(from_py_with = crate::convert::int)] engine_map_capacity_per_endpoint: usize,
    ) -> PyResult<Self> {
        let mode = mode.unwrap_or(if hasher.is_some() {
            "engine_parity"
        } else {
            "router_keys"
        });
        let key_mode = match (mode, hasher) {
            ("engine_parity", Some(h)) => {
                let hashed = h.inner().block_size();
                if block_size.is_some_and(|b| b != hashed) {
                    return Err(error(
                        py,
                        Kind::InvalidArgument,
                        format!(
                            "block_size {} differs from the hasher's {hashed}: the hasher's block size is the index's",
                            block_size.unwrap_or_default()
                        ),
                    ));
                }
                KeyMode::EngineParity(h.inner().clone())
            }
            ("engine_parity", None) => {
                return Err(error(
                    py,
                    Kind::InvalidArgument,
                    "mode \"engine_parity\" needs the engines' hasher (hasher=BlockHasher(...))",
                ))
            }
            (_, Some(_)) => {
                return Err(error(
                    py,
                    Kind::InvalidArgument,
                    format!("a hasher is only used in mode \"engine_parity\", not {mode:?}"),
                ))
            }
            ("router_keys", None) => KeyMode::RouterKeys {
                block_size: block_size.unwrap_or(DEFAULT_BLOCK_SIZE),
            },
            ("approximate", None) => KeyMode::Approximate {
                block_size: block_size.unwrap_or(DEFAULT_BLOCK_SIZE),
            },
            (other, None) => {
                return Err(error(
                    py,
                    Kind::InvalidArgument,
                    format!(
                        "unknown mode {other:?} (expected \"engine_parity\", \"router_keys\" or \"approximate\")"
                    ),
                ))
            }
        };
        if !(speculative_ttl_s.is_finite() && speculative_ttl_s >= 0.0) {
            return Err(error(
                py,
                Kind::InvalidArgument,
                "speculative_ttl_s must be a finite number >= 0",
            ));
        }
        let cfg = IndexConfig {
            capacity_blocks,
            key_mode,
            tier_weights: TierWeights {
                gpu: gpu_weight,
                cpu: cpu_weight,
                storage: storage_weight,
                speculative: speculative_weight,
            },
            speculative_ttl_ns: (speculative_ttl_s * 1e9) as u64,
            max_endpoints,
            approx_capacity_per_endpoint,
            speculative_capacity,
            engine_map_capacity_per_endpoint,
        };
        let inner = py
            .detach(|| KvIndex::new(cfg))
            .map_err(|e| index_err(py, &e))?;
        Ok(PyKvIndex {
            inner,
            seqs: Mutex::new(SeqTracker::new()),
            epoch: Instant::now(),
        })
    }

    /// Applies one KV-event payload (msgpack `EventBatch`) published by
    /// `endpoint` (registered on first use) serving `model`. With `seq`
    /// duplicates are skipped, a restart clears the endpoint first, gaps are
    /// reported, and a gap's lost batches from the replay socket, in order,
    /// are applied as "replayed" (stop reading the replay after the gap's
    /// last number: the later batches it sends were applied live and would
    /// read as a restart).
    #[pyo3(signature = (endpoint, payload, *, model="", seq=None))]
    fn apply_event_batch<'py>(
        &self,
        py: Python<'py>,
        endpoint: &str,
        payload: &Bound<'py, PyAny>,
        model: &str,
        #[pyo3(from_py_with = crate::convert::opt_int)] seq: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let payload = Payload::from_object(payload)?;
        let bytes = payload.as_slice();
        let outcome = py.detach(|| {
            let batch = decode_event_batch(bytes).map_err(Err)?;
            let ep = self.inner.register_endpoint(endpoint).map_err(Ok)?;
            let status = seq.map(|s| {
                let rank = batch.data_parallel_rank.unwrap_or(0);
                self.seqs.lock().observe(endpoint, rank, s)
            });
            match status {
                Some(SeqStatus::Duplicate) => return Ok((status, None)),
                // The engine restarted with an empty cache: what it had is gone.
                Some(SeqStatus::Restart) => self.inner.clear_endpoint(ep),
                _ => {}
            }
            Ok((status, Some(self.inner.apply_batch(ep, model, &batch))))
        });
        let (status, report) = outcome.map_err(|e| match e {
            Err(decode) => decode_err(py, &decode),
            Ok(index) => index_err(py, &index),
        })?;
        let r = report.unwrap_or_default();
        let d = PyDict::new(py);
        d.set_item("stored", r.stored)?;
        d.set_item("removed", r.removed)?;
        d.set_item("cleared", r.cleared)?;
        d.set_item("unplaceable", r.unplaceable)?;
        d.set_item("unknown_media", r.unknown_media)?;
        d.set_item("parity_checks", r.parity_checks)?;
        d.set_item("parity_mismatches", r.parity_mismatches)?;
        d.set_item("ignored", r.ignored)?;
        d.set_item("superseded", r.superseded)?;
        seq_fields(&d, status)?;
        Ok(d)
    }

    /// The block keys of a prompt in this index's key mode (vLLM's keys in
    /// engine parity, the index's own chain otherwise), for `match_prefix`.
    /// In the router modes only `lora_name` of the extras enters the keys.
    #[pyo3(signature = (tokens, *, model="", lora_id=None, lora_name=None, lora_path=None, cache_salt=None,
        mm_items=None, prompt_embeds=None))]
    #[allow(clippy::too_many_arguments)] // reason: one parameter per Python keyword argument
    fn prompt_keys(
        &self,
        py: Python<'_>,
        tokens: &Bound<'_, PyAny>,
        model: &str,
        #[pyo3(from_py_with = crate::convert::opt_int)] lora_id: Option<i64>,
        lora_name: Option<String>,
        lora_path: Option<String>,
        cache_salt: Option<String>,
        #[pyo3(from_py_with = crate::convert::opt_mm_items)] mm_items: Option<
            Vec<(String, usize, usize)>,
        >,
        #[pyo3(from_py_with = crate::convert::opt_prompt_embeds)] prompt_embeds: Option<(
            Vec<u8>,
            usize,
        )>,
    ) -> PyResult<Vec<u64>> {
        let tokens = convert::tokens(tokens)?;
        let extras = request_extras(
            lora_id,
            lora_name,
            lora_path,
            cache_salt,
            mm_items,
            prompt_embeds,
        );
        py.detach(|| self.inner.prompt_keys(model, &tokens, &extras))
            .map(|keys| keys.into_iter().map(|k| k.0).collect())
            .map_err(|e| index_err(py, &e))
    }

    /// Longest run of `block_hashes` (from block 0) each endpoint holds, as
    /// `{endpoint: score}`, the score summing each matched block's best tier
    /// weight. Endpoints holding no leading block are absent.
    #[pyo3(signature = (block_hashes, *, model=""))]
    fn match_prefix<'py>(
        &self,
        py: Python<'py>,
        block_hashes: &Bound<'py, PyAny>,
        model: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let keys = Self::keys(block_hashes)?;
        let found: Vec<(String, f64)> = py.detach(|| {
            let mut out = PrefixMatches::new();
            self.inner.match_prefix(model, &keys, &mut out);
            out.iter()
                .filter_map(|m| Some((self.inner.endpoint_name(m.endpoint)?, m.weighted_score)))
                .collect()
        });
        found.into_py_dict(py)
    }

    /// Like `match_prefix`, with the number of consecutive blocks matched:
    /// `{endpoint: (blocks, score)}`.
    #[pyo3(signature = (block_hashes, *, model=""))]
    fn match_prefix_blocks<'py>(
        &self,
        py: Python<'py>,
        block_hashes: &Bound<'py, PyAny>,
        model: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let keys = Self::keys(block_hashes)?;
        let found: Vec<(String, (u32, f64))> = py.detach(|| {
            let mut out = PrefixMatches::new();
            self.inner.match_prefix(model, &keys, &mut out);
            out.iter()
                .filter_map(|m| {
                    let name = self.inner.endpoint_name(m.endpoint)?;
                    Some((name, (m.consecutive_blocks, m.weighted_score)))
                })
                .collect()
        });
        found.into_py_dict(py)
    }

    /// Approximate mode: `endpoint` was sent a request with these blocks.
    /// Other modes: a speculative entry that expires unless an event confirms it.
    #[pyo3(signature = (endpoint, block_hashes, *, model=""))]
    fn record_routing(
        &self,
        py: Python<'_>,
        endpoint: &str,
        block_hashes: &Bound<'_, PyAny>,
        model: &str,
    ) -> PyResult<()> {
        let keys = Self::keys(block_hashes)?;
        py.detach(|| {
            let ep = self.inner.register_endpoint(endpoint)?;
            self.inner.record_routing(ep, model, &keys, self.now_ns());
            Ok(())
        })
        .map_err(|e: IndexError| index_err(py, &e))
    }

    /// Forgets an endpoint and every block it held. Unknown names are ignored.
    fn remove_endpoint(&self, py: Python<'_>, endpoint: &str) {
        py.detach(|| {
            self.inner.remove_endpoint_named(endpoint);
            self.seqs.lock().forget(endpoint);
        });
    }

    /// Drops every block an endpoint holds (its engine restarted).
    fn clear_endpoint(&self, py: Python<'_>, endpoint: &str) {
        py.detach(|| {
            if let Some(ep) = self.inner.endpoint_id(endpoint) {
                self.inner.clear_endpoint(ep);
            }
        });
    }

    /// Expires speculative entries; call it periodically.
    fn tick(&self, py: Python<'_>) {
        py.detach(|| self.inner.tick(self.now_ns()));
    }

    /// Tokens per block.
    #[getter]
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }

    /// Sizes and health counters, with the blocks each endpoint holds.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| self.inner.stats());
        let d = PyDict::new(py);
        d.set_item("entries", s.entries)?;
        d.set_item("capacity", s.capacity)?;
        d.set_item("holdings", s.holdings)?;
        d.set_item("table_bytes", s.table_bytes)?;
        d.set_item("evictions", s.evictions)?;
        d.set_item("unplaceable", s.unplaceable)?;
        d.set_item("unknown_media", s.unknown_media)?;
        d.set_item("parity_checks", s.parity_checks)?;
        d.set_item("parity_mismatches", s.parity_mismatches)?;
        d.set_item("ignored_events", s.ignored_events)?;
        d.set_item("speculative_expired", s.speculative_expired)?;
        d.set_item("speculative_confirmed", s.speculative_confirmed)?;
        let per = PyDict::new(py);
        for e in &s.endpoints {
            let t = PyDict::new(py);
            t.set_item("gpu", e.blocks[0])?;
            t.set_item("cpu", e.blocks[1])?;
            t.set_item("storage", e.blocks[2])?;
            t.set_item("speculative", e.speculative)?;
            per.set_item(&e.name, t)?;
        }
        d.set_item("endpoints", per)?;
        Ok(d)
    }
}
