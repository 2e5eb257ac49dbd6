//! Handles, and the shapes of every exported call on them.
//!
//! A handle is an opaque boxed Rust value the host owns. Each exported
//! function is one of:
//! - [`create`]: checks `out`, builds the value, writes a new handle;
//! - [`call`] (and [`call_mut`] for the few mutable handles): borrows a live
//!   handle (NULL is `LLMD_STATUS_NULL_ARGUMENT`) and runs a fallible body;
//!   [`borrow`] takes a second handle argument the same way;
//! - [`read`]: an infallible accessor, with a fallback for NULL;
//! - [`release`]: frees a handle; NULL is ignored.
//!
//! All run inside the panic boundary and errors convert with `?` (every
//! library error type has a `From` into the ABI error), so a method's own
//! lines are its arguments and its logic.

use crate::args::{self, free_handle, into_handle, Out};
use crate::error::{llmd_error, FfiError};
use crate::panic::{guard, guard_value};
use crate::status::llmd_status;

/// An exported opaque type: a newtype over the Rust value it carries.
pub(crate) trait Handle {
    /// The Rust value.
    type Inner: ?Sized;
    /// The parameter name a NULL handle is reported under.
    const NAME: &'static str;
    /// Borrows the value.
    fn inner(&self) -> &Self::Inner;
    /// Borrows the value mutably.
    fn inner_mut(&mut self) -> &mut Self::Inner;
}

/// Declares `$ty(inner)` (or `$ty` itself, given no inner type) a
/// [`Handle`] reported as `$name` when NULL.
macro_rules! handle {
    ($ty:ty, $name:literal) => {
        impl $crate::handle::Handle for $ty {
            type Inner = $ty;
            const NAME: &'static str = $name;
            fn inner(&self) -> &$ty {
                self
            }
            fn inner_mut(&mut self) -> &mut $ty {
                self
            }
        }
    };
    ($ty:ty, $inner:ty, $name:literal) => {
        impl $crate::handle::Handle for $ty {
            type Inner = $inner;
            const NAME: &'static str = $name;
            fn inner(&self) -> &$inner {
                &self.0
            }
            fn inner_mut(&mut self) -> &mut $inner {
                &mut self.0
            }
        }
    };
}
pub(crate) use handle;

/// Borrows the value of a handle argument (NULL is
/// `LLMD_STATUS_NULL_ARGUMENT`), for a call's second handle.
///
/// # Safety
/// `h` is NULL or live for `'a`.
pub(crate) unsafe fn borrow<'a, H: Handle + 'a>(h: *const H) -> Result<&'a H::Inner, FfiError> {
    // SAFETY: caller contract.
    unsafe { args::handle(h, H::NAME) }.map(H::inner)
}

/// Builds a value with `body` and writes it to `*out` as a new handle;
/// `out` is checked before `body` runs, and nothing is written on error.
///
/// # Safety
/// `out` is NULL or valid for a write; `err` is NULL or valid for a write.
pub(crate) unsafe fn create<T>(
    out: *mut *mut T,
    err: *mut *mut llmd_error,
    body: impl FnOnce() -> Result<T, FfiError>,
) -> llmd_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        guard(err, || {
            let out = Out::new(out, "out")?;
            out.write(into_handle(body()?));
            Ok(())
        })
    }
}

/// Runs `body` on the value of the live handle `h`.
///
/// # Safety
/// `h` is NULL or live; `err` is NULL or valid for a write.
pub(crate) unsafe fn call<H: Handle>(
    h: *const H,
    err: *mut *mut llmd_error,
    body: impl FnOnce(&H::Inner) -> Result<(), FfiError>,
) -> llmd_status {
    // SAFETY: forwarded caller contract.
    unsafe { guard(err, || body(borrow(h)?)) }
}

/// Runs `body` on the value of the live handle `h`, borrowed mutably.
///
/// # Safety
/// `h` is NULL or live and not used by another call meanwhile; `err` is
/// NULL or valid for a write.
pub(crate) unsafe fn call_mut<H: Handle>(
    h: *mut H,
    err: *mut *mut llmd_error,
    body: impl FnOnce(&mut H::Inner) -> Result<(), FfiError>,
) -> llmd_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        guard(err, || {
            let h = h.as_mut().ok_or_else(|| FfiError::null(H::NAME))?;
            body(h.inner_mut())
        })
    }
}

/// An accessor: `body` of the handle's value, `fallback` when `h` is NULL
/// (or the body panics).
///
/// # Safety
/// `h` is NULL or live.
pub(crate) unsafe fn read<H: Handle, T: Copy>(
    h: *const H,
    fallback: T,
    body: impl FnOnce(&H::Inner) -> T,
) -> T {
    // SAFETY: caller contract.
    guard_value(fallback, || {
        unsafe { h.as_ref() }.map_or(fallback, |h| body(h.inner()))
    })
}

/// Frees a handle made by [`create`] (or `into_handle`); NULL is ignored.
///
/// # Safety
/// `h` is NULL or a handle of this type not yet freed, with no call in
/// flight.
pub(crate) unsafe fn release<T>(h: *mut T) {
    // SAFETY: caller contract.
    guard_value((), || unsafe { free_handle(h) })
}
