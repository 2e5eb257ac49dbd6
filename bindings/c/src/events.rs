//! Decoding vLLM KV-event batches (msgpack `EventBatch`, every release's
//! layout) and inspecting them; ingestion goes through the scheduler or the
//! index.

use llmd_kvindex::events::{decode_event_batch, EventBatch, HashValue, KvEvent};
use llmd_kvindex::Tier;

use crate::args::{self, Out};
use crate::error::{llmd_error, FfiError};
use crate::handle::{call, create, handle, read, release};
use crate::status::llmd_status;

/// A decoded `EventBatch`. Immutable: share it between threads freely.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_event_batch(pub(crate) EventBatch);
handle!(llmd_event_batch, EventBatch, "batch");

/// Kind of one event. Values are never reused.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum llmd_event_kind {
    /// Blocks committed to the prefix cache.
    BlockStored = 1,
    /// Blocks evicted.
    BlockRemoved = 2,
    /// The publisher dropped its whole prefix cache.
    AllBlocksCleared = 3,
}

/// Tier of the blocks of an event. Values are never reused.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum llmd_tier {
    /// Device memory (or no medium given).
    Gpu = 0,
    /// Host memory of an offloading connector.
    Cpu = 1,
    /// Disk or remote storage.
    Storage = 2,
    /// A medium this library does not know, or an event without one.
    Unknown = 255,
}

/// Summary of one event of a batch.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_event_info {
    /// What happened.
    pub kind: llmd_event_kind,
    /// Where the blocks live.
    pub tier: llmd_tier,
    /// Number of block hashes (0 for `ALL_BLOCKS_CLEARED`).
    pub n_blocks: usize,
    /// Number of tokens carried (stored events only).
    pub n_tokens: usize,
    /// Whether `parent_key` is set (stored events continuing a chain).
    pub has_parent: bool,
    /// Published 64-bit key of the parent block.
    pub parent_key: u64,
    /// Tokens per block (stored events only, else 0).
    pub block_size: i64,
}

fn tier_of(medium: Option<&str>) -> llmd_tier {
    match Tier::from_medium(medium) {
        Some(Tier::Gpu) => llmd_tier::Gpu,
        Some(Tier::Cpu) => llmd_tier::Cpu,
        Some(Tier::Storage) => llmd_tier::Storage,
        None => llmd_tier::Unknown,
    }
}

fn info(event: &KvEvent) -> llmd_event_info {
    match event {
        KvEvent::BlockStored(s) => llmd_event_info {
            kind: llmd_event_kind::BlockStored,
            tier: tier_of(s.medium.as_deref()),
            n_blocks: s.block_hashes.len(),
            n_tokens: s.token_ids.len(),
            has_parent: s.parent_block_hash.is_some(),
            parent_key: s.parent_block_hash.as_ref().map_or(0, |h| h.key().0),
            block_size: s.block_size,
        },
        KvEvent::BlockRemoved(r) => llmd_event_info {
            kind: llmd_event_kind::BlockRemoved,
            tier: tier_of(r.medium.as_deref()),
            n_blocks: r.block_hashes.len(),
            n_tokens: 0,
            has_parent: false,
            parent_key: 0,
            block_size: 0,
        },
        KvEvent::AllBlocksCleared => llmd_event_info {
            kind: llmd_event_kind::AllBlocksCleared,
            tier: llmd_tier::Unknown,
            n_blocks: 0,
            n_tokens: 0,
            has_parent: false,
            parent_key: 0,
            block_size: 0,
        },
    }
}

fn hashes(event: &KvEvent) -> &[HashValue] {
    match event {
        KvEvent::BlockStored(s) => &s.block_hashes,
        KvEvent::BlockRemoved(r) => &r.block_hashes,
        KvEvent::AllBlocksCleared => &[],
    }
}

fn event_at(batch: &EventBatch, index: usize) -> Result<&KvEvent, FfiError> {
    batch.events.get(index).ok_or_else(|| {
        FfiError::invalid(format!(
            "event index {index} out of range (batch has {})",
            batch.events.len()
        ))
    })
}

