//! llm-d's Alpha plugins over host data, read from endpoint labels:
//! header-label affinity, endpoint attributes (filter and scorer) and
//! topology affinity to the P/D peer (filter and scorer).

mod common;

use common::*;
use llmd_sched::{Endpoint, Request, Scheduler};

fn with_labels(name: &str, labels: &[(&str, &str)]) -> Endpoint {
    let mut e = ep(name, metrics(0, 0, 0.0));
    for (k, v) in labels {
        e.labels.insert(k.to_string(), v.to_string());
    }
    e
}

fn req(headers: &[(&str, &str)]) -> Request {
    let mut r = Request::with_tokens("r", "m", tokens(32, 1));
    for (k, v) in headers {
        r.headers.insert(k.to_string(), v.to_string());
    }
    r
}

fn config_error(plugins: &str) -> String {
    match Scheduler::from_config_str(&single(plugins)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted:\n{plugins}"),
    }
}

#[test]
fn header_label_affinity() {
    let (s, _) = sched(&single(
        "- type: header-label-affinity-scorer\n  parameters: {headerName: X-Tier, labelKey: tier}\n- type: max-score-picker\n",
    ));
    s.add_endpoint(with_labels("e1", &[("tier", "gold")]))
        .unwrap();
    s.add_endpoint(with_labels("e2", &[("tier", "silver")]))
        .unwrap();
    s.add_endpoint(with_labels("e3", &[])).unwrap();
    let by = raw_scores(
        &s,
        &req(&[("x-tier", "gold")]),
        "default",
        "header-label-affinity-scorer",
    );
    assert_eq!((by["e1"], by["e2"], by["e3"]), (1.0, 0.0, 0.0));
    let by = raw_scores(&s, &req(&[]), "default", "header-label-affinity-scorer");
    assert!(by.values().all(|&v| v == 0.0));
    let by = raw_scores(
        &s,
        &req(&[("X-Tier", "Gold")]),
        "default",
        "header-label-affinity-scorer",
    );
    assert_eq!(by["e1"], 0.0, "values compare exactly");
    for (params, field) in [
        ("{labelKey: tier}", "headerName"),
        ("{headerName: h}", "labelKey"),
    ] {
        let e = config_error(&format!(
            "- type: header-label-affinity-scorer\n  parameters: {params}\n- type: max-score-picker\n"
        ));
        assert!(e.contains(field), "{e}");
    }
}

fn attribute_filter(params: &str) -> Scheduler {
    let (s, _) = sched(&single(&format!(
        "- type: endpoint-attribute-filter\n  parameters: {params}\n- type: random-picker\n  parameters: {{maxNumOfEndpoints: 10}}\n"
    )));
    s.add_endpoint(with_labels("hot", &[("GPUUtilization", "0.9")]))
        .unwrap();
    s.add_endpoint(with_labels("cool", &[("GPUUtilization", "0.2")]))
        .unwrap();
    s.add_endpoint(with_labels("unknown", &[])).unwrap();
    s
}

