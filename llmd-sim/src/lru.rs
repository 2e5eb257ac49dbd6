//! An intrusive doubly linked list over dense ids `0..n`: O(1) push to the
//! tail, pop from the head and removal from the middle, no allocation after
//! construction. Used for the free-block queue and LRU tiers.

const NIL: u32 = u32::MAX;

/// Ordered set of ids; the head is the oldest.
#[derive(Clone, Debug)]
pub struct LruList {
    prev: Vec<u32>,
    next: Vec<u32>,
    member: Vec<bool>,
    head: u32,
    tail: u32,
    len: usize,
}

impl LruList {
    /// An empty list able to hold ids `0..capacity`.
    pub fn new(capacity: usize) -> Self {
        LruList {
            prev: vec![NIL; capacity],
            next: vec![NIL; capacity],
            member: vec![false; capacity],
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    /// Number of ids in the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the list holds no id.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when `id` is in the list.
    pub fn contains(&self, id: u32) -> bool {
        self.member[id as usize]
    }

    /// Appends `id` at the tail (most recent); moves it there if present.
    pub fn push_back(&mut self, id: u32) {
        if self.member[id as usize] {
            self.remove(id);
        }
        let i = id as usize;
        self.prev[i] = self.tail;
        self.next[i] = NIL;
        if self.tail != NIL {
            self.next[self.tail as usize] = id;
        } else {
            self.head = id;
        }
        self.tail = id;
        self.member[i] = true;
        self.len += 1;
    }

    /// Removes and returns the head (oldest).
    pub fn pop_front(&mut self) -> Option<u32> {
        if self.head == NIL {
            return None;
        }
        let id = self.head;
        self.remove(id);
        Some(id)
    }

    /// Removes `id` if present.
    pub fn remove(&mut self, id: u32) {
        let i = id as usize;
        if !self.member[i] {
            return;
        }
        let (p, n) = (self.prev[i], self.next[i]);
        if p != NIL {
            self.next[p as usize] = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.prev[n as usize] = p;
        } else {
            self.tail = p;
        }
        self.member[i] = false;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::LruList;

    #[test]
    fn fifo_order_and_removal() {
        let mut l = LruList::new(5);
        for i in 0..5 {
            l.push_back(i);
        }
        l.remove(2);
        l.push_back(0);
        let order: Vec<u32> = std::iter::from_fn(|| l.pop_front()).collect();
        assert_eq!(order, vec![1, 3, 4, 0]);
        assert!(l.is_empty());
    }
}
