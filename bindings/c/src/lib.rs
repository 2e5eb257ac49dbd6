//! C ABI for llmd.
