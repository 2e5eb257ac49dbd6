//! The decision-path cache: (model, profile, endpoint) → [`Route`], keyed by
//! a hash of the raw strings so that a hit neither allocates nor interns.

use super::series::Route;
use ahash::{AHashMap, RandomState};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Routes kept; past it (only reachable with unbounded model names) routes
/// are resolved per call instead of cached.
const MAX_ROUTES: usize = 1 << 16;

type Key = (Box<str>, Box<str>, Box<str>);
type Bucket = Vec<(Key, Arc<Route>)>;

/// Cached routes.
#[derive(Debug)]
pub struct RouteCache {
    map: RwLock<AHashMap<u64, Bucket>>,
    hasher: RandomState,
    count: AtomicUsize,
    /// Bumped by every [`RouteCache::clear`]: a route resolved before a
    /// clear (its series may be gone with an endpoint that left) is not
    /// cached after it.
    generation: AtomicUsize,
}

impl Default for RouteCache {
    fn default() -> Self {
        RouteCache {
            map: RwLock::new(AHashMap::new()),
            hasher: RandomState::with_seeds(5, 6, 7, 8),
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }
}

fn find(b: &Bucket, model: &str, profile: &str, endpoint: &str) -> Option<Arc<Route>> {
    b.iter()
        .find(|(k, _)| &*k.0 == model && &*k.1 == profile && &*k.2 == endpoint)
        .map(|(_, r)| r.clone())
}

impl RouteCache {
    /// The cached route, if any.
    pub fn get(&self, model: &str, profile: &str, endpoint: &str) -> Option<Arc<Route>> {
        let h = self.hasher.hash_one((model, profile, endpoint));
        self.map
            .read()
            .get(&h)
            .and_then(|b| find(b, model, profile, endpoint))
    }

    /// The current generation, read before resolving a route to insert.
    pub fn generation(&self) -> usize {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches `route`, resolved at `generation`, unless full, already
    /// present, or a clear came since (then it serves this call only);
    /// returns the cached one.
    pub fn insert(
        &self,
        model: &str,
        profile: &str,
        endpoint: &str,
        route: Arc<Route>,
        generation: usize,
    ) -> Arc<Route> {
        if self.count.load(Ordering::Relaxed) >= MAX_ROUTES {
            return route;
        }
        let h = self.hasher.hash_one((model, profile, endpoint));
        let mut w = self.map.write();
        // Checked under the write lock that `clear` takes too.
        if self.generation.load(Ordering::Acquire) != generation {
            return route;
        }
        let slot = w.entry(h).or_default();
        if let Some(r) = find(slot, model, profile, endpoint) {
            return r;
        }
        slot.push((
            (model.into(), profile.into(), endpoint.into()),
            route.clone(),
        ));
        self.count.fetch_add(1, Ordering::Relaxed);
        route
    }

    /// Forgets every route (after an endpoint changed pool or left).
    pub fn clear(&self) {
        let mut w = self.map.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        w.clear();
        self.count.store(0, Ordering::Relaxed);
    }
}
