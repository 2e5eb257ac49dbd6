//! `BlockHasher`: vLLM's prefix-cache block hashes of whole token sequences.

use std::sync::Arc;

use super::chain::HashChain;
use super::config::HasherConfig;
use super::digest::{Digest, TokenId};
use super::error::HashError;
use super::extras::{ExtraKey, ExtrasCursor, RequestExtras};
use super::session::{hash_payload, seed_payload, Scratch, Session};
use crate::types::BlockKey;

/// Computes vLLM's block hashes for one configuration. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct BlockHasher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cfg: HasherConfig,
    pub(crate) none_hash: Digest,
    none_payload: Vec<u8>,
}

/// One block as hashed, for diagnostics, tests and benchmarks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTrace {
    /// Block index.
    pub index: usize,
    /// First token position.
    pub start: usize,
    /// One past the last token position.
    pub end: usize,
    /// The block's extra keys, `None` when it has none.
    pub extra_keys: Option<Vec<ExtraKey>>,
    /// The exact bytes hashed.
    pub payload: Vec<u8>,
    /// The full digest.
    pub digest: Digest,
}

impl BlockHasher {
    /// Validates `cfg` and computes NONE_HASH.
    pub fn new(cfg: HasherConfig) -> Result<Self, HashError> {
        cfg.validate()?;
        let none_payload = seed_payload(cfg.algo, cfg.effective_seed()?);
        let none_hash = hash_payload(cfg.algo, &none_payload);
        Ok(BlockHasher {
            inner: Arc::new(Inner {
                cfg,
                none_hash,
                none_payload,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HasherConfig {
        &self.inner.cfg
    }

    /// Tokens per hashed block.
    pub fn block_size(&self) -> usize {
        self.inner.cfg.block_size
    }

    /// NONE_HASH, the parent of block 0.
    pub fn none_hash(&self) -> &Digest {
        &self.inner.none_hash
    }

    /// The serialized seed whose hash is NONE_HASH.
    pub fn none_hash_payload(&self) -> &[u8] {
        &self.inner.none_payload
    }

    /// Published keys of the full blocks of `tokens` (a trailing partial block
    /// is not hashed).
    pub fn block_keys<T: TokenId>(
        &self,
        tokens: &[T],
        extras: &RequestExtras,
    ) -> Result<Vec<BlockKey>, HashError> {
        let mut keys = Vec::with_capacity(tokens.len() / self.block_size());
        self.for_each_digest(tokens, extras, |d| keys.push(d.key()))?;
        Ok(keys)
    }

    /// Full digests of the full blocks of `tokens`.
    pub fn digests<T: TokenId>(
        &self,
        tokens: &[T],
        extras: &RequestExtras,
    ) -> Result<Vec<Digest>, HashError> {
        let mut out = Vec::with_capacity(tokens.len() / self.block_size());
        self.for_each_digest(tokens, extras, |d| out.push(d))?;
        Ok(out)
    }

    fn for_each_digest<T: TokenId>(
        &self,
        tokens: &[T],
        extras: &RequestExtras,
        mut sink: impl FnMut(Digest),
    ) -> Result<(), HashError> {
        let b = self.block_size();
        let mut scratch = Scratch::default();
        let mut session = Session::new(&self.inner, extras, &mut scratch)?;
        session.check_covers(tokens.len() / b * b)?;
        let mut parent = self.inner.none_hash;
        for (index, block) in tokens.chunks_exact(b).enumerate() {
            parent = session.hash(index, block, &parent);
            sink(parent);
        }
        Ok(())
    }

    /// Every full block with its extra keys, payload bytes and digest.
    pub fn trace<T: TokenId>(
        &self,
        tokens: &[T],
        extras: &RequestExtras,
    ) -> Result<Vec<BlockTrace>, HashError> {
        let b = self.block_size();
        let mut scratch = Scratch::default();
        let mut session = Session::new(&self.inner, extras, &mut scratch)?;
        session.check_covers(tokens.len() / b * b)?;
        session.collect_elems();
        let mut parent = self.inner.none_hash;
        let mut out = Vec::new();
        for (index, block) in tokens.chunks_exact(b).enumerate() {
            session.serialize(index, block, &parent);
            let payload = session.payload().to_vec();
            parent = hash_payload(self.inner.cfg.algo, &payload);
            let elems = session.elems();
            out.push(BlockTrace {
                index,
                start: index * b,
                end: (index + 1) * b,
                extra_keys: (!elems.is_empty()).then(|| elems.iter().map(|e| e.to_key()).collect()),
                payload,
                digest: parent,
            });
        }
        Ok(out)
    }

    /// The extra keys vLLM attaches to block `index` of a request (`None` when
    /// the block has none).
    pub fn extra_keys(
        &self,
        extras: &RequestExtras,
        index: usize,
    ) -> Result<Option<Vec<ExtraKey>>, HashError> {
        let cfg = &self.inner.cfg;
        let mut cursor = ExtrasCursor::new(extras, cfg.schema, cfg.vllm_version)?;
        let start = index
            .checked_mul(cfg.block_size)
            .ok_or(HashError::TooLarge("block index"))?;
        let end = start
            .checked_add(cfg.block_size)
            .ok_or(HashError::TooLarge("block index"))?;
        cursor.check_covers(end)?;
        let mut elems = Vec::new();
        cursor.block(start, end, &mut elems);
        Ok((!elems.is_empty()).then(|| elems.iter().map(|e| e.to_key()).collect()))
    }

    /// An incremental chain for one request (e.g. a chat across turns).
    pub fn chain(&self, extras: RequestExtras) -> HashChain {
        HashChain::new(self.clone(), extras)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }
}
