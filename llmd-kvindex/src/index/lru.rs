//! A bounded map with least-recently-used eviction, kept cheap by lazy
//! deletion: every touch appends `(key, stamp)` to a queue and the map keeps
//! the latest stamp; queue items with an older stamp are skipped when popped
//! and swept out when the queue grows past twice the map.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Bounded LRU map (writers only; lives behind a mutex).
pub(crate) struct LazyLru<K, V> {
    map: HashMap<K, (V, u64), ahash::RandomState>,
    order: VecDeque<(K, u64)>,
    clock: u64,
    cap: usize,
}

impl<K: Copy + Eq + Hash, V: Copy> LazyLru<K, V> {
    /// An empty map holding at most `cap` keys.
    pub(crate) fn new(cap: usize) -> Self {
        LazyLru {
            map: HashMap::default(),
            order: VecDeque::new(),
            clock: 0,
            cap: cap.max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The value of `k` without refreshing it.
    pub(crate) fn peek(&self, k: &K) -> Option<V> {
        self.map.get(k).map(|e| e.0)
    }

    /// Inserts or refreshes `k`; returns the entry evicted to stay in bounds.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<(K, V)> {
        self.clock += 1;
        self.map.insert(k, (v, self.clock));
        self.order.push_back((k, self.clock));
        let evicted = if self.map.len() > self.cap {
            self.pop_oldest_if(|_| true)
        } else {
            None
        };
        self.compact();
        evicted
    }

    /// Updates the value of `k` in place (no refresh); false when absent.
    pub(crate) fn update(&mut self, k: &K, v: V) -> bool {
        match self.map.get_mut(k) {
            Some(e) => {
                e.0 = v;
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        let v = self.map.remove(k).map(|e| e.0);
        self.compact();
        v
    }

    /// Removes and returns the least recently used entry if `pred` accepts it.
    pub(crate) fn pop_oldest_if(&mut self, pred: impl Fn(&V) -> bool) -> Option<(K, V)> {
        while let Some(&(k, stamp)) = self.order.front() {
            match self.map.get(&k) {
                Some(&(v, s)) if s == stamp => {
                    if !pred(&v) {
                        return None;
                    }
                    self.order.pop_front();
                    self.map.remove(&k);
                    return Some((k, v));
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        None
    }

    /// Drops every entry matching `pred`.
    pub(crate) fn retain(&mut self, pred: impl Fn(&K) -> bool) {
        self.map.retain(|k, _| pred(k));
        self.compact();
    }

    pub(crate) fn clear(&mut self) {
        self.map = HashMap::default();
        self.order = VecDeque::new();
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 32 {
            let map = &self.map;
            self.order
                .retain(|(k, stamp)| map.get(k).is_some_and(|e| e.1 == *stamp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LazyLru;

    #[test]
    fn evicts_least_recently_used() {
        let mut l = LazyLru::new(2);
        assert_eq!(l.insert(1u64, 'a'), None);
        assert_eq!(l.insert(2, 'b'), None);
        assert_eq!(l.insert(1, 'a'), None); // refresh 1
        assert_eq!(l.insert(3, 'c'), Some((2, 'b')));
        assert_eq!(l.peek(&1), Some('a'));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn queue_stays_bounded_under_refreshes() {
        let mut l = LazyLru::new(4);
        for i in 0..10_000u64 {
            l.insert(i % 3, i);
        }
        assert!(l.order.len() <= 2 * l.len() + 33);
        assert_eq!(l.pop_oldest_if(|v| *v < 9_998), Some((1, 9_997)));
        assert_eq!(l.pop_oldest_if(|v| *v < 9_998), None);
    }
}
