//! Verified-prefix checkpoints: how a long lookup skips the blocks an
//! endpoint was already shown to hold.
//!
//! The exact answer for an endpoint is the first prompt block it does not
//! hold; finding it by probing every block costs one bucket read per block.
//! A checkpoint records that endpoint `e` held blocks `0..=p` of a prompt
//! prefix, with how many of them it held only in lower tiers, at a moment
//! when `e`'s epoch (`Table::epoch`) had a given value:
//!
//! * **Key** — a 64-bit digest of the model and the prefix's block keys
//!   `0..=p` (every key, in order, so two prompts share a checkpoint only if
//!   their prefixes are equal, up to a 2⁻⁶⁴ digest collision), and `e`.
//!   Per span of keys: an NH sum of the keys (position-dependent), mixed
//!   with the span's index; the digest of a prefix is the sum of its spans'
//!   mixed terms and the model's seed.
//!   Checkpoints sit at every [`SPAN`]-th block (`p = SPAN·j + SPAN − 1`).
//! * **Validity** — the epoch of `e` is raised after every change that can
//!   shorten or re-weigh a prefix `e` holds: a block removed, evicted or
//!   cleared, a better tier added to a block it holds; each raise logs the
//!   block (`epochs.rs`). A checkpoint is used when its epoch is the
//!   endpoint's current one, or when the log holds every raise since and
//!   none of their blocks is in its prefix (`lost.rs`); any other is
//!   ignored, so a stale checkpoint can cost a probe but never change an
//!   answer.
//! * **Who writes** — ingestion, along the chains it follows (`chains.rs`),
//!   with the epoch read before the chain's first block was set; and a
//!   lookup, after it walked an endpoint through block `p`, having read the
//!   endpoint's epoch before the walk. If a change lands meanwhile, its epoch
//!   raise makes the new checkpoint stale at birth.
//! * **Search** — a lookup reads each candidate endpoint's epoch, tries the
//!   last checkpoint of the prompt, then bisects (all candidates a step at a
//!   time, each step's reads prefetched together); it then walks only from
//!   the furthest valid checkpoint on. Any valid checkpoint proves its
//!   prefix, so the bisection stays exact even where checkpoints are
//!   missing.
//!
//! Storage is a fixed array of 4-way sets of 32-byte records (128 bytes a
//! set), about one record per [`SPAN`] table entries; a new record replaces
//! the same key, an empty way, a stale one, or else a pseudo-random way.
//! Each record is a small seqlock (writers that find it busy skip it: a
//! checkpoint is an optimisation, never needed for an answer).

use super::buckets::{Buckets, ZeroEmpty};
use super::keys::mix64;
use super::sync::{fence, AtomicU64, Ordering};
use crate::types::BlockKey;

/// Blocks between checkpoints.
pub(crate) const SPAN: usize = 16;
/// Prompts shorter than this are walked without checkpoints.
pub(crate) const MIN_BLOCKS: usize = 2 * SPAN;
/// Bits per lower-tier count in a record (three counts in one word); also
/// bounds the prefix length a checkpoint can describe.
const COUNT_BITS: u32 = 21;
/// Deepest block (exclusive) a checkpoint may sit at.
pub(crate) const MAX_DEPTH: usize = 1 << COUNT_BITS;
const WAYS: usize = 4;
/// Epoch bits kept in a record's stamp (the endpoint slot takes the top 16).
const EPOCH_BITS: u32 = 48;
/// The epoch bits a record keeps.
pub(crate) const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;

#[derive(Default)]
struct Record {
    /// Seqlock: odd while a writer rewrites the record.
    seq: AtomicU64,
    /// Digest key; 0 = empty.
    key: AtomicU64,
    /// `endpoint << 48 | epoch mod 2⁴⁸`.
    stamp: AtomicU64,
    /// Blocks counted in each lower tier (tier order 1, 2, 3), 21 bits each.
    counts: AtomicU64,
}

/// One set: 4 records, two cache lines.
#[derive(Default)]
#[repr(C, align(128))]
pub struct Set {
    ways: [Record; WAYS],
}

// SAFETY: a set is atomics only and its `Default` is all zeros.
unsafe impl ZeroEmpty for Set {}

