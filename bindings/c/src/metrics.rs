//! Prometheus text of the scheduler's token-level metrics, for the host's
//! `/metrics` handler.

use crate::error::llmd_error;
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;
use crate::string::{llmd_string, text_out};

/// Renders the scheduler's metrics (TTFT, TPOT, end-to-end, queue, cache
/// hits per pool, routing scores, decisions, index and event-stream health;
/// the `llmd_*` families) as Prometheus text at the clock's current time.
///
/// # Safety
/// `s` NULL or live; `out` valid for a write; `err` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_render_metrics(
    s: *const llmd_scheduler,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { text_out(s, out, err, |s| Ok(s.render_metrics())) }
}
