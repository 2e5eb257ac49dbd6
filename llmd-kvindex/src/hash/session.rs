//! Serializing and hashing the blocks of one request (SPEC §2.1).

use sha2::Digest as _;

use super::buf::Buf;
use super::cbor;
use super::config::HashAlgo;
use super::digest::{Digest, TokenId};
use super::error::HashError;
use super::extras::{Elem, ExtrasCursor, RequestExtras};
use super::hasher::Inner;
use super::layout::Layout;
use super::pickle::{Memo, Pickler};
use super::sha256;

/// Reusable buffers; kept by a `HashChain` across calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    buf: Buf,
    memo: Memo,
}

/// Hashes the blocks of one request in order, without allocating per block.
pub(crate) struct Session<'a> {
    inner: &'a Inner,
    cursor: ExtrasCursor<'a>,
    elems: Vec<Elem<'a>>,
    scratch: &'a mut Scratch,
    layout: Layout,
    collect: bool,
}

impl<'a> Session<'a> {
    /// Validates the extras and precomputes the payload tail shared by every
    /// block that carries only the per-request keys (none, or the LoRA).
    pub(crate) fn new(
        inner: &'a Inner,
        extras: &'a RequestExtras,
        scratch: &'a mut Scratch,
    ) -> Result<Self, HashError> {
        let cfg = &inner.cfg;
        let cursor = ExtrasCursor::new(extras, cfg.schema, cfg.vllm_version)?;
        let steady = cursor.steady();
        let layout = Layout::new(
            cfg.algo,
            cfg.block_size,
            steady.as_slice(),
            &mut scratch.memo,
        );
        Ok(Session {
            inner,
            cursor,
            elems: Vec::new(),
            scratch,
            layout,
            collect: false,
        })
    }

    /// Makes `elems()` valid after every `serialize` (for traces).
    pub(crate) fn collect_elems(&mut self) {
        self.collect = true;
    }

    /// Fails when the prompt embeddings do not reach token `end`.
    pub(crate) fn check_covers(&self, end: usize) -> Result<(), HashError> {
        self.cursor.check_covers(end)
    }

    /// The extra keys of the last serialized block.
    pub(crate) fn elems(&self) -> &[Elem<'a>] {
        &self.elems
    }

    /// The payload of the last serialized block.
    pub(crate) fn payload(&self) -> &[u8] {
        self.scratch.buf.as_slice()
    }

    /// Serializes block `index` (tokens `toks`, parent digest `parent`) into the
    /// payload buffer. Blocks must come in increasing order.
    pub(crate) fn serialize<T: TokenId>(&mut self, index: usize, toks: &[T], parent: &Digest) {
        let start = index * toks.len();
        let inner: &'a Inner = self.inner;
        // vLLM replaces a falsy parent by NONE_HASH; only a 64-bit integer
        // parent can be falsy (value 0).
        let parent = if inner.cfg.algo == HashAlgo::Sha256Cbor64Bit && parent.key().0 == 0 {
            &inner.none_hash
        } else {
            parent
        };
        if !self.collect && self.layout.usable() && self.cursor.is_steady(start) {
            return self.layout.write(&mut self.scratch.buf, parent, toks);
        }
        let varying = self
            .cursor
            .block(start, start + toks.len(), &mut self.elems);
        if !varying && self.layout.usable() {
            return self.layout.write(&mut self.scratch.buf, parent, toks);
        }
        let Scratch { buf, memo } = &mut *self.scratch;
        if inner.cfg.algo.uses_pickle() {
            let mut p = Pickler::begin(buf, memo);
            p.open_tuple(3);
            p.save_bytes(parent.as_bytes());
            p.save_tokens(toks);
            p.save_extra(&self.elems);
            p.close_tuple(3);
            p.finish();
        } else {
            buf.clear();
            let is_int = inner.cfg.algo == HashAlgo::Sha256Cbor64Bit;
            cbor::parent(buf, parent.as_bytes(), is_int);
            cbor::tokens(buf, toks);
            cbor::extra(buf, &self.elems);
        }
    }

    /// Serializes and hashes one block.
    #[inline]
    pub(crate) fn hash<T: TokenId>(&mut self, index: usize, toks: &[T], parent: &Digest) -> Digest {
        self.serialize(index, toks, parent);
        let buf = &mut self.scratch.buf;
        match self.inner.cfg.algo {
            HashAlgo::Sha256 | HashAlgo::Sha256Cbor => Digest::from_array(sha256::sha256(buf)),
            HashAlgo::Sha256Cbor64Bit => {
                let full = sha256::sha256(buf);
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&full[24..]);
                Digest::from_array(tail)
            }
            algo => hash_payload(algo, buf.as_slice()),
        }
    }
}

/// `H(payload)` for the algorithm (SPEC §2.2).
#[inline]
pub(crate) fn hash_payload(algo: HashAlgo, payload: &[u8]) -> Digest {
    match algo {
        HashAlgo::Sha256 | HashAlgo::Sha256Cbor => {
            Digest::from_array::<32>(sha2::Sha256::digest(payload).into())
        }
        HashAlgo::Xxhash | HashAlgo::XxhashCbor => {
            Digest::from_array(xxhash_rust::xxh3::xxh3_128(payload).to_be_bytes())
        }
        HashAlgo::Sha256Cbor64Bit => {
            let full: [u8; 32] = sha2::Sha256::digest(payload).into();
            let mut tail = [0u8; 8];
            tail.copy_from_slice(&full[24..]);
            Digest::from_array(tail)
        }
    }
}

/// The serialized seed string whose hash is NONE_HASH (SPEC §2.4).
pub(crate) fn seed_payload(algo: HashAlgo, seed: &str) -> Vec<u8> {
    let mut buf = Buf::default();
    if algo.uses_pickle() {
        let mut memo = Memo::default();
        let mut p = Pickler::begin(&mut buf, &mut memo);
        p.save_str(seed);
        p.finish();
    } else {
        cbor::seed(&mut buf, seed);
    }
    buf.as_slice().to_vec()
}
