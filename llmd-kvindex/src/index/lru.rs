//! A bounded map with least-recently-used eviction: a hash map from key to
//! slot, and the slots in a doubly linked list, most recent first, so that a
//! touch is one hash lookup and a few index writes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// End of the list.
const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    val: V,
    /// Towards the most recent entry.
    prev: u32,
    /// Towards the least recent entry.
    next: u32,
}

/// Hashes a key that is already a [`fingerprint`](super::keys::fingerprint)
/// (52 well-mixed bits) with one keyed folded multiply: both halves of the
/// 128-bit product of `key ^ k0` and `k1` XORed, so every output bit (the
/// map's bucket index from the low ones, its control tags from the top)
/// depends on every key bit. The keys are random per map: fingerprints come
/// from public hashes of client prompts, and without them a client could
/// grind prompts whose keys collide in the bucket index.
pub(crate) struct FingerprintHasher {
    state: u64,
    k1: u64,
}

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        let m = u128::from(self.state ^ x) * u128::from(self.k1);
        self.state = (m as u64) ^ ((m >> 64) as u64);
    }
}

/// The keys of one [`FingerprintLru`]'s hasher, drawn at random.
#[derive(Clone)]
pub(crate) struct FingerprintKeys {
    k0: u64,
    k1: u64,
}

impl Default for FingerprintKeys {
    fn default() -> Self {
        let r = ahash::RandomState::new();
        FingerprintKeys {
            k0: r.hash_one(0u64),
            // Odd: the multiply loses no low bit.
            k1: r.hash_one(1u64) | 1,
        }
    }
}

impl BuildHasher for FingerprintKeys {
    type Hasher = FingerprintHasher;

    #[inline]
    fn build_hasher(&self) -> FingerprintHasher {
        FingerprintHasher {
            state: self.k0,
            k1: self.k1,
        }
    }
}

/// An [`Lru`] keyed by fingerprints.
pub(crate) type FingerprintLru<V> = Lru<u64, V, FingerprintKeys>;

/// Bounded LRU map (writers only; lives behind a mutex).
pub(crate) struct Lru<K, V, S = ahash::RandomState> {
    map: HashMap<K, u32, S>,
    nodes: Vec<Node<K, V>>,
    /// Slots of removed entries, reused first.
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Inserts a [`Run`] served by following the chain (tests).
    #[cfg(test)]
    followed: u64,
    /// Least recently used.
    tail: u32,
    cap: usize,
}

impl<K: Copy + Eq + Hash, V: Copy> Lru<K, V> {
    /// An empty map holding at most `cap` keys (at least 1, at most 2³² − 2).
    pub(crate) fn new(cap: usize) -> Self {
        Self::with_cap(cap)
    }
}

