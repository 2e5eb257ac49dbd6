//! EndpointPickerConfig policies run by the scheduler library, fed the
//! workers' KV-event bytes and `/metrics` pages.

mod common;

use llmd_sim::engine::{self, RunOptions};
use llmd_sim::policy;
use llmd_sim::scenario::PolicySpec;
use llmd_sim::summary::Summary;

fn run_config(file: &str) -> Summary {
    let sc = common::shared_prefix("", "  workers: 4", 300, 30.0);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/llm-d-configs")
        .join(file);
    let spec = PolicySpec::Config {
        name: file.into(),
        config: Some(path),
        inline: None,
    };
    let router = policy::build(&spec, &sc).expect("config builds");
    let opts = RunOptions {
        check_invariants: true,
        ..RunOptions::default()
    };
    let out = engine::run(&sc, router, opts).expect("run");
    assert!(
        out.invariant_violations.is_empty(),
        "{:?}",
        out.invariant_violations
    );
    Summary::of(&out)
}

#[test]
fn precise_config_uses_the_event_stream() {
    let sc = common::shared_prefix("", "  workers: 4", 300, 30.0);
    let random = Summary::of(&common::run_checked(&sc, "random"));
    let precise = run_config("02-precise-prefix-kv-events.yaml");
    assert_eq!(precise.completed, 300);
    assert!(
        precise.cache_hit_rate > random.cache_hit_rate + 0.25,
        "hit rate: scheduler precise {:.3} vs random {:.3}",
        precise.cache_hit_rate,
        random.cache_hit_rate
    );
}

#[test]
fn default_config_matches_the_builtin_default() {
    let sc = common::shared_prefix("", "  workers: 4", 300, 30.0);
    let builtin = Summary::of(&common::run_checked(&sc, "llm-d-default"));
    let epp = run_config("01-default-load-and-prefix.yaml");
    assert!(
        (epp.cache_hit_rate - builtin.cache_hit_rate).abs() < 0.1,
        "hit rate: scheduler {:.3} vs built-in {:.3}",
        epp.cache_hit_rate,
        builtin.cache_hit_rate
    );
}

#[test]
fn a_bad_config_is_a_policy_error() {
    let sc = common::shared_prefix("", "  workers: 2", 10, 5.0);
    let spec = PolicySpec::Config {
        name: "bad".into(),
        config: None,
        inline: Some("apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins: [{type: no-such-plugin}]".into()),
    };
    let err = match policy::build(&spec, &sc) {
        Ok(_) => panic!("an unknown plugin type must be refused"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("no-such-plugin"), "{err}");
}
