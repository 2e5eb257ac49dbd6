//! KV-event ingestion into a scheduler's indexes.

use std::ffi::c_char;

use llmd_kvindex::events::decode_event_batch;

use crate::args;
use crate::error::{llmd_error, FfiError};
use crate::events::llmd_event_batch;
use crate::panic::guard;
use crate::sched_error::sched_err;
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;

/// Counts from applying one KV-event batch.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct llmd_apply_stats {
    /// Blocks added.
    pub stored: u32,
    /// Blocks removed.
    pub removed: u32,
    /// Endpoint caches cleared.
    pub cleared: u32,
    /// Blocks skipped (unknown parent, block-size mismatch, missing tokens).
    pub skipped: u32,
}

fn write_stats(out: *mut llmd_apply_stats, applied: llmd_sched::kv::ApplyStats) {
    let stats = llmd_apply_stats {
        stored: applied.stored,
        removed: applied.removed,
        cleared: applied.cleared,
        skipped: applied.skipped,
    };
    // SAFETY: callers pass NULL or a pointer valid for a write (their contract).
    if let Some(out) = unsafe { out.as_mut() } {
        *out = stats;
    }
}

/// Decodes a KV-event payload published by `endpoint` (the third ZMQ frame)
/// and applies it to the scheduler's indexes. `stats` (NULL to ignore)
/// receives the counts. Malformed bytes are `LLMD_STATUS_DECODE`; nothing is
/// applied then.
///
/// # Safety
/// `s` is NULL or live; `endpoint` valid for its length; `payload` valid for
/// `payload_len` bytes; `stats` NULL or valid for a write; `err` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_ingest_kv_events(
    s: *const llmd_scheduler,
    endpoint: *const c_char,
    endpoint_len: usize,
    payload: *const u8,
    payload_len: usize,
    stats: *mut llmd_apply_stats,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        guard(err, || {
            let s = &args::handle(s, "scheduler")?.0;
            let endpoint = args::str(endpoint, endpoint_len, "endpoint")?;
            let payload = args::bytes(payload, payload_len, "payload")?;
            let batch = decode_event_batch(payload).map_err(|e| {
                FfiError::with_code(llmd_status::Decode, e.kind.code(), e.to_string())
            })?;
            write_stats(
                stats,
                s.ingest_kv_batch(endpoint, &batch).map_err(sched_err)?,
            );
            Ok(())
        })
    }
}

/// Applies an already decoded batch published by `endpoint`.
///
/// # Safety
/// As `llmd_scheduler_ingest_kv_events`; `batch` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_ingest_kv_batch(
    s: *const llmd_scheduler,
    endpoint: *const c_char,
    endpoint_len: usize,
    batch: *const llmd_event_batch,
    stats: *mut llmd_apply_stats,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        guard(err, || {
            let s = &args::handle(s, "scheduler")?.0;
            let endpoint = args::str(endpoint, endpoint_len, "endpoint")?;
            let batch = &args::handle(batch, "batch")?.0;
            write_stats(
                stats,
                s.ingest_kv_batch(endpoint, batch).map_err(sched_err)?,
            );
            Ok(())
        })
    }
}
