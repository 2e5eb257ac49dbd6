//! Endpoint epochs, and the log of the blocks behind their latest raises.
//!
//! Each endpoint slot has an epoch, raised after every change that can
//! shorten or re-weigh a prefix the endpoint holds (a block removed,
//! evicted or cleared, a better tier added to a block it holds). A
//! verified-prefix checkpoint (`checkpoints.rs`) is stamped with the epoch
//! its writer read before it saw the prefix held.
//!
//! Alone, the epoch would make every raise invalidate all of the endpoint's
//! checkpoints, and an engine whose cache is full evicts between any two
//! lookups. So each raise also logs the fingerprint of the block it was
//! raised for (or [`ANY_BLOCK`] when it was raised for the whole endpoint).
//! A checkpoint stamped `E`, read when the epoch is `N`, still proves its
//! prefix if the log holds raises `E+1 ..= N` and none of their blocks is in
//! that prefix: every change to the prefix after its writer read `E` raised
//! the epoch past `E`, after the change (`lost.rs` does that check).
//!
//! * **Bounded.** The log is a ring of `len` fingerprints per endpoint,
//!   allocated on the endpoint's first raise; older raises fall out of it,
//!   and a checkpoint older than the ring is stale, as it was without a log.
//!   A lookup reads a bounded number of raises in all (`lost.rs`).
//! * **Writers** (ingestion, an eviction made by another endpoint's insert)
//!   serialise per endpoint on a small mutex: announce raise `X` in
//!   `pending`, a Release fence, write the fingerprint at `X mod len`, then
//!   store the epoch `X` (Release).
//! * **Readers never wait.** A reader that read epoch `N` (Acquire) sees the
//!   entries of every raise up to `N`. It reads the entries it needs, then
//!   (Acquire fence) `pending`: if a raise that reuses one of those entries
//!   was announced, what it read may be the newer fingerprint and it is
//!   refused, a seqlock in which the entry's raise number is its version.

use super::sync::{fence, AtomicU64, Lock, Ordering};
use std::sync::OnceLock;

/// Logged for a raise that may have changed any block of the endpoint
/// (endpoint removed, `AllBlocksCleared`): stands for position 0 of every
/// prompt. Table fingerprints have 52 bits, so none equals it.
pub(crate) const ANY_BLOCK: u64 = u64::MAX;

/// Log entries per endpoint: bounds.
const MIN_LOG: usize = 64;
const MAX_LOG: usize = 4096;

/// An endpoint's log and its writers' state.
struct Slot {
    /// The raise being logged (≥ the epoch), announced before its entry is
    /// written.
    pending: AtomicU64,
    writer: Lock,
    log: OnceLock<Box<[AtomicU64]>>,
}

/// Epochs and logs of every endpoint slot.
pub struct Epochs {
    /// Per endpoint slot, dense: a lookup reads those of all its candidates.
    epochs: Box<[AtomicU64]>,
    slots: Box<[Slot]>,
    /// Log entries per endpoint (a power of two).
    len: usize,
    /// Logs allocated (endpoints that have been raised).
    allocated: std::sync::atomic::AtomicUsize,
}

impl Epochs {
    /// Epochs for `endpoints` slots of a table of `capacity` entries. A log
    /// holds `capacity / (4 · endpoints)` raises (a power of two in
    /// 64 ..= 4096): with every endpoint logging, ≤ 2 B per table entry when
    /// the capacity is at least 256 entries per slot, else 512 B per slot
    /// that has been raised.
    pub(crate) fn new(endpoints: usize, capacity: usize) -> Epochs {
        let per = capacity / endpoints.max(1) / 4;
        let len = if per < 2 {
            MIN_LOG
        } else {
            (1usize << (usize::BITS - 1 - per.leading_zeros())).clamp(MIN_LOG, MAX_LOG)
        };
        Self::with_log(endpoints, len)
    }

    /// Epochs whose logs hold `len` raises (a power of two); for the
    /// model checks, which need a log short enough to wrap.
    pub fn with_log(endpoints: usize, len: usize) -> Epochs {
        assert!(len.is_power_of_two());
        Epochs {
            epochs: (0..endpoints).map(|_| AtomicU64::new(0)).collect(),
            slots: (0..endpoints)
                .map(|_| Slot {
                    pending: AtomicU64::new(0),
                    writer: Lock::default(),
                    log: OnceLock::new(),
                })
                .collect(),
            len,
            allocated: Default::default(),
        }
    }

