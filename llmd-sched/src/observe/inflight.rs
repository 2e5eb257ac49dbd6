//! The lifecycle table: per-request timestamps between decision and
//! completion, sharded so concurrent requests rarely share a lock.

use super::config::SloTargets;
use super::series::{RequestSeries, Route};
use ahash::{AHashMap, RandomState};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SHARDS: usize = 16;

/// The prefill leg of a P/D request.
#[derive(Debug)]
pub struct PrefillLeg {
    /// Handles of the prefill endpoint and (model, prefill pool).
    pub route: Arc<Route>,
    /// Whether the prefill endpoint still counts the request as in flight.
    pub open: bool,
    /// When the host reported the end of the prefill leg.
    pub done: Option<Duration>,
}

/// What is known of one request between decision and completion.
#[derive(Debug)]
pub struct InFlight {
    /// Arrival at the router.
    pub arrived: Duration,
    /// Decision (dispatch) time.
    pub decided: Duration,
    /// First output token.
    pub first: Option<Duration>,
    /// Latest output token.
    pub last: Option<Duration>,
    /// Output tokens so far.
    pub tokens: u64,
    /// Prompt tokens at decision time.
    pub prompt: u32,
    /// Predicted cached tokens on the prefilling endpoint.
    pub predicted_tokens: u32,
    /// Objectives with defaults applied.
    pub slo: SloTargets,
    /// Count handles.
    pub requests: Arc<RequestSeries>,
    /// Handles of the decode endpoint and (model, decode pool).
    pub route: Arc<Route>,
    /// The prefill leg under P/D.
    pub prefill: Option<PrefillLeg>,
    /// Serial number of the request's opening (0: not given).
    pub opening: u64,
}

type Shard = Mutex<AHashMap<Box<str>, InFlight>>;

/// What [`RequestTable::insert`] did.
#[derive(Debug)]
pub enum Inserted {
    /// A new entry.
    New,
    /// The id was tracked already; here is the entry that lost it: the one
    /// stored, or the one given when the stored one opened later.
    Replaced(InFlight),
    /// The table is full; the entry was not stored.
    Full(InFlight),
    /// Its opening expired before it arrived ([`RequestTable::expired_early`]);
    /// the entry was not stored.
    Expired(InFlight),
}

/// Openings remembered as expired before their record arrived: a pick's
/// record comes moments after the scheduler opened it, so a bounded window
/// suffices.
const EXPIRED_EARLY_KEPT: usize = 1024;

/// Openings expired before their record arrived, the last
/// [`EXPIRED_EARLY_KEPT`], each found without a scan: a pick's insert asks
/// whenever any is remembered, and some never arrive (records the full
/// table did not store).
#[derive(Debug, Default)]
struct ExpiredEarly {
    /// Ids by opening serial (one, unless schedulers share the metrics),
    /// oldest first.
    ids: AHashMap<u64, Vec<Box<str>>>,
    /// One opening per remembered id, oldest first.
    order: std::collections::VecDeque<u64>,
}

impl ExpiredEarly {
    fn add(&mut self, id: &str, opening: u64) {
        if self.order.len() == EXPIRED_EARLY_KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.drop_id(oldest, 0);
            }
        }
        self.ids.entry(opening).or_default().push(Box::from(id));
        self.order.push_back(opening);
    }

    fn take(&mut self, id: &str, opening: u64) -> bool {
        let Some(i) = self
            .ids
            .get(&opening)
            .and_then(|v| v.iter().position(|g| &**g == id))
        else {
            return false;
        };
        self.drop_id(opening, i);
        // A hit is rare (a record that lost the race to the limit): the
        // scan of the order is paid then only.
        if let Some(p) = self.order.iter().position(|&o| o == opening) {
            self.order.remove(p);
        }
        true
    }

    /// Forgets the `i`-th id remembered under `opening`.
    fn drop_id(&mut self, opening: u64, i: usize) {
        if let Some(v) = self.ids.get_mut(&opening) {
            if i < v.len() {
                v.remove(i);
            }
            if v.is_empty() {
                self.ids.remove(&opening);
            }
        }
    }
}

/// Sharded map from request id to [`InFlight`], bounded in size.
#[derive(Debug)]
pub struct RequestTable {
    shards: Box<[Shard]>,
    hasher: RandomState,
    len: AtomicUsize,
    cap: usize,
    /// (id, opening) expired before their record arrived.
    expired_early: Mutex<ExpiredEarly>,
    /// How many, read without the lock on every insert.
    expired_early_len: AtomicUsize,
}

