//! Atomics used by the table, swapped for loom's under `cfg(loom)` so the
//! bucket read/reuse protocol can be model-checked.
// `loom` is a cfg set only by the loom test run (RUSTFLAGS="--cfg loom").
#![allow(unexpected_cfgs)]

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, Ordering};

/// A busy-wait hint while a bucket is being rewritten.
#[inline]
pub(crate) fn spin() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// A writers' lock: loom's under `cfg(loom)`, so the epoch log's writer
/// protocol is model-checked too.
#[derive(Default)]
pub(crate) struct Lock(
    #[cfg(loom)] loom::sync::Mutex<()>,
    #[cfg(not(loom))] parking_lot::Mutex<()>,
);

impl Lock {
    /// Holds the lock until the returned guard drops.
    #[inline]
    pub(crate) fn hold(&self) -> impl Sized + '_ {
        #[cfg(loom)]
        return self.0.lock().unwrap();
        #[cfg(not(loom))]
        self.0.lock()
    }
}
