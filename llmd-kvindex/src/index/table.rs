//! The bounded, set-associative (model, block) → endpoint-bitset table.
//!
//! Buckets are grouped into shards, each with a writer mutex. One global
//! count of entries, reserved before every insert, keeps the table at or
//! below the configured capacity; nothing is evicted while it is below.
//! An entry lives in its home bucket or, when that is full, in its alternate
//! bucket (same shard); the home counts such spills so readers probe the
//! alternate only when needed. When both are full, entries living in their
//! home are moved to their alternate (a bounded cuckoo-style search, one
//! direction only) to make room; only when no such path exists is an entry
//! evicted below capacity (counted in `displacement_failures`).

use super::bucket::{Bucket, SLOTS, TAG_BITS};
use super::buckets::Buckets;
use super::depth;
use super::epochs::{Epochs, ANY_BLOCK};
use super::keys::{table_key, tag_group, tag_tier, Geometry, Location, GROUPS_PER_CLUSTER, TIERS};
use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicU64, Ordering};

/// Blocks a writer prefetches ahead of the one it sets.
pub(crate) const WRITE_AHEAD: usize = 16;
/// Target occupancy of the slots at full capacity.
const LOAD_FACTOR: f64 = 0.75;
/// Upper bound on writer shards.
const MAX_SHARDS: usize = 256;
/// Buckets per shard below which shards are merged.
const MIN_BUCKETS_PER_SHARD: usize = 64;
/// Depth of the search for a chain of moves that frees a slot: up to
/// 7 + 49 + 343 entries examined, only when both candidate buckets are full.
const MOVE_DEPTH: u32 = 2;

/// What [`Table::set`] did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Placed {
    /// The bit was not set before.
    pub newly: bool,
    /// Rank (in the lookup's tier order) of the tier the block now counts
    /// in for the endpoint: the best of the tiers it holds it in.
    pub rank: u8,
}

struct ShardState {
    /// Entries in this shard.
    live: usize,
    /// CLOCK hand over the shard's slots.
    hand: usize,
    /// Sweeps the hand has completed (`evict_clock`).
    sweep: u64,
}

/// The table. All methods take `&self`; writers serialise per shard.
pub(crate) struct Table {
    buckets: Buckets<Bucket>,
    shards: Box<[CachePadded<Mutex<ShardState>>]>,
    geo: Geometry,
    /// Per endpoint slot and table tier: how many entries hold its bit.
    holdings: Box<[[AtomicU64; TIERS]]>,
    /// Per endpoint slot: raised after every change that can shorten or
    /// re-weigh a prefix it holds (a block removed or evicted, a better tier
    /// added to a block it holds), with the block logged; a verified-prefix
    /// checkpoint is trusted while its endpoint's epoch is unchanged, or
    /// while the log shows none of its blocks changed (`epochs.rs`).
    epochs: Epochs,
    /// Position of each table tier in the lookup's tier order (0 = the
    /// tier a block held in several tiers is counted in).
    rank: [u8; TIERS],
    live: AtomicU64,
    evictions: AtomicU64,
    /// Entries evicted while the table was below capacity (no move freed a
    /// slot in either candidate bucket).
    displacement_failures: AtomicU64,
    /// Entries moved to their alternate bucket to make room.
    moves: AtomicU64,
    capacity: usize,
}

impl Table {
    /// A table for `capacity` entries (≥ 1) and `max_endpoints` endpoint
    /// slots, with `tier_order` the lookup's tier order (best first);
    /// `None` when its memory cannot be allocated.
    pub(crate) fn new(
        capacity: usize,
        max_endpoints: usize,
        tier_order: [usize; TIERS],
    ) -> Option<Table> {
        let capacity = capacity.max(1);
        let buckets = ((capacity as f64 / (LOAD_FACTOR * SLOTS as f64)).ceil() as usize).max(1);
        let mut shards = 1;
        while shards * 2 <= MAX_SHARDS
            && buckets / (shards * 2) >= MIN_BUCKETS_PER_SHARD
            && shards * 2 <= capacity
        {
            shards *= 2;
        }
        let per_shard = buckets.div_ceil(shards);
        let geo = Geometry { shards, per_shard };
        let shard_states = (0..shards)
            .map(|_| {
                CachePadded::new(Mutex::new(ShardState {
                    live: 0,
                    hand: 0,
                    sweep: 0,
                }))
            })
            .collect();
        Some(Table {
            buckets: Buckets::new(shards * per_shard)?,
            shards: shard_states,
            geo,
            holdings: (0..max_endpoints)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            epochs: Epochs::new(max_endpoints, capacity),
            rank: {
                let mut r = [0u8; TIERS];
                for (pos, &t) in tier_order.iter().enumerate() {
                    r[t] = pos as u8;
                }
                r
            },
            live: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            displacement_failures: AtomicU64::new(0),
            moves: AtomicU64::new(0),
            capacity,
        })
    }