    /// Raises a checkpoint can be behind its endpoint's epoch and still be
    /// checked against the log.
    #[inline]
    pub(crate) fn reach(&self) -> u64 {
        self.len as u64
    }

    /// Bytes of the logs allocated so far.
    pub(crate) fn bytes(&self) -> usize {
        self.allocated.load(std::sync::atomic::Ordering::Relaxed) * self.len * 8
    }

    /// Endpoint `ep`'s epoch (Acquire: a reader that sees an epoch also sees
    /// every table change made before it was raised, and its log entry).
    #[inline]
    pub fn read(&self, ep: u16) -> u64 {
        self.epochs
            .get(ep as usize)
            .map_or(0, |e| e.load(Ordering::Acquire))
    }

    /// Raises `ep`'s epoch for a change of block `fp` ([`ANY_BLOCK`]: of any
    /// block), after the change is visible in the table.
    pub fn raise(&self, ep: usize, fp: u64) {
        let (Some(s), Some(epoch)) = (self.slots.get(ep), self.epochs.get(ep)) else {
            return;
        };
        let _w = s.writer.hold();
        let log = s.log.get_or_init(|| {
            self.allocated
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (0..self.len).map(|_| AtomicU64::new(0)).collect()
        });
        let x = epoch.load(Ordering::Relaxed) + 1;
        s.pending.store(x, Ordering::Relaxed);
        fence(Ordering::Release);
        log[x as usize & (self.len - 1)].store(fp, Ordering::Relaxed);
        epoch.store(x, Ordering::Release);
    }

    /// Appends to `out` the fingerprints logged by `ep`'s raises `to`,
    /// `to − 1`, …, `from` (newest first), where `to` is at most an epoch the
    /// caller read. False when some of them are no longer in the log (then
    /// `out` holds garbage past its old length).
    pub fn logged(&self, ep: u16, from: u64, to: u64, out: &mut Vec<u64>) -> bool {
        if from > to {
            return true;
        }
        let Some(s) = self.slots.get(ep as usize) else {
            return false;
        };
        if from == 0 || to - from >= self.len as u64 {
            return false;
        }
        // Raised at least once (`to` ≥ 1 was read): the log exists.
        let Some(log) = s.log.get() else {
            return false;
        };
        let mask = self.len as u64 - 1;
        out.extend(
            (from..=to)
                .rev()
                .map(|x| log[(x & mask) as usize].load(Ordering::Relaxed)),
        );
        fence(Ordering::Acquire);
        s.pending.load(Ordering::Relaxed) < from + self.len as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_returns_each_raise_until_it_is_reused() {
        let e = Epochs::new(2, 0);
        assert_eq!(e.reach(), 64);
        assert_eq!(e.bytes(), 0, "no log before the first raise");
        for fp in 1..=10u64 {
            e.raise(1, fp * 100);
        }
        assert_eq!(e.read(1), 10);
        assert_eq!(e.read(0), 0);
        assert_eq!(e.bytes(), 64 * 8);
        let mut out = Vec::new();
        assert!(e.logged(1, 4, 6, &mut out));
        assert_eq!(out, [600, 500, 400]);
        // Raise 11 .. 70: raise 70 reuses raise 6's entry.
        for fp in 11..=70u64 {
            e.raise(1, fp * 100);
        }
        out.clear();
        assert!(!e.logged(1, 6, 7, &mut out), "raise 6 was overwritten");
        out.clear();
        assert!(e.logged(1, 7, 70, &mut out));
        assert_eq!(out.len(), 64);
        assert_eq!((out[0], out[63]), (7000, 700));
        assert!(!e.logged(1, 6, 70, &mut out), "longer than the log");
        assert!(!e.logged(0, 1, 1, &mut out), "never raised");
        assert!(!e.logged(9, 1, 1, &mut out), "no such slot");
        assert!(e.logged(1, 5, 4, &mut out), "an empty range");
    }

    #[test]
    fn log_length_follows_the_capacity_per_endpoint() {
        assert_eq!(Epochs::new(1024, 150).reach(), 64);
        assert_eq!(Epochs::new(1024, 12_500_000).reach(), 2048);
        assert_eq!(Epochs::new(8, 12_500_000).reach(), 4096);
        assert_eq!(Epochs::new(65536, 1 << 30).reach(), 4096);
    }
}
