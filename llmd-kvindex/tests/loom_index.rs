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
        assert!(matches!(ck.get(42, 3, 5), None | Some(0b01)));
        assert!(matches!(ck.get(42, 3, 6), None | Some(0b10)));
        for w in writers {
            w.join().unwrap();
        }
    });
}

/// The epoch protocol: a lookup reads the endpoint's epoch, then the table,
/// and checkpoints what it saw under that epoch; a removal clears the
/// block, then raises the epoch. Whatever the interleaving, once both are
/// done no checkpoint valid under the current epoch claims the removed block.
#[test]
fn a_removal_invalidates_every_checkpoint_of_what_it_removed() {
    use llmd_kvindex::index::loom_support::{raise_epoch, read_epoch, Checkpoints};
    use loom::sync::atomic::AtomicU64;
    model(|| {
        let bucket = Arc::new(Bucket::default());
        let ck = Arc::new(Checkpoints::new(4).unwrap());
        let epoch = Arc::new(AtomicU64::new(0));
        bucket.install(0, KEY_A, 0b1, 5);
        let lookup = {
            let (bucket, ck, epoch) = (bucket.clone(), ck.clone(), epoch.clone());
            thread::spawn(move || {
                let e = read_epoch(&epoch);
                let mut held = [[0u64; 2]; 4];
                bucket.gather(FP_A, 0, &mut held);
                if held[0][0] & 1 != 0 {
                    ck.put(7, 0, e, 1, |_| read_epoch(&epoch));
                }
            })
        };
        bucket.free(0);
        raise_epoch(&epoch);
        lookup.join().unwrap();
        assert_eq!(ck.get(7, 0, read_epoch(&epoch)), None);
    });
}