impl RequestTable {
    /// An empty table holding at most `cap` requests.
    pub fn new(cap: usize) -> Self {
        RequestTable {
            shards: (0..SHARDS).map(|_| Mutex::new(AHashMap::new())).collect(),
            hasher: RandomState::with_seeds(1, 2, 3, 4),
            len: AtomicUsize::new(0),
            cap,
            expired_early: Mutex::default(),
            expired_early_len: AtomicUsize::new(0),
        }
    }

    /// Remembers that opening `opening` (not 0) of `id` expired before its
    /// entry was inserted: the entry is refused as [`Inserted::Expired`]
    /// when it comes.
    pub fn expired_early(&self, id: &str, opening: u64) {
        if opening == 0 {
            return;
        }
        let mut q = self.expired_early.lock();
        q.add(id, opening);
        self.expired_early_len
            .store(q.order.len(), Ordering::Relaxed);
    }

    /// Takes `id`'s opening `opening` from the openings expired early.
    fn take_expired_early(&self, id: &str, opening: u64) -> bool {
        if opening == 0 || self.expired_early_len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut q = self.expired_early.lock();
        let taken = q.take(id, opening);
        self.expired_early_len
            .store(q.order.len(), Ordering::Relaxed);
        taken
    }

    fn shard(&self, id: &str) -> &Shard {
        &self.shards[(self.hasher.hash_one(id) as usize) % SHARDS]
    }

    /// Inserts `v` under `id` unless the table is full, `id` holds an
    /// entry of a later opening, or `v`'s opening expired already.
    pub fn insert(&self, id: &str, v: InFlight) -> Inserted {
        if self.take_expired_early(id, v.opening) {
            return Inserted::Expired(v);
        }
        let mut shard = self.shard(id).lock();
        if let Some(slot) = shard.get_mut(id) {
            if slot.opening > v.opening {
                return Inserted::Replaced(v);
            }
            return Inserted::Replaced(std::mem::replace(slot, v));
        }
        if self.len.load(Ordering::Relaxed) >= self.cap {
            return Inserted::Full(v);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        shard.insert(Box::from(id), v);
        Inserted::New
    }

    /// Runs `f` on the entry of `id`; `None` when not tracked.
    pub fn with<R>(&self, id: &str, f: impl FnOnce(&mut InFlight) -> R) -> Option<R> {
        self.shard(id).lock().get_mut(id).map(f)
    }

    /// Removes and returns the entry of `id`.
    pub fn remove(&self, id: &str) -> Option<InFlight> {
        self.remove_if(id, |_| true)
    }

    /// Removes and returns the entry of `id` if `wanted` says so of it.
    pub fn remove_if(&self, id: &str, wanted: impl FnOnce(&InFlight) -> bool) -> Option<InFlight> {
        let v = {
            let mut shard = self.shard(id).lock();
            if !wanted(shard.get(id)?) {
                return None;
            }
            shard.remove(id)
        };
        if v.is_some() {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        v
    }

    /// Removes every entry decided before `cutoff`.
    pub fn drain_older(&self, cutoff: Duration) -> Vec<InFlight> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            let ids: Vec<Box<str>> = s
                .iter()
                .filter(|(_, v)| v.decided < cutoff)
                .map(|(k, _)| k.clone())
                .collect();
            for id in ids {
                if let Some(v) = s.remove(&id) {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    out.push(v);
                }
            }
        }
        out
    }

    /// Entries tracked.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::{ExpiredEarly, EXPIRED_EARLY_KEPT};

    #[test]
    fn expired_openings_are_taken_once_and_bounded() {
        let mut e = ExpiredEarly::default();
        e.add("a", 1);
        e.add("b", 1); // another scheduler's opening 1
        e.add("a", 2);
        assert!(!e.take("a", 3));
        assert!(e.take("b", 1));
        assert!(!e.take("b", 1), "taken once");
        assert!(e.take("a", 1));
        assert_eq!(e.order.len(), 1);
        // Past the bound the oldest is forgotten, and the rest stay exact.
        for o in 10..10 + EXPIRED_EARLY_KEPT as u64 {
            e.add("x", o);
        }
        assert_eq!(e.order.len(), EXPIRED_EARLY_KEPT);
        assert!(!e.take("a", 2), "the oldest was forgotten");
        assert!(e.take("x", 10));
        assert!(e.take("x", 9 + EXPIRED_EARLY_KEPT as u64));
        let remembered: usize = e.ids.values().map(Vec::len).sum();
        assert_eq!(remembered, e.order.len());
    }
}
