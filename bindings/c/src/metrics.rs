//! Prometheus text of the scheduler's token-level metrics, for the host's
//! `/metrics` handler.

use crate::args::{into_handle, Out};
use crate::error::llmd_error;
use crate::handle::call;
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;
use crate::string::llmd_string;

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
    unsafe {
        call(s, err, |s| {
            let out = Out::new(out, "out")?;
            out.write(into_handle(llmd_string::new(s.render_metrics())));
            Ok(())
        })
    }
}
