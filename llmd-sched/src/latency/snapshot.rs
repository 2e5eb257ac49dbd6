//! A model's published weights, read by picks without a lock: a sequence
//! lock over atomics. One writer at a time (the endpoint's training mutex
//! serialises them); readers copy the words and retry if a write overlapped.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::model::TTFT_FEATURES as T;

/// What a pick reads of one endpoint's models.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// TTFT weights.
    pub ttft: [f64; T],
    /// TTFT samples learnt.
    pub ttft_n: u64,
    /// TPOT weights.
    pub tpot: [f64; 4],
    /// TPOT samples learnt.
    pub tpot_n: u64,
}

const WORDS: usize = T + 6;

impl Snapshot {
    fn to_words(self) -> [u64; WORDS] {
        let mut w = [0u64; WORDS];
        for (o, v) in w.iter_mut().zip(self.ttft) {
            *o = v.to_bits();
        }
        w[T] = self.ttft_n;
        for (o, v) in w[T + 1..T + 5].iter_mut().zip(self.tpot) {
            *o = v.to_bits();
        }
        w[T + 5] = self.tpot_n;
        w
    }

    fn from_words(w: [u64; WORDS]) -> Self {
        Snapshot {
            ttft: std::array::from_fn(|k| f64::from_bits(w[k])),
            ttft_n: w[T],
            tpot: std::array::from_fn(|k| f64::from_bits(w[T + 1 + k])),
            tpot_n: w[T + 5],
        }
    }
}

/// A [`Snapshot`] behind a sequence lock: `load` never blocks a writer and
/// never returns a torn copy; `store` must not run concurrently with another
/// `store` (callers hold a mutex).
#[derive(Debug, Default)]
pub struct SnapshotCell {
    /// Even: stable; odd: a store is in progress.
    seq: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl SnapshotCell {
    /// Publishes `s`. Callers serialise stores.
    pub fn store(&self, s: Snapshot) {
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        // Readers that see a word of this store also see the odd sequence.
        fence(Ordering::Release);
        for (a, v) in self.words.iter().zip(s.to_words()) {
            a.store(v, Ordering::Relaxed);
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy of the last stored snapshot.
    pub fn load(&self) -> Snapshot {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let words: [u64; WORDS] =
                std::array::from_fn(|k| self.words[k].load(Ordering::Relaxed));
            // The words are read before the sequence is read again.
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return Snapshot::from_words(words);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn uniform(v: u64) -> Snapshot {
        Snapshot {
            ttft: [v as f64; T],
            ttft_n: v,
            tpot: [v as f64; 4],
            tpot_n: v,
        }
    }

    #[test]
    fn round_trips() {
        let c = SnapshotCell::default();
        assert_eq!(c.load(), Snapshot::default());
        let s = Snapshot {
            ttft: std::array::from_fn(|k| [1.5, -2.0, 0.0, 3.25, f64::MIN_POSITIVE, 7.0][k % 6]),
            ttft_n: 11,
            tpot: [0.5, 0.25, -1.0, 9.0],
            tpot_n: 4,
        };
        c.store(s);
        assert_eq!(c.load(), s);
    }

    /// Readers racing a writer never see a mix of two stores.
    #[test]
    fn never_torn_under_a_concurrent_writer() {
        let cell = Arc::new(SnapshotCell::default());
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (cell, stop) = (cell.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let s = cell.load();
                        assert_eq!(s, uniform(s.ttft_n), "torn read");
                        assert!(s.ttft_n >= seen, "went back in time");
                        seen = s.ttft_n;
                    }
                })
            })
            .collect();
        for v in 1..=200_000u64 {
            cell.store(uniform(v));
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(cell.load(), uniform(200_000));
    }
}
