//! Borrowing C arguments: NULL checks first, pointer + length strings,
//! handles, and out-parameters written only on success.
//!
//! One NULL rule everywhere: a NULL pointer with a non-zero length or
//! capacity is `LLMD_STATUS_NULL_ARGUMENT`, whatever else the call would do;
//! NULL with length 0 is the empty (or, for optional strings, absent) value;
//! NULL with capacity 0 is an empty out-buffer (`LLMD_STATUS_BUFFER_TOO_SMALL`
//! if anything has to be written).

use std::ffi::c_char;

use crate::error::FfiError;
use crate::status::llmd_status;

/// Borrows `len` bytes at `ptr`. NULL with length 0 is the empty slice.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], FfiError> {
    // SAFETY: forwarded caller contract.
    unsafe { slice(ptr, len, what) }
}

/// Borrows a pointer + length UTF-8 string.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn str<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<&'a str, FfiError> {
    // SAFETY: forwarded caller contract.
    let raw = unsafe { bytes(ptr.cast(), len, what) }?;
    std::str::from_utf8(raw).map_err(|e| {
        FfiError::new(
            llmd_status::InvalidUtf8,
            format!("`{what}` is not valid UTF-8: {e}"),
        )
    })
}

/// Borrows an optional string: NULL with length 0 means absent; NULL with
/// a non-zero length is a NULL argument.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn opt_str<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<Option<&'a str>, FfiError> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(FfiError::null(what))
        };
    }
    // SAFETY: forwarded caller contract.
    unsafe { str(ptr, len, what) }.map(Some)
}

/// Borrows a typed array of `len` items. NULL with length 0 is empty.
///
/// # Safety
/// `ptr` is NULL or valid and aligned for reads of `len` items for `'a`.
pub(crate) unsafe fn slice<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [T], FfiError> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(FfiError::null(what))
        };
    }
    // No object can span more than isize::MAX bytes: such a length cannot be
    // valid, and `from_raw_parts` must not see it.
    if len
        .checked_mul(std::mem::size_of::<T>())
        .map_or(true, |n| n > isize::MAX as usize)
    {
        return Err(FfiError::invalid(format!(
            "`{what}`: a length of {len} items cannot be valid"
        )));
    }
    // SAFETY: non-NULL, aligned and valid for `len` items by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows a handle.
///
/// # Safety
/// `ptr` is NULL or points to a live `T` for `'a`.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, FfiError> {
    // SAFETY: caller contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(what))
}

/// An out-parameter checked up front and written only on success.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks `ptr` is not NULL.
    pub(crate) fn new(ptr: *mut T, what: &str) -> Result<Self, FfiError> {
        if ptr.is_null() {
            Err(FfiError::null(what))
        } else {
            Ok(Self(ptr))
        }
    }

    /// Writes `value`.
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] is valid and aligned for a write.
    pub(crate) unsafe fn write(self, value: T) {
        // SAFETY: non-NULL (checked in `new`), validity by the caller's contract.
        unsafe { self.0.write(value) }
    }
}

/// A caller's output array `(ptr, cap)`, checked up front by the NULL rule.
pub(crate) struct OutBuf<T> {
    ptr: *mut T,
    cap: usize,
    what: &'static str,
}

impl<T> OutBuf<T> {
    /// Checks that `ptr` is not NULL unless `cap` is 0.
    pub(crate) fn new(ptr: *mut T, cap: usize, what: &'static str) -> Result<Self, FfiError> {
        if ptr.is_null() && cap > 0 {
            return Err(FfiError::null(what));
        }
        Ok(OutBuf { ptr, cap, what })
    }

    /// Fails with `LLMD_STATUS_BUFFER_TOO_SMALL` unless `n` items fit (a
    /// check before computing them).
    pub(crate) fn require(&self, n: usize) -> Result<(), FfiError> {
        if n > self.cap {
            return Err(FfiError::new(
                llmd_status::BufferTooSmall,
                format!("`{}` holds {}, {n} are needed", self.what, self.cap),
            ));
        }
        Ok(())
    }

    /// Writes `items` and their count to `len`, or fails with
    /// `LLMD_STATUS_BUFFER_TOO_SMALL` (nothing written) when they do not fit.
    ///
    /// # Safety
    /// The pointer given to [`OutBuf::new`] is valid for `cap` writes.
    pub(crate) unsafe fn fill(
        self,
        items: impl ExactSizeIterator<Item = T>,
        len: Out<usize>,
    ) -> Result<(), FfiError> {
        let n = items.len();
        self.require(n)?;
        for (i, item) in items.enumerate() {
            // SAFETY: i < n <= cap, and the pointer is valid for `cap`
            // writes (non-NULL since cap > 0) by the caller's contract.
            unsafe { self.ptr.add(i).write(item) };
        }
        // SAFETY: as for `Out::write`.
        unsafe { len.write(n) };
        Ok(())
    }
}

/// Moves `value` to the heap and returns it as an owned handle.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Frees a handle made by [`into_handle`]; NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or came from [`into_handle`] for this `T` and is freed once.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: caller contract: produced by `Box::into_raw` and not yet freed.
        drop(unsafe { Box::from_raw(ptr) });
    }
}
