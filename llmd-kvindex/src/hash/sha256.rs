//! One-shot SHA-256 of a payload buffer, padded in place.
//!
//! `sha2::Sha256::digest` copies the trailing partial block into the hasher's
//! own buffer before padding it; block payloads are short, so that copy and the
//! bookkeeping around it are a visible share of the hash. The payload buffer
//! has spare room, so the padding is written right after the payload (without
//! changing it) and the blocks are compressed where they lie, with the same
//! run-time-dispatched SHA-NI compression function.

use sha2::block_api::compress256;

use super::buf::Buf;

const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256 of `buf`'s bytes; scribbles only past its end.
#[inline]
pub(crate) fn sha256(buf: &mut Buf) -> [u8; 32] {
    let len = buf.len();
    let padded = (len + 9).div_ceil(64) * 64;
    let pad = buf.spare(padded - len);
    pad.fill(0);
    pad[0] = 0x80;
    let n = pad.len();
    pad[n - 8..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    let mut state = IV;
    for chunk in buf.with_spare(padded - len).chunks_exact(64) {
        if let Ok(block) = <&[u8; 64]>::try_from(chunk) {
            compress256(&mut state, std::slice::from_ref(block));
        }
    }
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}
