//! What a checkpoint stamped with an older epoch still proves.
//!
//! A checkpoint of endpoint `e` at block `p`, stamped `E` while `e`'s epoch
//! is now `N`, still proves blocks `0..=p` held (with its tier counts) when
//! `e`'s log (`epochs.rs`) holds raises `E+1 ..= N` and none of their
//! blocks sits at a prompt position `≤ p`. For each candidate of a lookup,
//! [`Losses`] reads the log newest first, in chunks, only as far back as the
//! stamp it is asked about (or until a lost block settles the answer), and
//! keeps the running minimum of the prompt positions those raises touched;
//! the prompt's fingerprints are mapped to their first position once per
//! lookup, on first need. A lookup whose candidates' epochs did not move
//! never gets here.

use super::epochs::{Epochs, ANY_BLOCK};
use super::keys::fingerprint;
use crate::types::BlockKey;

/// Bits of the prompt filter (a power of two): about 8 per prompt block of
/// a 1000-block prompt, so ~1 in 9 logged blocks not in it passes.
const FILTER_BITS: usize = 8192;
/// Which fingerprint bits index the filter (the map uses the low bits).
const FILTER_SHIFT: u32 = 24;
/// Position bits of a map slot (checkpoints cover fewer than 2²¹ blocks).
const POS_BITS: u32 = 21;
/// Fingerprint bits of a map slot's tag.
const TAG_BITS: u32 = 42;
const OCCUPIED: u64 = 1 << 63;

/// Per-lookup scratch: reuse it (it lives in `PrefixMatches`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Losses {
    /// Prompt fingerprint → first position, open-addressed: each slot is
    /// `OCCUPIED | tag << POS_BITS | position` (0: empty), the tag the low
    /// [`TAG_BITS`] bits of the fingerprint. Two fingerprints sharing a tag
    /// answer the first one's position for both: never later than the true
    /// first position, so a tag collision can only make a checkpoint look
    /// cut, never make a cut one look whole.
    positions: Vec<u64>,
    /// One bit per prompt fingerprint (bits [`FILTER_SHIFT`].. of it): a
    /// logged block whose bit is clear is not in the prompt, without a
    /// probe of `positions` (most logged blocks are other prompts').
    filter: Vec<u64>,
    /// Positions mapped (the map covers prompt blocks `0..mapped`).
    mapped: usize,
    /// Per candidate.
    cands: Vec<Lost>,
    scratch: Vec<u64>,
    /// Raises this lookup may still read, over all candidates: past it, an
    /// older checkpoint counts as stale (the walk costs less than reading
    /// more of the logs, and `cands` stays bounded).
    budget: usize,
    /// The current lookup's number, and the one `mapped` and `budget` were
    /// set for: a lookup that never reads a log costs one increment.
    lookup: u64,
    started: u64,
}

/// Raises a lookup reads at most, per prompt block (and at least
/// [`MIN_BUDGET`]): a raise read costs ≈ 3 ns, a block walked ≈ 30 – 100.
const BUDGET_PER_BLOCK: usize = 16;
const MIN_BUDGET: usize = 4096;
/// Raises read from a log at a time (newest first): a lost block found in
/// one chunk settles the answer without the older ones.
const CHUNK: u64 = 64;

/// One candidate's raises read so far, newest first.
#[derive(Clone, Debug, Default)]
struct Lost {
    /// The lookup this was read for.
    lookup: u64,
    /// `min[i]`: the first prompt position touched by raises `N − i ..= N`
    /// (`u32::MAX`: none).
    min: Vec<u32>,
    /// The log could not give older raises.
    exhausted: bool,
}

