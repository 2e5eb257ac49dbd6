//! `llmd.BlockHasher`: vLLM's prefix-cache block hashes.

use llmd_kvindex::hash::{
    BlockHasher, HashAlgo, HashChain, HashError, HasherConfig, LoraRef, MmItem, PromptEmbeds,
    RequestExtras, VllmVersion,
};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert;
use crate::errors::{error, Kind};

/// Computes the block hashes a vLLM engine computes for its prefix cache and
/// publishes in KV events.
#[pyclass(name = "BlockHasher", module = "llmd", frozen)]
pub(crate) struct PyBlockHasher {
    inner: BlockHasher,
}

fn hash_err(py: Python<'_>, e: HashError) -> PyErr {
    error(py, Kind::Hash, e.to_string())
}

/// Builds `RequestExtras` from the keyword arguments shared by the hashing
/// methods of `BlockHasher` and the scheduler's request conversion.
#[allow(clippy::too_many_arguments)] // reason: one parameter per Python keyword argument
pub(crate) fn request_extras(
    lora_id: Option<i64>,
    lora_name: Option<String>,
    lora_path: Option<String>,
    cache_salt: Option<String>,
    mm_items: Option<Vec<(String, usize, usize)>>,
    prompt_embeds: Option<(Vec<u8>, usize)>,
) -> RequestExtras {
    let has_lora = lora_id.is_some() || lora_name.is_some() || lora_path.is_some();
    let lora = has_lora.then_some(LoraRef {
        id: lora_id,
        name: lora_name,
        path: lora_path,
    });
    RequestExtras {
        lora,
        cache_salt,
        mm_items: mm_items
            .unwrap_or_default()
            .into_iter()
            .map(|(identifier, offset, length)| MmItem {
                identifier,
                offset,
                length,
            })
            .collect(),
        prompt_embeds: prompt_embeds.map(|(data, row_bytes)| PromptEmbeds { data, row_bytes }),
    }
}

impl PyBlockHasher {
    /// The Rust hasher (cheap to clone: shared).
    pub(crate) fn inner(&self) -> &BlockHasher {
        &self.inner
    }
}

#[pymethods]
impl PyBlockHasher {
    /// `algo` is vLLM's `--prefix-caching-hash-algo`; `seed` the engines'
    /// `PYTHONHASHSEED` (`None` = unset); `vllm_version` selects the extra-key
    /// schema and the unset-seed rule (default: the newest supported release).
    #[new]
    #[pyo3(signature = (block_size=16, algo="sha256_cbor", seed=None, vllm_version=None))]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = crate::convert::int)] block_size: usize,
        algo: &str,
        seed: Option<&str>,
        vllm_version: Option<&str>,
    ) -> PyResult<Self> {
        let build = || -> Result<BlockHasher, HashError> {
            let algo: HashAlgo = algo.parse()?;
            let cfg =
                HasherConfig::for_vllm(vllm_version.unwrap_or("latest"), algo, block_size, seed)?;
            BlockHasher::new(cfg)
        };
        build()
            .map(|inner| PyBlockHasher { inner })
            .map_err(|e| hash_err(py, e))
    }

    /// Published 64-bit hash of every full block of `tokens`.
    #[pyo3(signature = (tokens, *, lora_id=None, lora_name=None, lora_path=None, cache_salt=None, mm_items=None, prompt_embeds=None))]
    #[allow(clippy::too_many_arguments)] // reason: one parameter per Python keyword argument
    fn block_hashes(
        &self,
        py: Python<'_>,
        tokens: &Bound<'_, PyAny>,
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
        let hasher = &self.inner;
        py.detach(|| hasher.block_keys(&tokens, &extras))
            .map(|keys| keys.into_iter().map(|k| k.0).collect())
            .map_err(|e| hash_err(py, e))
    }

    /// Full digest (the chained value) of every full block of `tokens`.
    #[pyo3(signature = (tokens, *, lora_id=None, lora_name=None, lora_path=None, cache_salt=None, mm_items=None, prompt_embeds=None))]
    #[allow(clippy::too_many_arguments)] // reason: one parameter per Python keyword argument
    fn digests<'py>(
        &self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
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
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let tokens = convert::tokens(tokens)?;
        let extras = request_extras(
            lora_id,
            lora_name,
            lora_path,
            cache_salt,
            mm_items,
            prompt_embeds,
        );
        let hasher = &self.inner;
        let digests = py
            .detach(|| hasher.digests(&tokens, &extras))
            .map_err(|e| hash_err(py, e))?;
        Ok(digests
            .iter()
            .map(|d| PyBytes::new(py, d.as_bytes()))
            .collect())
    }

    /// An incremental chain for one request (e.g. a chat across turns):
    /// extending it gives the same hashes as hashing the whole token list.
    #[pyo3(signature = (*, lora_id=None, lora_name=None, lora_path=None, cache_salt=None, mm_items=None, prompt_embeds=None))]
    fn chain(
        &self,
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
    ) -> PyHashChain {
        let extras = request_extras(
            lora_id,
            lora_name,
            lora_path,
            cache_salt,
            mm_items,
            prompt_embeds,
        );
        PyHashChain(Mutex::new(self.inner.chain(extras)))
    }

    /// Tokens per hashed block.
    #[getter]
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }

    /// vLLM's name of the algorithm.
    #[getter]
    fn algo(&self) -> &'static str {
        self.inner.config().algo.as_str()
    }

    /// The configured `PYTHONHASHSEED` (`None` = unset).
    #[getter]
    fn seed(&self) -> Option<String> {
        self.inner.config().seed.clone()
    }

    /// The vLLM release whose rules are reproduced.
    #[getter]
    fn vllm_version(&self) -> String {
        self.inner.config().vllm_version.to_string()
    }

    /// NONE_HASH, the parent digest of block 0.
    #[getter]
    fn none_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.none_hash().as_bytes())
    }

    fn __repr__(&self) -> String {
        let cfg = self.inner.config();
        let seed = cfg
            .seed
            .as_deref()
            .map_or_else(|| "None".to_owned(), |s| format!("{s:?}"));
        format!(
            "BlockHasher(block_size={}, algo={:?}, seed={seed}, vllm_version=\"{}\")",
            cfg.block_size,
            cfg.algo.as_str(),
            cfg.vllm_version
        )
    }
}

/// The newest vLLM release whose hashes are reproduced (the default).
pub(crate) fn newest_vllm_version() -> String {
    VllmVersion::NEWEST.to_string()
}

/// A request's block hashes, extended as its tokens arrive; a trailing
/// partial block waits until it fills.
#[pyclass(name = "HashChain", module = "llmd", frozen)]
pub(crate) struct PyHashChain(Mutex<HashChain>);

#[pymethods]
impl PyHashChain {
    /// Appends tokens; returns the hashes of the blocks they completed. On
    /// error nothing is appended.
    fn extend(&self, py: Python<'_>, tokens: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
        let tokens = convert::tokens(tokens)?;
        py.detach(|| {
            let mut chain = self.0.lock();
            chain
                .extend(&tokens)
                .map(|keys| keys.iter().map(|k| k.0).collect())
        })
        .map_err(|e| hash_err(py, e))
    }

    /// Hashes of all completed blocks.
    #[getter]
    fn block_hashes(&self, py: Python<'_>) -> Vec<u64> {
        py.detach(|| self.0.lock().keys().iter().map(|k| k.0).collect())
    }

    /// Tokens seen so far, including the partial block.
    #[getter]
    fn num_tokens(&self, py: Python<'_>) -> usize {
        py.detach(|| self.0.lock().num_tokens())
    }
}
