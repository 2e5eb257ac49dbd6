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
    /// Bytes of decoded items still allowed ([`Reader::charge`]).
    budget: usize,
    /// What `budget` started at, for the error.
    budget_total: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`, with no decode budget.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader::with_budget(buf, usize::MAX)
    }

    /// A reader whose decoders may build at most `budget` bytes of items.
    pub fn with_budget(buf: &'a [u8], budget: usize) -> Self {
        Reader {
            buf,
            pos: 0,
            budget,
            budget_total: budget,
        }
    }

    /// Takes `bytes` of decoded items from the budget, before they are
    /// built; past it, [`DecodeErrorKind::TooLarge`] at the current offset.
    #[inline]
    pub fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(DecodeError::new(
                DecodeErrorKind::TooLarge {
                    budget: self.budget_total as u64,
                },
                self.pos,
            )),
        }
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

    /// Reads a non-negative integer that fits `u64` (token ids, hashes).
    /// Negative values are `IntOutOfRange`, other types `WrongFieldType`.
    #[inline(always)]
    pub fn read_u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let at = self.pos;
        let rest = &self.buf[at..];
        // uint8/16/32/64 without a branch per width (token ids mix widths
        // unpredictably): load 8 bytes and shift away what is not the value.
        if let [m @ 0xcc..=0xcf, b0, b1, b2, b3, b4, b5, b6, b7, ..] = *rest {
            let width = 1usize << (m & 3);
            let word = u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
            self.pos = at + 1 + width;
            return Ok(word >> (64 - 8 * width));
        }
        // Fast path for the formats msgspec writes; everything else,
        // including every error, goes through the general reader.
        match *rest {
            [m @ 0x00..=0x7f, ..] => {
                self.pos = at + 1;
                return Ok(u64::from(m));
            }
            [0xcc, b, ..] => {
                self.pos = at + 2;
                return Ok(u64::from(b));
            }
            [0xcd, b0, b1, ..] => {
                self.pos = at + 3;
                return Ok(u64::from(u16::from_be_bytes([b0, b1])));
            }
            [0xce, b0, b1, b2, b3, ..] => {
                self.pos = at + 5;
                return Ok(u64::from(u32::from_be_bytes([b0, b1, b2, b3])));
            }
            [0xcf, b0, b1, b2, b3, b4, b5, b6, b7, ..] => {
                self.pos = at + 9;
                return Ok(u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]));
            }
            _ => {}
        }
        self.read_u64_slow(field)
    }

    #[cold]
    #[inline(never)]
    fn read_u64_slow(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let at = self.pos;
        let v = self.read_int(field)?;
        u64::try_from(v).map_err(|_| DecodeError::new(DecodeErrorKind::IntOutOfRange { field }, at))
    }

    /// Whether the next item is a non-negative integer format.
    #[inline]
    pub fn next_is_uint(&self) -> bool {
        matches!(self.buf.get(self.pos), Some(0x00..=0x7f | 0xcc..=0xcf))
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
#[path = "msgpack_tests.rs"]
mod tests;
