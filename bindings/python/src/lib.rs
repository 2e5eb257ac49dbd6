//! Python bindings for llmd.
