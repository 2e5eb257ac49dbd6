//! llmd-sim: a calibrated, deterministic simulator of a vLLM fleet.
#![deny(missing_docs)]
