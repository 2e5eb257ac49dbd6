//! Model checks of the bucket read/reuse protocol (seqlock on slot reuse,
//! single stores for mask changes). Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p llmd-kvindex --test loom_index --release`.
// `loom` is a cfg set only by the loom test run.
#![allow(unexpected_cfgs)]
#![cfg(loom)]

use llmd_kvindex::index::loom_support::{Bucket, TAG_BITS};
use loom::sync::Arc;
use loom::thread;

const FP_A: u64 = 1;
const FP_B: u64 = 2;
const KEY_A: u64 = FP_A << TAG_BITS;
const KEY_B: u64 = FP_B << TAG_BITS;

/// Every mask the lookup's probe reports for `fp` must be one that `fp`'s
/// key really had (0: not installed at that moment). All keys here carry tag
/// 0 (tier 0, group 0) and at most one slot holds `fp`, so the gathered mask
/// is that slot's.
fn check(bucket: &Bucket, fp: u64, allowed: &[u64]) {
    let mut held = [[0u64; 2]; 4];
    bucket.gather(fp, 0, &mut held);
    let mask = held[0][0];
    assert!(
        allowed.contains(&mask),
        "fp {fp} read foreign mask {mask:#b}"
    );
}

/// Bounded preemptions keep the search tractable (loom's usual setting);
/// the protocol's races need at most two.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

#[test]
fn slot_reuse_never_pairs_a_key_with_a_foreign_mask() {
    model(|| {
        let bucket = Arc::new(Bucket::default());
        bucket.install(0, KEY_A, 0b001, 5);
        let writer = {
            let bucket = bucket.clone();
            thread::spawn(move || {
                // A evicted, slot reused by B, then by A again (ABA on the key).
                bucket.free(0);
                bucket.install(0, KEY_B, 0b010, 5);
                bucket.free(0);
                bucket.install(0, KEY_A, 0b100, 5);
            })
        };
        check(&bucket, FP_A, &[0b001, 0b100, 0]);
        writer.join().unwrap();
    });
}

#[test]
fn a_reused_slot_never_shows_the_previous_mask() {
    model(|| {
        let bucket = Arc::new(Bucket::default());
        bucket.install(0, KEY_A, 0b01, 5);
        let writer = {
            let bucket = bucket.clone();
            thread::spawn(move || {
                bucket.free(0);
                bucket.install(0, KEY_B, 0b10, 5);
            })
        };
        check(&bucket, FP_B, &[0b10, 0]);
        writer.join().unwrap();
    });
}

#[test]
fn mask_updates_in_place_are_seen_whole() {
    model(|| {
        let bucket = Arc::new(Bucket::default());
        bucket.install(1, KEY_A, 0b01, 5);
        let writer = {
            let bucket = bucket.clone();
            thread::spawn(move || {
                bucket.set_mask(1, 0b11);
                bucket.install(2, KEY_B, 0b100, 5);
                bucket.set_mask(1, 0b10);
            })
        };
        check(&bucket, FP_A, &[0b01, 0b11, 0b10]);
        check(&bucket, FP_B, &[0b100, 0]);
        writer.join().unwrap();
    });
}

/// Moving an entry from its home to its alternate bucket (to make room)
/// never hides it: a reader probing the home, then the alternate when the
/// home reports spills, finds the entry's mask at every interleaving.
#[test]
fn a_moved_entry_is_never_missed() {
    model(|| {
        let home = Arc::new(Bucket::default());
        let alt = Arc::new(Bucket::default());
        home.install(0, KEY_A, 0b1, 5);
        let writer = {
            let (home, alt) = (home.clone(), alt.clone());
            thread::spawn(move || {
                alt.install(0, KEY_A, 0b1, 5);
                home.add_overflow(true);
                home.free_moved(0);
            })
        };
        let mut held = [[0u64; 2]; 4];
        if home.gather(FP_A, 0, &mut held) {
            alt.gather(FP_A, 0, &mut held);
        }
        assert_eq!(held[0][0], 0b1, "the moved entry was missed");
        writer.join().unwrap();
    });
}

