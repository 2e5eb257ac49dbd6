//! The fixed layout of a "steady" block payload (no per-block extra keys),
//! written with a handful of fixed-size stores: the hot path of hashing.
//!
//! ```text
//! CBOR    83 <parent head> <parent> <array head B> <tokens> <extra>
//! pickle  80 05 95 <u64 LE len> 43 <n> <parent> 94 [28] <tokens> <tuple close> <extra> 87 94 2e
//! ```
//!
//! Everything except the parent and the tokens is precomputed per request.

use super::buf::Buf;
use super::cbor;
use super::config::HashAlgo;
use super::digest::{Digest, TokenId};
use super::extras::Elem;
use super::pickle::{Memo, Pickler};
use super::tokens;

const PICKLE_HEADER: usize = 11;
/// Pickle's frame limit: a larger body would be split into several frames.
const MAX_SINGLE_FRAME: usize = 64 * 1024;

/// Precomputed pieces of a steady block.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layout {
    /// Bytes before the parent digest.
    head: [u8; 16],
    head_len: usize,
    /// Bytes between the parent and the first token.
    mid: [u8; 16],
    mid_len: usize,
    /// Bytes after the last token.
    tail: Buf,
    /// `tail` zero-padded, for a fixed-size copy when it is short.
    tail_fixed: Option<[u8; 32]>,
    pickle: bool,
    /// `sha256_cbor_64bit`: the parent is a CBOR unsigned int.
    int_parent: bool,
    /// False when a pickled block could need several frames; such blocks take
    /// the general path.
    usable: bool,
}

impl Layout {
    /// The layout for `algo`, blocks of `block_size` tokens and the request's
    /// steady extra keys.
    pub(crate) fn new(
        algo: HashAlgo,
        block_size: usize,
        steady: &[Elem<'_>],
        memo: &mut Memo,
    ) -> Self {
        let mut l = Layout::default();
        let plen = algo.digest_len();
        if algo.uses_pickle() {
            l.pickle = true;
            l.head[..PICKLE_HEADER].copy_from_slice(&[0x80, 0x05, 0x95, 0, 0, 0, 0, 0, 0, 0, 0]);
            l.head[PICKLE_HEADER..PICKLE_HEADER + 2].copy_from_slice(&[0x43, plen as u8]);
            l.head_len = PICKLE_HEADER + 2;
            l.mid[0] = 0x94;
            l.mid[1] = 0x28;
            l.mid_len = if block_size > 3 { 2 } else { 1 };
            // Memo 0 is the parent; the token tuple is memo 1.
            let mut p = Pickler::fragment(&mut l.tail, memo, 1);
            p.close_tuple(block_size);
            p.save_extra(steady);
            p.close_tuple(3);
            p.stop();
            let body = l.head_len - PICKLE_HEADER + plen + l.mid_len + l.tail.len();
            l.usable = block_size
                .checked_mul(tokens::PICKLE_MAX_BYTES)
                .is_some_and(|t| body + t < MAX_SINGLE_FRAME);
        } else {
            l.head[0] = 0x83;
            let mut h = Buf::default();
            cbor::head(&mut h, 2, plen as u64);
            l.head[1..1 + h.len()].copy_from_slice(h.as_slice());
            l.head_len = 1 + h.len();
            h.clear();
            cbor::head(&mut h, 4, block_size as u64);
            l.mid[..h.len()].copy_from_slice(h.as_slice());
            l.mid_len = h.len();
            cbor::extra(&mut l.tail, steady);
            l.int_parent = algo == HashAlgo::Sha256Cbor64Bit;
            l.usable = true;
        }
        if l.tail.len() <= 32 {
            let mut fixed = [0u8; 32];
            fixed[..l.tail.len()].copy_from_slice(l.tail.as_slice());
            l.tail_fixed = Some(fixed);
        }
        l
    }

    /// Whether steady blocks can be written with `write`.
    pub(crate) fn usable(&self) -> bool {
        self.usable
    }

    /// Writes a steady block's payload into `out`.
    #[inline]
    pub(crate) fn write<T: TokenId>(&self, out: &mut Buf, parent: &Digest, toks: &[T]) {
        out.clear();
        // Fixed-size copies (cheaper than length-dependent ones); the surplus
        // bytes are overwritten by what follows.
        if self.int_parent {
            out.push(0x83);
            tokens::cbor(out, &[parent.key().0]);
        } else {
            let plen = parent.as_bytes().len();
            let dst = out.spare(self.head_len + 32);
            dst[..16].copy_from_slice(&self.head);
            dst[self.head_len..self.head_len + 32].copy_from_slice(parent.padded());
            out.advance(self.head_len + plen);
        }
        out.spare(16).copy_from_slice(&self.mid);
        out.advance(self.mid_len);
        if self.pickle {
            tokens::pickle(out, toks);
        } else {
            tokens::cbor(out, toks);
        }
        match &self.tail_fixed {
            Some(fixed) => {
                out.spare(32).copy_from_slice(fixed);
                out.advance(self.tail.len());
            }
            None => out.extend(self.tail.as_slice()),
        }
        if self.pickle {
            let body = (out.len() - PICKLE_HEADER) as u64;
            out.patch(3, &body.to_le_bytes());
        }
    }
}
