//! Typed decoding errors: what is wrong and at which byte.

use std::fmt;

/// What is wrong with a payload. `code()` gives a stable snake-case name
/// (the `error_kind` names of the vLLM compatibility vectors) that bindings
/// and metrics can map from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends inside a value.
    Truncated,
    /// A declared length exceeds the whole payload, so it can never be
    /// satisfied (and is never used to allocate).
    HugeLength {
        /// The declared element or byte count.
        declared: u64,
    },
    /// The root is not an array of at least two elements.
    WrongRootType,
    /// A known field holds a value of the wrong msgpack type.
    WrongFieldType {
        /// Field name (`"ts"`, `"events"`, `"block_hashes"`, ...).
        field: &'static str,
        /// What the field accepts.
        expected: &'static str,
    },
    /// A required field is absent (or nil).
    MissingField {
        /// Field name.
        field: &'static str,
    },
    /// An integer does not fit the field's range (e.g. a negative token id).
    IntOutOfRange {
        /// Field name.
        field: &'static str,
    },
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// Bytes follow the root value.
    TrailingBytes,
    /// Values are nested deeper than [`crate::events::msgpack::MAX_DEPTH`].
    TooDeep,
    /// The reserved msgpack marker `0xc1`.
    ReservedMarker,
    /// The payload decodes to more memory than
    /// [`crate::events::MAX_DECODE_EXPANSION`] times its size allows (tiny
    /// msgpack values, such as 1-byte integers or empty arrays, that each
    /// become a 24–40-byte item).
    TooLarge {
        /// The bytes of decoded items the payload was allowed.
        budget: u64,
    },
}

impl DecodeErrorKind {
    /// Stable snake-case name of the kind.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeErrorKind::Truncated => "truncated",
            DecodeErrorKind::HugeLength { .. } => "huge_length",
            DecodeErrorKind::WrongRootType => "wrong_root_type",
            DecodeErrorKind::WrongFieldType { .. } => "wrong_field_type",
            DecodeErrorKind::MissingField { .. } => "missing_field",
            DecodeErrorKind::IntOutOfRange { .. } => "int_out_of_range",
            DecodeErrorKind::InvalidUtf8 => "invalid_utf8",
            DecodeErrorKind::TrailingBytes => "trailing_bytes",
            DecodeErrorKind::TooDeep => "too_deep",
            DecodeErrorKind::ReservedMarker => "reserved_marker",
            DecodeErrorKind::TooLarge { .. } => "too_large",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::Truncated => f.write_str("input ends inside a value"),
            DecodeErrorKind::HugeLength { declared } => {
                write!(f, "declared length {declared} exceeds the payload")
            }
            DecodeErrorKind::WrongRootType => {
                f.write_str("root is not an array [ts, events, ...] of at least 2 elements")
            }
            DecodeErrorKind::WrongFieldType { field, expected } => {
                write!(
                    f,
                    "field `{field}` has the wrong type (expected {expected})"
                )
            }
            DecodeErrorKind::MissingField { field } => {
                write!(f, "required field `{field}` is missing")
            }
            DecodeErrorKind::IntOutOfRange { field } => {
                write!(f, "integer in field `{field}` is out of range")
            }
            DecodeErrorKind::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            DecodeErrorKind::TrailingBytes => f.write_str("trailing bytes after the root value"),
            DecodeErrorKind::TooDeep => f.write_str("values nested too deeply"),
            DecodeErrorKind::ReservedMarker => f.write_str("reserved msgpack marker 0xc1"),
            DecodeErrorKind::TooLarge { budget } => {
                write!(f, "decoded items would take more than {budget} bytes")
            }
        }
    }
}

/// A payload that could not be decoded: the defect and the byte offset of
/// the value where it was found (for length defects, the value's header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What is wrong.
    pub kind: DecodeErrorKind,
    /// Byte offset in the payload.
    pub offset: usize,
}

impl DecodeError {
    /// An error of `kind` at `offset`.
    pub fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        DecodeError { kind, offset }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid KV event batch at byte {}: {}",
            self.offset, self.kind
        )
    }
}

impl std::error::Error for DecodeError {}