    /// Bytes of the bucket array a table of `capacity` entries needs.
    pub(crate) fn bytes_for(capacity: usize) -> u128 {
        let buckets = (capacity.max(1) as f64 / (LOAD_FACTOR * SLOTS as f64)).ceil() as u128;
        buckets * std::mem::size_of::<Bucket>() as u128
    }

    #[inline]
    pub(crate) fn geometry(&self) -> Geometry {
        self.geo
    }

    #[inline]
    pub(crate) fn bucket(&self, i: usize) -> &Bucket {
        &self.buckets[i]
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// At capacity: the next insert evicts.
    pub(crate) fn full(&self) -> bool {
        self.live.load(Ordering::Relaxed) >= self.capacity as u64
    }

    /// Clears every reference bit (tests: as if the CLOCK hand passed).
    #[cfg(test)]
    pub(crate) fn clear_references(&self) {
        for b in self.buckets.iter() {
            (0..SLOTS).for_each(|s| b.unreference(s));
        }
    }

    /// Whether (fp, tier)'s entry of `ep`'s group is referenced (tests).
    #[cfg(test)]
    pub(crate) fn referenced(&self, fp: u64, tier: usize, ep: u16) -> bool {
        let group = ep as usize / 64;
        let loc = self.geo.locate(fp, group / GROUPS_PER_CLUSTER);
        self.find(&loc, table_key(fp, tier, group))
            .is_some_and(|(b, s)| self.buckets[b].referenced(s))
    }

    pub(crate) fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    pub(crate) fn displacement_failures(&self) -> u64 {
        self.displacement_failures.load(Ordering::Relaxed)
    }

    pub(crate) fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }

    /// Entries holding endpoint `ep`'s bit, per table tier.
    pub(crate) fn holdings(&self, ep: u16) -> [u64; TIERS] {
        match self.holdings.get(ep as usize) {
            Some(h) => std::array::from_fn(|t| h[t].load(Ordering::Relaxed)),
            None => [0; TIERS],
        }
    }

    /// Endpoint `ep`'s epoch (Acquire: a reader that sees an epoch also sees
    /// every table change made before it was raised).
    #[inline]
    pub(crate) fn epoch(&self, ep: u16) -> u64 {
        self.epochs.read(ep)
    }

    /// The endpoints' epochs and logs.
    #[inline]
    pub(crate) fn epochs(&self) -> &Epochs {
        &self.epochs
    }

    /// Raises `ep`'s epoch for a change of block `fp` ([`ANY_BLOCK`]: of any
    /// block), after the change is visible in the table.
    #[inline]
    pub(crate) fn bump(&self, ep: usize, fp: u64) {
        self.epochs.raise(ep, fp);
    }

    /// The best (lowest) rank among the tiers other than `except` in which
    /// `ep` holds `fp`, if any. The caller holds the shard lock of `loc`.
    fn best_other_rank(&self, loc: &Location, fp: u64, except: usize, ep: u16) -> Option<u8> {
        // Most endpoints use one tier: no scan when `ep` holds nothing in any
        // other (a count raised under this shard's lock for this block).
        let h = &self.holdings[ep as usize];
        if (0..TIERS).all(|t| t == except || h[t].load(Ordering::Relaxed) == 0) {
            return None;
        }
        let mut best = None;
        self.each_held(loc, fp, ep, |tier, _| {
            if tier != except {
                let r = self.rank[tier];
                best = Some(best.map_or(r, |x: u8| x.min(r)));
            }
        });
        best
    }