/// Two writers racing on one checkpoint record: a reader sees either
/// writer's record whole (its counts with its own epoch) or nothing.
#[test]
fn a_checkpoint_record_is_never_read_torn() {
    use llmd_kvindex::index::loom_support::Checkpoints;
    model(|| {
        let ck = Arc::new(Checkpoints::new(4).unwrap());
        let writers: Vec<_> = [(5u64, 0b01u64), (6, 0b10)]
            .into_iter()
            .map(|(epoch, counts)| {
                let ck = ck.clone();
                thread::spawn(move || ck.put(42, 3, epoch, counts, |_| 0))
            })
            .collect();
        assert!(matches!(
            ck.find(42, 3),
            None | Some((5, 0b01)) | Some((6, 0b10))
        ));
        for w in writers {
            w.join().unwrap();
        }
    });
}

/// Whether a checkpoint stamped `stamp` still proves block `fp` held, as a
/// lookup decides it: the same epoch, or a log of every raise since that
/// names other blocks only.
fn proves(epochs: &llmd_kvindex::index::loom_support::Epochs, stamp: u64, fp: u64) -> bool {
    let now = epochs.read(0);
    let mut logged = Vec::new();
    stamp == now || (epochs.logged(0, stamp + 1, now, &mut logged) && !logged.contains(&fp))
}

/// The epoch protocol: a lookup reads the endpoint's epoch, then the table,
/// and checkpoints what it saw under that epoch; a removal clears the
/// block, then raises the epoch with the block logged. Whatever the
/// interleaving, once both are done no checkpoint still proves the removed
/// block: not by its epoch, not through the log.
#[test]
fn a_removal_invalidates_every_checkpoint_of_what_it_removed() {
    use llmd_kvindex::index::loom_support::{Checkpoints, Epochs};
    model(|| {
        let bucket = Arc::new(Bucket::default());
        let ck = Arc::new(Checkpoints::new(4).unwrap().with_reach(4));
        let epochs = Arc::new(Epochs::with_log(1, 4));
        epochs.raise(0, 99); // an unrelated block
        bucket.install(0, KEY_A, 0b1, 5);
        let lookup = {
            let (bucket, ck, epochs) = (bucket.clone(), ck.clone(), epochs.clone());
            thread::spawn(move || {
                let e = epochs.read(0);
                let mut held = [[0u64; 2]; 4];
                bucket.gather(FP_A, 0, &mut held);
                if held[0][0] & 1 != 0 {
                    ck.put(7, 0, e, 1, |_| epochs.read(0));
                }
            })
        };
        bucket.free(0);
        epochs.raise(0, FP_A);
        lookup.join().unwrap();
        if let Some((stamp, _)) = ck.find(7, 0) {
            assert!(!proves(&epochs, stamp, FP_A), "stamped {stamp}");
        }
    });
}

/// The log is a seqlock whose versions are raise numbers: a reader racing
/// writers that wrap a two-entry log gets, for the raises it asked for,
/// exactly the blocks they were raised for, or a refusal.
#[test]
fn the_epoch_log_is_never_read_torn_or_wrapped() {
    use llmd_kvindex::index::loom_support::Epochs;
    model(|| {
        let epochs = Arc::new(Epochs::with_log(1, 2));
        epochs.raise(0, 10);
        let writer = {
            let epochs = epochs.clone();
            thread::spawn(move || {
                epochs.raise(0, 20);
                epochs.raise(0, 30);
            })
        };
        let now = epochs.read(0);
        let mut got = Vec::new();
        if epochs.logged(0, 1, now, &mut got) {
            let want: Vec<u64> = (1..=now).rev().map(|x| x * 10).collect();
            assert_eq!(got, want);
        }
        writer.join().unwrap();
        got.clear();
        assert!(epochs.logged(0, 2, 3, &mut got));
        assert_eq!(got, [30, 20]);
        assert!(!epochs.logged(0, 1, 3, &mut got), "raise 1 fell out");
    });
}
