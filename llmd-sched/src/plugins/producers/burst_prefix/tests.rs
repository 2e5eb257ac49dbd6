//! llm-d's assignment cases (`burstprefix/assign_test.go`, all 16), each with the
//! placement llm-d's tests require.

use super::*;

const PODS: [&str; 4] = ["pod1", "pod2", "pod3", "pod4"];

fn replicas(n: usize) -> Vec<Replica<'static>> {
    PODS[..n]
        .iter()
        .map(|&name| Replica { name, running: 0 })
        .collect()
}

fn cfg(k: i64, min: usize, tokens: bool) -> BurstConfig {
    BurstConfig {
        window_ms: 100,
        max_per_replica: (k > 0).then_some(k as usize),
        block_size: 64,
        max_blocks: 2048,
        min_colocate_blocks: min,
        max_batch: Some(1000),
        balance_by_tokens: tokens,
    }
}

/// A batch of units: (samples, prefix) each, in order.
struct Run {
    names: Vec<Option<&'static str>>,
    starts: Vec<usize>,
}

impl Run {
    fn new(units: &[(usize, &[u64])], pods: usize, c: &BurstConfig) -> Run {
        let mut hashes = Vec::new();
        let mut starts = Vec::new();
        for (n, prefix) in units {
            starts.push(hashes.len());
            hashes.extend(std::iter::repeat(prefix.to_vec()).take(*n));
        }
        let r = replicas(pods);
        let names = assign(c, &hashes, &r)
            .into_iter()
            .map(|a| a.map(|i| PODS[i]))
            .collect();
        Run { names, starts }
    }
    /// Where the `s`-th sample of unit `u` went.
    fn at(&self, u: usize, s: usize) -> Option<&'static str> {
        self.names[self.starts[u] + s]
    }
    fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut c: Vec<(&'static str, usize)> = Vec::new();
        for n in self.names.iter().flatten() {
            match c.iter_mut().find(|(p, _)| p == n) {
                Some(e) => e.1 += 1,
                None => c.push((n, 1)),
            }
        }
        c.sort();
        c
    }
}

#[test]
fn unlimited_colocates_the_whole_group() {
    let r = Run::new(&[(8, &[1, 2, 3])], 4, &cfg(-1, 0, false));
    assert!(r.names.iter().all(|n| *n == Some("pod1")));
}

#[test]
fn a_cap_spreads_evenly() {
    let r = Run::new(&[(8, &[1, 2, 3])], 4, &cfg(2, 0, false));
    assert_eq!(
        r.counts(),
        [("pod1", 2), ("pod2", 2), ("pod3", 2), ("pod4", 2)]
    );
}

#[test]
fn a_cap_fills_before_spilling() {
    let r = Run::new(&[(8, &[1, 2, 3])], 4, &cfg(4, 0, false));
    assert_eq!(r.counts(), [("pod1", 4), ("pod2", 4)]);
}

#[test]
fn a_singleton_or_an_empty_prefix_gets_no_affinity() {
    let r = Run::new(&[(1, &[1, 2, 3])], 2, &cfg(-1, 0, false));
    assert_eq!(r.at(0, 0), None);
    let r = Run::new(&[(2, &[])], 2, &cfg(-1, 0, false));
    assert_eq!(r.names, [None, None]);
}

#[test]
fn distinct_groups_spread_across_replicas() {
    let r = Run::new(&[(8, &[1, 2, 3]), (8, &[9, 9, 9])], 4, &cfg(-1, 0, false));
    assert!((0..8).all(|s| r.at(0, s) == Some("pod1") && r.at(1, s) == Some("pod2")));
}

#[test]
fn shared_prefix_families_colocate_within_the_fair_share() {
    let units: [(usize, &[u64]); 4] = [
        (2, &[1, 2, 3]),
        (2, &[1, 2, 4]),
        (2, &[7, 8, 5]),
        (2, &[7, 8, 6]),
    ];
    let r = Run::new(&units, 2, &cfg(-1, 2, false));
    assert_eq!(r.at(0, 0), r.at(1, 0));
    assert_eq!(r.at(2, 0), r.at(3, 0));
    assert_ne!(r.at(0, 0), r.at(2, 0));
    assert_eq!(r.counts(), [("pod1", 4), ("pod2", 4)]);
}

