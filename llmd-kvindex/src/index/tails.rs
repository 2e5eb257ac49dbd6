//! Router-key mode, router blocks larger than the engine's: the tokens of a
//! router block that an event began but did not complete, kept so that the
//! event continuing it (vLLM publishes decode-time blocks one engine block
//! at a time) completes it with the right tokens at the right offset.

use super::lru::Lru;
use std::collections::HashMap;

/// Pending router blocks kept per endpoint: one per sequence whose chain
/// ends inside a router block (the event continuing a tail takes it), the
/// oldest dropped first. A child of a dropped one is counted
/// `unplaceable`.
pub(crate) const TAILS_PER_ENDPOINT: usize = 1024;

/// An engine block whose last token lies in the pending router block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingEngine {
    /// Its engine key.
    pub key: u64,
    /// Complete router blocks before the pending one that also hold its
    /// tokens, already mapped under derived keys
    /// ([`Mapped::covered`](super::endpoints::Mapped::covered)).
    pub covered: u16,
}

/// A router block begun and not completed.
#[derive(Clone, Debug)]
pub(crate) struct Tail {
    /// The chain key the block continues: the last complete router block's
    /// key, or the chain's root.
    pub root: u64,
    /// That router block's key, where the chain has one.
    pub parent: Option<u64>,
    /// The block's tokens so far (fewer than a router block), modulo 2³².
    pub tokens: Vec<u32>,
    /// The engine blocks ending in it, in order; the last is the tail's key.
    pub engines: Vec<PendingEngine>,
}

impl Tail {
    const EMPTY: Tail = Tail {
        root: 0,
        parent: None,
        tokens: Vec::new(),
        engines: Vec::new(),
    };
}

/// Pending router blocks by the engine key of the block that ends them
/// (writers only; lives in the endpoint's writer state), and the tail each
/// waiting engine block is in. Allocates nothing until the first tail.
pub(crate) struct Tails {
    slot_of: Lru<u64, u32>,
    slots: Vec<Tail>,
    free: Vec<u32>,
    /// Waiting engine block → the key of the tail it is in.
    member_of: HashMap<u64, u64, ahash::RandomState>,
}

impl Tails {
    pub(crate) fn new() -> Self {
        Tails {
            slot_of: Lru::new(TAILS_PER_ENDPOINT),
            slots: Vec::new(),
            free: Vec::new(),
            member_of: HashMap::default(),
        }
    }

    /// Takes the tail ended by engine block `key` (the event continuing it
    /// consumes it).
    pub(crate) fn take(&mut self, key: u64) -> Option<Tail> {
        let i = self.slot_of.remove(&key)?;
        let tail = std::mem::replace(&mut self.slots[i as usize], Tail::EMPTY);
        self.free.push(i);
        self.forget_members(key, &tail);
        Some(tail)
    }

    /// Keeps `tail` under `key`, replacing one kept there; the oldest tail
    /// is dropped beyond the bound.
    pub(crate) fn insert(&mut self, key: u64, tail: Tail) {
        self.remove(key);
        if self.len() >= TAILS_PER_ENDPOINT {
            // The oldest goes first, so its slot is the one reused.
            if let Some((old_key, old)) = self.slot_of.pop_oldest_if(|_| true) {
                self.release(old_key, old);
            }
        }
        for w in &tail.engines {
            self.member_of.insert(w.key, key);
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = tail;
                i
            }
            None => {
                self.slots.push(tail);
                (self.slots.len() - 1) as u32
            }
        };
        let _none = self.slot_of.insert(key, i);
    }

    /// Drops the tail ended by `key`; true when there was one.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        match self.slot_of.remove(&key) {
            Some(i) => {
                self.release(key, i);
                true
            }
            None => false,
        }
    }

    /// Drops the tails engine block `engine` is part of: the one kept under
    /// it and the one it waits in.
    pub(crate) fn drop_for(&mut self, engine: u64) {
        if self.len() == 0 {
            return; // the usual case: block sizes that make no tails
        }
        self.remove(engine);
        if let Some(&key) = self.member_of.get(&engine) {
            self.remove(key);
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Tails::new();
    }

    /// Tails kept.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn release(&mut self, key: u64, i: u32) {
        // The tokens' memory goes with it; the slot is reused.
        let tail = std::mem::replace(&mut self.slots[i as usize], Tail::EMPTY);
        self.forget_members(key, &tail);
        self.free.push(i);
    }

    fn forget_members(&mut self, key: u64, tail: &Tail) {
        for w in &tail.engines {
            if self.member_of.get(&w.key) == Some(&key) {
                self.member_of.remove(&w.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PendingEngine, Tail, Tails, TAILS_PER_ENDPOINT};

    fn tail(root: u64) -> Tail {
        Tail {
            root,
            parent: None,
            tokens: vec![1, 2],
            engines: Vec::new(),
        }
    }

    #[test]
    fn bounded_oldest_first_and_taken_by_continuation() {
        let mut t = Tails::new();
        for k in 0..TAILS_PER_ENDPOINT as u64 {
            t.insert(k, tail(k));
        }
        // Beyond the bound the oldest goes.
        t.insert(9_999, tail(9_999));
        assert_eq!(t.len(), TAILS_PER_ENDPOINT);
        assert!(t.take(0).is_none());
        // Taking and removing free slots that are reused.
        assert_eq!(t.take(1).map(|x| x.root), Some(1));
        assert!(t.take(1).is_none());
        t.insert(5, tail(7));
        assert_eq!(t.take(5).map(|x| x.root), Some(7));
        assert!(t.remove(2));
        assert!(!t.remove(2));
        t.insert(12_345, tail(1));
        t.insert(12_346, tail(1));
        assert_eq!(t.slots.len(), TAILS_PER_ENDPOINT);
        // Waiting blocks find their tail, until it is taken.
        let mut with = tail(3);
        with.engines = vec![
            PendingEngine {
                key: 77,
                covered: 0,
            },
            PendingEngine {
                key: 78,
                covered: 0,
            },
        ];
        t.insert(78, with.clone());
        t.drop_for(77);
        assert!(t.take(78).is_none());
        t.insert(78, with.clone());
        t.drop_for(78);
        assert!(t.take(78).is_none() && t.member_of.is_empty());
        t.insert(78, with);
        assert!(t.take(78).is_some() && t.member_of.is_empty());
        t.clear();
        assert_eq!((t.len(), t.slots.capacity()), (0, 0));
    }
}
