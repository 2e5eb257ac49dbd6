//! `HashChain`: block keys of a growing token sequence.

use super::digest::{Digest, TokenId};
use super::error::HashError;
use super::extras::RequestExtras;
use super::hasher::BlockHasher;
use super::session::{Scratch, Session};
use crate::types::BlockKey;

/// Hashes a request's tokens as they arrive. A trailing partial block is kept
/// until it fills, so extending by the next chat turn gives the same keys as
/// hashing the whole conversation at once.
#[derive(Clone, Debug)]
pub struct HashChain {
    hasher: BlockHasher,
    extras: RequestExtras,
    scratch: Scratch,
    keys: Vec<BlockKey>,
    parent: Digest,
    pending: Vec<u64>,
    num_tokens: usize,
}

impl HashChain {
    pub(crate) fn new(hasher: BlockHasher, extras: RequestExtras) -> Self {
        let parent = *hasher.none_hash();
        HashChain {
            hasher,
            extras,
            scratch: Scratch::default(),
            keys: Vec::new(),
            parent,
            pending: Vec::new(),
            num_tokens: 0,
        }
    }

    /// Appends tokens; returns the keys of the blocks they completed. On error
    /// nothing is appended.
    pub fn extend<T: TokenId>(&mut self, new_tokens: &[T]) -> Result<&[BlockKey], HashError> {
        let b = self.hasher.block_size();
        let first = self.keys.len();
        let total = self.num_tokens + new_tokens.len();
        let mut rest = new_tokens;
        if total / b > first {
            let mut session = Session::new(self.hasher.inner(), &self.extras, &mut self.scratch)?;
            session.check_covers(total / b * b)?;
            let mut index = first;
            if !self.pending.is_empty() {
                let (head, tail) = rest.split_at(b - self.pending.len());
                self.pending.extend(head.iter().map(|t| t.to_u64()));
                self.parent = session.hash(index, &self.pending, &self.parent);
                self.keys.push(self.parent.key());
                self.pending.clear();
                index += 1;
                rest = tail;
            }
            let mut blocks = rest.chunks_exact(b);
            for block in &mut blocks {
                self.parent = session.hash(index, block, &self.parent);
                self.keys.push(self.parent.key());
                index += 1;
            }
            rest = blocks.remainder();
        }
        self.pending.extend(rest.iter().map(|t| t.to_u64()));
        self.num_tokens = total;
        Ok(&self.keys[first..])
    }

    /// Keys of all completed blocks.
    pub fn keys(&self) -> &[BlockKey] {
        &self.keys
    }

    /// Tokens seen so far, including the partial block.
    pub fn num_tokens(&self) -> usize {
        self.num_tokens
    }

    /// Digest of the last completed block (NONE_HASH before the first).
    pub fn last_digest(&self) -> &Digest {
        &self.parent
    }

    /// The hasher this chain uses.
    pub fn hasher(&self) -> &BlockHasher {
        &self.hasher
    }
}