/// The checkpoint store.
pub struct Checkpoints {
    sets: Buckets<Set>,
    mask: usize,
    /// Raises a record may be behind its endpoint's epoch and still be
    /// checked against the endpoint's log (`epochs.rs`); older records are
    /// replaced first.
    reach: u64,
}

#[inline]
fn stamp(ep: u16, epoch: u64) -> u64 {
    (u64::from(ep) << EPOCH_BITS) | (epoch & ((1 << EPOCH_BITS) - 1))
}

/// Packs three lower-tier counts (each `< MAX_DEPTH`: checkpoints cover
/// fewer than `MAX_DEPTH` blocks).
#[inline]
pub(crate) fn pack(c: &[u32; 3]) -> u64 {
    c.iter().enumerate().fold(0, |acc, (i, &x)| {
        acc | (u64::from(x) << (i as u32 * COUNT_BITS))
    })
}

/// Unpacks [`pack`].
#[inline]
pub(crate) fn unpack(w: u64) -> [u32; 3] {
    std::array::from_fn(|i| ((w >> (i as u32 * COUNT_BITS)) & ((1 << COUNT_BITS) - 1)) as u32)
}

/// Per-position NH constants: a key `k` at position `i` of a span adds
/// `(lo(k) + A[i])·(hi(k) + B[i]) + k` (32-bit halves, a 32×32→64-bit
/// product: the NH construction, plus the key itself so no key half is ever
/// ignored). Independent per key, so the core overlaps them.
const A: [u32; SPAN] = [
    0x8a2c_0f4d,
    0x3b7e_91c5,
    0xd4f1_62a9,
    0x17c3_5e8b,
    0xe96b_2d71,
    0x5209_b3ef,
    0xa1d7_4c33,
    0x6f8e_d015,
    0xc35a_7b97,
    0x2e14_f6d9,
    0xb7c0_895b,
    0x48f3_1a2d,
    0xf02d_e4a1,
    0x9365_3c7f,
    0x0cb9_a853,
    0x7d46_5fe7,
];
const B: [u32; SPAN] = [
    0x4f1b_b6e3,
    0xc8a2_1d59,
    0x1e65_f08b,
    0x93d7_4a2f,
    0x6a30_c7d1,
    0xe5f9_2b47,
    0x37ac_8e15,
    0xb10e_53f9,
    0x5c83_d96b,
    0xd2f4_7a0d,
    0x0b69_e4c3,
    0x86c5_3f71,
    0x2d9a_b825,
    0xa74e_0c97,
    0x7813_f1ab,
    0xf1b2_6d5f,
];

#[inline(always)]
fn term(i: usize, key: u64) -> u64 {
    let lo = (key as u32).wrapping_add(A[i]);
    let hi = ((key >> 32) as u32).wrapping_add(B[i]);
    (u64::from(lo) * u64::from(hi)).wrapping_add(key)
}

#[inline]
fn first(seed: u64) -> u64 {
    mix64(seed ^ 0x6368_6b70_7473)
}

/// Adds span `j`'s term to the digest of the spans before it. Each span's
/// term is mixed on its own (position included), so the terms of a prompt's
/// spans are independent and only an add carries from one to the next.
#[inline]
fn close(acc: u64, sum: u64, j: usize) -> u64 {
    acc.wrapping_add(mix64(
        sum ^ (j as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    ))
}

/// Digests of the prompt prefixes ending at each checkpoint: `out[j]`
/// covers the model and keys `0 ..= SPAN·j + SPAN − 1`.
pub(crate) fn digests(seed: u64, keys: &[BlockKey], out: &mut Vec<u64>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { digests_avx2(seed, keys, out) };
    }
    digests_portable(seed, keys, out);
}

/// [`digests`] compiled for AVX2 (4 products per instruction); the same
/// arithmetic, so the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn digests_avx2(seed: u64, keys: &[BlockKey], out: &mut Vec<u64>) {
    digests_portable(seed, keys, out);
}

#[inline(always)]
fn digests_portable(seed: u64, keys: &[BlockKey], out: &mut Vec<u64>) {
    out.clear();
    let mut acc = first(seed);
    for (j, span) in keys.chunks_exact(SPAN).enumerate() {
        let sum = span
            .iter()
            .enumerate()
            .fold(0u64, |s, (i, k)| s.wrapping_add(term(i, k.0)));
        acc = close(acc, sum, j);
        out.push(acc);
    }
}

