//! Conversions of Python arguments into Rust values, done while the GIL is
//! held so that the work itself can run without it.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

/// Reads token ids from a list, a tuple or any iterable of ints.
///
/// Ints outside `[0, 2**64)` raise `OverflowError` and other objects
/// `TypeError`, as Python's own conversions do. Lists and tuples of ints, the
/// common case, take a fast path: converting an 8k-token prompt costs about
/// as much as hashing it, so the per-item overhead matters.
pub(crate) fn tokens(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    if let Some(tokens) = fast_ints(obj) {
        return Ok(tokens);
    }
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "tokens must be a sequence of ints, not a string",
        ));
    }
    // The general path also produces the precise error for bad items.
    obj.try_iter()?.map(|item| item?.extract::<u64>()).collect()
}

/// Lists and tuples whose items are all ints in range, read with borrowed
/// references; `None` sends any other input (or a bad item) to the general path.
fn fast_ints(obj: &Bound<'_, PyAny>) -> Option<Vec<u64>> {
    let get_item: unsafe extern "C" fn(*mut ffi::PyObject, ffi::Py_ssize_t) -> *mut ffi::PyObject;
    let len = if let Ok(tuple) = obj.cast::<PyTuple>() {
        get_item = ffi::PyTuple_GetItem;
        tuple.len()
    } else if let Ok(list) = obj.cast::<PyList>() {
        // Without the GIL another thread could shrink the list under the
        // borrowed references; such builds take the general path.
        if cfg!(Py_GIL_DISABLED) {
            return None;
        }
        get_item = ffi::PyList_GetItem;
        list.len()
    } else {
        return None;
    };
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        // SAFETY: `obj` is a live tuple or list and `i < len`. The GIL is held
        // and nothing in this loop runs Python code (`PyLong_Check` reads a
        // type flag and `PyLong_AsLongLong` of an int never calls back into
        // Python), so no other thread can resize the list or drop the
        // borrowed item before it is read.
        let value = unsafe {
            let item = get_item(obj.as_ptr(), i as ffi::Py_ssize_t);
            if item.is_null() || ffi::PyLong_Check(item) == 0 {
                None
            } else {
                // The signed conversion has a fast path for small ints that
                // the unsigned one lacks before CPython 3.12; ids >= 2**63
                // fail here and are read by the general path.
                Some(ffi::PyLong_AsLongLong(item))
            }
        };
        match value {
            Some(v) if v >= 0 => out.push(v as u64),
            _ => {
                drop(PyErr::take(obj.py()));
                return None;
            }
        }
    }
    Some(out)
}
