//! Owned text returned to the caller (JSON explanations, metrics text).

use std::ffi::{c_char, CString};

use crate::args::{into_handle, Out};
use crate::error::{c_string_lossy, llmd_error, FfiError};
use crate::handle::{call, handle, read, release, Handle};
use crate::status::llmd_status;

/// Owned, NUL-terminated UTF-8 text. Release it with `llmd_string_free`.
#[allow(non_camel_case_types)] // C naming for the exported type
pub struct llmd_string {
    text: CString,
}
handle!(llmd_string, "string");

impl llmd_string {
    pub(crate) fn new(text: String) -> Self {
        Self {
            text: c_string_lossy(text),
        }
    }
}

/// The body of the calls that return text: `out` checked first, then what
/// `text` makes of handle `h`'s value written there as a new
/// `llmd_string`.
///
/// # Safety
/// `h` NULL or live; `out` NULL or valid for a write; `err` NULL or valid.
pub(crate) unsafe fn text_out<H: Handle>(
    h: *const H,
    out: *mut *mut llmd_string,
    err: *mut *mut llmd_error,
    text: impl FnOnce(&H::Inner) -> Result<String, FfiError>,
) -> llmd_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        call(h, err, |v| {
            let out = Out::new(out, "out")?;
            let t = text(v)?;
            out.write(into_handle(llmd_string::new(t)));
            Ok(())
        })
    }
}

/// JSON text, or `LLMD_STATUS_SERIALIZE` saying why not.
pub(crate) fn json(r: serde_json::Result<String>) -> Result<String, FfiError> {
    r.map_err(|e| FfiError::new(llmd_status::Serialize, e.to_string()))
}

/// The text of `s`, NUL-terminated, owned by `s` and valid until it is freed;
/// an empty string when `s` is NULL.
///
/// # Safety
/// `s` is NULL or a live string returned by this library.
#[no_mangle]
pub unsafe extern "C" fn llmd_string_data(s: *const llmd_string) -> *const c_char {
    // SAFETY: caller contract.
    unsafe { read(s, c"".as_ptr(), |s| s.text.as_ptr()) }
}

/// The length of `s` in bytes, without the terminating NUL; 0 when NULL.
///
/// # Safety
/// `s` is NULL or a live string returned by this library.
#[no_mangle]
pub unsafe extern "C" fn llmd_string_len(s: *const llmd_string) -> usize {
    // SAFETY: caller contract.
    unsafe { read(s, 0, |s| s.text.as_bytes().len()) }
}

/// Releases a string. NULL is accepted and ignored.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn llmd_string_free(s: *mut llmd_string) {
    // SAFETY: caller contract.
    unsafe { release(s) }
}
