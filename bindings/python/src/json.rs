//! Plain Python values (dict, list, str, int, float, bool, None) from any
//! `Serialize` value, for results that Python code reads as data
//! (explanations, request summaries), and JSON text of Python arguments.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::IntoPyObjectExt;
use serde::Serialize;
use serde_json::Value;

use crate::errors::{error, Kind};

/// Converts `value` through its JSON data model.
pub(crate) fn to_py<T: Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| error(py, Kind::Other, format!("cannot convert a result: {e}")))?;
    value_to_py(py, &json)
}

fn value_to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    match v {
        Value::Null => Ok(py.None()),
        Value::Bool(b) => b.into_py_any(py),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_py_any(py)
            } else if let Some(i) = n.as_i64() {
                i.into_py_any(py)
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_py_any(py)
            }
        }
        Value::String(s) => s.into_py_any(py),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_py_any(py)
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, value_to_py(py, item)?)?;
            }
            dict.into_py_any(py)
        }
    }
}

/// JSON text of a Python argument (`json.dumps`, dict order kept), any
/// `collections.abc.Mapping` written as a dict as the stubs promise; a value
/// that is not JSON-serializable is an `InvalidArgumentError` naming `what`.
pub(crate) fn dumps(py: Python<'_>, v: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let mapping = py.import("collections.abc")?.getattr("Mapping")?.unbind();
    let dict = py.import("builtins")?.getattr("dict")?.unbind();
    // Called by `json.dumps` for what it cannot write itself.
    let default = pyo3::types::PyCFunction::new_closure(
        py,
        None,
        None,
        move |args: &Bound<'_, pyo3::types::PyTuple>, _| -> PyResult<Py<PyAny>> {
            let py = args.py();
            let o = args.get_item(0)?;
            if o.is_instance(mapping.bind(py))? {
                return Ok(dict.bind(py).call1((o,))?.unbind());
            }
            Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "Object of type {} is not JSON serializable",
                o.get_type().name()?
            )))
        },
    )?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("default", default)?;
    py.import("json")?
        .call_method("dumps", (v,), Some(&kwargs))
        .and_then(|s| s.extract::<String>())
        .map_err(|e| {
            // What `json.dumps` raises for a value it cannot write; anything
            // else (a `KeyboardInterrupt`, a `MemoryError`, an exception of
            // the value's own code) goes on as it was raised.
            use pyo3::exceptions::{PyOverflowError, PyRecursionError, PyTypeError, PyValueError};
            let unwritable = e.is_instance_of::<PyTypeError>(py)
                || e.is_instance_of::<PyValueError>(py)
                || e.is_instance_of::<PyOverflowError>(py)
                || e.is_instance_of::<PyRecursionError>(py);
            if !unwritable {
                return e;
            }
            error(
                py,
                Kind::InvalidArgument,
                format!("{what}: not JSON-serializable ({e})"),
            )
        })
}

/// Nesting accepted by [`from_py`] (an OpenAI `usage` object needs 2).
const MAX_DEPTH: usize = 32;

/// The JSON data model of a plain Python value (dict with str keys, list,
/// tuple, str, int, float, bool, None); anything else (a NaN or infinite
/// float included), or nesting deeper than 32, is an `InvalidArgumentError`
/// naming `what`.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    fn go(obj: &Bound<'_, PyAny>, what: &str, depth: usize) -> PyResult<Value> {
        let py = obj.py();
        let bad = |why: &str| error(py, Kind::InvalidArgument, format!("{what}: {why}"));
        if depth > MAX_DEPTH {
            return Err(bad("nested too deeply"));
        }
        if obj.is_none() {
            return Ok(Value::Null);
        }
        if let Ok(b) = obj.cast::<pyo3::types::PyBool>() {
            return Ok(Value::Bool(b.is_true()));
        }
        if let Ok(i) = obj.extract::<i64>() {
            if obj.is_instance_of::<pyo3::types::PyInt>() {
                return Ok(Value::from(i));
            }
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        if let Ok(f) = obj.cast::<pyo3::types::PyFloat>() {
            // NaN and the infinities are no JSON number: an error, not a
            // null that would read as "not given".
            return serde_json::Number::from_f64(f.value())
                .map(Value::Number)
                .ok_or_else(|| bad(&format!("{} is not a finite number", f.value())));
        }
        if let Ok(s) = obj.cast::<pyo3::types::PyString>() {
            return Ok(Value::String(s.to_str()?.to_string()));
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            let mut map = serde_json::Map::new();
            for (k, v) in d.iter() {
                let k = k
                    .cast::<pyo3::types::PyString>()
                    .map_err(|_| bad("dict keys must be str"))?;
                map.insert(k.to_str()?.to_string(), go(&v, what, depth + 1)?);
            }
            return Ok(Value::Object(map));
        }
        if let Ok(l) = obj.cast::<PyList>() {
            return l.iter().map(|v| go(&v, what, depth + 1)).collect();
        }
        if let Ok(t) = obj.cast::<pyo3::types::PyTuple>() {
            return t.iter().map(|v| go(&v, what, depth + 1)).collect();
        }
        // Any other `collections.abc.Mapping` (as the stubs promise), read
        // through its items, then any other sequence but bytes.
        if let Ok(m) = obj.cast::<pyo3::types::PyMapping>() {
            let mut map = serde_json::Map::new();
            for item in m.items()?.iter() {
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                let k = k
                    .cast::<pyo3::types::PyString>()
                    .map_err(|_| bad("mapping keys must be str"))?;
                map.insert(k.to_str()?.to_string(), go(&v, what, depth + 1)?);
            }
            return Ok(Value::Object(map));
        }
        if !obj.is_instance_of::<pyo3::types::PyBytes>()
            && !obj.is_instance_of::<pyo3::types::PyByteArray>()
        {
            if let Ok(seq) = obj.cast::<pyo3::types::PySequence>() {
                return seq.try_iter()?.map(|v| go(&v?, what, depth + 1)).collect();
            }
        }
        Err(bad(&format!(
            "unsupported value of type {}",
            obj.get_type().name()?
        )))
    }
    go(obj, what, 0)
}

/// A mapping of str to str (a `dict` or any `collections.abc.Mapping`);
/// anything else is an `InvalidArgumentError` naming `what`.
pub(crate) fn str_map(
    obj: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<std::collections::BTreeMap<String, String>>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let py = obj.py();
    let bad = || {
        error(
            py,
            Kind::InvalidArgument,
            format!("{what} must be a mapping of str to str"),
        )
    };
    let Value::Object(map) = from_py(obj, what)? else {
        return Err(bad());
    };
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(v) => Ok((k, v)),
            _ => Err(bad()),
        })
        .collect::<PyResult<_>>()
        .map(Some)
}
