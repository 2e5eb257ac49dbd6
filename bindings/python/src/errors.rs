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
    Other,
}

impl Kind {
    const COUNT: usize = 8;

    fn index(self) -> usize {
        self as usize
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
            Kind::Other => "LlmdError",
        }
    }
}

static CLASSES: [PyOnceLock<Py<PyType>>; Kind::COUNT] = [const { PyOnceLock::new() }; Kind::COUNT];

/// Builds the Python exception of `kind` carrying `message`.
pub(crate) fn error(py: Python<'_>, kind: Kind, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match CLASSES[kind.index()].import(py, "llmd._errors", kind.class_name()) {
        Ok(class) => PyErr::from_type(class.clone(), message),
        // Importing our own module only fails if the package is broken; the
        // import error says why, which is more useful than the lost message.
        Err(import_error) => import_error,
    }
}
