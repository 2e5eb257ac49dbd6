//! A bounded, zero-copy msgpack pull reader over `&[u8]`.
//!
//! Every declared length is checked against the bytes that remain before it
//! is used for anything: a container of `n` elements needs at least `n`
//! bytes (`2n` for maps), a string or byte string exactly its length. So a
//! caller that sizes a `Vec` from a returned length allocates at most in
//! proportion to the payload. Skipping is iterative with an explicit nesting
//! limit. No input makes the reader panic.

use super::error::{DecodeError, DecodeErrorKind};

pub use super::msgpack_write::Writer;

/// Deepest nesting the reader accepts inside one skipped or opaque value.
pub const MAX_DEPTH: usize = 64;

/// One msgpack item. Containers are returned as headers: their elements
/// follow in the input and are read with further calls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// `nil`.
    Nil,
    /// `true` / `false`.
    Bool(bool),
    /// Any integer format, widened.
    Int(i128),
    /// float32 (widened) or float64.
    Float(f64),
    /// A string, validated as UTF-8.
    Str(&'a str),
    /// A byte string.
    Bin(&'a [u8]),
    /// An array header with its element count.
    Array(usize),
    /// A map header with its entry count.
    Map(usize),
    /// An extension value (type byte and data).
    Ext(i8, &'a [u8]),
}

/// Pull reader over a msgpack buffer.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Offset of the next byte to read.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves back (or forward) to an offset obtained from [`Self::position`].
    /// Offsets past the end are clamped to the end.
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.buf.len());
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The error for a declared length `n` that does not fit the remaining
    /// bytes: `HugeLength` when it could not fit even the whole payload.
    fn length_error(&self, n: u64, at: usize) -> DecodeError {
        let kind = if n > self.buf.len() as u64 {
            DecodeErrorKind::HugeLength { declared: n }
        } else {
            DecodeErrorKind::Truncated
        };
        DecodeError::new(kind, at)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(DecodeError::new(DecodeErrorKind::Truncated, self.pos)),
        }
    }

    #[inline]
    fn fixed<const N: usize>(&mut self, at: usize) -> Result<[u8; N], DecodeError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .ok_or(DecodeError::new(DecodeErrorKind::Truncated, at))?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// `n` bytes of a string, byte string or extension declared at `at`.
    #[inline]
    fn take(&mut self, n: u64, at: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() as u64 {
            return Err(self.length_error(n, at));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    /// A container length declared at `at`, checked so that every element
    /// could still take at least `min_bytes_each` bytes.
    #[inline]
    fn container(&self, n: u64, min_bytes_each: u64, at: usize) -> Result<usize, DecodeError> {
        if n.saturating_mul(min_bytes_each) > self.remaining() as u64 {
            return Err(self.length_error(n, at));
        }
        Ok(n as usize)
    }

    fn length(&mut self, width: u8, at: usize) -> Result<u64, DecodeError> {
        Ok(match width {
            1 => u64::from(self.byte()?),
            2 => u64::from(u16::from_be_bytes(self.fixed(at)?)),
            _ => u64::from(u32::from_be_bytes(self.fixed(at)?)),
        })
    }

    fn str_bytes(&mut self, n: u64, at: usize) -> Result<&'a str, DecodeError> {
        let bytes = self.take(n, at)?;
        std::str::from_utf8(bytes)
            .map_err(|e| DecodeError::new(DecodeErrorKind::InvalidUtf8, at + e.valid_up_to()))
    }

    /// Reads one item (a container's header only).
    pub fn read_value(&mut self) -> Result<Value<'a>, DecodeError> {
        let at = self.pos;
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => Value::Int(i128::from(m)),
            0x80..=0x8f => Value::Map(self.container(u64::from(m & 0x0f), 2, at)?),
            0x90..=0x9f => Value::Array(self.container(u64::from(m & 0x0f), 1, at)?),
            0xa0..=0xbf => Value::Str(self.str_bytes(u64::from(m & 0x1f), at)?),
            0xc0 => Value::Nil,
            0xc1 => return Err(DecodeError::new(DecodeErrorKind::ReservedMarker, at)),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let n = self.length(1 << (m - 0xc4), at)?;
                Value::Bin(self.take(n, at)?)
            }
            0xc7..=0xc9 => {
                let n = self.length(1 << (m - 0xc7), at)?;
                let ty = self.byte()? as i8;
                Value::Ext(ty, self.take(n, at)?)
            }
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.fixed(at)?))),
            0xcb => Value::Float(f64::from_be_bytes(self.fixed(at)?)),
            0xcc..=0xd3 => {
                self.pos = at;
                Value::Int(self.read_int("value")?)
            }
            0xd4..=0xd8 => {
                let ty = self.byte()? as i8;
                Value::Ext(ty, self.take(1 << (m - 0xd4), at)?)
            }
            0xd9..=0xdb => {
                let n = self.length(1 << (m - 0xd9), at)?;
                Value::Str(self.str_bytes(n, at)?)
            }
            0xdc | 0xdd => {
                let n = self.length(if m == 0xdc { 2 } else { 4 }, at)?;
                Value::Array(self.container(n, 1, at)?)
            }
            0xde | 0xdf => {
                let n = self.length(if m == 0xde { 2 } else { 4 }, at)?;
                Value::Map(self.container(n, 2, at)?)
            }
            0xe0..=0xff => Value::Int(i128::from(m as i8)),
        })
    }

    /// Reads an integer of any width and sign; anything else is a
    /// `WrongFieldType` error naming `field`.
    #[inline]
    pub fn read_int(&mut self, field: &'static str) -> Result<i128, DecodeError> {
        let at = self.pos;
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => i128::from(self.byte()?),
            0xcd => i128::from(u16::from_be_bytes(self.fixed(at)?)),
            0xce => i128::from(u32::from_be_bytes(self.fixed(at)?)),
            0xcf => i128::from(u64::from_be_bytes(self.fixed(at)?)),
            0xd0 => i128::from(self.byte()? as i8),
            0xd1 => i128::from(i16::from_be_bytes(self.fixed(at)?)),
            0xd2 => i128::from(i32::from_be_bytes(self.fixed(at)?)),
            0xd3 => i128::from(i64::from_be_bytes(self.fixed(at)?)),
            _ => return Err(wrong_type(field, "an integer", at)),
        })
    }

    /// Consumes a `nil` if one comes next; returns whether it did.
    #[inline]
    pub fn try_nil(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads a string (any header width).
    pub fn read_str(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        match self.read_value()? {
            Value::Str(s) => Ok(s),
            _ => Err(wrong_type(field, "a string", at)),
        }
    }

    /// Reads an array header (any width) and returns its element count.
    pub fn read_array_len(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let at = self.pos;
        let m = *self
            .buf
            .get(at)
            .ok_or(DecodeError::new(DecodeErrorKind::Truncated, at))?;
        if (0x90..=0x9f).contains(&m) {
            self.pos += 1;
            return self.container(u64::from(m & 0x0f), 1, at);
        }
        match self.read_value()? {
            Value::Array(n) => Ok(n),
            _ => Err(wrong_type(field, "an array", at)),
        }
    }

    /// Skips one complete value, nested containers included.
    pub fn skip_value(&mut self) -> Result<(), DecodeError> {
        // Elements still to skip at each open nesting level.
        let mut stack = [0usize; MAX_DEPTH];
        let mut depth = 0usize;
        let mut pending = 1usize;
        loop {
            if pending == 0 {
                if depth == 0 {
                    return Ok(());
                }
                depth -= 1;
                pending = stack[depth];
                continue;
            }
            pending -= 1;
            let at = self.pos;
            let inner = match self.read_value()? {
                Value::Array(n) => n,
                // Bounded by the container check: 2n <= remaining bytes.
                Value::Map(n) => 2 * n,
                _ => 0,
            };
            if inner > 0 {
                if depth == MAX_DEPTH {
                    return Err(DecodeError::new(DecodeErrorKind::TooDeep, at));
                }
                stack[depth] = pending;
                depth += 1;
                pending = inner;
            }
        }
    }
}