impl Losses {
    /// Starts a lookup (what the last one read is dropped on first use).
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.lookup = self.lookup.wrapping_add(1);
    }

    /// Whether candidate `c` (endpoint `ep`, epoch `now` as read before the
    /// search) still holds prompt blocks `0..=p` that a checkpoint stamped
    /// `stamp` (48 bits kept) proved held; `upto` bounds the positions that
    /// matter (the prompt's last checkpoint). False when unsure.
    pub(crate) fn kept(
        &mut self,
        epochs: &Epochs,
        (c, ep): (usize, u16),
        (stamp, now): (u64, u64),
        p: usize,
        (seed, keys, upto): (u64, &[BlockKey], usize),
    ) -> bool {
        let behind = now.wrapping_sub(stamp) & super::checkpoints::EPOCH_MASK;
        if behind == 0 {
            return true;
        }
        if behind > epochs.reach() || behind > now {
            return false;
        }
        let behind = behind as usize;
        if self.started != self.lookup {
            self.started = self.lookup;
            self.mapped = 0;
            self.budget = keys.len().saturating_mul(BUDGET_PER_BLOCK).max(MIN_BUDGET);
        }
        if self.cands.len() <= c {
            self.cands.resize_with(c + 1, Lost::default);
        }
        let l = &mut self.cands[c];
        if l.lookup != self.lookup {
            l.lookup = self.lookup;
            l.min.clear();
            l.exhausted = false;
        }
        while self.cands[c].min.len() < behind {
            let l = &mut self.cands[c];
            if l.exhausted {
                return false;
            }
            let read = l.min.len() as u64;
            // The next chunk of raises, newest first: from now − read down
            // to now − behind + 1 at most.
            self.scratch.clear();
            let to = now - read;
            let from = (now - behind as u64 + 1).max(to.saturating_sub(CHUNK - 1));
            let want = (to + 1 - from) as usize;
            if want > self.budget {
                l.exhausted = true;
                return false;
            }
            self.budget -= want;
            if !epochs.logged(ep, from, to, &mut self.scratch) {
                l.exhausted = true;
                return false;
            }
            if self.mapped < upto {
                self.map(seed, &keys[..upto]);
            }
            for i in 0..self.scratch.len() {
                let pos = self.position(self.scratch[i]);
                let l = &mut self.cands[c];
                let prev = l.min.last().copied().unwrap_or(u32::MAX);
                l.min.push(prev.min(pos));
            }
            // A block at or before `p` lost already: no need to read older
            // raises for this answer (a later question may read on).
            if self.cands[c].min.last().is_some_and(|&m| m as usize <= p) {
                return false;
            }
        }
        self.cands[c].min[behind - 1] as usize > p
    }

    /// Maps the first position of each fingerprint of `keys`.
    fn map(&mut self, seed: u64, keys: &[BlockKey]) {
        let size = (keys.len() * 2).next_power_of_two().max(16);
        self.positions.clear();
        self.positions.resize(size, 0);
        self.filter.clear();
        self.filter.resize(FILTER_BITS / 64, 0);
        let mask = size - 1;
        for (i, k) in keys.iter().enumerate() {
            let fp = fingerprint(seed, k.0);
            let bit = (fp >> FILTER_SHIFT) as usize & (FILTER_BITS - 1);
            self.filter[bit / 64] |= 1 << (bit % 64);
            let tag = OCCUPIED | (fp & ((1 << TAG_BITS) - 1)) << POS_BITS;
            let mut h = fp as usize & mask;
            loop {
                let slot = self.positions[h];
                if slot == 0 {
                    self.positions[h] = tag | i as u64;
                    break;
                }
                if slot >> POS_BITS == tag >> POS_BITS {
                    break;
                }
                h = (h + 1) & mask;
            }
        }
        self.mapped = keys.len();
    }

    /// The first prompt position of block `fp` (`u32::MAX`: not in the
    /// mapped prompt).
    fn position(&self, fp: u64) -> u32 {
        if fp == ANY_BLOCK {
            return 0;
        }
        let bit = (fp >> FILTER_SHIFT) as usize & (FILTER_BITS - 1);
        if self.filter[bit / 64] & (1 << (bit % 64)) == 0 {
            return u32::MAX;
        }
        let mask = self.positions.len() - 1;
        let tag = OCCUPIED | (fp & ((1 << TAG_BITS) - 1)) << POS_BITS;
        let mut h = fp as usize & mask;
        loop {
            let slot = self.positions[h];
            if slot == 0 {
                return u32::MAX;
            }
            if slot >> POS_BITS == tag >> POS_BITS {
                return (slot & ((1 << POS_BITS) - 1)) as u32;
            }
            h = (h + 1) & mask;
        }
    }
}
