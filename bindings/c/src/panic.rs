//! The panic boundary every exported body runs inside: a bug becomes a
//! status and an error object, never an unwind across the C frame.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{llmd_error, store, FfiError};
use crate::status::llmd_status;

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    format!("internal error (please report): {detail}")
}

/// Runs `body`, turning its error or panic into a status and, when `err` is
/// not NULL, an owned error object.
///
/// # Safety
/// `err` is NULL or valid for one pointer write.
pub(crate) unsafe fn guard<F>(err: *mut *mut llmd_error, body: F) -> llmd_status
where
    F: FnOnce() -> Result<(), FfiError>,
{
    let result = catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(FfiError::new(llmd_status::Panic, panic_message(payload))));
    match result {
        Ok(()) => llmd_status::Ok,
        Err(e) => {
            let status = e.status;
            // SAFETY: forwarded caller contract on `err`.
            unsafe { store(e, err) };
            status
        }
    }
}

/// Runs an infallible body (accessors, frees), returning `fallback` if it
/// panics.
pub(crate) fn guard_value<T, F: FnOnce() -> T>(fallback: T, body: F) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_status() {
        let mut err: *mut llmd_error = std::ptr::null_mut();
        // SAFETY: `err` is a valid local.
        let status = unsafe { guard(&mut err, || panic!("boom")) };
        assert_eq!(status, llmd_status::Panic);
        // SAFETY: `err` was produced by `guard`.
        unsafe {
            let msg = std::ffi::CStr::from_ptr(crate::error::llmd_error_message(err));
            assert!(msg.to_str().unwrap().contains("boom"));
            crate::error::llmd_error_free(err);
        }
    }

    #[test]
    fn panic_in_value_body_gives_fallback() {
        assert_eq!(guard_value(7u32, || panic!("boom")), 7);
    }
}
