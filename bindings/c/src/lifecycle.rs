//! Request lifecycle feedback: first token, tokens, completion, failure.
//! Unknown request ids are not errors (the host may report late); the
//! `found` out-parameter tells.

use std::ffi::c_char;

use llmd_sched::{RequestErrorKind, RequestSummary};

use crate::args;
use crate::error::{llmd_error, FfiError};
use crate::handle::call;
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;

/// How a request ended badly. Values are never reused.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum llmd_request_error {
    /// The client went away.
    Cancelled = 1,
    /// The upstream endpoint failed or timed out.
    Upstream = 2,
    /// Anything else.
    Other = 3,
}

/// What is known about a finished request.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct llmd_request_summary {
    /// Prompt tokens as scheduled.
    pub prompt_tokens: u64,
    /// Clock time of the decision (ns).
    pub scheduled_at_ns: u64,
    /// Clock time of the first token; 0 if none was seen.
    pub first_token_at_ns: u64,
    /// Clock time of completion or failure.
    pub finished_at_ns: u64,
    /// Output tokens reported.
    pub output_tokens: u64,
    /// Prompt tokens served from cache as the engine reported; -1 if unknown.
    pub cached_tokens: i64,
    /// 0 when the request succeeded, else its `llmd_request_error`.
    pub error: u32,
    /// The latency model's predicted TTFT (ms) for the request on its target
    /// at dispatch (configs with a `predicted-latency-producer`); -1 if none.
    pub predicted_ttft_ms: f64,
    /// Its predicted time per output token (ms); -1 if none.
    pub predicted_tpot_ms: f64,
}

fn summary(s: &RequestSummary) -> llmd_request_summary {
    llmd_request_summary {
        prompt_tokens: s.prompt_tokens,
        scheduled_at_ns: s.scheduled_at_ns,
        first_token_at_ns: s.first_token_at_ns.unwrap_or(0),
        finished_at_ns: s.finished_at_ns,
        output_tokens: s.output_tokens,
        cached_tokens: s.cached_tokens.map_or(-1, i64::from),
        error: match s.error {
            None => 0,
            Some(RequestErrorKind::Cancelled) => llmd_request_error::Cancelled as u32,
            Some(RequestErrorKind::Upstream) => llmd_request_error::Upstream as u32,
            Some(_) => llmd_request_error::Other as u32,
        },
        predicted_ttft_ms: s.predicted.map_or(-1.0, |p| p.ttft_ms),
        predicted_tpot_ms: s.predicted.and_then(|p| p.tpot_ms).unwrap_or(-1.0),
    }
}

/// Writes `found` and, when the request was known, its summary.
///
/// # Safety
/// Each pointer is NULL or valid for a write.
unsafe fn report(found: *mut bool, out: *mut llmd_request_summary, s: Option<RequestSummary>) {
    // SAFETY: forwarded caller contract.
    unsafe {
        if let (Some(s), false) = (&s, out.is_null()) {
            out.write(summary(s));
        }
        if !found.is_null() {
            found.write(s.is_some());
        }
    }
}

/// One lifecycle call on request `id`: `f` says whether the id was known,
/// written to `found` (NULL to ignore).
///
/// # Safety
/// As `llmd_scheduler_on_first_token`.
unsafe fn on_request(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    found: *mut bool,
    err: *mut *mut llmd_error,
    f: impl FnOnce(&llmd_sched::Scheduler, &str) -> Result<bool, FfiError>,
) -> llmd_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        call(s, err, |s| {
            let known = f(s, args::str(id, id_len, "id")?)?;
            if !found.is_null() {
                found.write(known);
            }
            Ok(())
        })
    }
}

/// The first token of request `id` arrived. `found` (NULL to ignore)
/// tells whether the id was known.
///
/// # Safety
/// `s` NULL or live; `id` valid for `id_len` bytes; `found` NULL or valid
/// for a write; `err` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_on_first_token(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    found: *mut bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { on_request(s, id, id_len, found, err, |s, id| Ok(s.on_first_token(id))) }
}

/// Under P/D, the remote prefill of request `id` finished (the KV cache is
/// on the decode endpoint): the prefill leg's in-flight gauges are released
/// and its time observed (`llmd_inference_prefill_time_seconds`, then
/// `llmd_inference_pd_handoff_seconds` at the first token). `found` as in
/// `llmd_scheduler_on_first_token`.
///
/// # Safety
/// As `llmd_scheduler_on_first_token`.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_on_prefill_done(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    found: *mut bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { on_request(s, id, id_len, found, err, |s, id| Ok(s.on_prefill_done(id))) }
}

/// Request `id` is served by endpoint `endpoint` instead of its decision's
/// first target: the host fell back to another target (one of the
/// decision's fallbacks, or its own) after the first could not be reached.
/// Its in-flight load and gauges, the endpoint label of its request series
/// and the latency model's in-flight accounting move there, and its timings
/// train no endpoint's latency model. Call it when the request is sent to
/// the new target, before the lifecycle calls that follow. `found` as in
/// `llmd_scheduler_on_first_token`; an endpoint that is not registered is
/// an error (`LLMD_STATUS_UNKNOWN_ENDPOINT`).
///
/// # Safety
/// As `llmd_scheduler_on_first_token`; `endpoint` valid for `endpoint_len`
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_on_served_by(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    endpoint: *const c_char,
    endpoint_len: usize,
    found: *mut bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        on_request(s, id, id_len, found, err, |s, id| {
            let endpoint = args::str(endpoint, endpoint_len, "endpoint")?;
            Ok(s.on_served_by(id, endpoint)?)
        })
    }
}