impl<K: Copy + Eq + Hash, V: Copy, S: BuildHasher + Default> Lru<K, V, S> {
    /// An empty map holding at most `cap` keys (at least 1, at most 2³² − 2).
    pub(crate) fn with_cap(cap: usize) -> Self {
        Lru {
            map: HashMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            #[cfg(test)]
            followed: 0,
            cap: cap.clamp(1, NIL as usize - 1),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The value of `k` without refreshing it.
    pub(crate) fn peek(&self, k: &K) -> Option<V> {
        self.map.get(k).map(|&i| self.nodes[i as usize].val)
    }

    /// The value of `k`, refreshed (now the most recent).
    pub(crate) fn get(&mut self, k: &K) -> Option<V> {
        let i = *self.map.get(k)?;
        self.unlink(i);
        self.push_front(i);
        Some(self.nodes[i as usize].val)
    }

    /// Inserts or refreshes `k` (now the most recent); returns the entry
    /// evicted to stay in bounds.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<(K, V)> {
        if let Some(&i) = self.map.get(&k) {
            self.nodes[i as usize].val = v;
            self.unlink(i);
            self.push_front(i);
            return None;
        }
        self.insert_absent(k, v)
    }

    /// Inserts `k`, known to be absent, as the most recent; returns the
    /// entry evicted to stay in bounds.
    fn insert_absent(&mut self, k: K, v: V) -> Option<(K, V)> {
        let evicted = if self.map.len() >= self.cap {
            self.pop_oldest_if(|_| true)
        } else {
            None
        };
        let node = Node {
            key: k,
            val: v,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.map.insert(k, i);
        self.push_front(i);
        evicted
    }

    /// Sets the bound (clamped as in [`Lru::new`]), dropping the least
    /// recently used entries beyond it; each dropped entry goes to `dropped`.
    pub(crate) fn set_cap(&mut self, cap: usize, mut dropped: impl FnMut(K, V)) {
        self.cap = cap.clamp(1, NIL as usize - 1);
        while self.map.len() > self.cap {
            match self.pop_oldest_if(|_| true) {
                Some((k, v)) => dropped(k, v),
                None => break,
            }
        }
    }

    /// Updates the value of `k` in place (no refresh); false when absent.
    pub(crate) fn update(&mut self, k: &K, v: V) -> bool {
        match self.map.get(k) {
            Some(&i) => {
                self.nodes[i as usize].val = v;
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let i = self.map.remove(k)?;
        self.unlink(i);
        self.free.push(i);
        Some(self.nodes[i as usize].val)
    }

    /// Removes and returns the least recently used entry if `pred` accepts it.
    pub(crate) fn pop_oldest_if(&mut self, pred: impl Fn(&V) -> bool) -> Option<(K, V)> {
        if self.tail == NIL {
            return None;
        }
        let i = self.tail;
        let (k, v) = {
            let n = &self.nodes[i as usize];
            (n.key, n.val)
        };
        if !pred(&v) {
            return None;
        }
        self.map.remove(&k);
        self.unlink(i);
        self.free.push(i);
        Some((k, v))
    }

    /// Drops every entry matching `pred`.
    pub(crate) fn retain(&mut self, pred: impl Fn(&K) -> bool) {
        let drop: Vec<K> = self.map.keys().filter(|k| !pred(k)).copied().collect();
        for k in drop {
            self.remove(&k);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.map = HashMap::default();
        self.nodes = Vec::new();
        self.free = Vec::new();
        self.head = NIL;
        self.tail = NIL;
    }

    /// A run of inserts ([`Run::insert`]) that refreshes a chain of keys
    /// already contiguous in recency order without a map lookup each.
    pub(crate) fn run(&mut self) -> Run<'_, K, V, S> {
        Run {
            lru: self,
            pending: None,
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        match old {
            NIL => self.tail = i,
            o => self.nodes[o as usize].prev = i,
        }
        self.head = i;
    }
}

impl<K, V, S> Lru<K, V, S> {
    /// Moves the contiguous entries `top` (more recent) ..= `bottom` to the
    /// front, keeping their order: the same as refreshing them one by one
    /// from `bottom` up.
    fn splice_front(&mut self, top: u32, bottom: u32) {
        if self.head == top {
            return;
        }
        let before = self.nodes[top as usize].prev;
        let after = self.nodes[bottom as usize].next;
        // `top` is not the head, so something is in front of it.
        self.nodes[before as usize].next = after;
        match after {
            NIL => self.tail = before,
            a => self.nodes[a as usize].prev = before,
        }
        self.nodes[top as usize].prev = NIL;
        self.nodes[bottom as usize].next = self.head;
        self.nodes[self.head as usize].prev = bottom;
        self.head = top;
    }
}

/// Inserts into an [`Lru`] that leave it exactly as [`Lru::insert`] one by
/// one would, cheaper when the keys repeat a chain refreshed before.
///
/// Refreshing keys `k₀, k₁, …` in turn puts them at the front as
/// `…, k₁, k₀`. When they already stand so (a prompt's blocks routed to the
/// same endpoint again, or its shared prefix), each next key is the entry
/// just in front of the previous one: the run follows that link and
/// compares keys instead of looking each up in the map, and moves the whole
/// stretch to the front once, when a key breaks the chain or the run ends
/// (on drop). Until then the stretch stays where it was; nothing reads the
/// order in between, since an insert that may evict moves it first.
pub(crate) struct Run<'a, K, V, S> {
    lru: &'a mut Lru<K, V, S>,
    /// The stretch refreshed but not yet moved: (most recent, least recent).
    pending: Option<(u32, u32)>,
}

impl<K: Copy + Eq + Hash, V: Copy, S: BuildHasher + Default> Run<'_, K, V, S> {
    /// [`Lru::insert`] of `k`, as part of the run.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<(K, V)> {
        if let Some((top, bottom)) = self.pending {
            let p = self.lru.nodes[top as usize].prev;
            if p != NIL && self.lru.nodes[p as usize].key == k {
                self.lru.nodes[p as usize].val = v;
                self.pending = Some((p, bottom));
                #[cfg(test)]
                {
                    self.lru.followed += 1;
                }
                return None;
            }
            self.flush();
        }
        if let Some(&i) = self.lru.map.get(&k) {
            self.lru.nodes[i as usize].val = v;
            self.pending = Some((i, i));
            return None;
        }
        self.lru.insert_absent(k, v)
    }
}

impl<K, V, S> Run<'_, K, V, S> {
    /// Moves the pending stretch to the front.
    fn flush(&mut self) {
        if let Some((top, bottom)) = self.pending.take() {
            self.lru.splice_front(top, bottom);
        }
    }
}

impl<K, V, S> Drop for Run<'_, K, V, S> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::{Lru, NIL};

