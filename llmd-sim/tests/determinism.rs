//! Same scenario and seed, same result; another seed, another result.

mod common;

use llmd_sim::engine::{self, RunOptions};
use llmd_sim::policy;
use llmd_sim::scenario::PolicySpec;

fn fingerprint(seed: u64, policy_name: &str) -> (String, String) {
    let mut sc = common::shared_prefix("", "  workers: 3", 150, 20.0);
    sc.seed = seed;
    let router = policy::build(&PolicySpec::Builtin(policy_name.into()), &sc).expect("policy");
    let out = engine::run(&sc, router, RunOptions::default()).expect("run");
    let records = serde_json::to_string(&out.records).expect("json");
    (records, out.metrics.join("\n"))
}

#[test]
fn same_seed_same_records_and_metrics() {
    for p in ["random", "llm-d-default", "precise-prefix"] {
        let a = fingerprint(11, p);
        let b = fingerprint(11, p);
        assert_eq!(a, b, "{p} is not deterministic");
    }
}

#[test]
fn another_seed_changes_the_run() {
    assert_ne!(fingerprint(11, "random").0, fingerprint(12, "random").0);
}
