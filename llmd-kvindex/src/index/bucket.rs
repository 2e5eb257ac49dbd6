//! One bucket of the set-associative table: 7 slots of `{key, mask}` plus a
//! header, 128 bytes (two cache lines) in all.
//!
//! Protocol (see `docs/index.md`):
//! * Only a writer holding the shard lock modifies `version`, keys and masks.
//! * Installing a key into a slot (a new or reused slot) happens inside a
//!   version-bumped section (odd while writing, even afterwards), so a reader
//!   can never pair a key with a mask that belonged to an earlier key.
//! * Changing the mask of an installed key, or clearing a slot, is a single
//!   store without a version bump: every value a reader can see is a mask that
//!   key really had (or zero).
//! * Moving an entry to its alternate bucket installs it there first, raises
//!   the home's spill count, then frees the home slot inside a version-bumped
//!   section, so no reader misses an entry that exists throughout.
//! * Readers load the version (Acquire), the slots (Relaxed), fence (Acquire)
//!   and re-load the version; they retry only when it changed — the seqlock
//!   pattern, with atomics everywhere so no read is a data race.
//! * The `meta` word holds the overflow count (bits 32..) and each slot's
//!   3-bit depth class (bits 8..29, `depth.rs`), written by writers, and one
//!   reference bit per slot (bits 0..7) that readers may set.

use super::keys::{tag_group, tag_tier};
use super::sync::{fence, spin, AtomicU64, Ordering};

/// Prefetches the two cache lines at `p` (a bucket, a checkpoint set).
#[inline]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint that never faults, whatever the
    // address; SSE is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Slots per bucket.
pub const SLOTS: usize = 7;

/// Number of low key bits holding tier (2 bits) and endpoint group (10 bits).
pub const TAG_BITS: u32 = 12;

struct Slot {
    key: AtomicU64,
    mask: AtomicU64,
}

/// A bucket; 128-byte aligned so it spans exactly two cache lines.
#[repr(C, align(128))]
pub struct Bucket {
    version: AtomicU64,
    meta: AtomicU64,
    slots: [Slot; SLOTS],
}

const OVERFLOW_ONE: u64 = 1 << 32;
const REF_MASK: u64 = (1 << SLOTS) - 1;
/// First `meta` bit of the slots' depth classes (3 bits each).
const DEPTH_SHIFT: usize = 8;

// SAFETY: a bucket is atomics only and its `Default` is all zeros.
unsafe impl super::buckets::ZeroEmpty for Bucket {}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            version: AtomicU64::new(0),
            meta: AtomicU64::new(0),
            slots: std::array::from_fn(|_| Slot {
                key: AtomicU64::new(0),
                mask: AtomicU64::new(0),
            }),
        }
    }
}

