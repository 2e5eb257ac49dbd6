//! Maps Rust error values onto the Python exception classes of `llmd._errors`.
//!
//! The classes are defined in Python so that each one can derive from both
//! `LlmdError` and the matching built-in; the native side looks them up once
//! per interpreter and raises them by kind.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// Which exception class to raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Config,
    EventDecode,
    Hash,
    InvalidArgument,
    UnknownEndpoint,
    NoEndpoints,
    ResourceExhausted,
    PreconditionFailed,
    Io,
    Other,
}

impl Kind {
    const COUNT: usize = 10;

    fn index(self) -> usize {
        self as usize
    }

    /// The `.code` an error of this kind carries unless a more precise one
    /// is set (a scheduler error's name, a decoder defect): a lowercase
    /// string, as the C ABI's `llmd_error_code` and Go's `Error.Code`.
    fn default_code(self) -> &'static str {
        match self {
            Kind::Config => "config",
            Kind::EventDecode => "decode",
            Kind::Hash => "hash",
            Kind::InvalidArgument => "invalid_argument",
            Kind::UnknownEndpoint => "unknown_endpoint",
            Kind::NoEndpoints => "no_endpoints",
            Kind::ResourceExhausted => "resource_exhausted",
            Kind::PreconditionFailed => "precondition_failed",
            Kind::Io => "io",
            Kind::Other => "error",
        }
    }

    fn class_name(self) -> &'static str {
        match self {
            Kind::Config => "ConfigError",
            Kind::EventDecode => "EventDecodeError",
            Kind::Hash => "HashError",
            Kind::InvalidArgument => "InvalidArgumentError",
            Kind::UnknownEndpoint => "UnknownEndpointError",
            Kind::NoEndpoints => "NoEndpointsError",
            Kind::ResourceExhausted => "ResourceExhaustedError",
            Kind::PreconditionFailed => "PreconditionFailedError",
            Kind::Io => "IoError",
            Kind::Other => "LlmdError",
        }
    }
}

static CLASSES: [PyOnceLock<Py<PyType>>; Kind::COUNT] = [const { PyOnceLock::new() }; Kind::COUNT];

/// Builds the Python exception of `kind` carrying `message`.
pub(crate) fn error(py: Python<'_>, kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match CLASSES[kind.index()].import(py, "llmd._errors", kind.class_name()) {
        Ok(class) => {
            let err = PyErr::from_type(class.clone(), message);
            // An attribute is a convenience; the message says what happened.
            let _ = err.value(py).setattr("code", kind.default_code());
            err
        }
        // Importing our own module only fails if the package is broken; the
        // import error says why, which is more useful than the lost message.
        Err(import_error) => import_error,
    }
}

/// The Python exception for a scheduler error, with its stable `code` name,
/// its numeric `detail` (llm-d's HTTP status for scheduling outcomes, 1001
/// and up for library errors) and llm-d's `dropped_reason` where there is one.
pub(crate) fn schedule_error(py: Python<'_>, e: &llmd_sched::ScheduleError) -> PyErr {
    use llmd_sched::ScheduleError as E;
    let kind = match e {
        E::NoEndpoints { .. } => Kind::NoEndpoints,
        E::ResourceExhausted { .. } => Kind::ResourceExhausted,
        E::Config(_) => Kind::Config,
        E::InvalidRequest(_) | E::MetricsText(_) => Kind::InvalidArgument,
        E::UnknownEndpoint(_) => Kind::UnknownEndpoint,
        E::KvEvents(_) => Kind::EventDecode,
        E::Hash(_) => Kind::Hash,
        // The index refused an endpoint: its slots (`maxEndpoints`) are taken.
        E::Index(_) => Kind::ResourceExhausted,
        E::PreconditionFailed { .. } => Kind::PreconditionFailed,
    };
    let err = error(py, kind, e.to_string());
    let value = err.value(py);
    // Attributes are a convenience; the message already says what happened.
    let _ = value.setattr("code", e.name());
    let _ = value.setattr("detail", e.code());
    let _ = value.setattr("dropped_reason", e.dropped_reason());
    err
}

static NOT_EXECUTED_WARNING: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Emits one `llmd.NotExecutedWarning` per line (settings the library
/// accepts but does not execute), attributed to the Python line that made
/// the call (stack level 1: a native function has no frame of its own).
pub(crate) fn warn_not_executed(py: Python<'_>, lines: &[String]) -> PyResult<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let class = NOT_EXECUTED_WARNING.import(py, "llmd._errors", "NotExecutedWarning")?;
    for line in lines {
        let msg = std::ffi::CString::new(line.replace('\0', " "))
            .map_err(|e| error(py, Kind::Other, e.to_string()))?;
        PyErr::warn(py, class.as_any(), &msg, 1)?;
    }
    Ok(())
}
