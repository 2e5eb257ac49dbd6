//! Mapping the scheduler's errors onto statuses, keeping its numeric code.

use llmd_sched::ScheduleError;

use crate::error::FfiError;
use crate::status::llmd_status;

/// Maps by the scheduler's stable numeric code, so a variant added later
/// still lands on a sensible status; the code string is the scheduler's own
/// [`ScheduleError::name`], as in every binding.
impl From<ScheduleError> for FfiError {
    fn from(e: ScheduleError) -> Self {
        let detail = e.code();
        let status = match detail {
            400 => llmd_status::InvalidArgument,
            1001 => llmd_status::Config,
            1002 => llmd_status::UnknownEndpoint,
            1003 => llmd_status::MetricsParse,
            1004 => llmd_status::Decode,
            1005 => llmd_status::Index,
            1006 => llmd_status::Hash,
            _ => llmd_status::Schedule,
        };
        FfiError::with_code(status, e.name(), e.to_string()).with_detail(u32::from(detail))
    }
}
