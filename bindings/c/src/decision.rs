//! Picking: `llmd_scheduler_pick` and the decision handle it returns, with
//! its targets, headers and explanation (JSON on request).

use std::ffi::c_char;

use llmd_sched::{Decision, Request, Scheduler};

use crate::args::{self, into_handle, Out};
use crate::error::{llmd_error, store, FfiError};
use crate::handle::{call, handle, read, release};
use crate::request::{llmd_request_desc, to_request, to_request_with};
use crate::scheduler::llmd_scheduler;
use crate::status::llmd_status;
use crate::string::llmd_string;
use crate::views::{llmd_kv, llmd_str};

/// A scheduling decision. Immutable: read it from any thread; strings it
/// returns are borrowed from it and valid until `llmd_decision_free`.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_decision(Decision);
handle!(llmd_decision, Decision, "decision");

impl From<Decision> for llmd_decision {
    fn from(d: Decision) -> Self {
        Self(d)
    }
}

/// A chosen endpoint.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_target {
    /// Endpoint name.
    pub name: llmd_str,
    /// `ip:port`.
    pub address: llmd_str,
}

/// Shape of a decision, read in one call.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_decision_info {
    /// The first target (llm-d's destination endpoint).
    pub primary: llmd_target,
    /// Whether the request is disaggregated (prefill runs remotely).
    pub has_prefill: bool,
    /// The remote prefill endpoint when `has_prefill`.
    pub prefill: llmd_target,
    /// Primary targets in preference order (later ones are fallbacks).
    pub n_targets: usize,
    /// Headers the proxy must set.
    pub n_headers: usize,
    /// Headers the proxy must remove.
    pub n_remove_headers: usize,
}

const NO_TARGET: llmd_target = llmd_target {
    name: llmd_str::NONE,
    address: llmd_str::NONE,
};

fn target(t: Option<&llmd_sched::Target>) -> llmd_target {
    t.map_or(NO_TARGET, |t| llmd_target {
        name: llmd_str::of(&t.name),
        address: llmd_str::of(&t.address),
    })
}

/// Picks for `req` and writes the decision to `*out` (checked before the
/// request was read, as every out-parameter is).
///
/// # Safety
/// `out`'s pointer is valid for a write.
unsafe fn pick(s: &Scheduler, req: &Request, out: Out<*mut llmd_decision>) -> Result<(), FfiError> {
    // SAFETY: forwarded caller contract.
    unsafe { out.write(decided(s.pick(req))?) };
    Ok(())
}

/// A pick's result as a decision handle (the scheduler refuses a pick
/// without a target before recording anything; checked again here, as the
/// handle's accessors assume one).
pub(crate) fn decided(
    r: Result<Decision, llmd_sched::ScheduleError>,
) -> Result<*mut llmd_decision, FfiError> {
    let d = r?;
    if d.targets.is_empty() {
        return Err(FfiError::with_code(
            llmd_status::Schedule,
            "no_target",
            "the pipeline picked no target",
        ));
    }
    Ok(into_handle(llmd_decision(d)))
}

/// Runs one scheduling cycle for `req`. On success `*out` receives a
/// decision with at least one target. No endpoint for the model gives
/// `LLMD_STATUS_SCHEDULE` with code `"no_endpoints"` (detail 503); saturation
/// gives code `"resource_exhausted"` (detail 429); a conditional-decode miss
/// (`Prefer: if-available`) gives code `"precondition_failed"` (detail 412).
/// A pipeline that picks no target gives code `"resource_exhausted"`
/// (nothing is recorded for the request).
///
/// # Safety
/// `s` is NULL or live; `req` is NULL or valid with every pointer valid for
/// its length; `out` valid for a write; `err` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_pick(
    s: *const llmd_scheduler,
    req: *const llmd_request_desc,
    out: *mut *mut llmd_decision,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let out = Out::new(out, "out")?;
            let req = to_request(args::handle(req, "request")?)?;
            pick(s, &req, out)
        })
    }
}