/// A `WrongFieldType` error.
pub(crate) fn wrong_type(field: &'static str, expected: &'static str, at: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::WrongFieldType { field, expected }, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Value<'_>, DecodeError> {
        Reader::new(bytes).read_value()
    }

    #[test]
    fn every_scalar_format() {
        assert_eq!(one(&[0x05]), Ok(Value::Int(5)));
        assert_eq!(one(&[0xff]), Ok(Value::Int(-1)));
        assert_eq!(one(&[0xcc, 0xff]), Ok(Value::Int(255)));
        assert_eq!(one(&[0xcd, 1, 0]), Ok(Value::Int(256)));
        assert_eq!(one(&[0xce, 0, 1, 0, 0]), Ok(Value::Int(65536)));
        assert_eq!(
            one(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(Value::Int(u64::MAX.into()))
        );
        assert_eq!(one(&[0xd0, 0x80]), Ok(Value::Int(-128)));
        assert_eq!(one(&[0xd1, 0x80, 0]), Ok(Value::Int(-32768)));
        assert_eq!(one(&[0xd2, 0x80, 0, 0, 0]), Ok(Value::Int(i32::MIN.into())));
        assert_eq!(
            one(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Ok(Value::Int(i64::MIN.into()))
        );
        assert_eq!(one(&[0xc0]), Ok(Value::Nil));
        assert_eq!(one(&[0xc3]), Ok(Value::Bool(true)));
        assert_eq!(one(&[0xca, 0x3f, 0x80, 0, 0]), Ok(Value::Float(1.0)));
        assert_eq!(
            one(&[0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
            Ok(Value::Float(1.0))
        );
        assert_eq!(one(&[0xa2, b'h', b'i']), Ok(Value::Str("hi")));
        assert_eq!(one(&[0xd9, 1, b'x']), Ok(Value::Str("x")));
        assert_eq!(one(&[0xda, 0, 1, b'x']), Ok(Value::Str("x")));
        assert_eq!(one(&[0xdb, 0, 0, 0, 1, b'x']), Ok(Value::Str("x")));
        assert_eq!(one(&[0xc4, 1, 7]), Ok(Value::Bin(&[7])));
        assert_eq!(one(&[0xc5, 0, 1, 7]), Ok(Value::Bin(&[7])));
        assert_eq!(one(&[0xc6, 0, 0, 0, 1, 7]), Ok(Value::Bin(&[7])));
        assert_eq!(one(&[0xd4, 1, 9]), Ok(Value::Ext(1, &[9])));
        assert_eq!(one(&[0xc7, 1, 2, 9]), Ok(Value::Ext(2, &[9])));
        assert_eq!(one(&[0x92, 1, 2]), Ok(Value::Array(2)));
        assert_eq!(one(&[0xdc, 0, 1, 1]), Ok(Value::Array(1)));
        assert_eq!(one(&[0x81, 1, 2]), Ok(Value::Map(1)));
        assert_eq!(one(&[0xde, 0, 1, 1, 2]), Ok(Value::Map(1)));
        assert_eq!(one(&[0xdf, 0, 0, 0, 1, 1, 2]), Ok(Value::Map(1)));
    }

    #[test]
    fn declared_lengths_are_checked_before_use() {
        let huge = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x90];
        let e = one(&huge).unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::HugeLength {
                declared: u32::MAX.into()
            }
        );
        assert_eq!(e.offset, 0);
        let e = one(&[0xc6, 0xff, 0xff, 0xff, 0xf0, 0]).unwrap_err();
        assert_eq!(e.kind.code(), "huge_length");
        // Fits in the payload but not in what is left: truncated.
        let buf = [1, 1, 1, 0xa5, b'a', b'b'];
        let mut r = Reader::new(&buf);
        for _ in 0..3 {
            r.read_value().unwrap();
        }
        let e = r.read_value().unwrap_err();
        assert_eq!((e.kind, e.offset), (DecodeErrorKind::Truncated, 3));
        // A map needs two bytes per entry.
        assert!(one(&[0x82, 1, 2, 3]).is_err());
    }

    #[test]
    fn invalid_utf8_points_at_the_bad_byte() {
        let e = one(&[0xa3, b'a', 0xff, b'b']).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidUtf8);
        assert_eq!(e.offset, 1);
    }

    #[test]
    fn skip_is_depth_limited_and_complete() {
        let mut r = Reader::new(&[0x82, 0xa1, b'k', 0x92, 1, 0xc0, 0x01, 0x81, 2, 3, 0x2a]);
        r.skip_value().unwrap();
        assert_eq!(r.read_value(), Ok(Value::Int(42)));
        let deep: Vec<u8> = std::iter::repeat(0x91)
            .take(MAX_DEPTH + 1)
            .chain([0xc0])
            .collect();
        let e = Reader::new(&deep).skip_value().unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TooDeep);
        let ok: Vec<u8> = std::iter::repeat(0x91)
            .take(MAX_DEPTH)
            .chain([0xc0])
            .collect();
        assert!(Reader::new(&ok).skip_value().is_ok());
    }

    #[test]
    fn reserved_marker_is_rejected() {
        assert_eq!(
            one(&[0xc1]).unwrap_err().kind,
            DecodeErrorKind::ReservedMarker
        );
    }
}
