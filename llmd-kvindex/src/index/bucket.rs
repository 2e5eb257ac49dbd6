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
//! * Readers load the version (Acquire), the slots (Relaxed), fence (Acquire)
//!   and re-load the version; they retry only when it changed — the seqlock
//!   pattern, with atomics everywhere so no read is a data race.
//! * The `meta` word holds the overflow count (bits 32..) written by writers
//!   and one reference bit per slot (bits 0..7) that readers may set.

use super::sync::{fence, spin, AtomicU64, Ordering};

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

/// What a reader found for one fingerprint in one bucket.
pub struct Snapshot {
    /// `(tag, mask)` of the matching slots; `tag` = low [`TAG_BITS`] of the key.
    pub hits: [(u16, u64); SLOTS],
    /// Number of valid entries in `hits`.
    pub len: usize,
    /// Reference bits of the matching slots (to set after use).
    pub hit_slots: u64,
    /// Whether entries homed here spilled into their alternate bucket.
    pub overflow: bool,
    /// Reference bits as read.
    pub ref_bits: u64,
}

const OVERFLOW_ONE: u64 = 1 << 32;
const REF_MASK: u64 = (1 << SLOTS) - 1;

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
    /// Lock-free consistent read of the slots whose key carries fingerprint `fp`.
    #[inline]
    pub fn read(&self, fp: u64, out: &mut Snapshot) {
        loop {
            let v1 = self.version.load(Ordering::Acquire);
            if v1 & 1 == 1 {
                spin();
                continue;
            }
            let meta = self.meta.load(Ordering::Relaxed);
            let mut len = 0;
            let mut hit_slots = 0;
            for (i, slot) in self.slots.iter().enumerate() {
                let key = slot.key.load(Ordering::Relaxed);
                if key >> TAG_BITS == fp && key != 0 {
                    let mask = slot.mask.load(Ordering::Relaxed);
                    out.hits[len] = ((key & ((1 << TAG_BITS) - 1)) as u16, mask);
                    len += 1;
                    hit_slots |= 1 << i;
                }
            }
            fence(Ordering::Acquire);
            if self.version.load(Ordering::Relaxed) == v1 {
                out.len = len;
                out.hit_slots = hit_slots;
                out.overflow = meta >> 32 != 0;
                out.ref_bits = meta & REF_MASK;
                return;
            }
        }
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

    /// Installs `key` with `mask` into free slot `i`, inside a version-bumped
    /// section so that readers detect the reuse.
    pub fn install(&self, i: usize, key: u64, mask: u64) {
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.slots[i].mask.store(mask, Ordering::Relaxed);
        self.slots[i].key.store(key, Ordering::Relaxed);
        self.version.store(v.wrapping_add(2), Ordering::Release);
        self.meta.fetch_or(1 << i, Ordering::Relaxed);
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

impl Snapshot {
    /// An empty snapshot to read into.
    pub fn new() -> Self {
        Snapshot {
            hits: [(0, 0); SLOTS],
            len: 0,
            hit_slots: 0,
            overflow: false,
            ref_bits: 0,
        }
    }
}