/// Decodes one msgpack `EventBatch` payload (the third ZMQ frame). Malformed
/// bytes give `LLMD_STATUS_DECODE` with the offset and defect in the message
/// and a code naming the defect.
///
/// # Safety
/// `bytes` is NULL (only with `len` 0) or valid for `len` reads; `out` is
/// valid for a write; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_decode(
    bytes: *const u8,
    len: usize,
    out: *mut *mut llmd_event_batch,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        create(out, err, || {
            let payload = args::bytes(bytes, len, "bytes")?;
            let batch = decode_event_batch(payload).map_err(|e| {
                FfiError::with_code(llmd_status::Decode, e.kind.code(), e.to_string())
            })?;
            Ok(llmd_event_batch(batch))
        })
    }
}

/// Releases a batch. NULL is accepted and ignored.
///
/// # Safety
/// `batch` is NULL or from `llmd_event_batch_decode`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_free(batch: *mut llmd_event_batch) {
    // SAFETY: caller contract.
    unsafe { release(batch) }
}

/// Number of known events in the batch; 0 when `batch` is NULL.
///
/// # Safety
/// `batch` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_len(batch: *const llmd_event_batch) -> usize {
    // SAFETY: caller contract.
    unsafe { read(batch, 0, |b| b.events.len()) }
}

/// Events with an unknown tag that were skipped; 0 when `batch` is NULL.
///
/// # Safety
/// `batch` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_skipped(batch: *const llmd_event_batch) -> u32 {
    // SAFETY: caller contract.
    unsafe { read(batch, 0, |b| b.skipped_events) }
}

/// The batch's timestamp (seconds since the epoch); 0 when `batch` is NULL.
///
/// # Safety
/// `batch` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_ts(batch: *const llmd_event_batch) -> f64 {
    // SAFETY: caller contract.
    unsafe { read(batch, 0.0, |b| b.ts) }
}

/// Returns true when the batch carries the publisher's data-parallel rank,
/// and writes it to `*rank` (`rank` may be NULL to only ask); returns false,
/// writing nothing, otherwise.
///
/// # Safety
/// `batch` is NULL or live; `rank` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_dp_rank(
    batch: *const llmd_event_batch,
    rank: *mut i64,
) -> bool {
    // SAFETY: caller contract.
    unsafe {
        read(batch, false, |b| match b.data_parallel_rank {
            Some(r) => {
                if !rank.is_null() {
                    rank.write(r);
                }
                true
            }
            None => false,
        })
    }
}

/// Writes a summary of event `index` to `*out`.
///
/// # Safety
/// `batch` is NULL or live; `out` is valid for a write; `err` is NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_event(
    batch: *const llmd_event_batch,
    index: usize,
    out: *mut llmd_event_info,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(batch, err, |batch| {
            let out = Out::new(out, "out")?;
            out.write(info(event_at(batch, index)?));
            Ok(())
        })
    }
}

/// Writes the published 64-bit keys of event `index`'s blocks to `keys` and
/// their number to `*keys_len`; `LLMD_STATUS_BUFFER_TOO_SMALL` (nothing
/// written) when `keys_cap` is below the event's `n_blocks`.
///
/// # Safety
/// `batch` is NULL or live; `keys` is valid for `keys_cap` writes; `keys_len`
/// for a write; `err` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_event_batch_event_keys(
    batch: *const llmd_event_batch,
    index: usize,
    keys: *mut u64,
    keys_cap: usize,
    keys_len: *mut usize,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(batch, err, |batch| {
            let keys_len = Out::new(keys_len, "keys_len")?;
            let keys = args::OutBuf::new(keys, keys_cap, "keys")?;
            let hashes = hashes(event_at(batch, index)?);
            keys.fill(hashes.iter().map(|h| h.key().0), keys_len)
        })
    }
}
