//! Conversions of Python arguments into Rust values, done while the GIL is
//! held so that the work itself can run without it.

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString, PyTuple};

use crate::errors::{error, Kind};

/// Reads token ids from a list, a tuple or any iterable of ints.
///
/// An int outside `[0, 2**64)` raises `InvalidArgumentError` (a
/// `ValueError`) naming its position; other objects raise `TypeError`.
pub(crate) fn tokens(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    if let Some(tokens) = fast_ints(obj, |v| u64::try_from(v).ok()) {
        return Ok(tokens);
    }
    general(obj)?
        .enumerate()
        .map(|(i, item)| token(&item?, i, u64::MAX))
        .collect()
}

/// Like [`tokens`], for ids that must fit 32 bits (the scheduler's prompts).
pub(crate) fn tokens_u32(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    if let Some(tokens) = fast_ints(obj, |v| u32::try_from(v).ok()) {
        return Ok(tokens);
    }
    general(obj)?
        .enumerate()
        .map(|(i, item)| token(&item?, i, u64::from(u32::MAX)).map(|t| t as u32))
        .collect()
}

/// Token `i`: an int in `0 ..= max` (a Python `int` or any integer with
/// `__index__`, such as numpy's). Other integers are `InvalidArgumentError`;
/// non-integers `TypeError`, as Python's own conversions say.
fn token(item: &Bound<'_, PyAny>, i: usize, max: u64) -> PyResult<u64> {
    let py = item.py();
    match item.extract::<u64>() {
        Ok(t) if t <= max => Ok(t),
        // Not an integer at all: Python's own TypeError.
        Err(e) if !item.is_instance_of::<PyInt>() && !e.is_instance_of::<PyOverflowError>(py) => {
            Err(e)
        }
        _ => Err(error(
            item.py(),
            Kind::InvalidArgument,
            format!("token id {item} at position {i} is out of range (0 ..= {max})"),
        )),
    }
}

/// The general path: any iterable (except a string); it also produces the
/// precise error for a bad item.
fn general<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "tokens must be a sequence of ints, not a string",
        ));
    }
    obj.try_iter()
}

/// Lists and tuples whose items are all exact `int`s accepted by `narrow`,
/// read through borrowed references: converting an 8k-token prompt costs as
/// much as hashing it, so the per-item cost matters. `None` sends any other
/// input (or a bad item) to the general path.
fn fast_ints<T>(obj: &Bound<'_, PyAny>, narrow: impl Fn(i64) -> Option<T>) -> Option<Vec<T>> {
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
        // and nothing in this loop runs Python code: only exact ints (not
        // subclasses, whose `__index__` could run) reach `PyLong_AsLongLong`.
        // So no other thread can resize the list or drop the borrowed item
        // before it is read.
        let value = unsafe {
            let item = get_item(obj.as_ptr(), i as ffi::Py_ssize_t);
            if item.is_null() || ffi::Py_TYPE(item) != std::ptr::addr_of_mut!(ffi::PyLong_Type) {
                None
            } else {
                // The signed conversion has a fast path for small ints that
                // the unsigned one lacks before CPython 3.12; ids >= 2**63
                // fail here and are read by the general path.
                Some(ffi::PyLong_AsLongLong(item))
            }
        };
        match value.filter(|v| *v >= 0).and_then(&narrow) {
            Some(v) => out.push(v),
            None => {
                // A failed conversion leaves an exception set; the general
                // path raises its own.
                drop(PyErr::take(obj.py()));
                return None;
            }
        }
    }
    Some(out)
}

/// The range of an integer argument type.
pub(crate) trait IntRange: TryFrom<i128> + Copy {
    /// The smallest value.
    const MIN: i128;
    /// The largest value.
    const MAX: i128;
}

macro_rules! int_range {
    ($($t:ty),*) => {$(
        impl IntRange for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
        }
    )*};
}
int_range!(u16, u32, u64, usize, i32, i64);

/// An integer argument (`#[pyo3(from_py_with = int)]`). A Python int
/// outside `T`'s range raises `InvalidArgumentError` (a `ValueError`) that
/// gives the range, as other bad values of the same arguments do, instead
/// of PyO3's bare `OverflowError`; a non-integer stays Python's
/// `TypeError`. PyO3 notes which argument it was.
pub(crate) fn int<T: IntRange>(obj: &Bound<'_, PyAny>) -> PyResult<T> {
    let py = obj.py();
    let out_of_range = || {
        // `str()` of an int of thousands of digits fails (and is long):
        // such a value is described by its size.
        let shown = match obj.str() {
            Ok(s) if s.len().is_ok_and(|n| n <= 64) => s.to_string(),
            _ => "of more than 64 digits".to_string(),
        };
        error(
            py,
            Kind::InvalidArgument,
            format!(
                "integer {shown} is out of range ({} ..= {})",
                T::MIN,
                T::MAX
            ),
        )
    };
    match obj.extract::<i128>() {
        Ok(v) => T::try_from(v).map_err(|_| out_of_range()),
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => Err(out_of_range()),
        Err(e) => Err(e),
    }
}

/// `mm_items` of the hashing calls (`from_py_with`): `(identifier, offset,
/// length)` triples, the integers read as [`int`] reads them; `None` is
/// `None`.
pub(crate) fn opt_mm_items(
    obj: &Bound<'_, PyAny>,
) -> PyResult<Option<Vec<(String, usize, usize)>>> {
    if obj.is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in obj.try_iter()? {
        let (id, offset, len): (String, Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        out.push((id, int(&offset)?, int(&len)?));
    }
    Ok(Some(out))
}

/// `prompt_embeds` of the hashing calls (`from_py_with`): `(bytes, count)`,
/// the count read as [`int`] reads it; `None` is `None`.
pub(crate) fn opt_prompt_embeds(obj: &Bound<'_, PyAny>) -> PyResult<Option<(Vec<u8>, usize)>> {
    if obj.is_none() {
        return Ok(None);
    }
    let (bytes, n): (Vec<u8>, Bound<'_, PyAny>) = obj.extract()?;
    Ok(Some((bytes, int(&n)?)))
}

/// A float argument: what Python's `float()` would make of it, except that
/// an int too large for a float (`10**400`) is an `InvalidArgumentError`
/// (a `ValueError`), not a bare `OverflowError`.
pub(crate) fn float(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    let py = obj.py();
    match obj.extract::<f64>() {
        Ok(v) => Ok(v),
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => Err(error(
            py,
            Kind::InvalidArgument,
            "number too large to convert to a float".to_string(),
        )),
        Err(e) => Err(e),
    }
}

/// [`float`] for an optional argument: `None` is `None`.
pub(crate) fn opt_float(obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if obj.is_none() {
        return Ok(None);
    }
    float(obj).map(Some)
}

/// [`int`] for an optional argument: `None` is `None`.
pub(crate) fn opt_int<T: IntRange>(obj: &Bound<'_, PyAny>) -> PyResult<Option<T>> {
    if obj.is_none() {
        return Ok(None);
    }
    int(obj).map(Some)
}
