//! Checkpoints written at ingestion, so that even a prompt's first lookup
//! skips what its endpoints hold.
//!
//! vLLM publishes a request's blocks in order: the first `BlockStored`
//! starts at block 0 (no parent) and each later one names the previous
//! event's last block as its parent. For each endpoint the index keeps the
//! chains it is following — the digest state of the prefix so far, the
//! blocks counted in each lower tier, and the endpoint's epoch when the
//! chain began — keyed by the chain's last block (bounded, least recently
//! extended dropped first). A `BlockStored` that starts a chain or extends
//! a followed one writes a checkpoint at every span boundary it crosses,
//! exactly as a lookup of that prompt would after walking it.
//!
//! A chain is only extended while the endpoint's epoch is the one it began
//! with: any removal, eviction or tier change of the endpoint since then
//! makes its checkpoints stale, and the chain is forgotten. A `BlockStored`
//! whose parent is not a followed tail (a request that reused a cached
//! prefix of another chain) writes nothing; lookups fill those in.

use super::checkpoints::{pack, record_key, Digest, MAX_DEPTH};
use super::keys::fingerprint;
use super::KvIndex;

/// Chains followed per endpoint.
pub(crate) const FOLLOWED: usize = 1024;

/// A chain being followed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    digest: Digest,
    counts: [u32; 3],
    epoch: u64,
}

impl KvIndex {
    /// The chain a `BlockStored` of `ep` continues: a new one when it has no
    /// parent, the followed chain ending at `parent` while still valid.
    pub(crate) fn chain_for(
        &self,
        ep: u16,
        followed: &super::lru::Lru<u64, Chain>,
        seed: u64,
        parent: Option<u64>,
    ) -> Option<Chain> {
        let epoch = self.table.epoch(ep);
        match parent {
            None => Some(Chain {
                digest: Digest::new(seed),
                counts: [0; 3],
                epoch,
            }),
            Some(p) => followed
                .peek(&fingerprint(seed, p))
                .filter(|c| c.epoch == epoch),
        }
    }

    /// Appends a stored block (key `key`, counted in the tier of rank
    /// `rank`) to `chain`, writing a checkpoint when it completes a span.
    pub(crate) fn chain_push(&self, chain: &mut Chain, ep: u16, key: u64, rank: u8) {
        if rank > 0 {
            chain.counts[rank as usize - 1] += 1;
        }
        if let Some(d) = chain.digest.push(key) {
            if chain.digest.len <= MAX_DEPTH {
                let counts = pack(&chain.counts);
                self.checkpoints
                    .put(record_key(d, ep), ep, chain.epoch, counts, |o| {
                        self.table.epoch(o)
                    });
            }
        }
    }
}