/// As `llmd_scheduler_pick`, with the prompt's token ids passed as their
/// own argument (the descriptor's `tokens` and `prompt` are not used; a
/// `prompt` is an error). They are copied once, into the request: a host
/// whose memory rules forbid storing its pointers in the descriptor (Go)
/// passes its own array here instead of copying it into C memory first.
///
/// # Safety
/// As `llmd_scheduler_pick`; `tokens` NULL with `n_tokens` 0, or valid for
/// `n_tokens` reads, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_pick_tokens(
    s: *const llmd_scheduler,
    req: *const llmd_request_desc,
    tokens: *const u32,
    n_tokens: usize,
    out: *mut *mut llmd_decision,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let out = Out::new(out, "out")?;
            let tokens = args::slice(tokens, n_tokens, "tokens")?;
            let req = to_request_with(args::handle(req, "request")?, Some(tokens))?;
            pick(s, &req, out)
        })
    }
}

/// Picks a window of `n` requests together, for a
/// `burst-prefix-cache-producer`: requests sharing a prompt go to the same
/// replica, as llm-d assigns a window (without one, each request is picked
/// as by `llmd_scheduler_pick`). `out[i]` receives request `i`'s decision, or
/// NULL when it failed; `errs` is NULL or an array of `n` whose `errs[i]`
/// receives that request's error (NULL when it succeeded; release each with
/// `llmd_error_free`). The call itself fails only on bad arguments (a NULL
/// array, an invalid descriptor), and then writes nothing.
/// `llmd_scheduler_burst_window_ms` says how long to collect a window.
///
/// # Safety
/// `s` NULL or live; `reqs` NULL with `n` 0, or `n` valid descriptors as for
/// `llmd_scheduler_pick`; `out` valid for `n` writes (NULL with `n` 0);
/// `errs` NULL or valid for `n` writes; `err` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_pick_batch(
    s: *const llmd_scheduler,
    reqs: *const llmd_request_desc,
    n: usize,
    out: *mut *mut llmd_decision,
    errs: *mut *mut llmd_error,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            if out.is_null() && n > 0 {
                return Err(FfiError::null("out"));
            }
            let reqs = args::slice(reqs, n, "reqs")?
                .iter()
                .map(|d| to_request(d))
                .collect::<Result<Vec<Request>, FfiError>>()?;
            for (i, r) in s.pick_batch(&reqs).into_iter().enumerate() {
                let (d, e) = match decided(r) {
                    Ok(d) => (d, None),
                    Err(e) => (std::ptr::null_mut(), Some(e)),
                };
                // SAFETY: i < n; `out` valid for `n` writes, `errs` too when
                // not NULL (caller contract).
                out.add(i).write(d);
                if !errs.is_null() {
                    errs.add(i).write(std::ptr::null_mut());
                    if let Some(e) = e {
                        store(e, errs.add(i));
                    }
                }
            }
            Ok(())
        })
    }
}

/// Milliseconds a host should collect requests for
/// `llmd_scheduler_pick_batch` (the longest `windowDurationMs` of the
/// configured burst producers); 0 without one, or for NULL.
///
/// # Safety
/// `s` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_burst_window_ms(s: *const llmd_scheduler) -> u64 {
    // SAFETY: caller contract.
    unsafe {
        read(s, 0, |s| {
            s.burst_window().map_or(0, |d| d.as_millis() as u64)
        })
    }
}

/// Like `llmd_scheduler_pick` with the request as JSON (`{"id", "model",
/// "prompt": {"tokens": [...]} | {"text": "..."}, "lora", "cache_salt",
/// "session_id", "headers", "priority", "slo"}`); malformed JSON is
/// `LLMD_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As `llmd_scheduler_pick`; `json` valid for `json_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn llmd_scheduler_pick_json(
    s: *const llmd_scheduler,
    json: *const c_char,
    json_len: usize,
    out: *mut *mut llmd_decision,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(s, err, |s| {
            let out = Out::new(out, "out")?;
            let json = args::str(json, json_len, "json")?;
            let req: Request = serde_json::from_str(json)
                .map_err(|e| FfiError::invalid(format!("request JSON: {e}")))?;
            pick(s, &req, out)
        })
    }
}

/// Releases a decision. NULL is accepted and ignored.
///
/// # Safety
/// `d` is NULL or a decision not yet freed.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_free(d: *mut llmd_decision) {
    // SAFETY: caller contract.
    unsafe { release(d) }
}

