//! The KV-block index on its own, for hosts that score prefixes themselves:
//! endpoints as dense ids, event batches applied per endpoint, prompt keys,
//! longest-prefix matches, routing records and statistics.

use std::ffi::c_char;

use llmd_kvindex::index::{
    EndpointId, IndexConfig, IndexError, KeyMode, KvIndex, PrefixMatches, TierWeights,
};
use llmd_kvindex::BlockKey;

use crate::args::{self, Out};
use crate::error::{llmd_error, FfiError};
use crate::events::llmd_event_batch;
use crate::handle::{borrow, call, create, handle, release};
use crate::hasher::llmd_hash_extras;
use crate::index_types::{
    llmd_endpoint_match, llmd_index_apply_report, llmd_index_config, llmd_index_stats,
};
use crate::status::llmd_status;

/// The concurrent KV-block index. Every call takes it as `const`: reads never
/// wait for writers; share one handle between threads.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_index(KvIndex);
handle!(llmd_index, KvIndex, "index");

impl From<IndexError> for FfiError {
    fn from(e: IndexError) -> Self {
        FfiError::new(llmd_status::Index, e.to_string())
    }
}

/// `id` must be a registered slot: writes for any other id are refused
/// (`LLMD_STATUS_UNKNOWN_ENDPOINT`), not silently ignored.
fn registered(index: &KvIndex, id: u16) -> Result<EndpointId, FfiError> {
    let id = EndpointId(id);
    match index.endpoint_name(id) {
        Some(_) => Ok(id),
        None => Err(FfiError::new(
            llmd_status::UnknownEndpoint,
            format!("endpoint slot {} is not registered", id.0),
        )),
    }
}

fn config(c: Option<&llmd_index_config>) -> Result<IndexConfig, FfiError> {
    let mut cfg = IndexConfig::default();
    let Some(c) = c else { return Ok(cfg) };
    let block_size = if c.block_size == 0 { 16 } else { c.block_size };
    cfg.key_mode = match c.key_mode {
        0 | 1 => KeyMode::RouterKeys { block_size },
        2 => KeyMode::Approximate { block_size },
        3 => {
            // SAFETY: the caller passes NULL or a live hasher.
            let h = unsafe { args::handle(c.hasher, "hasher") }?;
            // The hasher's block size is the index's; another is a mistake.
            if c.block_size != 0 && c.block_size != h.0.block_size() {
                return Err(FfiError::invalid(format!(
                    "block_size {} differs from the hasher's {}: the hasher's block size is the index's",
                    c.block_size,
                    h.0.block_size()
                )));
            }
            KeyMode::EngineParity(h.0.clone())
        }
        m => return Err(FfiError::invalid(format!("unknown llmd_key_mode {m}"))),
    };
    if c.capacity_blocks != 0 {
        cfg.capacity_blocks = c.capacity_blocks;
    }
    if c.max_endpoints != 0 {
        cfg.max_endpoints = c.max_endpoints;
    }
    if c.speculative_ttl_ns != 0 {
        cfg.speculative_ttl_ns = c.speculative_ttl_ns;
    }
    if c.speculative_capacity != 0 {
        cfg.speculative_capacity = c.speculative_capacity;
    }
    if c.approx_capacity_per_endpoint != 0 {
        cfg.approx_capacity_per_endpoint = c.approx_capacity_per_endpoint;
    }
    if c.engine_map_capacity_per_endpoint != 0 {
        cfg.engine_map_capacity_per_endpoint = c.engine_map_capacity_per_endpoint;
    }
    if c.has_tier_weights != 0 {
        // Out-of-range weights are refused by the index's own validation.
        cfg.tier_weights = TierWeights {
            gpu: c.gpu_weight,
            cpu: c.cpu_weight,
            storage: c.storage_weight,
            speculative: c.speculative_weight,
        };
    }
    Ok(cfg)
}

/// Creates an index (`cfg` NULL: defaults). Invalid sizes give
/// `LLMD_STATUS_INDEX` naming the field.
///
/// # Safety
/// `cfg` is NULL or valid; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_new(
    cfg: *const llmd_index_config,
    out: *mut *mut llmd_index,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        create(out, err, || {
            let index = KvIndex::new(config(cfg.as_ref())?)?;
            Ok(llmd_index(index))
        })
    }
}

/// Releases an index. NULL is accepted and ignored.
///
/// # Safety
/// `index` is NULL or an index not yet freed, with no call in flight.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_free(index: *mut llmd_index) {
    // SAFETY: caller contract.
    unsafe { release(index) }
}

/// Registers an endpoint (or finds it) and writes its dense id to `*id`.
///
/// # Safety
/// `index` NULL or live; `name` valid for `name_len` bytes; `id` valid for a
/// write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_register_endpoint(
    index: *const llmd_index,
    name: *const c_char,
    name_len: usize,
    id: *mut u16,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            let id = Out::new(id, "id")?;
            let name = args::str(name, name_len, "name")?;
            id.write(index.register_endpoint(name)?.0);
            Ok(())
        })
    }
}

/// Removes an endpoint and everything it holds; its id may be reused.
///
/// # Safety
/// `index` NULL or live; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_remove_endpoint(
    index: *const llmd_index,
    id: u16,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            index.remove_endpoint(EndpointId(id));
            Ok(())
        })
    }
}

/// Drops every block endpoint `id` holds (its engine restarted), as an
/// `AllBlocksCleared` event would; the slot stays registered. An id not
/// registered is `LLMD_STATUS_UNKNOWN_ENDPOINT`.
///
/// # Safety
/// `index` NULL or live; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_clear_endpoint(
    index: *const llmd_index,
    id: u16,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            index.clear_endpoint(registered(index, id)?);
            Ok(())
        })
    }
}

