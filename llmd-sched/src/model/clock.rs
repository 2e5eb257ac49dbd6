//! Injected time: the library never reads the wall clock behind the host's back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of "now" in nanoseconds. Only differences and comparisons with
/// timestamps from the same clock are meaningful.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current time in nanoseconds.
    fn now_ns(&self) -> u64;
}

/// Wall-clock time (nanoseconds since the Unix epoch).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to; for tests and the simulator.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        ManualClock {
            now: AtomicU64::new(start_ns),
        }
    }
    /// Sets the time.
    pub fn set_ns(&self, ns: u64) {
        self.now.store(ns, Ordering::Relaxed);
    }
    /// Moves the time forward.
    pub fn advance_ns(&self, ns: u64) {
        self.now.fetch_add(ns, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}