/// The same digests, one key at a time (for ingestion, which sees a
/// chain's keys event by event).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Digest {
    acc: u64,
    sum: u64,
    /// Keys pushed so far.
    pub(crate) len: usize,
}

impl Digest {
    /// The digest of an empty prefix of `seed`'s model.
    pub(crate) fn new(seed: u64) -> Digest {
        Digest {
            acc: first(seed),
            sum: 0,
            len: 0,
        }
    }

    /// Appends a key; returns the checkpoint digest when it completes a span.
    #[inline]
    pub(crate) fn push(&mut self, key: u64) -> Option<u64> {
        let i = self.len % SPAN;
        self.sum = self.sum.wrapping_add(term(i, key));
        self.len += 1;
        if i + 1 < SPAN {
            return None;
        }
        self.acc = close(self.acc, self.sum, self.len / SPAN - 1);
        self.sum = 0;
        Some(self.acc)
    }
}

/// The record key of endpoint `ep`'s checkpoint at a prefix with `digest`.
#[inline]
pub(crate) fn record_key(digest: u64, ep: u16) -> u64 {
    let k = mix64(digest ^ (u64::from(ep) + 1).wrapping_mul(0xa076_1d64_78bd_642f));
    k.max(1)
}

impl Checkpoints {
    /// A store of about `records` records (rounded up to a power of two
    /// sets of 4); `None` when its memory cannot be had.
    pub fn new(records: usize) -> Option<Checkpoints> {
        let sets = records.div_ceil(WAYS).max(1).checked_next_power_of_two()?;
        Some(Checkpoints {
            sets: Buckets::new(sets)?,
            mask: sets - 1,
            reach: 0,
        })
    }

    /// The same store, keeping records up to `reach` raises behind their
    /// endpoint's epoch ahead of others (the endpoints' log length).
    pub fn with_reach(mut self, reach: u64) -> Checkpoints {
        self.reach = reach;
        self
    }

    /// Bytes a store of about `records` records takes.
    pub(crate) fn bytes_for(records: usize) -> u128 {
        let sets = records.div_ceil(WAYS).max(1);
        let sets = sets
            .checked_next_power_of_two()
            .map_or(u128::MAX / 256, |s| s as u128);
        sets * std::mem::size_of::<Set>() as u128
    }

    /// Bytes of the store.
    pub(crate) fn bytes(&self) -> usize {
        self.sets.len() * std::mem::size_of::<Set>()
    }

    #[inline]
    fn set(&self, key: u64) -> &Set {
        &self.sets[(key >> 8) as usize & self.mask]
    }

    /// Address of `key`'s set, for software prefetching.
    #[inline]
    pub(crate) fn set_ptr(&self, key: u64) -> *const u8 {
        (self.set(key) as *const Set).cast()
    }

    /// The checkpoint `key` of endpoint `ep`, whatever its epoch: the epoch
    /// it was stamped with (its low 48 bits) and its packed counts.
    #[inline]
    pub fn find(&self, key: u64, ep: u16) -> Option<(u64, u64)> {
        for r in &self.set(key).ways {
            let v1 = r.seq.load(Ordering::Acquire);
            if v1 & 1 == 1 || r.key.load(Ordering::Relaxed) != key {
                continue;
            }
            let st = r.stamp.load(Ordering::Relaxed);
            let counts = r.counts.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if r.seq.load(Ordering::Relaxed) == v1 && st >> EPOCH_BITS == u64::from(ep) {
                return Some((st & EPOCH_MASK, counts));
            }
        }
        None
    }

