//! On a shared-prefix workload with more prefixes than one cache holds,
//! precise prefix routing must beat random routing by a wide margin.

mod common;

use llmd_sim::summary::Summary;

#[test]
fn precise_prefix_beats_random_on_shared_prefixes() {
    let sc = common::shared_prefix("", "  workers: 4", 400, 30.0);
    let random = Summary::of(&common::run_checked(&sc, "random"));
    let precise = Summary::of(&common::run_checked(&sc, "precise-prefix"));
    assert!(
        precise.cache_hit_rate > random.cache_hit_rate + 0.25,
        "hit rate: precise {:.3} vs random {:.3}",
        precise.cache_hit_rate,
        random.cache_hit_rate
    );
    assert!(
        precise.ttft_p90 * 2.0 < random.ttft_p90,
        "TTFT p90: precise {:.3}s vs random {:.3}s",
        precise.ttft_p90,
        random.ttft_p90
    );
    assert!(precise.goodput >= random.goodput);
}
