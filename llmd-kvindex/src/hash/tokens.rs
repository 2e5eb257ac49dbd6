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
    let dst = out.spare(toks.len() * 9 + 8);
    let mut pos = 0;
    for &t in toks {
        let v = t.to_u64();
        if v <= u64::from(u32::MAX) {
            let nbytes = byte_len(v);
            let small = v < 24;
            let width = if small { 0 } else { CBOR_WIDTH[nbytes] as u32 };
            let initial = if small {
                v
            } else {
                u64::from(CBOR_INITIAL[nbytes])
            };
            // Big-endian argument in the low `width` bytes (nothing for width 0),
            // stored with the initial byte as one little-endian word.
            let arg = u64::from((v as u32).swap_bytes()) >> (32 - 8 * width);
            dst[pos..pos + 8].copy_from_slice(&(initial | arg << 8).to_le_bytes());
            pos += 1 + width as usize;
        } else {
            dst[pos] = 27;
            dst[pos + 1..pos + 9].copy_from_slice(&v.to_be_bytes());
            pos += 9;
        }
    }
    out.advance(pos);
}

/// Opcode by byte length of a value below 2^31 (index 1..=4).
const INT_OP: [u8; 5] = [0, 0x4b, 0x4d, 0x4a, 0x4a];
const INT_LEN: [u8; 5] = [0, 1, 2, 4, 4];

/// Token ids as pickle ints (BININT1 / BININT2 / BININT below 2^31, else
/// LONG1), written as one run: the caller ensures no frame can close inside.
#[inline]
pub(crate) fn pickle<T: TokenId>(out: &mut Buf, toks: &[T]) {
    let dst = out.spare(toks.len() * PICKLE_MAX_BYTES + 8);
    let mut pos = 0;
    for &t in toks {
        let v = t.to_u64();
        if v < 1 << 31 {
            let nbytes = byte_len(v);
            let word = u64::from(INT_OP[nbytes]) | v << 8;
            dst[pos..pos + 8].copy_from_slice(&word.to_le_bytes());
            pos += 1 + INT_LEN[nbytes] as usize;
        } else {
            pos = write_big_token(dst, pos, v);
        }
    }
    out.advance(pos);
}

#[cold]
fn write_big_token(dst: &mut [u8], pos: usize, v: u64) -> usize {
    // LONG1 with n = bit_length / 8 + 1 (a zero byte keeps the value positive).
    let n = (64 - v.leading_zeros()) as usize / 8 + 1;
    let mut le = [0u8; 9];
    le[..8].copy_from_slice(&v.to_le_bytes());
    dst[pos] = 0x8a;
    dst[pos + 1] = n as u8;
    dst[pos + 2..pos + 2 + n].copy_from_slice(&le[..n]);
    pos + 2 + n
}