    #[test]
    fn a_lower_bound_drops_the_oldest() {
        let mut l = Lru::new(4);
        for k in 0..4u32 {
            l.insert(k, ());
        }
        l.get(&0);
        let mut dropped = Vec::new();
        l.set_cap(2, |k, ()| dropped.push(k));
        assert_eq!(dropped, vec![1, 2]);
        assert_eq!((l.peek(&0), l.peek(&3), l.len()), (Some(()), Some(()), 2));
        l.insert(9, ());
        assert_eq!(l.peek(&3), None, "the new bound holds");
    }

    #[test]
    fn evicts_least_recently_used() {
        let mut l = Lru::new(2);
        assert_eq!(l.insert(1u64, 'a'), None);
        assert_eq!(l.insert(2, 'b'), None);
        assert_eq!(l.insert(1, 'a'), None); // refresh 1
        assert_eq!(l.insert(3, 'c'), Some((2, 'b')));
        assert_eq!(l.peek(&1), Some('a'));
        assert_eq!(l.len(), 2);
        // `get` refreshes, `peek` does not.
        assert_eq!(l.get(&3), Some('c'));
        assert_eq!(l.insert(4, 'd'), Some((1, 'a')));
        assert_eq!(l.peek(&3), Some('c'));
        assert_eq!(l.insert(5, 'e'), Some((3, 'c')));
    }

    #[test]
    fn slots_are_reused_under_churn() {
        let mut l = Lru::new(4);
        for i in 0..10_000u64 {
            l.insert(i % 3, i);
            l.insert(100 + i, i);
        }
        assert_eq!(l.len(), 4);
        assert!(l.nodes.len() <= 5, "{}", l.nodes.len());
        // The oldest entry is key 2, last refreshed at step 9,998.
        assert_eq!(l.pop_oldest_if(|v| *v < 9_998), None);
        assert_eq!(l.pop_oldest_if(|v| *v <= 9_998), Some((2, 9_998)));
    }

    #[test]
    fn matches_a_reference_model() {
        check_against_model(Lru::new(5));
        // Keys hashed as fingerprints: the same behaviour.
        check_against_model(super::FingerprintLru::with_cap(5));
    }

