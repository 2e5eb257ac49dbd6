//! Canonical CBOR (RFC 8949 shortest form) of vLLM hash payloads (SPEC §2.3.1).

use super::buf::Buf;
use super::digest::TokenId;
use super::extras::{Atom, Elem};
use super::tokens;

const NONE: u8 = 0xf6;

/// Writes the head of major type `major` with argument `v`, shortest form.
#[inline]
pub(crate) fn head(out: &mut Buf, major: u8, v: u64) {
    let m = major << 5;
    if v < 24 {
        out.push(m | v as u8);
    } else if v <= 0xff {
        out.extend(&[m | 24, v as u8]);
    } else if v <= 0xffff {
        out.push(m | 25);
        out.extend(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(m | 26);
        out.extend(&(v as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend(&v.to_be_bytes());
    }
}

pub(crate) fn int(out: &mut Buf, v: i64) {
    if v >= 0 {
        head(out, 0, v as u64);
    } else {
        // -1 - v never overflows for negative i64.
        head(out, 1, (-1 - v) as u64);
    }
}

pub(crate) fn text(out: &mut Buf, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend(s.as_bytes());
}

#[inline]
pub(crate) fn bytes(out: &mut Buf, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend(b);
}

/// The seed string of NONE_HASH.
pub(crate) fn seed(out: &mut Buf, seed: &str) {
    out.clear();
    text(out, seed);
}

/// The tokens of a block as an array of unsigned ints.
#[inline]
pub(crate) fn tokens<T: TokenId>(out: &mut Buf, toks: &[T]) {
    head(out, 4, toks.len() as u64);
    tokens::cbor(out, toks);
}

fn atom(out: &mut Buf, a: Atom<'_>) {
    match a {
        Atom::Int(v) => int(out, v),
        Atom::Str(s) => text(out, s),
        Atom::Tag(t) => text(out, t.as_str()),
        Atom::Bytes(b) => bytes(out, b),
        Atom::Sha256(d) => bytes(out, &d),
    }
}

/// The extra-key tuple, or None when there are no keys.
pub(crate) fn extra(out: &mut Buf, elems: &[Elem<'_>]) {
    if elems.is_empty() {
        out.push(NONE);
        return;
    }
    head(out, 4, elems.len() as u64);
    for &e in elems {
        match e {
            Elem::One(a) => atom(out, a),
            Elem::Two(a, b) => {
                out.push(0x82);
                atom(out, a);
                atom(out, b);
            }
            Elem::Three(a, b, c) => {
                out.push(0x83);
                atom(out, a);
                atom(out, b);
                atom(out, c);
            }
        }
    }
}

/// The bytes before the parent: `83` and the parent's head.
pub(crate) fn parent(out: &mut Buf, parent: &[u8], parent_is_int: bool) {
    out.push(0x83);
    if parent_is_int {
        let mut be = [0u8; 8];
        be[8 - parent.len()..].copy_from_slice(parent);
        head(out, 0, u64::from_be_bytes(be));
    } else {
        bytes(out, parent);
    }
}
