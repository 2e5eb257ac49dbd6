//! Unit tests of the msgpack reader.

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

/// Unsigned values at each edge of msgpack's integer formats.
const UINT_EDGES: [u64; 12] = [
    0,
    1,
    127,
    128,
    255,
    256,
    65535,
    65536,
    128_255,
    u32::MAX as u64,
    1 << 32,
    u64::MAX,
];

#[test]
fn read_u64_agrees_with_read_int_at_any_position() {
    let mut w = Writer::new();
    let values = UINT_EDGES;
    for v in values {
        w.uint(v);
    }
    let bytes = w.into_bytes();
    // Values read at the very end of the buffer take the checked path.
    for start in 0..values.len() {
        let mut r = Reader::new(&bytes);
        for _ in 0..start {
            r.skip_value().unwrap();
        }
        for &v in &values[start..] {
            assert_eq!(r.read_u64("t"), Ok(v));
        }
        assert_eq!(r.remaining(), 0);
    }
    let e = Reader::new(&[0xff]).read_u64("t").unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::IntOutOfRange { field: "t" });
    let e = Reader::new(&[0xce, 0, 0]).read_u64("t").unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Truncated);
    let e = Reader::new(&[0xa1, b'x']).read_u64("t").unwrap_err();
    assert_eq!(e.kind.code(), "wrong_field_type");
}

#[test]
fn reserved_marker_is_rejected() {
    assert_eq!(
        one(&[0xc1]).unwrap_err().kind,
        DecodeErrorKind::ReservedMarker
    );
}

#[test]
fn uints_writes_what_uint_writes_for_each_value() {
    let values = UINT_EDGES;
    let mut one = Writer::new();
    for &v in &values {
        one.uint(v);
    }
    let mut all = Writer::new();
    all.uints(&values);
    assert_eq!(all.into_bytes(), one.into_bytes());
}