    /// Runs of inserts leave the map exactly as one-by-one inserts do, with
    /// the same evictions in the same order: chains refreshed again whole,
    /// in part, broken, with absent and repeated keys, over a small bound.
    #[test]
    fn a_run_equals_one_by_one_inserts() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for cap in [3usize, 8, 64] {
            let (mut a, mut b) = (Lru::new(cap), Lru::new(cap));
            let mut last: Vec<u64> = Vec::new();
            for step in 0..5_000u64 {
                // A chain: the last one again (whole or a prefix), extended,
                // or fresh keys, sometimes with a repeat.
                let mut keys: Vec<u64> = match next(4) {
                    0 => last.clone(),
                    1 => last[..next(last.len() as u64 + 1) as usize].to_vec(),
                    _ => Vec::new(),
                };
                for _ in 0..next(12) {
                    keys.push(next(40));
                }
                if next(8) == 0 && !keys.is_empty() {
                    let k = keys[next(keys.len() as u64) as usize];
                    keys.insert(next(keys.len() as u64 + 1) as usize, k);
                }
                let one: Vec<_> = keys.iter().map(|&k| a.insert(k, step)).collect();
                let mut run = b.run();
                let ran: Vec<_> = keys.iter().map(|&k| run.insert(k, step)).collect();
                drop(run);
                assert_eq!(one, ran, "cap {cap} step {step}: evictions of {keys:?}");
                assert_eq!(
                    order(&a),
                    order(&b),
                    "cap {cap} step {step}: order after {keys:?}"
                );
                last = keys;
            }
            // The chain was followed, not only looked up (3: 310 of the
            // inserts, 8: 3,201, 64: 8,389).
            assert!(
                b.followed > 100,
                "cap {cap}: {} inserts followed the chain",
                b.followed
            );
        }
    }

    /// Every entry, most recent first, walked both ways (tests).
    fn order<S>(l: &Lru<u64, u64, S>) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut i = l.head;
        while i != NIL {
            let n = &l.nodes[i as usize];
            out.push((n.key, n.val));
            i = n.next;
        }
        let mut back = Vec::new();
        let mut i = l.tail;
        while i != NIL {
            let n = &l.nodes[i as usize];
            back.push((n.key, n.val));
            i = n.prev;
        }
        back.reverse();
        assert_eq!(out, back, "links disagree");
        assert_eq!(out.len(), l.map.len());
        out
    }

    fn check_against_model<S: std::hash::BuildHasher + Default>(mut l: Lru<u64, u64, S>) {
        // Random operations against a Vec kept in recency order.
        let mut model: Vec<(u64, u64)> = Vec::new(); // most recent last
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % 9;
            match x >> 60 {
                0..=7 => {
                    let got = l.insert(k, step);
                    let want = match model.iter().position(|e| e.0 == k) {
                        Some(p) => {
                            model.remove(p);
                            None
                        }
                        None if model.len() == 5 => Some(model.remove(0)),
                        None => None,
                    };
                    model.push((k, step));
                    assert_eq!(got, want);
                }
                8..=9 => {
                    let want = model
                        .iter()
                        .position(|e| e.0 == k)
                        .map(|p| model.remove(p).1);
                    assert_eq!(l.remove(&k), want);
                }
                10..=11 => {
                    let want = model.iter().find(|e| e.0 == k).map(|e| e.1);
                    assert_eq!(l.peek(&k), want);
                    if want.is_some() {
                        assert!(l.update(&k, step));
                        model.iter_mut().find(|e| e.0 == k).unwrap().1 = step;
                    }
                }
                12 => {
                    l.retain(|&key| key % 2 == 0);
                    model.retain(|e| e.0 % 2 == 0);
                }
                _ => {
                    let limit = step.saturating_sub(50);
                    let got = l.pop_oldest_if(|&v| v < limit);
                    let want = model.first().filter(|e| e.1 < limit).copied();
                    if want.is_some() {
                        model.remove(0);
                    }
                    assert_eq!(got, want);
                }
            }
            assert_eq!(l.len(), model.len());
        }
    }
}
