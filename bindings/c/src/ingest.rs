//! KV-event ingestion into a scheduler's indexes.

use std::ffi::c_char;

use llmd_kvindex::events::decode_event_batch;

use crate::args;
use crate::error::{llmd_error, FfiError};
use crate::events::llmd_event_batch;
use crate::handle::{borrow, call};
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;
use llmd_kvindex::events::SeqStatus;
use llmd_sched::IngestReport;

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
    /// Blocks or events not placed, all reasons: the sum of the
    /// `skipped_*` fields below.
    pub skipped: u32,
    /// What the sequence number said ([`llmd_seq_status`] value); `NONE`
    /// when no sequence number was given or for a pre-decoded batch.
    pub seq_status: u32,
    /// 1 when the batch was dropped as a duplicate, else 0.
    pub ignored: u32,
    /// Batches lost before this one when `seq_status` is `GAP`, else 0.
    pub missing: u64,
    /// Of `skipped`: router keys whose parent or engine key was never
    /// stored, whose parent ends inside a router block, or too few tokens
    /// for a block.
    pub skipped_unknown_parent: u32,
    /// Of `skipped`: events with a `medium` that is not GPU, CPU or storage.
    pub skipped_unknown_medium: u32,
    /// Of `skipped`: events of an endpoint removed while its batch was on
    /// the way.
    pub skipped_stale: u32,
    /// Engine parity: published keys that differ from the router's own hash
    /// of the same tokens (the configured seed, algorithm or block size is
    /// wrong).
    pub parity_mismatches: u32,
    /// In a batch with more than one `AllBlocksCleared`, the events before
    /// the last one, which it erases: not applied one by one, in none of the
    /// other counts (0 for a batch with one clear, applied whole).
    pub superseded: u32,
}

/// Sequence status of an ingested batch (per endpoint and data-parallel rank).
/// Values are explicit and never reused.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum llmd_seq_status {
    /// No sequence number was given.
    None = 0,
    /// The first number seen from this publisher.
    First = 1,
    /// `seq == last + 1`.
    InOrder = 2,
    /// Batches were lost; `missing` says how many (the batch is still applied).
    Gap = 3,
    /// The publisher restarted: its entries were dropped, then the batch applied.
    Restart = 4,
    /// The same batch again: ignored.
    Duplicate = 5,
    /// The next lost batch of a recent gap (from the publisher's replay
    /// socket, in order, after the live batch that showed the gap): applied.
    /// Stop reading the replay after the gap's last number: the later
    /// batches it sends were applied live and would read as a restart.
    Replayed = 6,
}

fn write_report(out: *mut llmd_apply_stats, report: IngestReport) {
    let (seq_status, missing) = match report.seq {
        None => (llmd_seq_status::None, 0),
        Some(SeqStatus::First) => (llmd_seq_status::First, 0),
        Some(SeqStatus::InOrder) => (llmd_seq_status::InOrder, 0),
        Some(SeqStatus::Gap { missing }) => (llmd_seq_status::Gap, missing),
        Some(SeqStatus::Restart) => (llmd_seq_status::Restart, 0),
        Some(SeqStatus::Duplicate) => (llmd_seq_status::Duplicate, 0),
        Some(SeqStatus::Replayed) => (llmd_seq_status::Replayed, 0),
    };
    let mut stats = stats_of(report.stats);
    stats.seq_status = seq_status as u32;
    stats.ignored = u32::from(report.ignored);
    stats.missing = missing;
    put(out, stats);
}

fn write_stats(out: *mut llmd_apply_stats, applied: llmd_sched::kv::ApplyStats) {
    put(out, stats_of(applied));
}

fn stats_of(applied: llmd_sched::kv::ApplyStats) -> llmd_apply_stats {
    llmd_apply_stats {
        stored: applied.stored,
        removed: applied.removed,
        cleared: applied.cleared,
        skipped: applied.skipped,
        skipped_unknown_parent: applied.skipped_unknown_parent,
        skipped_unknown_medium: applied.skipped_unknown_medium,
        skipped_stale: applied.skipped_stale,
        parity_mismatches: applied.parity_mismatches,
        superseded: applied.superseded,
        ..Default::default()
    }
}

fn put(out: *mut llmd_apply_stats, stats: llmd_apply_stats) {
    // SAFETY: callers pass NULL or a pointer valid for a write (their contract).
    if let Some(out) = unsafe { out.as_mut() } {
        *out = stats;
    }
}

/// Decodes a KV-event payload published by `endpoint` (the third ZMQ frame)
/// and applies it to the scheduler's indexes. `seq` (NULL when unknown) is the
/// message's sequence number (the second ZMQ frame, 8 bytes big-endian, as
/// an integer): duplicates are then ignored and a publisher restart
/// drops the endpoint's entries before the batch is applied. `stats` (NULL to
/// ignore) receives the counts and the sequence status. Malformed bytes are
/// `LLMD_STATUS_DECODE`; nothing is applied then.
///
/// # Safety
/// `s` is NULL or live; `endpoint` valid for its length; `payload` valid for
/// `payload_len` bytes; `seq` NULL or valid for a read; `stats` NULL or valid
/// for a write; `err` NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_ingest_kv_events(
    s: *const llmd_scheduler,
    endpoint: *const c_char,
    endpoint_len: usize,
    payload: *const u8,
    payload_len: usize,
    seq: *const u64,
    stats: *mut llmd_apply_stats,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let endpoint = args::str(endpoint, endpoint_len, "endpoint")?;
            let payload = args::bytes(payload, payload_len, "payload")?;
            // SAFETY: `seq` is NULL or valid for a read (caller contract).
            let seq = seq.as_ref().copied();
            // An unknown endpoint is that, whatever the payload.
            s.endpoint_state(endpoint)?;
            let batch = decode_event_batch(payload).map_err(|e| {
                s.record_kv_decode_error(endpoint);
                FfiError::with_code(llmd_status::Decode, e.kind.code(), e.to_string())
            })?;
            write_report(stats, s.ingest_decoded_kv_events(endpoint, &batch, seq)?);
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
        call(s, err, |s| {
            let endpoint = args::str(endpoint, endpoint_len, "endpoint")?;
            let batch = borrow(batch)?;
            write_stats(stats, s.ingest_kv_batch(endpoint, batch)?);
            Ok(())
        })
    }
}
