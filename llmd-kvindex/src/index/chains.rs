//! The chains each endpoint is storing: checkpoints written at ingestion,
//! so that even a prompt's first lookup skips what its endpoints hold, and
//! each stored block's depth, which eviction orders by (`depth.rs`).
//!
//! vLLM publishes a request's blocks in order: the first `BlockStored`
//! starts at block 0 (no parent) and each later one names the previous
//! event's last block as its parent. For each endpoint the index keeps the
//! chains it is following — the depth of the chain's next block, and for a
//! verified chain the digest state of the prefix so far, the blocks counted
//! in each lower tier, and the endpoint's epoch when the chain began —
//! keyed by the chain's last block (bounded, least recently extended
//! dropped first). A `BlockStored` that starts a chain or extends a
//! verified one writes a checkpoint at every span boundary it crosses,
//! exactly as a lookup of that prompt would after walking it.
//!
//! A chain's checkpoints carry the epoch it began with. A removal, eviction
//! or tier change of the endpoint since then leaves them valid unless the
//! block it changed is in their prefix (a lookup checks the endpoint's
//! epoch log, `epochs.rs`); once the log no longer reaches back to the
//! chain's epoch, the chain stops writing checkpoints. A
//! `BlockStored` whose parent is not a followed tail (a request that reused
//! a cached prefix of another chain) writes no checkpoints either (lookups
//! fill those in); its depth starts from the least depth of its parent's
//! class in the table, or, when the endpoint does not hold the parent, it
//! is an orphan.

use super::checkpoints::{pack, record_key, Digest, MAX_DEPTH};
use super::depth::{class_of, floor, ORPHAN};
use super::keys::fingerprint;
use super::KvIndex;

/// Chains followed per endpoint.
pub(crate) const FOLLOWED: usize = 1024;

/// A chain being followed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    /// The prefix digest of a verified chain; `None` once it is not.
    digest: Option<Digest>,
    counts: [u32; 3],
    epoch: u64,
    /// Depth (a lower bound) of the chain's next block; `None`: an orphan.
    depth: Option<usize>,
}

impl Chain {
    /// Depth class of the chain's next block.
    #[inline]
    pub(crate) fn class(&self) -> u8 {
        self.depth.map_or(ORPHAN, class_of)
    }
}

impl KvIndex {
    /// The chain a `BlockStored` of `ep` continues: a new verified one when
    /// it has no parent, the followed chain ending at `parent` (verified
    /// while the epoch log reaches back to its epoch), else an unverified
    /// one whose depth comes from the parent's entry.
    pub(crate) fn chain_for(
        &self,
        ep: u16,
        followed: &super::lru::FingerprintLru<Chain>,
        seed: u64,
        parent: Option<u64>,
    ) -> Chain {
        let epoch = self.table.epoch(ep);
        let Some(p) = parent else {
            return Chain {
                digest: Some(Digest::new(seed)),
                counts: [0; 3],
                epoch,
                depth: Some(0),
            };
        };
        let fp = fingerprint(seed, p);
        match followed.peek(&fp) {
            // Its checkpoints carry the epoch it began with; a lookup checks
            // the raises since against the endpoint's log, so the chain is
            // worth verifying while the log still reaches back to it.
            Some(c) if epoch.wrapping_sub(c.epoch) <= self.table.epochs().reach() => c,
            Some(c) => Chain { digest: None, ..c },
            None => Chain {
                digest: None,
                counts: [0; 3],
                epoch,
                depth: self.table.depth_class(fp, ep).map(|c| floor(c) + 1),
            },
        }
    }

    /// Appends a stored block (key `key`, counted in the tier of rank
    /// `rank`) to `chain`, writing a checkpoint when it completes a span of
    /// a verified chain.
    pub(crate) fn chain_push(&self, chain: &mut Chain, ep: u16, key: u64, rank: u8) {
        if let Some(d) = chain.depth.as_mut() {
            *d += 1;
        }
        let Some(digest) = chain.digest.as_mut() else {
            return;
        };
        if rank > 0 {
            chain.counts[rank as usize - 1] += 1;
        }
        if let Some(d) = digest.push(key) {
            // Counts of up to `digest.len` blocks fit their fields only below
            // MAX_DEPTH.
            if digest.len < MAX_DEPTH {
                let counts = pack(&chain.counts);
                self.checkpoints
                    .put(record_key(d, ep), ep, chain.epoch, counts, |o| {
                        self.table.epoch(o)
                    });
            }
        }
    }
}
