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

/// Behind four router replicas, each approximate index learns from a quarter
/// of the routing decisions, while the precise index hears every engine's
/// KV events: precise routing keeps its hit rate, approximate loses much of
/// it. With one router they are close.
#[test]
fn precise_prefix_keeps_its_hits_behind_router_replicas() {
    let hits = |replicas: u32, policy: &str| {
        let fleet = format!("  workers: 4\n  router_replicas: {replicas}");
        let sc = common::shared_prefix("", &fleet, 400, 30.0);
        Summary::of(&common::run_checked(&sc, policy)).cache_hit_rate
    };
    let (approx1, precise1) = (hits(1, "approx-prefix"), hits(1, "precise-prefix"));
    let (approx4, precise4) = (hits(4, "approx-prefix"), hits(4, "precise-prefix"));
    eprintln!("hit rate, 1 router: approx {approx1:.3} precise {precise1:.3}; 4 routers: approx {approx4:.3} precise {precise4:.3}");
    assert!(
        (precise1 - approx1).abs() < 0.1,
        "one router: approx {approx1:.3} vs precise {precise1:.3}"
    );
    assert!(
        precise4 > precise1 - 0.05,
        "precise with 4 routers {precise4:.3} vs 1 router {precise1:.3}"
    );
    assert!(
        precise4 > approx4 + 0.1,
        "4 routers: approx {approx4:.3} vs precise {precise4:.3}"
    );
}