/// Expires the speculative entries whose lifetime ended by `now_ns` (the
/// clock `llmd_index_record_routing` is given). Lookups do not read a
/// clock: call it periodically (every few hundred milliseconds), or a
/// speculative entry stays visible until the next `record_routing` call
/// expires a few.
///
/// # Safety
/// `index` NULL or live; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_tick(
    index: *const llmd_index,
    now_ns: u64,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            index.tick(now_ns);
            Ok(())
        })
    }
}

/// Applies a decoded batch published by endpoint `id` serving `model`;
/// `report` (NULL to ignore) receives the counts.
///
/// # Safety
/// `index`, `batch` NULL or live; `model` valid for its length; `report`
/// NULL or valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_apply_batch(
    index: *const llmd_index,
    id: u16,
    model: *const c_char,
    model_len: usize,
    batch: *const llmd_event_batch,
    report: *mut llmd_index_apply_report,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            let batch = borrow(batch)?;
            let model = args::str(model, model_len, "model")?;
            let r = index.apply_batch(registered(index, id)?, model, batch);
            if let Some(out) = report.as_mut() {
                *out = llmd_index_apply_report {
                    stored: r.stored,
                    removed: r.removed,
                    cleared: r.cleared,
                    unplaceable: r.unplaceable,
                    unknown_media: r.unknown_media,
                    ignored: r.ignored,
                    parity_checks: r.parity_checks,
                    parity_mismatches: r.parity_mismatches,
                    superseded: r.superseded,
                };
            }
            Ok(())
        })
    }
}

/// Writes the keys of a prompt's full blocks in this index's key mode to
/// `keys` (`keys_cap` at least `n_tokens / block size`, else
/// `LLMD_STATUS_BUFFER_TOO_SMALL`) and their number to `*keys_len`.
///
/// # Safety
/// `index`, `extras` NULL or live; `model` valid; `tokens` valid for
/// `n_tokens` reads; `keys` for `keys_cap` writes; `keys_len` for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_prompt_keys(
    index: *const llmd_index,
    model: *const c_char,
    model_len: usize,
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
        call(index, err, |index| {
            let keys_len = Out::new(keys_len, "keys_len")?;
            let keys = args::OutBuf::new(keys, keys_cap, "keys")?;
            let model = args::str(model, model_len, "model")?;
            let tokens = args::slice(tokens, n_tokens, "tokens")?;
            keys.require(n_tokens / index.block_size().max(1))?;
            let default = Default::default();
            let extras = extras.as_ref().map_or(&default, |x| &x.0);
            let computed = index.prompt_keys(model, tokens, extras)?;
            keys.fill(computed.iter().map(|k| k.0), keys_len)
        })
    }
}

/// Writes every endpoint's longest consecutive prefix match of `keys` for
/// `model` to `out` and their number to `*out_len` (endpoints without a
/// match are left out); `LLMD_STATUS_BUFFER_TOO_SMALL` when more endpoints
/// match than `out_cap`. Size it by the registered endpoints
/// (`llmd_index_get_stats`), and on `LLMD_STATUS_BUFFER_TOO_SMALL` call again
/// with a larger buffer: an endpoint registered, or being removed, while the
/// lookup runs can match too.
///
/// # Safety
/// `index` NULL or live; `model` valid; `keys` valid for `n_keys` reads;
/// `out` for `out_cap` writes; `out_len` for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_match_prefix(
    index: *const llmd_index,
    model: *const c_char,
    model_len: usize,
    keys: *const u64,
    n_keys: usize,
    out: *mut llmd_endpoint_match,
    out_cap: usize,
    out_len: *mut usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            let out_len = Out::new(out_len, "out_len")?;
            let out = args::OutBuf::new(out, out_cap, "out")?;
            let model = args::str(model, model_len, "model")?;
            let keys: Vec<BlockKey> = args::slice(keys, n_keys, "keys")?
                .iter()
                .map(|&k| BlockKey(k))
                .collect();
            let mut matches = PrefixMatches::new();
            index.match_prefix(model, &keys, &mut matches);
            let found = matches.as_slice().iter().map(|m| llmd_endpoint_match {
                endpoint: m.endpoint.0,
                consecutive_blocks: m.consecutive_blocks,
                weighted_score: m.weighted_score,
            });
            out.fill(found, out_len)?;
            Ok(())
        })
    }
}

/// Records that a prompt with `keys` was routed to endpoint `id` at
/// `now_ns`: the approximate mode's entries, speculative entries otherwise.
///
/// # Safety
/// `index` NULL or live; `model` valid; `keys` valid for `n_keys` reads;
/// `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_record_routing(
    index: *const llmd_index,
    id: u16,
    model: *const c_char,
    model_len: usize,
    keys: *const u64,
    n_keys: usize,
    now_ns: u64,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            let model = args::str(model, model_len, "model")?;
            let keys: Vec<BlockKey> = args::slice(keys, n_keys, "keys")?
                .iter()
                .map(|&k| BlockKey(k))
                .collect();
            index.record_routing(registered(index, id)?, model, &keys, now_ns);
            Ok(())
        })
    }
}

/// Writes index-wide statistics to `*out`.
///
/// # Safety
/// `index` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_index_get_stats(
    index: *const llmd_index,
    out: *mut llmd_index_stats,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(index, err, |index| {
            let out = Out::new(out, "out")?;
            let s = index.stats();
            out.write(llmd_index_stats {
                entries: s.entries,
                capacity: s.capacity,
                holdings: s.holdings,
                table_bytes: s.table_bytes,
                evictions: s.evictions,
                endpoints: s.endpoints.len() as u64,
            });
            Ok(())
        })
    }
}
