//! The owned error object: status, stable code and message of a failed call.
//!
//! Errors travel as values, never through thread-local state, because hosts
//! such as Go move their threads of control between OS threads.

use std::ffi::{c_char, CString};

use crate::status::llmd_status;

/// A failed call's status, a stable machine-readable code and a message.
/// Owned by the caller once returned; release it with `llmd_error_free`.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_error {
    status: llmd_status,
    detail: u32,
    code: CString,
    message: CString,
}

/// The Rust-side error every exported body returns; converted into an
/// `llmd_error` only when the caller asked for one.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) status: llmd_status,
    pub(crate) detail: u32,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl FfiError {
    /// An error whose code is the status's own name.
    pub(crate) fn new(status: llmd_status, message: impl Into<String>) -> Self {
        let code = default_code(status).to_owned();
        Self {
            status,
            detail: 0,
            code,
            message: message.into(),
        }
    }

    /// An error with a finer-grained code than its status (e.g. the
    /// scheduler's `ScheduleError::code()`).
    pub(crate) fn with_code(
        status: llmd_status,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            detail: 0,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Attaches the scheduler's numeric code (see `llmd_error_detail`).
    pub(crate) fn with_detail(mut self, detail: u32) -> Self {
        self.detail = detail;
        self
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(
            llmd_status::NullArgument,
            format!("`{what}` must not be NULL"),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(llmd_status::InvalidArgument, message)
    }
}

/// The lowercase code used when a call has no finer one.
fn default_code(status: llmd_status) -> &'static str {
    match status {
        llmd_status::Ok => "ok",
        llmd_status::NullArgument => "null_argument",
        llmd_status::InvalidUtf8 => "invalid_utf8",
        llmd_status::InvalidArgument => "invalid_argument",
        llmd_status::BufferTooSmall => "buffer_too_small",
        llmd_status::Config => "config",
        llmd_status::Io => "io",
        llmd_status::Hash => "hash",
        llmd_status::Decode => "decode",
        llmd_status::UnknownEndpoint => "unknown_endpoint",
        llmd_status::MetricsParse => "metrics_parse",
        llmd_status::Schedule => "schedule",
        llmd_status::Serialize => "serialize",
        llmd_status::Index => "index",
        llmd_status::Panic => "panic",
    }
}

/// Builds a C string, replacing interior NULs so messages are never lost.
pub(crate) fn c_string_lossy(s: String) -> CString {
    CString::new(s).unwrap_or_else(|e| {
        let cleaned: Vec<u8> = e
            .into_vec()
            .into_iter()
            .map(|b| if b == 0 { b'?' } else { b })
            .collect();
        // Every NUL was just replaced, so this cannot fail; fall back to empty regardless.
        CString::new(cleaned).unwrap_or_default()
    })
}

impl From<FfiError> for llmd_error {
    fn from(e: FfiError) -> Self {
        Self {
            status: e.status,
            detail: e.detail,
            code: c_string_lossy(e.code),
            message: c_string_lossy(e.message),
        }
    }
}

/// Hands `e` to the caller through `out` when `out` is not NULL.
///
/// # Safety
/// `out` is NULL or valid for one pointer write.
pub(crate) unsafe fn store(e: FfiError, out: *mut *mut llmd_error) {
    if !out.is_null() {
        let boxed = Box::into_raw(Box::new(llmd_error::from(e)));
        // SAFETY: the caller guarantees `out` is valid for a write when not NULL.
        unsafe { out.write(boxed) };
    }
}

/// The status of `err`; `LLMD_STATUS_NULL_ARGUMENT` when `err` is NULL.
///
/// # Safety
/// `err` is NULL or a live error returned by this library.
#[no_mangle]
pub unsafe extern "C" fn llmd_error_status(err: *const llmd_error) -> llmd_status {
    // SAFETY: caller contract above.
    match unsafe { err.as_ref() } {
        Some(e) => e.status,
        None => llmd_status::NullArgument,
    }
}

/// The scheduler's stable numeric code for errors it raised: llm-d's HTTP
/// status for scheduling outcomes (503 no endpoints, 429 saturated, 400
/// invalid request) and 1001+ for library-side errors; 0 for errors raised
/// elsewhere and when `err` is NULL.
///
/// # Safety
/// `err` is NULL or a live error returned by this library.
#[no_mangle]
pub unsafe extern "C" fn llmd_error_detail(err: *const llmd_error) -> u32 {
    // SAFETY: caller contract above.
    unsafe { err.as_ref() }.map_or(0, |e| e.detail)
}

/// The NUL-terminated message of `err`, owned by `err` and valid until it is
/// freed; an empty string when `err` is NULL.
///
/// # Safety
/// `err` is NULL or a live error returned by this library.
#[no_mangle]
pub unsafe extern "C" fn llmd_error_message(err: *const llmd_error) -> *const c_char {
    // SAFETY: caller contract above.
    match unsafe { err.as_ref() } {
        Some(e) => e.message.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// A stable lowercase code for `err`, finer than its status when the library
/// knows more (e.g. `"no_endpoints"` under `LLMD_STATUS_SCHEDULE`); owned by
/// `err`. An empty string when `err` is NULL.
///
/// # Safety
/// `err` is NULL or a live error returned by this library.
#[no_mangle]
pub unsafe extern "C" fn llmd_error_code(err: *const llmd_error) -> *const c_char {
    // SAFETY: caller contract above.
    match unsafe { err.as_ref() } {
        Some(e) => e.code.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Releases an error. NULL is accepted and ignored.
///
/// # Safety
/// `err` is NULL or an error returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn llmd_error_free(err: *mut llmd_error) {
    if !err.is_null() {
        // SAFETY: `err` came from `Box::into_raw` in `store` and is freed once.
        drop(unsafe { Box::from_raw(err) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_nul_is_replaced() {
        assert_eq!(c_string_lossy("a\0b".into()).as_bytes(), b"a?b");
    }

    #[test]
    fn stored_error_round_trips() {
        let mut out: *mut llmd_error = std::ptr::null_mut();
        // SAFETY: `out` is a valid local.
        unsafe {
            store(
                FfiError::with_code(llmd_status::Schedule, "no_candidates", "none"),
                &mut out,
            )
        };
        assert!(!out.is_null());
        // SAFETY: `out` was just produced by `store`.
        unsafe {
            assert_eq!(llmd_error_status(out), llmd_status::Schedule);
            let code = std::ffi::CStr::from_ptr(llmd_error_code(out));
            assert_eq!(code.to_str().unwrap(), "no_candidates");
            llmd_error_free(out);
        }
    }
}