impl Bucket {
    /// Runs `body` (Relaxed loads of slots only) inside the seqlock read
    /// protocol: version (Acquire, retried while odd), `meta`, the body,
    /// `fence(Acquire)`, version again; retried until both versions agree.
    /// Returns the body's result of the accepted attempt and `meta` as read.
    #[inline(always)]
    fn seq_read<R>(&self, mut body: impl FnMut(&[Slot; SLOTS]) -> R) -> (R, u64) {
        loop {
            let v1 = self.version.load(Ordering::Acquire);
            if v1 & 1 == 1 {
                spin();
                continue;
            }
            let meta = self.meta.load(Ordering::Relaxed);
            let r = body(&self.slots);
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) == v1 {
                return (r, meta);
            }
        }
    }

    /// The lookup's probe: ORs the masks of `fp`'s entries whose group lies in
    /// endpoint cluster `cluster` into `held[tier][group in cluster]`, sets the
    /// reference bits of matching slots that lack them, and returns whether
    /// entries homed here spilled to their alternate bucket. Same protocol as
    /// the module header describes; the key compare is
    /// branch-free (one bit per slot), since `fp` usually matches one slot.
    #[inline(always)]
    pub fn gather<const G: usize>(
        &self,
        fp: u64,
        cluster: usize,
        held: &mut [[u64; G]; 4],
    ) -> bool {
        let ((hits, acc), meta) = self.seq_read(|slots| {
            let mut keys = [0u64; SLOTS];
            let mut hits = 0u64;
            for (i, slot) in slots.iter().enumerate() {
                keys[i] = slot.key.load(Ordering::Relaxed);
                // `fp` is never 0, so a free slot (key 0) cannot match.
                hits |= u64::from(keys[i] >> TAG_BITS == fp) << i;
            }
            let mut acc = [[0u64; G]; 4];
            let mut m = hits;
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                let tag = (keys[i] & ((1 << TAG_BITS) - 1)) as u16;
                let group = tag_group(tag);
                if group / G == cluster {
                    acc[tag_tier(tag)][group % G] |= slots[i].mask.load(Ordering::Relaxed);
                }
            }
            (hits, acc)
        });
        for (h, a) in held.iter_mut().zip(acc) {
            for (x, y) in h.iter_mut().zip(a) {
                *x |= y;
            }
        }
        if hits & !meta & REF_MASK != 0 {
            self.touch(hits);
        }
        meta >> 32 != 0
    }

    /// A reader's look at the entry keyed `key` (same protocol as
    /// [`Bucket::gather`]): its slot and mask, read together (never a mask
    /// of an earlier key of the slot), the slot's depth class as `meta` held
    /// then (a slot being reused may still show its earlier key's class
    /// until the installing writer sets the new one), and whether entries
    /// homed here spilled to their alternate bucket. Sets the slot's
    /// reference bit, as a lookup does.
    #[inline]
    pub fn read_entry(&self, key: u64) -> (Option<(usize, u64, u8)>, bool) {
        let (hit, meta) = self.seq_read(|slots| {
            slots
                .iter()
                .position(|s| s.key.load(Ordering::Relaxed) == key)
                .map(|i| (i, slots[i].mask.load(Ordering::Relaxed)))
        });
        let entry = hit.map(|(i, mask)| (i, mask, ((meta >> (DEPTH_SHIFT + 3 * i)) & 7) as u8));
        if let Some((i, _, _)) = entry {
            if meta & (1 << i) == 0 {
                self.touch(1 << i);
            }
        }
        (entry, meta >> 32 != 0)
    }

    /// Marks slots as recently used (CLOCK reference bits); a reader calls
    /// this only when a bit is missing, so hot buckets stay read-only.
    #[inline]
    pub fn touch(&self, slots: u64) {
        self.meta.fetch_or(slots & REF_MASK, Ordering::Relaxed);
    }

    /// Address of the bucket, for software prefetching.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        (self as *const Bucket).cast()
    }

    // ---- writer side: the caller holds the shard lock ----

    /// Key of slot `i` (0 = free).
    #[inline]
    pub fn key(&self, i: usize) -> u64 {
        self.slots[i].key.load(Ordering::Relaxed)
    }

    /// Mask of slot `i`.
    #[inline]
    pub fn mask(&self, i: usize) -> u64 {
        self.slots[i].mask.load(Ordering::Relaxed)
    }

    /// Changes the mask of an installed key (never to zero: use `free`).
    #[inline]
    pub fn set_mask(&self, i: usize, mask: u64) {
        self.slots[i].mask.store(mask, Ordering::Release);
    }

    /// Installs `key` with `mask` and depth class `depth` into free slot
    /// `i`, inside a version-bumped section so that readers detect the reuse.
    pub fn install(&self, i: usize, key: u64, mask: u64, depth: u8) {
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.slots[i].mask.store(mask, Ordering::Relaxed);
        self.slots[i].key.store(key, Ordering::Relaxed);
        self.version.store(v.wrapping_add(2), Ordering::Release);
        self.meta.fetch_or(1 << i, Ordering::Relaxed);
        self.set_depth(i, depth);
    }

    /// Depth class of slot `i` (`depth.rs`).
    #[inline]
    pub fn depth(&self, i: usize) -> u8 {
        ((self.meta.load(Ordering::Relaxed) >> (DEPTH_SHIFT + 3 * i)) & 7) as u8
    }

    /// Sets the depth class of slot `i`. Readers only ever set reference
    /// bits, which these two updates leave alone.
    #[inline]
    pub fn set_depth(&self, i: usize, depth: u8) {
        if self.depth(i) != depth {
            let shift = DEPTH_SHIFT + 3 * i;
            self.meta.fetch_and(!(7u64 << shift), Ordering::Relaxed);
            self.meta
                .fetch_or(u64::from(depth & 7) << shift, Ordering::Relaxed);
        }
    }

    /// Frees slot `i` inside a version-bumped section, for an entry that
    /// still exists elsewhere (moved to its alternate bucket): a reader that
    /// read this bucket's spill count before the move retries, so it cannot
    /// miss the entry in both buckets.
    pub fn free_moved(&self, i: usize) {
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.slots[i].mask.store(0, Ordering::Relaxed);
        self.slots[i].key.store(0, Ordering::Relaxed);
        self.version.store(v.wrapping_add(2), Ordering::Release);
        self.meta.fetch_and(!(1 << i), Ordering::Relaxed);
    }

    /// Frees slot `i`: mask first, so a reader sees an empty mask or no key.
    pub fn free(&self, i: usize) {
        self.slots[i].mask.store(0, Ordering::Release);
        self.slots[i].key.store(0, Ordering::Release);
        self.meta.fetch_and(!(1 << i), Ordering::Relaxed);
    }

    /// CLOCK reference bit of slot `i`.
    #[inline]
    pub fn referenced(&self, i: usize) -> bool {
        self.meta.load(Ordering::Relaxed) & (1 << i) != 0
    }

    /// Clears the reference bit of slot `i` (the CLOCK hand passing by).
    #[inline]
    pub fn unreference(&self, i: usize) {
        self.meta.fetch_and(!(1 << i), Ordering::Relaxed);
    }

    /// Number of entries homed here that live in their alternate bucket.
    #[inline]
    pub fn overflow(&self) -> u64 {
        self.meta.load(Ordering::Relaxed) >> 32
    }

    /// Adjusts the overflow count by one.
    #[inline]
    pub fn add_overflow(&self, up: bool) {
        if up {
            self.meta.fetch_add(OVERFLOW_ONE, Ordering::Relaxed);
        } else {
            self.meta.fetch_sub(OVERFLOW_ONE, Ordering::Relaxed);
        }
    }
}
