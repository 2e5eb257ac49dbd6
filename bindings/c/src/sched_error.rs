//! Mapping the scheduler's errors onto statuses, keeping its numeric code.

use llmd_sched::ScheduleError;

use crate::error::FfiError;
use crate::status::llmd_status;

/// Maps by the scheduler's stable numeric code, so a variant added later
/// still lands on a sensible status.
pub(crate) fn sched_err(e: ScheduleError) -> FfiError {
    let detail = e.code();
    let (status, code) = match detail {
        503 => (llmd_status::Schedule, "no_endpoints"),
        429 => (llmd_status::Schedule, "resource_exhausted"),
        400 => (llmd_status::InvalidArgument, "invalid_request"),
        1001 => (llmd_status::Config, "config"),
        1002 => (llmd_status::UnknownEndpoint, "unknown_endpoint"),
        1003 => (llmd_status::MetricsParse, "metrics_parse"),
        1004 => (llmd_status::Decode, "kv_events"),
        1005 => (llmd_status::Index, "index"),
        1006 => (llmd_status::Hash, "hash"),
        _ => (llmd_status::Schedule, "schedule"),
    };
    FfiError::with_code(status, code, e.to_string()).with_detail(u32::from(detail))
}
