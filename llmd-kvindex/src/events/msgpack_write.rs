//! msgpack writer choosing the same formats as msgspec: every integer in its
//! shortest form (non-negative values as fixint/uint*, negative ones as
//! negative fixint/int*), floats as float64, and the narrowest header for
//! strings, byte strings, arrays and maps.

/// Appends msgpack items to a byte buffer.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// `nil`.
    pub fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    /// `true` / `false`.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(if v { 0xc3 } else { 0xc2 });
    }

    /// A non-negative integer.
    pub fn uint(&mut self, v: u64) {
        let (b, n) = uint_bytes(v);
        self.buf.extend_from_slice(&b[..n]);
    }

    /// Non-negative integers, each as [`Writer::uint`] writes it, with room
    /// reserved once for all (a `BlockStored`'s token ids).
    pub fn uints(&mut self, vs: &[u64]) {
        self.buf.reserve(vs.len() * 9);
        for &v in vs {
            let (b, n) = uint_bytes(v);
            // A fixed-size copy (inlined, unlike a copy of `n` bytes), then
            // the unused tail dropped.
            let end = self.buf.len() + n;
            self.buf.extend_from_slice(&b);
            self.buf.truncate(end);
        }
    }

    /// A signed integer.
    pub fn int(&mut self, v: i64) {
        if v >= 0 {
            self.uint(v as u64);
        } else if v >= -32 {
            self.buf.push(v as i8 as u8);
        } else if v >= i64::from(i8::MIN) {
            self.buf.extend_from_slice(&[0xd0, v as i8 as u8]);
        } else if v >= i64::from(i16::MIN) {
            self.buf.push(0xd1);
            self.buf.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= i64::from(i32::MIN) {
            self.buf.push(0xd2);
            self.buf.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            self.buf.push(0xd3);
            self.buf.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// An integer of the decoded model's width. msgpack holds values in
    /// `[i64::MIN, u64::MAX]`; others are written modulo 2^64 as unsigned,
    /// which keeps a hash's 64-bit key (vLLM SPEC §2.6) unchanged.
    pub fn int128(&mut self, v: i128) {
        if let Ok(u) = u64::try_from(v) {
            self.uint(u);
        } else if let Ok(i) = i64::try_from(v) {
            self.int(i);
        } else {
            self.uint(v as u64);
        }
    }

    /// A float64.
    pub fn f64(&mut self, v: f64) {
        self.buf.push(0xcb);
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A string.
    pub fn str(&mut self, s: &str) {
        let n = s.len();
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else {
            self.header(n, [0xd9, 0xda, 0xdb]);
        }
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// A byte string.
    pub fn bin(&mut self, b: &[u8]) {
        self.header(b.len(), [0xc4, 0xc5, 0xc6]);
        self.buf.extend_from_slice(b);
    }

    /// An array header for `n` elements.
    pub fn array_len(&mut self, n: usize) {
        if n < 16 {
            self.buf.push(0x90 | n as u8);
        } else {
            self.header_wide(n, [0xdc, 0xdd]);
        }
    }

    /// A map header for `n` entries.
    pub fn map_len(&mut self, n: usize) {
        self.map_len_sized(n, n);
    }

    /// A map header whose format is chosen by `max_entries` while it counts
    /// `n`: msgspec sizes a struct's header by the number of fields it can
    /// have, not the number it writes (vLLM SPEC §4.3).
    pub fn map_len_sized(&mut self, n: usize, max_entries: usize) {
        if max_entries < 16 {
            self.buf.push(0x80 | (n as u8 & 0x0f));
        } else {
            self.header_wide(n, [0xde, 0xdf]);
        }
    }

    /// A header with an 8-, 16- or 32-bit length.
    fn header(&mut self, n: usize, markers: [u8; 3]) {
        if n <= 0xff {
            self.buf.extend_from_slice(&[markers[0], n as u8]);
        } else {
            self.header_wide(n, [markers[1], markers[2]]);
        }
    }

    /// A header with a 16- or 32-bit length; msgpack cannot hold more than
    /// `u32::MAX` items, so larger counts saturate.
    fn header_wide(&mut self, n: usize, markers: [u8; 2]) {
        if n <= 0xffff {
            self.buf.push(markers[0]);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            self.buf.push(markers[1]);
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// The shortest msgpack encoding of `v`: the bytes and how many are used.
#[inline(always)]
fn uint_bytes(v: u64) -> ([u8; 9], usize) {
    let mut b = [0u8; 9];
    let n = if v < 0x80 {
        b[0] = v as u8;
        1
    } else if v <= 0xff {
        b[..2].copy_from_slice(&[0xcc, v as u8]);
        2
    } else if v <= 0xffff {
        b[0] = 0xcd;
        b[1..3].copy_from_slice(&(v as u16).to_be_bytes());
        3
    } else if v <= 0xffff_ffff {
        b[0] = 0xce;
        b[1..5].copy_from_slice(&(v as u32).to_be_bytes());
        5
    } else {
        b[0] = 0xcf;
        b[1..].copy_from_slice(&v.to_be_bytes());
        9
    };
    (b, n)
}

#[cfg(test)]
mod tests {
    use super::super::msgpack::{Reader, Value};
    use super::*;

    #[test]
    fn integers_round_trip_in_shortest_form() {
        let cases: [(i128, usize); 12] = [
            (0, 1),
            (127, 1),
            (128, 2),
            (256, 3),
            (65536, 5),
            (1 << 32, 9),
            (-1, 1),
            (-32, 1),
            (-33, 2),
            (-129, 3),
            (-32769, 5),
            (i128::from(i64::MIN), 9),
        ];
        for (v, len) in cases {
            let mut w = Writer::new();
            w.int128(v);
            let bytes = w.into_bytes();
            assert_eq!(bytes.len(), len, "{v}");
            assert_eq!(Reader::new(&bytes).read_value(), Ok(Value::Int(v)));
        }
    }

    #[test]
    fn headers_use_the_narrowest_format() {
        let mut w = Writer::new();
        w.str(&"x".repeat(31));
        w.str(&"x".repeat(32));
        w.array_len(15);
        w.array_len(16);
        w.map_len_sized(8, 16);
        w.map_len_sized(8, 15);
        let b = w.into_bytes();
        assert_eq!(b[0], 0xbf);
        assert_eq!(&b[32..34], &[0xd9, 32]);
        assert_eq!(&b[66..], &[0x9f, 0xdc, 0, 16, 0xde, 0, 8, 0x88]);
    }
}
