//! Token-id encoders, the hot loop of block serialization.
//!
//! Each token is stored with fixed-width writes into reserved space and the
//! width picked from a table indexed by the value's byte length, without
//! branches: real token streams mix widths unpredictably, so a branch per
//! width would mispredict often.

use super::buf::Buf;
use super::digest::TokenId;

/// Largest pickle encoding of one token (`8a 09` + 9 bytes).
pub(crate) const PICKLE_MAX_BYTES: usize = 11;

/// Byte length (1..=8) of a value: `ceil(bit_length / 8)`, 1 for 0.
#[inline(always)]
fn byte_len(v: u64) -> usize {
    ((71 - (v | 1).leading_zeros()) / 8) as usize
}

/// Argument width in bytes by byte length of the value (index 1..=8).
const CBOR_WIDTH: [u8; 9] = [0, 1, 2, 4, 4, 8, 8, 8, 8];
/// Initial byte (major type 0) by byte length of the value.
const CBOR_INITIAL: [u8; 9] = [0, 24, 25, 26, 26, 27, 27, 27, 27];

/// Token ids as CBOR unsigned ints (after the array head).
#[inline]
pub(crate) fn cbor<T: TokenId>(out: &mut Buf, toks: &[T]) {
    out.reserve(toks.len() * 9 + 8);
    for &t in toks {
        let v = t.to_u64();
        let nbytes = byte_len(v);
        let small = v < 24;
        let width = if small {
            0
        } else {
            CBOR_WIDTH[nbytes] as usize
        };
        let initial = if small { v as u8 } else { CBOR_INITIAL[nbytes] };
        out.push_reserved(initial);
        // The shift amount wraps to 0 for width 0; those bytes are then dropped.
        let arg = v.wrapping_shl(64 - 8 * width as u32).to_be_bytes();
        out.put8_keep(arg, width);
    }
}

/// Opcode by byte length of a value below 2^31 (index 1..=4).
const INT_OP: [u8; 5] = [0, 0x4b, 0x4d, 0x4a, 0x4a];
const INT_LEN: [u8; 5] = [0, 1, 2, 4, 4];

/// Token ids as pickle ints (BININT1 / BININT2 / BININT below 2^31, else
/// LONG1), written as one run: the caller ensures no frame can close inside.
#[inline]
pub(crate) fn pickle<T: TokenId>(out: &mut Buf, toks: &[T]) {
    out.reserve(toks.len() * PICKLE_MAX_BYTES + 8);
    for &t in toks {
        let v = t.to_u64();
        if v < 1 << 31 {
            let nbytes = byte_len(v);
            out.push_reserved(INT_OP[nbytes]);
            out.put8_keep(v.to_le_bytes(), INT_LEN[nbytes] as usize);
        } else {
            write_big_token(out, v);
        }
    }
}

#[cold]
fn write_big_token(out: &mut Buf, v: u64) {
    // LONG1 with n = bit_length / 8 + 1 (a zero byte keeps the value positive).
    let n = (64 - v.leading_zeros()) as usize / 8 + 1;
    out.push_reserved(0x8a);
    out.push_reserved(n as u8);
    let mut le = [0u8; 9];
    le[..8].copy_from_slice(&v.to_le_bytes());
    for &b in &le[..n] {
        out.push_reserved(b);
    }
}