/// Writes the decision's shape to `*out`: its primary and prefill targets
/// and how many targets and headers it has. Returns false (writing nothing)
/// when `d` or `out` is NULL.
///
/// # Safety
/// `d` is NULL or live; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_get_info(
    d: *const llmd_decision,
    out: *mut llmd_decision_info,
) -> bool {
    // SAFETY: caller contract.
    unsafe {
        read(d, false, |d| {
            if out.is_null() {
                return false;
            }
            out.write(llmd_decision_info {
                primary: target(d.targets.first()),
                has_prefill: d.prefill_target.is_some(),
                prefill: target(d.prefill_target.as_ref()),
                n_targets: d.targets.len(),
                n_headers: d.headers.len(),
                n_remove_headers: d.remove_headers.len(),
            });
            true
        })
    }
}

/// Target `index` in preference order; NULL views when out of range.
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_target(
    d: *const llmd_decision,
    index: usize,
) -> llmd_target {
    // SAFETY: caller contract.
    unsafe { read(d, NO_TARGET, |d| target(d.targets.get(index))) }
}

/// Number of encoder endpoints (E/P/D disaggregation: where the request's
/// multimodal items are encoded; also in the `x-encoder-hosts-ports`
/// header); 0 for NULL.
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_encode_target_count(d: *const llmd_decision) -> usize {
    // SAFETY: caller contract.
    unsafe { read(d, 0, |d| d.encode_targets.len()) }
}

/// Encoder endpoint `index`; NULL views when out of range.
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_encode_target(
    d: *const llmd_decision,
    index: usize,
) -> llmd_target {
    // SAFETY: caller contract.
    unsafe { read(d, NO_TARGET, |d| target(d.encode_targets.get(index))) }
}

/// Header `index` the proxy must set on the upstream request (e.g.
/// `x-gateway-destination-endpoint`); NULL views when out of range.
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_header(d: *const llmd_decision, index: usize) -> llmd_kv {
    // SAFETY: caller contract.
    unsafe { read(d, llmd_kv::NONE, |d| llmd_kv::of(d.headers.get(index))) }
}

/// Header name `index` the proxy must remove; a NULL view when out of range.
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_remove_header(
    d: *const llmd_decision,
    index: usize,
) -> llmd_str {
    // SAFETY: caller contract.
    unsafe {
        read(d, llmd_str::NONE, |d| {
            d.remove_headers
                .get(index)
                .map_or(llmd_str::NONE, |h| llmd_str::of(h))
        })
    }
}

/// Number of headers the proxy sets on the response to the client.
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_response_header_count(d: *const llmd_decision) -> usize {
    // SAFETY: caller contract.
    unsafe { read(d, 0, |d| d.response_headers.len()) }
}

/// Response header `index` the proxy sets on the response to the client
/// (e.g. the session-affinity `x-session-token` naming the endpoint that
/// served); NULL views when out of range.
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_response_header(
    d: *const llmd_decision,
    index: usize,
) -> llmd_kv {
    // SAFETY: caller contract.
    unsafe {
        read(d, llmd_kv::NONE, |d| {
            llmd_kv::of(d.response_headers.get(index))
        })
    }
}

fn json_of<T: serde::Serialize>(value: &T) -> Result<*mut llmd_string, FfiError> {
    let text = serde_json::to_string(value)
        .map_err(|e| FfiError::new(llmd_status::Serialize, e.to_string()))?;
    Ok(into_handle(llmd_string::new(text)))
}

/// The explanation as JSON: every candidate, every filter drop, every
/// scorer's raw and weighted score, per profile. Rendered on request only.
///
/// # Safety
/// `d` is NULL or live; `out` valid for a write; `err` NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_explanation_json(
    d: *const llmd_decision,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(d, err, |d| {
            let out = Out::new(out, "out")?;
            out.write(json_of(&d.explanation)?);
            Ok(())
        })
    }
}

/// The whole decision (targets, headers, explanation) as JSON.
///
/// # Safety
/// As `llmd_decision_explanation_json`.
#[no_mangle]
pub unsafe extern "C" fn llmd_decision_json(
    d: *const llmd_decision,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
) -> llmd_status {
    // SAFETY: caller contract.
    unsafe {
        call(d, err, |d| {
            let out = Out::new(out, "out")?;
            out.write(json_of(d)?);
            Ok(())
        })
    }
}
