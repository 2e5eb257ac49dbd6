//! Status codes returned by every fallible call.

/// Result of a call. Values are explicit and never reused: a code that is
/// retired stays reserved, new codes take new numbers.
#[allow(non_camel_case_types)] // C naming for the exported type
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum llmd_status {
    /// Success; outputs were written.
    Ok = 0,
    /// A required pointer argument was NULL (or a NULL pointer came with a
    /// non-zero length).
    NullArgument = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// An argument was out of range or otherwise invalid.
    InvalidArgument = 3,
    /// A caller-provided buffer was too small; nothing was written.
    BufferTooSmall = 4,
    /// Scheduler configuration (YAML/JSON) could not be parsed or built.
    Config = 5,
    /// A file could not be read.
    Io = 6,
    /// Hasher configuration or hashing failed.
    Hash = 7,
    /// KV-event bytes could not be decoded.
    Decode = 8,
    /// The named endpoint is not known.
    UnknownEndpoint = 9,
    /// Endpoint metrics text could not be parsed.
    MetricsParse = 10,
    /// The scheduler could not pick a target; the error's code says why.
    Schedule = 11,
    /// Serialising a result (JSON) failed.
    Serialize = 12,
    /// The index rejected the call; the message says why.
    Index = 13,
    /// A bug inside the library was caught at the ABI boundary. The handle
    /// involved stays valid, but the call had no effect that can be relied on.
    Panic = 14,
}

/// A static, NUL-terminated name for `status` (e.g. `"LLMD_STATUS_CONFIG"`),
/// or `"LLMD_STATUS_UNKNOWN"` for a value this library does not define.
#[no_mangle]
pub extern "C" fn llmd_status_name(status: u32) -> *const std::ffi::c_char {
    let name: &'static std::ffi::CStr = match status {
        0 => c"LLMD_STATUS_OK",
        1 => c"LLMD_STATUS_NULL_ARGUMENT",
        2 => c"LLMD_STATUS_INVALID_UTF8",
        3 => c"LLMD_STATUS_INVALID_ARGUMENT",
        4 => c"LLMD_STATUS_BUFFER_TOO_SMALL",
        5 => c"LLMD_STATUS_CONFIG",
        6 => c"LLMD_STATUS_IO",
        7 => c"LLMD_STATUS_HASH",
        8 => c"LLMD_STATUS_DECODE",
        9 => c"LLMD_STATUS_UNKNOWN_ENDPOINT",
        10 => c"LLMD_STATUS_METRICS_PARSE",
        11 => c"LLMD_STATUS_SCHEDULE",
        12 => c"LLMD_STATUS_SERIALIZE",
        13 => c"LLMD_STATUS_INDEX",
        14 => c"LLMD_STATUS_PANIC",
        _ => c"LLMD_STATUS_UNKNOWN",
    };
    name.as_ptr()
}
