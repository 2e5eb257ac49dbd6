//! vLLM-exact block hashing: `llmd_hasher` and the per-request
//! `llmd_hash_extras` (LoRA, cache salt, multimodal items, prompt embeddings).

use std::ffi::c_char;

use llmd_kvindex::hash::{
    BlockHasher, HashAlgo, HashError, HasherConfig, LoraRef, MmItem, PromptEmbeds, RequestExtras,
};

use crate::args::{self, Out};
use crate::error::{llmd_error, FfiError};
use crate::handle::{call, call_mut, create, handle, read, release};
use crate::status::llmd_status;

/// Computes the block keys a vLLM engine publishes for a prompt. Immutable
/// after creation: share it between threads freely.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_hasher(pub(crate) BlockHasher);
handle!(llmd_hasher, BlockHasher, "hasher");

/// Everything besides tokens that changes a request's block hashes. Starts
/// as a text-only request; not safe to mutate from two threads at once.
#[allow(non_camel_case_types)] // C naming for the exported type
#[derive(Default)]
pub struct llmd_hash_extras(pub(crate) RequestExtras);
handle!(llmd_hash_extras, RequestExtras, "extras");

impl From<HashError> for FfiError {
    fn from(e: HashError) -> Self {
        FfiError::new(llmd_status::Hash, e.to_string())
    }
}

/// Creates a hasher reproducing vLLM release `vllm_version` (NULL for the
/// newest supported, or `"latest"`), algorithm `algo` (vLLM's
/// `--prefix-caching-hash-algo` name, e.g. `"sha256_cbor"`), `block_size`
/// tokens per block and the engines' `PYTHONHASHSEED` `seed` (NULL when
/// unset). On success writes a new hasher to `*out`.
///
/// # Safety
/// String arguments are NULL or valid for their lengths; `out` is valid for a
/// write; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_hasher_new(
    vllm_version: *const c_char,
    vllm_version_len: usize,
    algo: *const c_char,
    algo_len: usize,
    block_size: usize,
    seed: *const c_char,
    seed_len: usize,
    out: *mut *mut llmd_hasher,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        create(out, err, || {
            let version = args::opt_str(vllm_version, vllm_version_len, "vllm_version")?;
            let algo = args::str(algo, algo_len, "algo")?;
            let seed = args::opt_str(seed, seed_len, "seed")?;
            let algo: HashAlgo = algo.parse()?;
            let cfg = HasherConfig::for_vllm(version.unwrap_or("latest"), algo, block_size, seed)?;
            let hasher = BlockHasher::new(cfg)?;
            Ok(llmd_hasher(hasher))
        })
    }
}

/// Releases a hasher. NULL is accepted and ignored.
///
/// # Safety
/// `hasher` is NULL or a hasher from `llmd_hasher_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn llmd_hasher_free(hasher: *mut llmd_hasher) {
    // SAFETY: caller contract.
    unsafe { release(hasher) }
}

/// Tokens per hashed block; 0 when `hasher` is NULL.
///
/// # Safety
/// `hasher` is NULL or a live hasher.
#[no_mangle]
pub unsafe extern "C" fn llmd_hasher_block_size(hasher: *const llmd_hasher) -> usize {
    // SAFETY: caller contract.
    unsafe { read(hasher, 0, |h| h.block_size()) }
}