#[test]
fn the_fair_share_spreads_prefix_sharing_groups() {
    let units: [(usize, &[u64]); 4] = [
        (2, &[1, 2, 3]),
        (2, &[1, 2, 4]),
        (2, &[1, 2, 5]),
        (2, &[1, 2, 6]),
    ];
    let r = Run::new(&units, 4, &cfg(-1, 2, false));
    assert_eq!(
        r.counts(),
        [("pod1", 2), ("pod2", 2), ("pod3", 2), ("pod4", 2)]
    );
}

#[test]
fn a_singleton_attaches_to_the_group_it_overlaps() {
    let units: [(usize, &[u64]); 4] = [
        (2, &[1, 2, 3]),
        (1, &[1, 2, 8]),
        (2, &[7, 8, 5]),
        (1, &[7, 8, 9]),
    ];
    let r = Run::new(&units, 2, &cfg(-1, 2, false));
    assert_eq!(r.at(0, 0), r.at(0, 1));
    assert_eq!(r.at(0, 0), r.at(1, 0));
    assert_eq!(r.at(2, 0), r.at(3, 0));
    assert_eq!(r.counts(), [("pod1", 3), ("pod2", 3)]);
}

#[test]
fn a_lone_singleton_gets_no_affinity() {
    let r = Run::new(&[(2, &[1, 2, 3]), (1, &[5, 5, 5])], 2, &cfg(-1, 2, false));
    assert_eq!(r.at(1, 0), None);
    assert_eq!(r.at(0, 0), r.at(0, 1));
}

#[test]
fn overlapping_singletons_colocate_without_groups() {
    let units: [(usize, &[u64]); 4] = [
        (1, &[1, 2, 3]),
        (1, &[1, 2, 4]),
        (1, &[1, 2, 5]),
        (1, &[1, 2, 6]),
    ];
    let r = Run::new(&units, 2, &cfg(-1, 2, false));
    assert!(r.names.iter().all(Option::is_some));
    assert_eq!(r.counts(), [("pod1", 2), ("pod2", 2)]);
}

#[test]
fn a_shared_prefix_below_the_threshold_does_not_colocate() {
    let units: [(usize, &[u64]); 4] = [
        (2, &[1, 2, 3]),
        (2, &[1, 2, 4]),
        (2, &[7, 8, 5]),
        (2, &[7, 8, 6]),
    ];
    let r = Run::new(&units, 2, &cfg(-1, 3, false));
    assert_ne!(r.at(0, 0), r.at(1, 0));
    assert_eq!(r.counts(), [("pod1", 4), ("pod2", 4)]);
}

#[test]
fn a_single_replica_takes_everything() {
    let r = Run::new(&[(4, &[1, 2, 3]), (4, &[9, 9, 9])], 1, &cfg(-1, 2, false));
    assert!(r.names.iter().all(|n| *n == Some("pod1")));
}

#[test]
fn balancing_by_tokens_spreads_a_long_prefix() {
    let units: [(usize, &[u64]); 3] = [(2, &[1, 2, 3, 4]), (2, &[5]), (2, &[6])];
    let by_requests = Run::new(&units, 2, &cfg(-1, 0, false));
    assert_eq!(by_requests.at(0, 0), by_requests.at(2, 0));
    let by_tokens = Run::new(&units, 2, &cfg(-1, 0, true));
    assert_ne!(by_tokens.at(0, 0), by_tokens.at(1, 0));
    assert_eq!(by_tokens.at(1, 0), by_tokens.at(2, 0));
}

#[test]
fn balancing_by_tokens_discounts_a_shared_prefix() {
    let units: [(usize, &[u64]); 3] = [
        (2, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        (2, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 11]),
        (2, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 12]),
    ];
    let r = Run::new(&units, 2, &cfg(-1, 9, true));
    assert_eq!(r.at(0, 0), r.at(1, 0));
    assert_eq!(r.at(1, 0), r.at(2, 0));
}

#[test]
fn the_overflow_guard_balances_beyond_the_cap() {
    let r = Run::new(&[(8, &[1, 2, 3])], 2, &cfg(2, 0, false));
    assert!(r.names.iter().all(Option::is_some));
    assert_eq!(r.counts(), [("pod1", 4), ("pod2", 4)]);
}

#[test]
fn ties_go_to_fewer_running_requests_then_the_lower_name() {
    let busy = [
        Replica {
            name: "a",
            running: 5,
        },
        Replica {
            name: "b",
            running: 1,
        },
        Replica {
            name: "c",
            running: 1,
        },
    ];
    let hashes = vec![vec![1, 2], vec![1, 2]];
    assert_eq!(
        assign(&cfg(-1, 0, false), &hashes, &busy),
        [Some(1), Some(1)]
    );
}
