//! Conversions of Python arguments into Rust values, done while the GIL is
//! held so that the work itself can run without it.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// Reads token ids from a list, a tuple or any iterable of ints.
///
/// Lists and tuples, the common case, are read by index without building an
/// iterator object; ints outside `[0, 2**64)` raise `OverflowError` and other
/// objects `TypeError`, as Python's own conversions do.
pub(crate) fn tokens(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    if let Ok(list) = obj.cast::<PyList>() {
        let mut out = Vec::with_capacity(list.len());
        for item in list.iter() {
            out.push(item.extract::<u64>()?);
        }
        return Ok(out);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let mut out = Vec::with_capacity(tuple.len());
        for item in tuple.iter() {
            out.push(item.extract::<u64>()?);
        }
        return Ok(out);
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "tokens must be a sequence of ints, not a string",
        ));
    }
    obj.try_iter()?.map(|item| item?.extract::<u64>()).collect()
}