/// Writes the published keys of the full blocks of `tokens` (a trailing
/// partial block is not hashed) to `keys` and their number to `*keys_len`.
/// `keys_cap` must be at least `n_tokens / llmd_hasher_block_size(hasher)`,
/// otherwise `LLMD_STATUS_BUFFER_TOO_SMALL` and nothing is written.
/// `extras` may be NULL for a text-only request.
///
/// # Safety
/// `hasher` and `extras` are NULL or live; `tokens` is valid for `n_tokens`
/// reads, `keys` for `keys_cap` writes; `keys_len` for a write; `err` is NULL
/// or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_hasher_block_keys(
    hasher: *const llmd_hasher,
    tokens: *const u32,
    n_tokens: usize,
    extras: *const llmd_hash_extras,
    keys: *mut u64,
    keys_cap: usize,
    keys_len: *mut usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(hasher, err, |hasher| {
            let keys_len = Out::new(keys_len, "keys_len")?;
            let tokens = args::slice(tokens, n_tokens, "tokens")?;
            let keys = args::OutBuf::new(keys, keys_cap, "keys")?;
            keys.require(n_tokens / hasher.block_size())?;
            let default = RequestExtras::default();
            let extras = extras.as_ref().map_or(&default, |x| &x.0);
            let computed = hasher.block_keys(tokens, extras)?;
            keys.fill(computed.iter().map(|k| k.0), keys_len)
        })
    }
}

/// Creates empty (text-only) request extras.
///
/// # Safety
/// `out` is valid for a write; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_hash_extras_new(
    out: *mut *mut llmd_hash_extras,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { create(out, err, || Ok(llmd_hash_extras::default())) }
}

/// Releases request extras. NULL is accepted and ignored.
///
/// # Safety
/// `extras` is NULL or from `llmd_hash_extras_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn llmd_hash_extras_free(extras: *mut llmd_hash_extras) {
    // SAFETY: caller contract.
    unsafe { release(extras) }
}

/// Sets the LoRA adapter: `lora_id` (NULL when absent), `name` and `path`
/// (NULL when absent). Which fields are hashed depends on the release.
///
/// # Safety
/// `extras` is NULL or live and not used by another thread; `lora_id` is NULL
/// or valid; strings are NULL or valid for their lengths; `err` is NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_hash_extras_set_lora(
    extras: *mut llmd_hash_extras,
    lora_id: *const i64,
    name: *const c_char,
    name_len: usize,
    path: *const c_char,
    path_len: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call_mut(extras, err, |extras| {
            let name = args::opt_str(name, name_len, "name")?;
            let path = args::opt_str(path, path_len, "path")?;
            extras.lora = Some(LoraRef {
                id: lora_id.as_ref().copied(),
                name: name.map(str::to_owned),
                path: path.map(str::to_owned),
            });
            Ok(())
        })
    }
}

/// Sets vLLM's `cache_salt` (NULL clears it).
///
/// # Safety
/// As `llmd_hash_extras_set_lora`.
#[no_mangle]
pub unsafe extern "C" fn llmd_hash_extras_set_cache_salt(
    extras: *mut llmd_hash_extras,
    salt: *const c_char,
    salt_len: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call_mut(extras, err, |extras| {
            extras.cache_salt = args::opt_str(salt, salt_len, "salt")?.map(str::to_owned);
            Ok(())
        })
    }
}

/// Appends a multimodal item: vLLM's item hash `identifier` and its
/// placeholder tokens `[offset, offset + length)`. Items go in offset order.
///
/// # Safety
/// As `llmd_hash_extras_set_lora`.
#[no_mangle]
pub unsafe extern "C" fn llmd_hash_extras_add_mm_item(
    extras: *mut llmd_hash_extras,
    identifier: *const c_char,
    identifier_len: usize,
    offset: usize,
    length: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call_mut(extras, err, |extras| {
            let identifier = args::str(identifier, identifier_len, "identifier")?.to_owned();
            extras.mm_items.push(MmItem {
                identifier,
                offset,
                length,
            });
            Ok(())
        })
    }
}

/// Sets the prompt embeddings: row-major tensor bytes, `row_bytes` per token.
///
/// # Safety
/// As `llmd_hash_extras_set_lora`; `data` is valid for `data_len` reads.
#[no_mangle]
pub unsafe extern "C" fn llmd_hash_extras_set_prompt_embeds(
    extras: *mut llmd_hash_extras,
    data: *const u8,
    data_len: usize,
    row_bytes: usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call_mut(extras, err, |extras| {
            let data = args::bytes(data, data_len, "data")?.to_vec();
            extras.prompt_embeds = Some(PromptEmbeds { data, row_bytes });
            Ok(())
        })
    }
}