    /// Stores a checkpoint; `live_epoch(ep)` tells whether another record's
    /// endpoint has moved on too far for its log to check it (that record
    /// is stale and replaced first). Skipped when the chosen record is being
    /// written by another thread.
    pub fn put(&self, key: u64, ep: u16, epoch: u64, counts: u64, live_epoch: impl Fn(u16) -> u64) {
        let set = self.set(key);
        let stale = |r: &Record| {
            let st = r.stamp.load(Ordering::Relaxed);
            let owner = (st >> EPOCH_BITS) as u16;
            live_epoch(owner).wrapping_sub(st) & EPOCH_MASK > self.reach
        };
        let way = set
            .ways
            .iter()
            .position(|r| r.key.load(Ordering::Relaxed) == key)
            .or_else(|| {
                set.ways
                    .iter()
                    .position(|r| r.key.load(Ordering::Relaxed) == 0)
            })
            .or_else(|| set.ways.iter().position(stale))
            .unwrap_or((key >> 62) as usize % WAYS);
        let r = &set.ways[way];
        let v = r.seq.load(Ordering::Relaxed);
        if v & 1 == 1
            || r.seq
                .compare_exchange(v, v + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        r.key.store(key, Ordering::Relaxed);
        r.stamp.store(stamp(ep, epoch), Ordering::Relaxed);
        r.counts.store(counts, Ordering::Relaxed);
        r.seq.store(v + 2, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_their_epoch() {
        let c = Checkpoints::new(64).unwrap();
        let k = record_key(7, 3);
        assert_eq!(c.find(k, 3), None);
        c.put(k, 3, 5, pack(&[1, 2, 3]), |_| 5);
        assert_eq!(
            c.find(k, 3).map(|(e, w)| (e, unpack(w))),
            Some((5, [1, 2, 3]))
        );
        assert_eq!(c.find(k, 4), None, "another endpoint");
        assert_eq!(c.find(record_key(8, 3), 3), None, "another prefix");
    }

    #[test]
    fn digests_cover_every_key_in_order() {
        let keys: Vec<BlockKey> = (1..=64).map(BlockKey).collect();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        digests(1, &keys, &mut a);
        assert_eq!(a.len(), 4);
        let mut swapped = keys.clone();
        swapped.swap(3, 4);
        digests(1, &swapped, &mut b);
        assert_ne!(a[0], b[0], "order matters");
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x != y), "later digests chain");
        digests(2, &keys, &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x != y), "model matters");
        let mut changed = keys.clone();
        changed[40].0 ^= 1;
        digests(1, &changed, &mut b);
        assert_eq!(a[..2], b[..2], "earlier prefixes unchanged");
        assert!(a[2..].iter().zip(&b[2..]).all(|(x, y)| x != y));
    }

    #[test]
    fn pushed_digests_equal_the_batch_ones() {
        let keys: Vec<BlockKey> = (0..100u64).map(|i| BlockKey(mix64(i))).collect();
        let mut batch = Vec::new();
        digests(9, &keys, &mut batch);
        let mut d = Digest::new(9);
        let pushed: Vec<u64> = keys.iter().filter_map(|k| d.push(k.0)).collect();
        assert_eq!(pushed, batch);
        assert_eq!(d.len, 100);
    }

    #[test]
    fn every_digest_path_agrees() {
        for n in [0usize, 15, 16, 17, 100, 1000] {
            let keys: Vec<BlockKey> = (0..n as u64).map(|i| BlockKey(mix64(i ^ 3))).collect();
            let (mut fast, mut portable) = (Vec::new(), Vec::new());
            digests(5, &keys, &mut fast);
            digests_portable(5, &keys, &mut portable);
            assert_eq!(fast, portable, "{n} keys");
            assert_eq!(fast.len(), n / SPAN);
        }
    }

    #[test]
    fn full_sets_replace_stale_records_first() {
        let c = Checkpoints::new(4).unwrap(); // one set
        for ep in 0..4u16 {
            c.put(record_key(1, ep), ep, 0, 0, |_| 0);
        }
        // Endpoint 2 moved on: its record goes first.
        c.put(record_key(1, 9), 9, 0, 0, |e| u64::from(e == 2));
        assert!(c.find(record_key(1, 9), 9).is_some());
        assert!(c.find(record_key(1, 2), 2).is_none());
        for ep in [0u16, 1, 3] {
            assert!(c.find(record_key(1, ep), ep).is_some());
        }
        // With a log of 8 raises, a record 5 raises behind is still good;
        // one 9 behind is not.
        let c = Checkpoints::new(4).unwrap().with_reach(8);
        for ep in 0..4u16 {
            c.put(record_key(1, ep), ep, 0, 0, |_| 0);
        }
        c.put(record_key(1, 9), 9, 0, 0, |e| [0, 9, 5, 0][e as usize % 4]);
        assert!(c.find(record_key(1, 1), 1).is_none());
        assert!(c.find(record_key(1, 2), 2).is_some());
    }
}