fn kept(s: &Scheduler) -> Vec<String> {
    let mut names: Vec<String> = s
        .pick(&req(&[]))
        .map(|d| d.targets.into_iter().map(|t| t.name).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn endpoint_attribute_filter() {
    let below = "algorithm: {type: threshold, threshold: {operator: LessThan, value: 0.5}}";
    let s = attribute_filter(&format!("{{attribute: GPUUtilization, {below}}}"));
    assert_eq!(kept(&s), ["cool", "unknown"], "missing passes by default");
    let s = attribute_filter(&format!(
        "{{attribute: GPUUtilization, onMissing: Fail, {below}}}"
    ));
    assert_eq!(kept(&s), ["cool"]);
    let none = "algorithm: {type: threshold, threshold: {operator: GreaterThan, value: 5}}";
    let s = attribute_filter(&format!(
        "{{attribute: GPUUtilization, onMissing: Fail, {none}}}"
    ));
    assert!(s.pick(&req(&[])).is_err(), "nothing left, no fallback");
    let s = attribute_filter(&format!(
        "{{attribute: GPUUtilization, onMissing: Fail, fallbackOnEmpty: true, {none}}}"
    ));
    assert_eq!(kept(&s), ["cool", "hot", "unknown"]);
    for (params, needle) in [
        ("{attribute: a, algorithm: {type: threshold, threshold: {operator: '<', value: 1}}}", "operator"),
        ("{attribute: a, onMissing: pass, algorithm: {type: threshold, threshold: {operator: Equal}}}", "onMissing"),
        ("{attribute: a, algorithm: {type: percentile}}", "threshold"),
        ("{attribute: a, algorithm: {type: threshold}}", "threshold"),
        ("{attribute: dcgm/GPUUtilization, algorithm: {type: threshold, threshold: {operator: Equal}}}", "producer"),
        ("{algorithm: {type: threshold, threshold: {operator: Equal}}}", "attribute"),
    ] {
        let e = config_error(&format!(
            "- type: endpoint-attribute-filter\n  parameters: {params}\n- type: max-score-picker\n"
        ));
        assert!(e.contains(needle), "{params}: {e}");
    }
    // With the producer named, a key with '/' is fine.
    Scheduler::from_config_str(&single(
        "- type: endpoint-attribute-filter\n  parameters: {attribute: a/b, producer: dcgm-extractor, algorithm: {type: threshold, threshold: {operator: Equal, value: 1}}}\n- type: max-score-picker\n",
    ))
    .unwrap();
}

fn attribute_scores(algorithm: &str, values: &[Option<&str>]) -> Vec<f64> {
    let (s, _) = sched(&single(&format!(
        "- type: endpoint-attribute-scorer\n  parameters: {{attributeKey: queue, algorithm: {algorithm}}}\n- type: max-score-picker\n"
    )));
    for (i, v) in values.iter().enumerate() {
        let labels: Vec<(&str, &str)> = v.iter().map(|v| ("queue", *v)).collect();
        s.add_endpoint(with_labels(&format!("e{i}"), &labels))
            .unwrap();
    }
    let by = raw_scores(&s, &req(&[]), "default", "endpoint-attribute-scorer");
    (0..values.len()).map(|i| by[&format!("e{i}")]).collect()
}

#[test]
fn endpoint_attribute_scorer() {
    let lower = "{type: linear_lower_is_better}";
    assert_eq!(
        attribute_scores(lower, &[Some("2"), Some("6"), Some("10"), None]),
        [1.0, 0.5, 0.0, 0.0]
    );
    let higher = "{type: linear_higher_is_better}";
    assert_eq!(
        attribute_scores(higher, &[Some("2"), Some("6"), Some("10")]),
        [0.0, 0.5, 1.0]
    );
    assert_eq!(
        attribute_scores(higher, &[Some("3"), Some("3"), None]),
        [1.0, 1.0, 0.0]
    );
    let fixed = "{type: linear_higher_is_better, normalization: {fixedRange: {min: 0, max: 4}}}";
    assert_eq!(
        attribute_scores(fixed, &[Some("1"), Some("9"), Some("-1")]),
        [0.25, 1.0, 0.0]
    );
    for (alg, needle) in [
        ("{type: linear}", "type"),
        ("{type: linear_lower_is_better, normalization: {fixedRange: {min: 1, max: 1}}}", "min"),
        ("{type: linear_lower_is_better, normalization: {fixedRange: {min: 0, max: 1}, adaptiveRange: {}}}", "at most one"),
    ] {
        let e = config_error(&format!(
            "- type: endpoint-attribute-scorer\n  parameters: {{attributeKey: q, algorithm: {alg}}}\n- type: max-score-picker\n"
        ));
        assert!(e.contains(needle), "{alg}: {e}");
    }
    for (params, needle) in [
        (
            "{algorithm: {type: linear}}",
            "a non-empty attributeKey is required",
        ),
        (
            "{attributeKey: '', algorithm: {type: linear}}",
            "a non-empty attributeKey is required",
        ),
        (
            "{attributeKey: dcgm/q, algorithm: {type: linear}}",
            "contains '/'",
        ),
    ] {
        let e = config_error(&format!(
            "- type: endpoint-attribute-scorer\n  parameters: {params}\n- type: max-score-picker\n"
        ));
        assert!(e.contains(needle), "{params}: {e}");
    }
}

/// Decode-first P/D where the prefill profile filters and scores by
/// topology relative to the decode pick.
fn topology_pd(filter_params: &str) -> Scheduler {
    let yaml = format!(
        "{HEAD}plugins:
- type: decode-filter
- type: prefill-filter
- type: topology-affinity-filter
  parameters: {filter_params}
- type: topology-affinity-scorer
- type: always-disagg-pd-decider
- type: disagg-profile-handler
  parameters:
    deciders: {{prefill: always-disagg-pd-decider}}
- type: max-score-picker
- type: random-picker
  parameters: {{maxNumOfEndpoints: 10}}
schedulingProfiles:
- name: decode
  plugins:
  - pluginRef: decode-filter
  - pluginRef: max-score-picker
- name: prefill
  plugins:
  - pluginRef: prefill-filter
  - pluginRef: topology-affinity-filter
  - pluginRef: topology-affinity-scorer
  - pluginRef: max-score-picker
"
    );
    let (s, _) = sched(&yaml);
    let host = "kubernetes.io/hostname";
    let zone = "topology.kubernetes.io/zone";
    let role = "llm-d.ai/role";
    s.add_endpoint(with_labels(
        "d1",
        &[(role, "decode"), (host, "h1"), (zone, "z1")],
    ))
    .unwrap();
    s.add_endpoint(with_labels(
        "p-far",
        &[(role, "prefill"), (host, "h9"), (zone, "z2")],
    ))
    .unwrap();
    s.add_endpoint(with_labels(
        "p-zone",
        &[(role, "prefill"), (host, "h2"), (zone, "z1")],
    ))
    .unwrap();
    s.add_endpoint(with_labels(
        "p-host",
        &[(role, "prefill"), (host, "h1"), (zone, "z1")],
    ))
    .unwrap();
    s
}

#[test]
fn topology_affinity_to_the_decode_pick() {
    let s = topology_pd("{minAffinity: host}");
    let d = s.pick(&req(&[])).unwrap();
    assert_eq!(d.targets[0].name, "d1");
    assert_eq!(d.prefill_target.unwrap().name, "p-host");
    let by = raw_scores(&s, &req(&[]), "prefill", "topology-affinity-scorer");
    assert_eq!(by["p-host"], 1.0);
    // The filter left only the co-located one; with a zone minimum the
    // zone mate survives too, and the scorer ranks them.
    let s = topology_pd("{minAffinity: zone}");
    let p = s.pick(&req(&[])).unwrap();
    let x = p.explanation.profile("prefill").unwrap();
    let mut scored: Vec<String> = x.scored.iter().map(|n| n.to_string()).collect();
    scored.sort();
    assert_eq!(scored, ["p-host", "p-zone"]);
    let by = raw_scores(&s, &req(&[]), "prefill", "topology-affinity-scorer");
    assert_eq!((by["p-host"], by["p-zone"]), (1.0, 0.05));
    let e = config_error("- type: topology-affinity-filter\n  parameters: {minAffinity: planet}\n- type: max-score-picker\n");
    assert!(e.contains("minAffinity"), "{e}");
}

#[test]
fn topology_fails_open_without_a_peer() {
    // Single profile: no peer; the filter keeps everyone and the scorer gives 0.
    let (s, _) = sched(&single(
        "- type: topology-affinity-filter\n- type: topology-affinity-scorer\n- type: random-picker\n  parameters: {maxNumOfEndpoints: 10}\n",
    ));
    s.add_endpoint(with_labels("a", &[("kubernetes.io/hostname", "h1")]))
        .unwrap();
    s.add_endpoint(with_labels("b", &[])).unwrap();
    let d = s.pick(&req(&[])).unwrap();
    assert_eq!(d.targets.len(), 2);
    let by = raw_scores(&s, &req(&[]), "default", "topology-affinity-scorer");
    assert!(by.values().all(|&v| v == 0.0));
}

#[test]
fn example_07_routes_by_gpu_class_utilisation_and_zone() {
    let path = format!(
        "{}/../testdata/llm-d-configs/07-alpha-attribute-topology.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let s = Scheduler::from_config_file(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_seed(3);
    let role = "llm-d.ai/role";
    let (zone, host, class, util) = (
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
        "example.com/gpu-class",
        "GPUUtilization",
    );
    for (name, labels) in [
        (
            "d-h100-busy",
            vec![
                (role, "decode"),
                (class, "h100"),
                (util, "0.97"),
                (zone, "z1"),
                (host, "a"),
            ],
        ),
        (
            "d-h100",
            vec![
                (role, "decode"),
                (class, "h100"),
                (util, "0.50"),
                (zone, "z1"),
                (host, "b"),
            ],
        ),
        (
            "d-a100",
            vec![
                (role, "decode"),
                (class, "a100"),
                (util, "0.10"),
                (zone, "z2"),
                (host, "c"),
            ],
        ),
        ("p-z1", vec![(role, "prefill"), (zone, "z1"), (host, "d")]),
        ("p-z2", vec![(role, "prefill"), (zone, "z2"), (host, "e")]),
    ] {
        s.add_endpoint(with_labels(name, &labels)).unwrap();
    }
    // The saturated h100 is filtered out; the header beats the lower
    // utilisation of the a100; prefill stays in the decode pick's zone.
    let d = s.pick(&req(&[("x-gpu-class", "h100")])).unwrap();
    assert_eq!(d.targets[0].name, "d-h100");
    assert_eq!(d.prefill_target.unwrap().name, "p-z1");
    // Without the header, utilisation decides, and prefill follows to z2.
    let d = s.pick(&req(&[])).unwrap();
    assert_eq!(d.targets[0].name, "d-a100");
    assert_eq!(d.prefill_target.unwrap().name, "p-z2");
    // The data layer is reported as the host's job.
    let lines = s.config_report().not_executed_lines();
    for t in ["dcgm-data-source", "dcgm-extractor", "topology-extractor"] {
        assert!(lines.iter().any(|l| l.contains(t)), "{t}: {lines:#?}");
    }
}
