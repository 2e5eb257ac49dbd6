//! Chain depth classes: how eviction tells a chain's shared start from its
//! tail.
//!
//! vLLM frees a finished request's blocks tail first, so among blocks left
//! unused equally long its LRU evicts the tail before the prefix the tail
//! extends, and prefixes shared by many requests outlive their tails. The
//! table approximates LRU with CLOCK; to keep vLLM's order among the entries
//! the CLOCK hand finds unused, each entry carries the class of its block's
//! depth in its chain (block 0 has depth 0), and an unused entry is evicted
//! only on one sweep of the hand in [`lives`] of its class: every sweep for
//! tails 256 blocks deep or more and for orphans, every 16th for the first
//! 32 blocks, and that many times more for an entry several endpoints hold
//! (up to 4×: it stands for that many cached blocks) (`Table::evict_clock`).
//! A prefix left unused long enough still goes, as in LRU; among entries left
//! unused for a similar time, tails go first and shared blocks last.
//!
//! The depth is learned at ingestion (`chains.rs`): exact along the chains
//! an endpoint is seen storing (each event continuing the previous
//! one's last block), and where an event continues a block the index does
//! not follow as a chain tail (a request that reused another's cached
//! prefix), at least `floor(c) + 1` for a parent held in class `c`. An
//! event without a parent starts at 0. A block whose parent the endpoint
//! does not hold is an [`ORPHAN`]: no lookup from block 0 can reach it for
//! that endpoint, so it is the first to go. Along a chain the class never
//! decreases, so the preference always runs tail first. An entry shared by
//! several endpoints keeps the largest known class (the tightest bound); an
//! orphan class is replaced by any known one.
//!
//! This orders eviction; it does not guarantee that no endpoint loses a
//! block before the blocks chained from it: that would need child links or
//! per-entry parents, which the 16-byte entry does not have. Classes are
//! logarithmic, three bits per slot in the bucket's `meta` word.

/// Sweeps an unused entry of one holder can survive at most (see [`lives`]).
const MAX_DEPTH_LIVES: u64 = 16;

/// Holders that count towards an entry's lives.
const MAX_HOLDERS: u32 = 4;

/// The most sweeps an unused entry can survive (see [`lives`]).
pub(crate) const MAX_LIVES: u64 = MAX_DEPTH_LIVES * MAX_HOLDERS as u64;

/// Class of a block whose parent its endpoint does not hold.
pub(crate) const ORPHAN: u8 = 7;

/// Deepest class of a known depth: 256 blocks and more.
const DEEPEST_KNOWN: u8 = 6;

/// Class of a depth: 0–7 → 0, 8–15 → 1, 16–31 → 2, … 128–255 → 5,
/// 256 and more → 6.
#[inline]
pub(crate) fn class_of(depth: usize) -> u8 {
    if depth < 8 {
        0
    } else {
        ((usize::BITS - depth.leading_zeros()) as u8 - 3).min(DEEPEST_KNOWN)
    }
}

/// The least depth of a known class.
#[inline]
pub(crate) fn floor(class: u8) -> usize {
    match class {
        0 => 0,
        c => 1 << (c.min(DEEPEST_KNOWN) + 2),
    }
}

/// One in how many sweeps of the CLOCK hand may evict an unused entry of
/// `class` whose endpoint mask holds `holders` endpoints: 1 for orphans;
/// else 1 for blocks 256 deep or more, doubling per class shallower up to 16
/// (blocks 0–31), times the holders up to 4: an entry shared by `k`
/// endpoints stands for `k` cached blocks, and evicting it loses them all.
#[inline]
pub(crate) fn lives(class: u8, holders: u32) -> u64 {
    match class {
        ORPHAN => 1,
        c => {
            let by_depth = (1u64 << (DEEPEST_KNOWN - c.min(DEEPEST_KNOWN))).min(MAX_DEPTH_LIVES);
            by_depth * u64::from(holders.clamp(1, MAX_HOLDERS))
        }
    }
}

/// The class an entry keeps when a holder adds a block of class `new` to
/// it (see the module header).
#[inline]
pub(crate) fn merge(old: u8, new: u8) -> u8 {
    match (old, new) {
        (_, ORPHAN) => old,
        (ORPHAN, n) => n,
        (o, n) => o.max(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_logarithmic_and_floors_bound_them() {
        let expect = [
            (0, 0),
            (7, 0),
            (8, 1),
            (15, 1),
            (16, 2),
            (63, 3),
            (64, 4),
            (255, 5),
            (256, 6),
            (1 << 20, 6),
        ];
        for (d, c) in expect {
            assert_eq!(class_of(d), c, "depth {d}");
            assert!(floor(c) <= d, "floor of class {c} above depth {d}");
        }
        for c in 0..=DEEPEST_KNOWN {
            assert_eq!(class_of(floor(c)), c);
        }
    }

    #[test]
    fn a_chain_never_gets_shallower() {
        // A child resumed from its parent's class (the chain not followed)
        // is given at most its true depth, and a class no lower than the
        // parent's.
        for d in 0..5000 {
            let resumed = floor(class_of(d)) + 1;
            assert!(resumed <= d + 1, "depth {d} resumed at {resumed}");
            assert!(class_of(resumed) >= class_of(d), "depth {d}");
        }
    }

    #[test]
    fn shallower_and_shared_entries_live_longer() {
        let l: Vec<u64> = (0..=ORPHAN).map(|c| lives(c, 1)).collect();
        assert_eq!(l, [16, 16, 16, 8, 4, 2, 1, 1]);
        let shared: Vec<u64> = (0..=ORPHAN).map(|c| lives(c, 8)).collect();
        assert_eq!(shared, [64, 64, 64, 32, 16, 8, 4, 1]);
        assert_eq!(lives(6, 2), 2);
        assert_eq!(lives(0, 0), 16);
        assert!((0..=ORPHAN).all(|c| lives(c, 64) <= MAX_LIVES));
    }

    #[test]
    fn known_classes_replace_orphans_and_the_deeper_bound_wins() {
        assert_eq!(merge(ORPHAN, 2), 2);
        assert_eq!(merge(2, ORPHAN), 2);
        assert_eq!(merge(2, 4), 4);
        assert_eq!(merge(4, 2), 4);
        assert_eq!(merge(ORPHAN, ORPHAN), ORPHAN);
    }
}