/// `n` more output tokens of request `id` were generated.
///
/// # Safety
/// As `llmd_scheduler_on_first_token`.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_on_tokens(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    n: u64,
    found: *mut bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe { on_request(s, id, id_len, found, err, |s, id| Ok(s.on_tokens(id, n))) }
}

/// Token usage the engine reported for a completed request (OpenAI
/// `usage`); each count is -1 when not reported.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_usage {
    /// `prompt_tokens`.
    pub prompt_tokens: i64,
    /// `completion_tokens`: replaces the tokens counted by the token calls
    /// (a non-streaming reply makes none).
    pub completion_tokens: i64,
    /// `prompt_tokens_details.cached_tokens`.
    pub cached_tokens: i64,
}

/// Completes `id` with `usage`, then reports counts that could not be used.
/// A count below -1 or of 2^32 or more is not used, but the request is
/// completed all the same (it never stays counted as in flight) and the
/// call then fails with `LLMD_STATUS_INVALID_ARGUMENT` naming the count.
///
/// # Safety
/// Pointers as for `llmd_scheduler_on_complete`.
unsafe fn complete(
    s: &llmd_sched::Scheduler,
    id: &str,
    counts: [(&str, i64); 3],
    summary: *mut llmd_request_summary,
    found: *mut bool,
) -> Result<(), FfiError> {
    let mut bad = None;
    let mut take = |(name, v): (&str, i64)| match v {
        -1 => None,
        v => match u32::try_from(v) {
            Ok(n) => Some(n),
            Err(_) => {
                bad.get_or_insert_with(|| format!("{name} {v} is out of range (-1 or 0 ..= 2^32-1); the request was completed without it"));
                None
            }
        },
    };
    let [p, c, k] = counts;
    let usage = llmd_sched::Usage {
        prompt_tokens: take(p),
        output_tokens: take(c),
        cached_tokens: take(k),
    };
    // SAFETY: forwarded caller contract.
    unsafe { report(found, summary, s.on_complete_with_usage(id, usage)) };
    match bad {
        Some(msg) => Err(FfiError::invalid(msg)),
        None => Ok(()),
    }
}

/// Request `id` completed; `cached_tokens` is the engine's reported
/// prefix-cache hit (-1 if unknown). `summary` and `found` may be NULL. An
/// out-of-range count (below -1, or 2^32 and more) still completes the
/// request, and is `LLMD_STATUS_INVALID_ARGUMENT` (see
/// `llmd_scheduler_on_complete_usage`).
///
/// # Safety
/// As `llmd_scheduler_on_first_token`; `summary` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_on_complete(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    cached_tokens: i64,
    summary: *mut llmd_request_summary,
    found: *mut bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let id = args::str(id, id_len, "id")?;
            let counts = [
                ("prompt_tokens", -1),
                ("completion_tokens", -1),
                // -1 is "unknown"; below it is refused, as by
                // `llmd_scheduler_on_complete_usage` and Python.
                ("cached_tokens", cached_tokens),
            ];
            complete(s, id, counts, summary, found)
        })
    }
}

/// Request `id` completed with the engine's `usage` (NULL: nothing
/// reported): its completion tokens replace the counted ones, so a
/// non-streaming reply records its output too (its TTFT is then the whole
/// request). A count below -1 or of 2^32 or more is not used; the request
/// is completed all the same (`summary` and `found` written) and the call
/// fails with `LLMD_STATUS_INVALID_ARGUMENT` naming it. `summary` and `found` may be NULL.
///
/// # Safety
/// As `llmd_scheduler_on_complete`; `usage` NULL or valid for a read.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_on_complete_usage(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    usage: *const llmd_usage,
    summary: *mut llmd_request_summary,
    found: *mut bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let id = args::str(id, id_len, "id")?;
            let u = usage.as_ref().copied().unwrap_or(llmd_usage {
                prompt_tokens: -1,
                completion_tokens: -1,
                cached_tokens: -1,
            });
            let counts = [
                ("prompt_tokens", u.prompt_tokens),
                ("completion_tokens", u.completion_tokens),
                ("cached_tokens", u.cached_tokens),
            ];
            complete(s, id, counts, summary, found)
        })
    }
}

/// Request `id` failed or was cancelled; everything it held is released.
/// `kind` is an `llmd_request_error`; another value is
/// `LLMD_STATUS_INVALID_ARGUMENT`, but the request is released all the same
/// (as `LLMD_REQUEST_ERROR_OTHER`, with `summary` and `found` written): it
/// never stays in flight.
///
/// # Safety
/// As `llmd_scheduler_on_complete`.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_on_error(
    s: *const llmd_scheduler,
    id: *const c_char,
    id_len: usize,
    kind: u32,
    summary: *mut llmd_request_summary,
    found: *mut bool,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let id = args::str(id, id_len, "id")?;
            let (kind, unknown) = match kind {
                1 => (RequestErrorKind::Cancelled, None),
                2 => (RequestErrorKind::Upstream, None),
                3 => (RequestErrorKind::Other, None),
                k => (RequestErrorKind::Other, Some(k)),
            };
            report(found, summary, s.on_error(id, kind));
            match unknown {
                None => Ok(()),
                Some(k) => Err(FfiError::invalid(format!(
                    "unknown llmd_request_error {k} (the request was released as other)"
                ))),
            }
        })
    }
}
