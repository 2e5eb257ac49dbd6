//! CBOR encodings at every width boundary (RFC 8949 shortest form).

use super::hex;
use crate::hash::buf::Buf;
use crate::hash::cbor;
use crate::hash::extras::{Atom, Elem, Tag};

#[test]
fn tokens_take_the_shortest_width() {
    let toks = [
        0u64,
        23,
        24,
        255,
        256,
        65535,
        65536,
        (1 << 32) - 1,
        1 << 32,
        u64::MAX,
    ];
    let mut out = Buf::default();
    cbor::tokens(&mut out, &toks);
    assert_eq!(
        hex(out.as_slice()),
        "8a0017181818ff19010019ffff1a000100001affffffff1b00000001000000001bffffffffffffffff"
    );
    let mut narrow = Buf::default();
    cbor::tokens(&mut narrow, &[7u32; 24]);
    assert_eq!(hex(&narrow.as_slice()[..3]), "981807");
}

#[test]
fn ints_text_and_bytes() {
    let mut out = Buf::default();
    for v in [-1, -24, -25, i64::MIN, 10, 500] {
        cbor::int(&mut out, v);
    }
    assert_eq!(
        hex(out.as_slice()),
        concat!("20", "37", "3818", "3b7fffffffffffffff", "0a", "1901f4")
    );
    out.clear();
    cbor::text(&mut out, &"a".repeat(24));
    assert_eq!(hex(&out.as_slice()[..3]), "781861");
    out.clear();
    cbor::bytes(&mut out, &[9; 256]);
    assert_eq!(hex(&out.as_slice()[..4]), "59010009");
}

#[test]
fn extra_keys_are_arrays_and_none_is_f6() {
    let mut out = Buf::default();
    cbor::extra(&mut out, &[]);
    assert_eq!(hex(out.as_slice()), "f6");
    out.clear();
    let elems = [
        Elem::Three(Atom::Tag(Tag::Mm), Atom::Str("i"), Atom::Int(-12)),
        Elem::Two(Atom::Tag(Tag::CacheSalt), Atom::Str("s")),
    ];
    cbor::extra(&mut out, &elems);
    assert_eq!(
        hex(out.as_slice()),
        "8283626d6d61692b826a63616368655f73616c746173"
    );
}

#[test]
fn integer_parent_uses_shortest_form() {
    let mut out = Buf::default();
    cbor::parent(&mut out, &5u64.to_be_bytes(), true);
    assert_eq!(hex(out.as_slice()), "8305");
    out.clear();
    cbor::parent(&mut out, &[0xab; 16], false);
    assert_eq!(hex(&out.as_slice()[..3]), "8350ab");
}