    /// Calls `f(tier, depth class)` for each entry (home bucket, then the
    /// alternate when entries spilled) in which `ep` holds `fp`. The caller
    /// holds the shard lock of `loc`.
    fn each_held(&self, loc: &Location, fp: u64, ep: u16, mut f: impl FnMut(usize, u8)) {
        let group = ep as usize / 64;
        let bit = 1u64 << (ep % 64);
        let mut scan = |b: usize| {
            let bucket = &self.buckets[b];
            for s in 0..SLOTS {
                let key = bucket.key(s);
                let tag = (key & ((1 << TAG_BITS) - 1)) as u16;
                if key >> TAG_BITS == fp && tag_group(tag) == group && bucket.mask(s) & bit != 0 {
                    f(tag_tier(tag), bucket.depth(s));
                }
            }
        };
        scan(loc.home);
        if let Some(alt) = loc.alt().filter(|_| self.buckets[loc.home].overflow() != 0) {
            scan(alt);
        }
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, ShardState> {
        self.shards[shard].lock()
    }

    fn find(&self, loc: &Location, key: u64) -> Option<(usize, usize)> {
        let home = &self.buckets[loc.home];
        if let Some(s) = (0..SLOTS).find(|&s| home.key(s) == key) {
            return Some((loc.home, s));
        }
        let alt = loc.alt()?;
        if home.overflow() == 0 {
            return None;
        }
        let b = &self.buckets[alt];
        (0..SLOTS).find(|&s| b.key(s) == key).map(|s| (alt, s))
    }

    /// Prefetches the home bucket of (fp, `ep`'s cluster), for a writer
    /// about to set several blocks: their misses overlap.
    #[inline]
    pub(crate) fn prefetch_home(&self, fp: u64, ep: u16) {
        let home = self
            .geo
            .locate(fp, ep as usize / 64 / GROUPS_PER_CLUSTER)
            .home;
        super::bucket::prefetch(self.buckets[home].as_ptr());
    }

    /// Sets endpoint `ep`'s bit for (fp, tier), the block being of depth
    /// class `depth` in its chain (`depth.rs`). Evicts another entry only
    /// when the table is at capacity, or (counted as a displacement failure)
    /// when both candidate buckets are full and no move frees a slot.
    ///
    /// A block `ep` already held in another tier whose counted tier changes
    /// (the new tier ranks first) raises `ep`'s epoch; a block newly held
    /// shortens nothing and raises nothing.
    pub(crate) fn set(&self, fp: u64, tier: usize, ep: u16, depth: u8) -> Placed {
        let group = ep as usize / 64;
        let bit = 1u64 << (ep % 64);
        let key = table_key(fp, tier, group);
        let loc = self.geo.locate(fp, group / GROUPS_PER_CLUSTER);
        let mut st = self.lock(loc.shard);
        let mut newly = true;
        if let Some((b, s)) = self.find(&loc, key) {
            let bucket = &self.buckets[b];
            let mask = bucket.mask(s);
            if mask & bit != 0 {
                newly = false;
            } else {
                bucket.set_mask(s, mask | bit);
            }
            bucket.set_depth(s, depth::merge(bucket.depth(s), depth));
        } else {
            self.reserve(&mut st, loc.shard);
            let (b, s) = self.place(&mut st, &loc);
            self.buckets[b].install(s, key, bit, depth);
            if b != loc.home {
                self.buckets[loc.home].add_overflow(true);
            }
        }
        let other = self.best_other_rank(&loc, fp, tier, ep);
        if newly {
            self.holdings[ep as usize][tier].fetch_add(1, Ordering::Relaxed);
            if other.is_some_and(|r| self.rank[tier] < r) {
                self.bump(ep as usize, fp);
            }
        }
        Placed {
            newly,
            rank: other.map_or(self.rank[tier], |r| r.min(self.rank[tier])),
        }
    }

    /// Whether `ep` holds no block in a tier other than `tier`.
    #[inline]
    pub(crate) fn holds_only(&self, ep: u16, tier: usize) -> bool {
        let h = &self.holdings[ep as usize];
        (0..TIERS).all(|t| t == tier || h[t].load(Ordering::Relaxed) == 0)
    }

    /// [`Table::set`]'s answer without its lock, for the common case where
    /// it would change nothing: `ep` already holds (fp, `tier`) with a depth
    /// class `depth` leaves as it is, and holds nothing in another tier (so
    /// the block counts in `tier`). `None` otherwise; the caller then calls
    /// `set`. Read like a lookup (seqlock, reference bit set): a concurrent
    /// eviction may clear the entry right after, as it may after `set`.
    /// The caller holds `ep`'s writer lock, which orders `ep`'s holdings;
    /// `ep`'s bit in the entry was set by that writer, after the entry's
    /// depth class, so the class read beside the bit is the entry's own.
    /// Unlike `set`, it marks the entry recently used (its reference bit).
    ///
    /// `alone` is [`Table::holds_only`]`(ep, tier)`, read by the caller once
    /// for a run of blocks: while it holds `ep`'s writer lock only that
    /// writer can give `ep` a block in another tier (evictions only take
    /// blocks away), and it adds blocks in `tier` alone.
    #[inline]
    pub(crate) fn refresh_held(
        &self,
        fp: u64,
        tier: usize,
        ep: u16,
        depth: u8,
        alone: bool,
    ) -> Option<Placed> {
        if !alone {
            return None;
        }
        let group = ep as usize / 64;
        let key = table_key(fp, tier, group);
        let loc = self.geo.locate(fp, group / GROUPS_PER_CLUSTER);
        let (mut entry, spilled) = self.buckets[loc.home].read_entry(key);
        if entry.is_none() && spilled {
            entry = self.buckets[loc.alt()?].read_entry(key).0;
        }
        let (_, mask, d) = entry?;
        (mask & (1u64 << (ep % 64)) != 0 && depth::merge(d, depth) == d).then_some(Placed {
            newly: false,
            rank: self.rank[tier],
        })
    }

    /// Counts one more entry, evicting first when the table is at capacity
    /// (CLOCK over this shard; another shard's if this one is empty). The
    /// count is reserved with a compare-and-swap, so concurrent writers of
    /// different shards never take the table past its capacity.
    fn reserve(&self, st: &mut ShardState, shard: usize) {
        loop {
            let cur = self.live.load(Ordering::Relaxed);
            if cur < self.capacity as u64 {
                if self
                    .live
                    .compare_exchange_weak(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    st.live += 1;
                    return;
                }
                continue;
            }
            if st.live > 0 {
                self.evict_clock(st, shard);
            } else {
                self.evict_elsewhere(shard);
            }
        }
    }

    /// Evicts one entry of another shard (taken with `try_lock`, so two
    /// writers at capacity never wait for each other's shard).
    fn evict_elsewhere(&self, shard: usize) {
        let n = self.geo.shards;
        for k in (1..n).cycle() {
            let other = (shard + k) % n;
            if let Some(mut o) = self.shards[other].try_lock() {
                if o.live > 0 {
                    self.evict_clock(&mut o, other);
                    return;
                }
            }
            if self.live.load(Ordering::Relaxed) < self.capacity as u64 {
                return; // someone else made room
            }
            std::hint::spin_loop();
        }
    }

    /// A free slot for a new entry at `loc`: the home, the alternate, a slot
    /// made by moving entries to their alternates, or (no move possible) a
    /// victim's.
    fn place(&self, st: &mut ShardState, loc: &Location) -> (usize, usize) {
        if let Some(s) = self.free_slot(loc.home) {
            return (loc.home, s);
        }
        let alt = loc.alt();
        if let Some(found) = alt.and_then(|a| self.free_slot(a).map(|s| (a, s))) {
            return found;
        }
        for b in std::iter::once(loc.home).chain(alt) {
            if let Some(s) = self.make_room(b, MOVE_DEPTH) {
                return (b, s);
            }
        }
        let (b, s) = self.victim(loc);
        self.evict(st, b, s);
        // The reservation already counted the new entry: the victim leaves
        // the table below capacity, which a later insert may fill.
        self.displacement_failures.fetch_add(1, Ordering::Relaxed);
        (b, s)
    }

    /// Frees a slot of full bucket `b` by moving one of its entries that
    /// lives in its home (here) to its alternate, first making room there
    /// the same way, `depth` levels deep. Entries living in their alternate
    /// never move back, so a reader that finds the home without an entry
    /// always finds it in the alternate (see `Bucket::free_moved`).
    fn make_room(&self, b: usize, depth: u32) -> Option<usize> {
        let mut movable = [(0usize, 0usize); SLOTS];
        let mut n = 0;
        for s in 0..SLOTS {
            let loc = self.geo.locate_key(self.buckets[b].key(s));
            if loc.home != b {
                continue;
            }
            let Some(alt) = loc.alt() else { continue };
            if let Some(t) = self.free_slot(alt) {
                self.move_entry(b, s, alt, t);
                return Some(s);
            }
            movable[n] = (s, alt);
            n += 1;
        }
        if depth == 0 {
            return None;
        }
        for &(s, alt) in &movable[..n] {
            if let Some(t) = self.make_room(alt, depth - 1) {
                self.move_entry(b, s, alt, t);
                return Some(s);
            }
        }
        None
    }

    /// Moves the entry in slot `s` of its home `from` to free slot `t` of its
    /// alternate `to`: installed there, the home's spill count raised, then
    /// freed here inside a version-bumped section.
    fn move_entry(&self, from: usize, s: usize, to: usize, t: usize) {
        let src = &self.buckets[from];
        let (key, mask) = (src.key(s), src.mask(s));
        self.buckets[to].install(t, key, mask, src.depth(s));
        src.add_overflow(true);
        src.free_moved(s);
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether endpoint `ep`'s bit is set for (fp, tier).
    pub(crate) fn holds(&self, fp: u64, tier: usize, ep: u16) -> bool {
        let group = ep as usize / 64;
        let bit = 1u64 << (ep % 64);
        let key = table_key(fp, tier, group);
        let loc = self.geo.locate(fp, group / GROUPS_PER_CLUSTER);
        let _st = self.lock(loc.shard);
        self.find(&loc, key)
            .is_some_and(|(b, s)| self.buckets[b].mask(s) & bit != 0)
    }

    /// The depth class of block `fp` for endpoint `ep`: the deepest known
    /// class of the entries (any tier) in which `ep` holds it; `None` when
    /// `ep` does not hold it, or holds it only as an orphan.
    pub(crate) fn depth_class(&self, fp: u64, ep: u16) -> Option<u8> {
        let loc = self.geo.locate(fp, ep as usize / 64 / GROUPS_PER_CLUSTER);
        let _st = self.lock(loc.shard);
        let mut best: Option<u8> = None;
        self.each_held(&loc, fp, ep, |_, d| {
            if d != depth::ORPHAN {
                best = Some(best.map_or(d, |x| x.max(d)));
            }
        });
        best
    }

    /// Clears endpoint `ep`'s bit for (fp, tier); true when it was set.
    pub(crate) fn clear(&self, fp: u64, tier: usize, ep: u16) -> bool {
        let group = ep as usize / 64;
        let bit = 1u64 << (ep % 64);
        let key = table_key(fp, tier, group);
        let loc = self.geo.locate(fp, group / GROUPS_PER_CLUSTER);
        let mut st = self.lock(loc.shard);
        match self.find(&loc, key) {
            Some((b, s)) if self.clear_bit(&mut st, b, s, ep, bit) => {
                // The block is gone, or no longer counted in its best tier.
                let other = self.best_other_rank(&loc, fp, tier, ep);
                if other.map_or(true, |r| self.rank[tier] < r) {
                    self.bump(ep as usize, fp);
                }
                true
            }
            _ => false,
        }
    }

    fn clear_bit(&self, st: &mut ShardState, b: usize, s: usize, ep: u16, bit: u64) -> bool {
        let bucket = &self.buckets[b];
        let key = bucket.key(s);
        let mask = bucket.mask(s);
        if mask & bit == 0 {
            return false;
        }
        let tier = tag_tier(key as u16 & ((1 << TAG_BITS) - 1));
        self.holdings[ep as usize][tier].fetch_sub(1, Ordering::Relaxed);
        if mask == bit {
            self.free(st, b, s);
        } else {
            bucket.set_mask(s, mask & !bit);
        }
        true
    }

    /// Clears `ep`'s bit in every entry of a tier in `tiers` (bit set per
    /// table tier) by scanning the whole table, shard by shard.
    pub(crate) fn clear_endpoint(&self, ep: u16, tiers: u8) -> u64 {
        let group = ep as usize / 64;
        let bit = 1u64 << (ep % 64);
        let mut cleared = 0;
        for shard in 0..self.geo.shards {
            let mut st = self.lock(shard);
            let base = shard * self.geo.per_shard;
            let before = cleared;
            for b in base..base + self.geo.per_shard {
                for s in 0..SLOTS {
                    let key = self.buckets[b].key(s);
                    let tag = (key & ((1 << TAG_BITS) - 1)) as u16;
                    if key != 0
                        && tag_group(tag) == group
                        && tiers & (1 << tag_tier(tag)) != 0
                        && self.clear_bit(&mut st, b, s, ep, bit)
                    {
                        cleared += 1;
                    }
                }
            }
            // One raise per shard cleared, for any block.
            if cleared != before {
                self.bump(ep as usize, ANY_BLOCK);
            }
        }
        cleared
    }

    fn free_slot(&self, b: usize) -> Option<usize> {
        (0..SLOTS).find(|&s| self.buckets[b].key(s) == 0)
    }

    /// Empties slot `s` of bucket `b` and fixes its home's spill count.
    fn free(&self, st: &mut ShardState, b: usize, s: usize) {
        let key = self.buckets[b].key(s);
        self.buckets[b].free(s);
        let home = self.geo.locate_key(key).home;
        if home != b {
            self.buckets[home].add_overflow(false);
        }
        st.live -= 1;
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Evicts an entry: every endpoint bit in it is dropped.
    fn evict(&self, st: &mut ShardState, b: usize, s: usize) {
        let bucket = &self.buckets[b];
        let key = bucket.key(s);
        let mut mask = bucket.mask(s);
        let tag = (key & ((1 << TAG_BITS) - 1)) as u16;
        let (tier, group, fp) = (tag_tier(tag), tag_group(tag), key >> TAG_BITS);
        self.free(st, b, s);
        // Raised after the entry is gone (see `bump`).
        while mask != 0 {
            let ep = group * 64 + mask.trailing_zeros() as usize;
            if let Some(h) = self.holdings.get(ep) {
                h[tier].fetch_sub(1, Ordering::Relaxed);
            }
            self.bump(ep, fp);
            mask &= mask - 1;
        }
        self.evictions.fetch_add(1, Ordering::Relaxed);
    }

    /// A victim among the (full) candidate buckets: the deepest slot not
    /// referenced since the CLOCK last passed (the first of equals), else,
    /// all referenced, the deepest slot after clearing their bits.
    fn victim(&self, loc: &Location) -> (usize, usize) {
        let candidates = || {
            std::iter::once(loc.home)
                .chain(loc.alt())
                .flat_map(|b| (0..SLOTS).map(move |s| (b, s)))
        };
        let deepest = |unreferenced_only: bool| {
            candidates()
                .filter(|&(b, s)| !unreferenced_only || !self.buckets[b].referenced(s))
                .fold(None, |best: Option<(usize, usize, u8)>, (b, s)| {
                    let d = self.buckets[b].depth(s);
                    match best {
                        Some((_, _, bd)) if bd >= d => best,
                        _ => Some((b, s, d)),
                    }
                })
                .map(|(b, s, _)| (b, s))
        };
        if let Some(v) = deepest(true) {
            return v;
        }
        candidates().for_each(|(b, s)| self.buckets[b].unreference(s));
        deepest(false).unwrap_or((loc.home, 0))
    }

    /// CLOCK over the shard's slots, with second chances scaled by depth:
    /// the hand clears reference bits, and evicts the first unreferenced
    /// entry it passes on one of that entry's eligible sweeps (every sweep
    /// for the deepest and orphan entries, fewer for shallower and shared
    /// ones, staggered by slot; `depth::lives`), so among entries left unused
    /// the tails go before the prefixes they extend. Within `MAX_LIVES + 1`
    /// sweeps every entry is eligible, which bounds the search.
    fn evict_clock(&self, st: &mut ShardState, shard: usize) {
        let n = self.geo.per_shard * SLOTS;
        let base = shard * self.geo.per_shard;
        for _ in 0..(depth::MAX_LIVES as usize + 1) * n + 1 {
            let pos = st.hand;
            st.hand = (pos + 1) % n;
            if st.hand == 0 {
                st.sweep = st.sweep.wrapping_add(1);
            }
            let bucket = &self.buckets[base + pos / SLOTS];
            let s = pos % SLOTS;
            if bucket.key(s) == 0 {
                continue;
            }
            if bucket.referenced(s) {
                bucket.unreference(s);
                continue;
            }
            let lives = depth::lives(bucket.depth(s), bucket.mask(s).count_ones());
            if (st.sweep + pos as u64) % lives != 0 {
                continue;
            }
            self.evict(st, base + pos / SLOTS, s);
            return;
        }
    }
}
