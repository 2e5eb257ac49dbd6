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

/// Scorer references and weights of a config's first profile.
fn profile_weights(text: &str) -> Vec<(String, f64)> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("built-in config is YAML");
    let plugins = doc["schedulingProfiles"][0]["plugins"]
        .as_sequence()
        .expect("profile plugins");
    let mut v: Vec<(String, f64)> = plugins
        .iter()
        .filter_map(|p| {
            let name = p["pluginRef"].as_str()?.to_string();
            Some((name, p["weight"].as_f64()?))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn prefix_builtins_are_the_optimized_baseline_differing_only_in_producer() {
    use llmd_sim::router::{builtin_config, BuiltinFleet, Role};
    let names: Vec<String> = (0..4).map(|i| format!("w{i}")).collect();
    let roles = vec![Role::Both; 4];
    let fleet = BuiltinFleet {
        names: &names,
        roles: &roles,
        model: "m",
        block_size: 32,
        num_blocks: 1000,
        seed: 1,
    };
    let want: Vec<(String, f64)> = [
        ("kv-cache-utilization-scorer", 2.0),
        ("no-hit-lru-scorer", 2.0),
        ("prefix-cache-scorer", 3.0),
        ("queue-scorer", 2.0),
    ]
    .iter()
    .map(|(n, w)| (n.to_string(), *w))
    .collect();
    for (policy, producer) in [
        ("approx-prefix", "approx-prefix-cache-producer"),
        ("precise-prefix", "precise-prefix-cache-producer"),
    ] {
        let text = builtin_config(policy, &fleet).expect("scheduler-backed built-in");
        assert_eq!(profile_weights(&text), want, "{policy}");
        assert!(text.contains(&format!("type: {producer}")), "{policy}");
        assert_eq!(
            text.matches(&format!("prefixMatchInfoProducerName: {producer}"))
                .count(),
            2,
            "{policy}: prefix and no-hit-lru scorers read {producer}"
        );
        llmd_sched::Scheduler::from_config_str(&text).expect("built-in config loads");
    }
    let precise = builtin_config("precise-prefix", &fleet).expect("precise");
    // The index keys must be cut like the engines' blocks.
    assert!(precise.contains("blockSizeTokens: 32"), "{precise}");
    assert!(precise.contains("speculativeIndexing: true"), "{precise}");
}
