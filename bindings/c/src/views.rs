//! Plain-data string views shared by the request, endpoint and decision
//! calls: borrowed from the caller on input, from a handle on output.

use std::ffi::c_char;
use std::ptr;

use crate::args;
use crate::error::FfiError;

/// A string as pointer + length (UTF-8, not NUL-terminated). As input it is
/// borrowed for the call (NULL means absent where a field says so); as output
/// it is borrowed from the handle that returned it.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_str {
    /// First byte, or NULL.
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

/// A name/value pair (labels, headers).
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct llmd_kv {
    /// Name.
    pub key: llmd_str,
    /// Value.
    pub value: llmd_str,
}

impl llmd_kv {
    /// Absent name and value.
    pub(crate) const NONE: Self = Self {
        key: llmd_str::NONE,
        value: llmd_str::NONE,
    };

    /// Views of a pair (valid while it lives); [`llmd_kv::NONE`] for none.
    pub(crate) fn of(pair: Option<&(String, String)>) -> Self {
        pair.map_or(Self::NONE, |(k, v)| Self {
            key: llmd_str::of(k),
            value: llmd_str::of(v),
        })
    }
}

impl llmd_str {
    /// A view of `s`, valid while `s` lives.
    pub(crate) fn of(s: &str) -> Self {
        Self {
            ptr: s.as_ptr().cast(),
            len: s.len(),
        }
    }

    /// The absent string.
    pub(crate) const NONE: Self = Self {
        ptr: ptr::null(),
        len: 0,
    };

    /// Reads a required field.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for `len` bytes.
    pub(crate) unsafe fn required(self, what: &str) -> Result<String, FfiError> {
        // SAFETY: forwarded caller contract.
        unsafe { args::str(self.ptr, self.len, what) }.map(str::to_owned)
    }

    /// Reads an optional field (NULL = absent).
    ///
    /// # Safety
    /// As [`llmd_str::required`].
    pub(crate) unsafe fn optional(self, what: &str) -> Result<Option<String>, FfiError> {
        // SAFETY: forwarded caller contract.
        Ok(unsafe { args::opt_str(self.ptr, self.len, what) }?.map(str::to_owned))
    }
}

/// Reads `n` strings.
///
/// # Safety
/// `items` is NULL (only with `n` 0) or valid for `n` reads, each valid as
/// [`llmd_str::required`].
pub(crate) unsafe fn strings(
    items: *const llmd_str,
    n: usize,
    what: &str,
) -> Result<Vec<String>, FfiError> {
    // SAFETY: forwarded caller contract.
    let items = unsafe { args::slice(items, n, what) }?;
    // SAFETY: each item valid by the caller's contract.
    items.iter().map(|s| unsafe { s.required(what) }).collect()
}

/// Reads `n` name/value pairs.
///
/// # Safety
/// As [`strings`], for pairs.
pub(crate) unsafe fn pairs(
    items: *const llmd_kv,
    n: usize,
    what: &str,
) -> Result<Vec<(String, String)>, FfiError> {
    // SAFETY: forwarded caller contract.
    let items = unsafe { args::slice(items, n, what) }?;
    items
        .iter()
        // SAFETY: each item valid by the caller's contract.
        .map(|kv| unsafe { Ok((kv.key.required(what)?, kv.value.required(what)?)) })
        .collect()
}
