//! Each plugin's formula and defaults against the llm-d reference.

mod common;

use common::*;
use llmd_sched::{Endpoint, EndpointMetrics, Request};

fn req() -> Request {
    Request::with_tokens("r", "m", tokens(100, 0))
}

#[test]
fn queue_scorer_min_max() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    for (n, q) in [("e1", 0), ("e2", 5), ("e3", 10)] {
        s.add_endpoint(ep(n, metrics(q, 0, 0.0))).unwrap();
    }
    let r = raw_scores(&s, &req(), "default", "queue-scorer");
    assert_eq!((r["e1"], r["e2"], r["e3"]), (1.0, 0.5, 0.0));
    // All equal → 1.0.
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    s.add_endpoint(ep("e1", metrics(3, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(3, 0, 0.0))).unwrap();
    assert!(raw_scores(&s, &req(), "default", "queue-scorer")
        .values()
        .all(|&v| v == 1.0));
}

#[test]
fn running_and_kv_and_load_aware() {
    let (s, _) = sched(&single("- type: running-requests-size-scorer\n- type: kv-cache-utilization-scorer\n- type: load-aware-scorer\n  parameters: {threshold: 10}\n"));
    s.add_endpoint(ep("e1", metrics(0, 2, 0.25))).unwrap();
    s.add_endpoint(ep("e2", metrics(5, 6, 0.5))).unwrap();
    s.add_endpoint(ep("e3", metrics(20, 4, 1.0))).unwrap();
    let r = raw_scores(&s, &req(), "default", "running-requests-size-scorer");
    assert_eq!((r["e1"], r["e2"], r["e3"]), (1.0, 0.0, 0.5));
    let k = raw_scores(&s, &req(), "default", "kv-cache-utilization-scorer");
    assert_eq!((k["e1"], k["e2"], k["e3"]), (0.75, 0.5, 0.0));
    let l = raw_scores(&s, &req(), "default", "load-aware-scorer");
    assert_eq!((l["e1"], l["e2"], l["e3"]), (0.5, 0.25, 0.0));
}

#[test]
fn load_aware_threshold_falls_back() {
    let (s, _) = sched(&single(
        "- type: load-aware-scorer\n  parameters: {threshold: -3}\n",
    ));
    s.add_endpoint(ep("e1", metrics(64, 0, 0.0))).unwrap();
    let l = raw_scores(&s, &req(), "default", "load-aware-scorer");
    assert_eq!(l["e1"], 0.5 * (1.0 - 64.0 / 128.0));
}

#[test]
fn lora_affinity_levels() {
    let (s, _) = sched(&single("- type: lora-affinity-scorer\n"));
    let lora = |active: &[&str], waiting: &[&str], max: u32| EndpointMetrics {
        active_models: active.iter().map(|s| s.to_string()).collect(),
        waiting_models: waiting.iter().map(|s| s.to_string()).collect(),
        max_active_models: max,
        updated_at_ns: 1,
        ..Default::default()
    };
    s.add_endpoint(ep("e1", lora(&["ad"], &[], 2))).unwrap();
    s.add_endpoint(ep("e2", lora(&["x"], &[], 2))).unwrap();
    s.add_endpoint(ep("e3", lora(&["x"], &["ad"], 2))).unwrap();
    s.add_endpoint(ep("e4", lora(&["x", "y"], &[], 2))).unwrap();
    let mut r = req();
    r.lora = Some(llmd_sched::model::LoraRef {
        id: None,
        name: "ad".into(),
        path: None,
    });
    let l = raw_scores(&s, &r, "default", "lora-affinity-scorer");
    assert_eq!((l["e1"], l["e2"], l["e3"], l["e4"]), (1.0, 0.8, 0.6, 0.0));
}

#[test]
fn active_request_and_token_load_follow_inflight() {
    let y = single("- type: inflight-load-producer\n- type: active-request-scorer\n  parameters: {idleThreshold: 0, maxBusyScore: 0.8}\n- type: token-load-scorer\n  parameters: {queueThresholdTokens: 1000}\n- type: random-picker\n");
    let (s, _) = sched(&y);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    // Before any load every endpoint is idle.
    let a = raw_scores(
        &s,
        &Request::with_tokens("q0", "m", tokens(100, 0)),
        "default",
        "active-request-scorer",
    );
    assert!(a.values().all(|&v| v == 1.0));
    s.on_complete("q0", None);
    // Load e1 with two requests of 100 tokens.
    s.pick(&Request::with_tokens("a", "m", tokens(100, 1)))
        .unwrap();
    s.pick(&Request::with_tokens("b", "m", tokens(100, 2)))
        .unwrap();
    let st = |n: &str| s.endpoint_state(n).unwrap();
    let total: i64 = ["e1", "e2"].iter().map(|n| st(n).inflight_requests()).sum();
    assert_eq!(total, 2);
    assert_eq!(st("e1").inflight_tokens() + st("e2").inflight_tokens(), 200);
    // Token load: 1 - (inflight + 100 uncached) / 1000 per endpoint; summed over both: 2 - 400/1000.
    let tl = raw_scores(
        &s,
        &Request::with_tokens("c", "m", tokens(100, 3)),
        "default",
        "token-load-scorer",
    );
    assert!(approx(tl["e1"] + tl["e2"], 1.6), "{tl:?}");
    s.on_complete("c", None);
    // First token releases tokens but not requests; completion releases
    // requests. A host that streams without reporting the first token (b)
    // has its first chunk taken for it.
    s.on_first_token("a");
    assert!(s.on_tokens("b", 3));
    assert_eq!(st("e1").inflight_tokens() + st("e2").inflight_tokens(), 0);
    assert_eq!(
        st("e1").inflight_requests() + st("e2").inflight_requests(),
        2
    );
    s.on_complete("a", Some(0));
    s.on_complete("b", Some(0));
    assert_eq!(
        st("e1").inflight_requests() + st("e2").inflight_requests(),
        0
    );
}

#[test]
fn output_estimates_are_capped_by_the_requests_max_tokens() {
    let y = single("- type: inflight-load-producer\n  parameters: {addEstimatedOutputTokens: true, outputRatio: 1.5}\n- type: random-picker\n");
    let (s, _) = sched(&y);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let st = || s.endpoint_state("e1").unwrap().inflight_tokens();
    // llm-d's estimate: 100 prompt tokens + 150 estimated output tokens.
    s.pick(&Request::with_tokens("a", "m", tokens(100, 1)))
        .unwrap();
    assert_eq!(st(), 250);
    s.on_complete("a", Some(0));
    // A request asking for at most 20 tokens never produces more.
    let mut capped = Request::with_tokens("b", "m", tokens(100, 2));
    capped.max_output_tokens = Some(20);
    s.pick(&capped).unwrap();
    assert_eq!(st(), 120);
    s.on_complete("b", Some(0));
    // From an OpenAI body: max_tokens (max_completion_tokens is a chat
    // field; vLLM's completions do not read it).
    s.pick_openai(
        "c",
        "/v1/completions",
        br#"{"model": "m", "prompt": [1, 2, 3, 4], "max_tokens": 3, "max_completion_tokens": 50}"#,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(st(), 7);
    s.on_complete("c", Some(0));
}

#[test]
fn active_request_formula() {
    let y = single("- type: inflight-load-producer\n- type: active-request-scorer\n  parameters: {idleThreshold: 1, maxBusyScore: 0.8}\n");
    let (s, _) = sched(&y);
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0))).unwrap();
    }
    // 4 requests on e1, 2 on e2 via the subset header, 0 on e3.
    for (i, (addr, k)) in [("10.0.0.1:8000", 4), ("10.0.0.2:8000", 2)]
        .iter()
        .enumerate()
    {
        for j in 0..*k {
            let r = Request::with_tokens(format!("x{i}{j}"), "m", tokens(10, 0))
                .header("x-gateway-destination-endpoint-subset", *addr);
            s.pick(&r).unwrap();
        }
    }
    let a = raw_scores(
        &s,
        &Request::with_tokens("q", "m", tokens(10, 0)),
        "default",
        "active-request-scorer",
    );
    assert!(approx(a["e1"], 0.0));
    assert!(approx(a["e2"], (4.0 - 2.0) / 4.0 * 0.8));
    assert_eq!(a["e3"], 1.0);
}

#[test]
fn prefix_cache_scorer_blend_with_approx_producer() {
    let y = single("- type: approx-prefix-cache-producer\n  parameters: {autoTune: false, blockSizeTokens: 64}\n- type: prefix-cache-scorer\n  parameters: {matchLengthWeight: 0.5, matchLengthScaleTokens: 256}\n");
    let (s, _) = sched(&y);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    let prompt = tokens(512, 7); // 8 blocks of 64
    let first = s
        .pick(&Request::with_tokens("a", "m", prompt.clone()))
        .unwrap()
        .targets[0]
        .name
        .clone();
    // Same first 4 blocks, different tail.
    let mut second = prompt[..256].to_vec();
    second.extend(tokens(256, 99));
    let r = raw_scores(
        &s,
        &Request::with_tokens("b", "m", second),
        "default",
        "prefix-cache-scorer",
    );
    let other = if first == "e1" { "e2" } else { "e1" };
    // ratio 4/8, length min(1, 4*64/256)^2 = 1 → 0.5*1 + 0.5*0.5
    assert!(approx(r[&first], 0.75), "{r:?}");
    assert_eq!(r[other], 0.0);
}

#[test]
fn context_length_aware_formula() {
    use llmd_sched::plugins::scorers::ContextLengthAware as C;
    assert_eq!(C::score_for(None, 10.0), 0.5);
    assert_eq!(C::score_for(Some(None), 10.0), 0.0);
    assert_eq!(C::score_for(Some(Some((100.0, 100.0))), 100.0), 1.0);
    let raw = 0.7 / (1.0 + 1000.0 / 10000.0) + 0.3 * (1000.0 - 250.0) / 1000.0;
    assert!(approx(
        C::score_for(Some(Some((0.0, 1000.0))), 250.0),
        0.3 + 0.7 * raw
    ));
    assert!(approx(
        C::score_for(Some(Some((0.0, 1000.0))), 3000.0),
        0.3 / 3.0
    ));
    let y = single("- type: context-length-aware\n  parameters: {enableFiltering: true}\n- type: max-score-picker\n");
    let (s, _) = sched(&y);
    s.add_endpoint(
        ep("e1", metrics(0, 0, 0.0)).with_label("llm-d.ai/context-length-range", "0-50"),
    )
    .unwrap();
    s.add_endpoint(
        ep("e2", metrics(0, 0, 0.0)).with_label("llm-d.ai/context-length-range", "51-4096"),
    )
    .unwrap();
    let d = s.pick(&req()).unwrap();
    assert_eq!(d.targets[0].name, "e2");
    assert_eq!(
        d.explanation.profiles[0].filters[0]
            .dropped
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>(),
        vec!["e1"]
    );
}

#[test]
fn role_filters() {
    let y = format!("{HEAD}plugins:\n- type: decode-filter\n- type: prefill-filter\n- type: encode-filter\nschedulingProfiles:\n- name: d\n  plugins: [{{pluginRef: decode-filter}}]\n- name: p\n  plugins: [{{pluginRef: prefill-filter}}]\n- name: e\n  plugins: [{{pluginRef: encode-filter}}]\n- name: x\n  plugins: []\n");
    // The single handler refuses several profiles; check the filter rule directly.
    assert!(llmd_sched::Scheduler::from_config_str(&y).is_err());
    use llmd_sched::model::Role;
    use llmd_sched::plugins::filters::{RoleFilter, Stage};
    let d = RoleFilter::new(Stage::Decode);
    let p = RoleFilter::new(Stage::Prefill);
    let e = RoleFilter::new(Stage::Encode);
    assert!(d.admits(None, false) && !p.admits(None, false) && !e.admits(None, false));
    assert!(!d.admits(None, true), "an unknown role value is not decode");
    for (r, dd, pp, ee) in [
        (Role::Decode, true, false, false),
        (Role::Prefill, false, true, false),
        (Role::Encode, false, false, true),
        (Role::PrefillDecode, true, true, false),
        (Role::EncodePrefill, false, true, true),
        (Role::EncodePrefillDecode, true, true, true),
    ] {
        assert_eq!(
            (
                d.admits(Some(r), true),
                p.admits(Some(r), true),
                e.admits(Some(r), true)
            ),
            (dd, pp, ee),
            "{r:?}"
        );
    }
    assert_eq!(Role::parse("both"), Some(Role::PrefillDecode));
}

#[test]
fn label_selector_and_by_label() {
    let y = single("- type: label-selector-filter\n  parameters:\n    matchLabels: {app: a}\n    matchExpressions:\n    - {key: gpu, operator: In, values: [h100]}\n    - {key: bad, operator: DoesNotExist}\n");
    let (s, _) = sched(&y);
    s.add_endpoint(
        ep("e1", metrics(0, 0, 0.0))
            .with_label("app", "a")
            .with_label("gpu", "h100"),
    )
    .unwrap();
    s.add_endpoint(
        ep("e2", metrics(0, 0, 0.0))
            .with_label("app", "a")
            .with_label("gpu", "a100"),
    )
    .unwrap();
    s.add_endpoint(
        ep("e3", metrics(0, 0, 0.0))
            .with_label("app", "a")
            .with_label("gpu", "h100")
            .with_label("bad", "1"),
    )
    .unwrap();
    s.add_endpoint(ep("e4", metrics(0, 0, 0.0)).with_label("gpu", "h100"))
        .unwrap();
    for i in 0..10 {
        assert_eq!(
            s.pick(&Request::with_tokens(format!("r{i}"), "m", vec![1]))
                .unwrap()
                .targets[0]
                .name,
            "e1"
        );
    }
    let y = single(
        "- type: by-label\n  parameters: {label: tier, validValues: [gold], allowsNoLabel: true}\n",
    );
    let (s, _) = sched(&y);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0)).with_label("tier", "silver"))
        .unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    assert_eq!(s.pick(&req()).unwrap().targets[0].name, "e2");
}

#[test]
fn utilization_detector_filter_drops_stale_and_fails_open() {
    let y = single("- type: utilization-detector\n  parameters: {queueDepthThreshold: 5, kvCacheUtilThreshold: 0.8, metricsStalenessThreshold: 200ms}\n");
    let (s, clock) = sched(&y);
    s.add_endpoint(ep("e1", metrics(1, 0, 0.1))).unwrap();
    s.add_endpoint(ep("e2", metrics(5, 0, 0.1))).unwrap(); // queue not < 5
    s.add_endpoint(ep("e3", metrics(0, 0, 0.9))).unwrap(); // kv not < 0.8
    s.add_endpoint(Endpoint::new("e4", "10.0.0.4:8000"))
        .unwrap(); // never scraped
    let d = s.pick(&req()).unwrap();
    assert_eq!(d.targets[0].name, "e1");
    let dropped: Vec<String> = d.explanation.profiles[0].filters[0]
        .dropped
        .iter()
        .map(|x| x.to_string())
        .collect();
    assert_eq!(dropped, vec!["e2", "e3", "e4"]);
    // 300 ms later e1's metrics are stale too: nothing qualifies, keep all.
    clock.advance_ns(300_000_000);
    let d = s.pick(&req()).unwrap();
    assert!(d.explanation.profiles[0].filters[0].dropped.is_empty());
}

#[test]
fn utilization_filter_conditions() {
    let y = single("- type: utilization-filter\n  parameters:\n    conditions: [{metric: waiting-queue, maxValue: 3}, {metric: kv-cache-utilization, maxValue: 0.5}]\n");
    let (s, _) = sched(&y);
    s.add_endpoint(ep("e1", metrics(3, 0, 0.5))).unwrap();
    s.add_endpoint(ep("e2", metrics(4, 0, 0.1))).unwrap();
    s.add_endpoint(ep("e3", metrics(0, 0, 0.6))).unwrap();
    assert_eq!(s.pick(&req()).unwrap().targets[0].name, "e1");
    s.update_endpoint_metrics("e1", metrics(9, 0, 0.0)).unwrap();
    let e = s.pick(&req()).unwrap_err();
    assert_eq!(e.code(), 429);
    assert_eq!(e.dropped_reason(), Some("rejected-saturated"));
}

#[test]
fn prefix_affinity_filter_sticks_unless_ttft_penalty() {
    let y = single("- type: approx-prefix-cache-producer\n  parameters: {autoTune: false}\n- type: inflight-load-producer\n- type: prefix-cache-affinity-filter\n  parameters: {affinityThreshold: 0.5, maxTTFTPenaltyMs: 1000, peakPrefillThroughput: 1000}\n- type: random-picker\n");
    let (s, _) = sched(&y);
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0))).unwrap();
    }
    let prompt = tokens(640, 3);
    let first = s
        .pick(&Request::with_tokens("a", "m", prompt.clone()))
        .unwrap()
        .targets[0]
        .name
        .clone();
    s.on_first_token("a");
    s.on_complete("a", None);
    for i in 0..20 {
        let d = s
            .pick(&Request::with_tokens(format!("b{i}"), "m", prompt.clone()))
            .unwrap();
        assert_eq!(d.targets[0].name, first, "sticky endpoint must win");
        s.on_complete(&format!("b{i}"), None);
    }
    // Pile 2000 in-flight tokens (2 s of prefill) onto the sticky endpoint: the gate opens.
    let addr = s.endpoint_state(&first).unwrap().address().to_string();
    let big = Request::with_tokens("big", "m", tokens(2000, 500))
        .header("x-gateway-destination-endpoint-subset", addr);
    s.pick(&big).unwrap();
    let d = s.pick(&Request::with_tokens("c", "m", prompt)).unwrap();
    assert!(
        d.explanation.profiles[0].filters[0].dropped.is_empty(),
        "penalty gate must keep everyone"
    );
}

#[test]
fn no_hit_lru_spreads_cold_requests() {
    let y = single("- type: approx-prefix-cache-producer\n  parameters: {autoTune: false}\n- type: no-hit-lru-scorer\n- type: max-score-picker\n");
    let (s, _) = sched(&y);
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0))).unwrap();
    }
    let mut seen = Vec::new();
    for i in 0..3 {
        let d = s
            .pick(&Request::with_tokens(
                format!("r{i}"),
                "m",
                tokens(200, 1000 * i),
            ))
            .unwrap();
        seen.push(d.targets[0].name.clone());
    }
    seen.sort();
    assert_eq!(
        seen,
        vec!["e1", "e2", "e3"],
        "each cold request goes to a never-used endpoint"
    );
    // Now the least recently used endpoint is the first one picked.
    let r = raw_scores(
        &s,
        &Request::with_tokens("z", "m", tokens(200, 77_777)),
        "default",
        "no-hit-lru-scorer",
    );
    let mut v: Vec<f64> = r.values().copied().collect();
    v.sort_by(f64::total_cmp);
    assert_eq!(v, vec![0.0, 0.5, 1.0]);
}

#[test]
fn session_affinity_binds_and_expires() {
    let y = single("- type: session-affinity-scorer\n  parameters:\n    strategy: session_id\n    sessionIdConfig: {sources: [{header: x-session-id}], evictionTtlSeconds: 10}\n- type: queue-scorer\n");
    let (s, clock) = sched(&y);
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0))).unwrap();
    }
    let r =
        |i: u32| Request::with_tokens(format!("r{i}"), "m", vec![1]).header("X-Session-Id", "abc");
    let first = s.pick(&r(0)).unwrap().targets[0].name.clone();
    // Make the bound endpoint the busiest: affinity (weight 1) still ties queue (weight 1) and wins.
    s.update_endpoint_metrics(&first, metrics(10, 0, 0.0))
        .unwrap();
    let sc = raw_scores(&s, &r(1), "default", "session-affinity-scorer");
    assert_eq!(sc[&first], 1.0);
    assert_eq!(sc.values().filter(|&&v| v == 0.0).count(), 2);
    clock.advance_ns(11_000_000_000);
    let sc = raw_scores(&s, &r(2), "default", "session-affinity-scorer");
    assert!(sc.values().all(|&v| v == 0.0), "binding expired");
}

/// Sessions past `maxSessionBindings` drop the least recently used
/// bindings before their TTL: counted in `llmd_plugin_events_total`, and a
/// dropped session is routed afresh.
#[test]
fn session_bindings_dropped_at_the_bound_are_counted() {
    let y = single("- type: session-affinity-scorer\n  parameters:\n    strategy: session_id\n    maxSessionBindings: 10\n- type: queue-scorer\n");
    let (s, clock) = sched(&y);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let r = |i: u32| {
        Request::with_tokens(format!("r{i}"), "m", vec![1]).header("X-Session-Id", format!("s{i}"))
    };
    let dropped = |s: &llmd_sched::Scheduler| {
        metric(
            s,
            "llmd_plugin_events_total{plugin=\"session-affinity-scorer\",event=\"session_binding_dropped\"}",
        )
    };
    for i in 0..10 {
        clock.advance_ns(1_000_000);
        s.pick(&r(i)).unwrap();
    }
    assert_eq!(dropped(&s), None, "at the bound, nothing dropped yet");
    clock.advance_ns(1_000_000);
    s.pick(&r(10)).unwrap();
    // The oldest go until a tenth is free; none had reached its TTL.
    let n = dropped(&s).expect("counted");
    assert!(n >= 1.0, "{n}");
    let sc = raw_scores(&s, &r(0), "default", "session-affinity-scorer");
    assert_eq!(sc["e1"], 0.0, "session s0's binding was dropped");
    let e = llmd_sched::Scheduler::from_config_str(&single(
        "- type: session-affinity-scorer\n  parameters:\n    maxSessionBindings: 5\n- type: queue-scorer\n",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("maxSessionBindings"), "{e}");
}

#[test]
fn session_affinity_encoded_header() {
    use llmd_sched::plugins::scorers::SessionAffinity;
    let (s, _) = sched(&single("- type: session-affinity-filter\n"));
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0))).unwrap();
    }
    let tok = SessionAffinity::encode_token("e2");
    for i in 0..5 {
        let r = Request::with_tokens(format!("r{i}"), "m", vec![1])
            .header("x-session-token", tok.clone());
        assert_eq!(s.pick(&r).unwrap().targets[0].name, "e2");
    }
}

#[test]
fn pickers() {
    // max-score with maxNumOfEndpoints 2 returns an ordered fallback list.
    let (s, _) = sched(&single(
        "- type: queue-scorer\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: 2}\n",
    ));
    for (n, q) in [("e1", 9), ("e2", 0), ("e3", 4)] {
        s.add_endpoint(ep(n, metrics(q, 0, 0.0))).unwrap();
    }
    let d = s.pick(&req()).unwrap();
    assert_eq!(
        d.targets
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["e2", "e3"]
    );
    assert_eq!(
        d.header("x-gateway-destination-endpoint"),
        Some("10.0.0.2:8000,10.0.0.3:8000")
    );
    // maxNumOfEndpoints <= 0 means 1.
    let (s, _) = sched(&single(
        "- type: random-picker\n  parameters: {maxNumOfEndpoints: 0}\n",
    ));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
    assert_eq!(s.pick(&req()).unwrap().targets.len(), 1);
    // Ties break uniformly at random: all three tied endpoints get picked.
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0))).unwrap();
    }
    let mut counts = std::collections::HashMap::new();
    for i in 0..300 {
        *counts
            .entry(
                s.pick(&Request::with_tokens(format!("t{i}"), "m", vec![1]))
                    .unwrap()
                    .targets[0]
                    .name
                    .clone(),
            )
            .or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3);
    assert!(counts.values().all(|&c| c > 60), "{counts:?}");
    // Weighted random: a zero score is never picked while a positive one exists.
    let (s, _) = sched(&single(
        "- type: kv-cache-utilization-scorer\n- type: weighted-random-picker\n",
    ));
    s.add_endpoint(ep("e1", metrics(0, 0, 1.0))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.5))).unwrap();
    for i in 0..50 {
        assert_eq!(
            s.pick(&Request::with_tokens(format!("w{i}"), "m", vec![1]))
                .unwrap()
                .targets[0]
                .name,
            "e2"
        );
    }
}

#[test]
fn weights_are_a_plain_sum_of_clamped_scores() {
    let (s, _) = sched(&format!("{HEAD}plugins:\n- type: queue-scorer\n- type: kv-cache-utilization-scorer\nschedulingProfiles:\n- name: default\n  plugins:\n  - {{pluginRef: queue-scorer, weight: 2}}\n  - {{pluginRef: kv-cache-utilization-scorer}}\n"));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.5))).unwrap();
    s.add_endpoint(ep("e2", metrics(10, 0, 0.2))).unwrap();
    let d = s.pick(&req()).unwrap();
    let p = &d.explanation.profiles[0];
    assert_eq!(p.total_of("e1"), Some(2.0 * 1.0 + 0.5));
    assert!(approx(p.total_of("e2").unwrap(), 0.8));
    assert_eq!(p.scorer("kv-cache-utilization-scorer").unwrap().weight, 1.0);
}

#[test]
fn closures_are_scorers_and_clamped() {
    use llmd_sched::framework::{CycleContext, Scorer};
    use llmd_sched::model::EndpointState;
    let f = |_: &CycleContext<'_>, ep: &EndpointState| if ep.name() == "e1" { 7.0 } else { -3.0 };
    fn is_scorer<S: Scorer>(_: &S) {}
    is_scorer(&f);
    assert_eq!(llmd_sched::framework::clamp_score(7.0), 1.0);
    assert_eq!(llmd_sched::framework::clamp_score(-3.0), 0.0);
    assert_eq!(llmd_sched::framework::clamp_score(f64::NAN), 0.0);
}

#[test]
fn no_endpoints_is_503_and_model_mismatch_counts_as_none() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    let e = s.pick(&req()).unwrap_err();
    assert_eq!(
        (e.code(), e.dropped_reason()),
        (503, Some("rejected-no-endpoints"))
    );
    let mut other = Endpoint::new("e1", "10.0.0.1:8000");
    other.model = Some("other".into());
    s.add_endpoint(other).unwrap();
    assert_eq!(s.pick(&req()).unwrap_err().code(), 503);
}

#[test]
fn sheddable_requests_meet_legacy_admission() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    s.add_endpoint(ep("e1", metrics(50, 0, 0.95))).unwrap();
    let mut r = req();
    r.priority = -1;
    assert_eq!(s.pick(&r).unwrap_err().code(), 429);
    r.priority = 0;
    assert!(s.pick(&r).is_ok());
}

#[test]
fn metrics_text_updates_endpoint() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    s.add_endpoint(Endpoint::new("e1", "10.0.0.1:8000"))
        .unwrap();
    s.update_endpoint_metrics_text(
        "e1",
        "vllm:num_requests_waiting{engine=\"0\"} 4\nvllm:gpu_cache_usage_perc 0.5\n",
    )
    .unwrap();
    let st = s.endpoint_state("e1").unwrap();
    assert_eq!((st.waiting_queue_size(), st.kv_cache_usage()), (4, 0.5));
    assert!(st.metrics_updated_at_ns() > 0);
    let e = s
        .update_endpoint_metrics_text("e1", "vllm:num_requests_waiting x")
        .unwrap_err();
    assert_eq!(e.code(), 1003);
    assert!(e.to_string().contains("line 1"));
    assert_eq!(
        s.update_endpoint_metrics_text("nope", "")
            .unwrap_err()
            .code(),
        1002
    );
}

#[test]
fn custom_closure_stages_take_a_few_lines() {
    use llmd_sched::framework::CycleContext;
    use llmd_sched::model::EndpointState;
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    let s = s
        .with_scorer(
            "default",
            "prefer-e3",
            5.0,
            |_: &CycleContext<'_>, ep: &EndpointState| if ep.name() == "e3" { 1.0 } else { 0.0 },
        )
        .unwrap()
        .with_filter(
            "default",
            "not-e1",
            |_: &CycleContext<'_>, ep: &EndpointState| ep.name() != "e1",
        )
        .unwrap();
    for n in ["e1", "e2", "e3"] {
        s.add_endpoint(ep(n, metrics(if n == "e3" { 9 } else { 0 }, 0, 0.0)))
            .unwrap();
    }
    let d = s.pick(&req()).unwrap();
    assert_eq!(d.targets[0].name, "e3");
    let p = &d.explanation.profiles[0];
    assert_eq!(p.scorer("prefer-e3").unwrap().weight, 5.0);
    assert_eq!(p.filter("not-e1").unwrap().dropped.len(), 1);
    assert!(s
        .with_filter("nope", "x", |_: &CycleContext<'_>, _: &EndpointState| true)
        .is_err());
}

/// The in-flight producer injected for the latency producer counts uncached
/// prompt tokens by the latency producer's own prefix source, not by a
/// default source that is not configured (which would count every token).
#[test]
fn injected_inflight_producer_reads_the_latency_producers_prefix_source() {
    let y = single("- type: approx-prefix-cache-producer\n  name: cache\n  parameters: {blockSizeTokens: 16}\n- type: predicted-latency-producer\n  parameters: {prefixMatchInfoProducerName: cache}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: cache}\n- type: max-score-picker\n");
    let (s, _) = sched(&y);
    assert!(
        s.config_report().warnings.is_empty(),
        "{:?}",
        s.config_report().warnings
    );
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let prompt = tokens(256, 1);
    s.pick(&Request::with_tokens("a", "m", prompt.clone()))
        .unwrap();
    let st = s.endpoint_state("e1").unwrap();
    assert_eq!(st.inflight_tokens(), 256, "nothing cached yet");
    s.on_first_token("a");
    // The same prompt again: every block is where the first one went.
    s.pick(&Request::with_tokens("b", "m", prompt)).unwrap();
    assert_eq!(
        st.inflight_tokens(),
        0,
        "a cached prompt is no prefill work"
    );
    assert_eq!(st.inflight_requests(), 2);

    // Configured explicitly with a source that is not there, it says so.
    let y = single("- type: inflight-load-producer\n- type: queue-scorer\n");
    let (s, _) = sched(&y);
    let w = &s.config_report().warnings;
    assert!(
        w.iter().any(|w| w.contains("inflight-load-producer")
            && w.contains("approx-prefix-cache-producer")
            && w.contains("uncached")),
        "{w:?}"
    );
}

/// A concurrency detector named as the saturation detector admits by the
/// scheduler's own in-flight count (it used to turn admission off).
#[test]
fn a_concurrency_detector_drives_legacy_admission() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: concurrency-detector\n  parameters: {maxConcurrency: 2}\n- type: queue-scorer\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n  - pluginRef: max-score-picker\nflowControl:\n  saturationDetector: {pluginRef: concurrency-detector}\n";
    let (s, _) = sched(yaml);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let mut r = req();
    r.priority = -1;
    assert!(s.pick(&r).is_ok(), "1 of 2 in flight after it");
    r.id = "r2".into();
    assert!(s.pick(&r).is_ok());
    // Two in flight of two: saturated for sheddable requests only.
    r.id = "r3".into();
    assert_eq!(s.pick(&r).unwrap_err().code(), 429);
    r.priority = 0;
    assert!(s.pick(&r).is_ok());
}

/// A description change keeps the scraped metrics (update_endpoint, what the
/// bindings' replace calls do); a replacement starts over.
#[test]
fn update_endpoint_keeps_the_scraped_metrics() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    s.add_endpoint(ep("e1", metrics(7, 2, 0.5))).unwrap();
    s.update_endpoint(Endpoint::new("e1", "10.0.0.1:8000").with_label("tier", "gold"))
        .unwrap();
    let st = s.endpoint_state("e1").unwrap();
    assert_eq!(
        (st.waiting_queue_size(), st.label("tier")),
        (7, Some("gold"))
    );
    s.replace_endpoint(Endpoint::new("e1", "10.0.0.1:8000"))
        .unwrap();
    assert_eq!(s.endpoint_state("e1").unwrap().waiting_queue_size(), 0);
    assert!(s
        .update_endpoint(Endpoint::new("nope", "10.0.0.2:8000"))
        .is_err());
}

/// A registration that moves an endpoint to another pool (its role label)
/// leaves no in-flight series in the old pool.
#[test]
fn a_pool_change_drops_the_old_pools_inflight_series() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0)).with_label("llm-d.ai/role", "prefill"))
        .unwrap();
    let inflight = |s: &llmd_sched::Scheduler, pool: &str| {
        s.render_metrics().lines().any(|l| {
            l.starts_with(&format!(
                "llmd_router_inflight_requests{{endpoint=\"e1\",pool=\"{pool}\"}}"
            ))
        })
    };
    assert!(inflight(&s, "prefill"));
    s.update_endpoint(Endpoint::new("e1", "10.0.0.1:8000").with_label("llm-d.ai/role", "decode"))
        .unwrap();
    assert!(
        inflight(&s, "decode") && !inflight(&s, "prefill"),
        "{}",
        s.render_metrics()
    );
}

/// The subset hint names pods by IP (llm-d's director drops the port): every
/// endpoint of a listed host is a candidate, whatever its port.
#[test]
fn the_subset_hint_matches_by_host() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    for (name, addr) in [
        ("r0", "10.0.0.5:8000"),
        ("r1", "10.0.0.5:8001"),
        ("o", "10.0.0.6:8000"),
        ("v6", "[fd00::1]:8000"),
    ] {
        s.add_endpoint(Endpoint::new(name, addr)).unwrap();
    }
    let pick_with = |hint: &str| {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..40 {
            let r = Request::with_tokens(format!("h{hint}{i}"), "m", tokens(8, 0))
                .header("x-gateway-destination-endpoint-subset", hint);
            seen.insert(s.pick(&r).unwrap().targets[0].name.clone());
            s.on_complete(&format!("h{hint}{i}"), None);
        }
        seen.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(pick_with("10.0.0.5:8000"), ["r0", "r1"]);
    assert_eq!(pick_with("[fd00::1]:9999, 10.0.0.6:1"), ["o", "v6"]);
    let none = Request::with_tokens("none", "m", tokens(8, 0))
        .header("x-gateway-destination-endpoint-subset", "10.0.0.7:8000");
    assert_eq!(s.pick(&none).unwrap_err().code(), 503);
}

/// Legacy admission looks at the pool (the endpoints serving the model)
/// before the subset hint narrows it, and an empty pool is saturated, as
/// llm-d admits before locating candidates.
#[test]
fn legacy_admission_judges_the_pool_before_the_subset() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    let mut r = req();
    r.priority = -1;
    assert_eq!(s.pick(&r).unwrap_err().code(), 429, "empty pool");
    r.priority = 0;
    assert_eq!(s.pick(&r).unwrap_err().code(), 503);
    s.add_endpoint(ep("e1", metrics(50, 0, 0.95))).unwrap();
    s.add_endpoint(ep("e2", metrics(50, 0, 0.95))).unwrap();
    s.add_endpoint(ep("e3", metrics(0, 0, 0.0))).unwrap();
    // Mean saturation (10 + 10 + 0) / 3 >= 1: the idle e3 named by the hint
    // does not let a sheddable request through.
    let mut hinted = req().header("x-gateway-destination-endpoint-subset", "10.0.0.3:8000");
    hinted.priority = -1;
    assert_eq!(s.pick(&hinted).unwrap_err().code(), 429);
}

/// A request with no prompt is refused as invalid (vLLM refuses it too).
#[test]
fn an_empty_prompt_is_an_invalid_request() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let e = s
        .pick(&Request::with_tokens("r", "m", Vec::new()))
        .unwrap_err();
    assert!(e.to_string().contains("no prompt"), "{e}");
    assert_eq!(e.code(), 400);
}

/// A request without an id is refused as invalid: two such requests would
/// share one lifecycle record, and the second would end the first's
/// tracking (its load and latency sample) while it still runs.
#[test]
fn a_request_without_an_id_is_an_invalid_request() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    for _ in 0..2 {
        let e = s
            .pick(&Request::with_tokens("", "m", vec![1, 2, 3]))
            .unwrap_err();
        assert!(e.to_string().contains("no id"), "{e}");
        assert_eq!(e.code(), 400);
    }
    assert_eq!(s.open_requests(), 0);
    s.pick(&Request::with_tokens("r", "m", vec![1, 2, 3]))
        .unwrap();
    assert_eq!(s.open_requests(), 1);
}

/// A tokenizer that gives one id per byte.
struct ByteIds;

impl llmd_sched::PromptTokenizer for ByteIds {
    fn encode_prompt(
        &self,
        text: &str,
        _: &llmd_sched::model::openai::OpenAiRequest,
    ) -> Result<Vec<u32>, String> {
        Ok(text.bytes().map(u32::from).collect())
    }
    fn encode_chat(
        &self,
        req: &llmd_sched::model::openai::OpenAiRequest,
        _: Option<&str>,
    ) -> Result<Vec<u32>, String> {
        Ok(req.estimate_text().bytes().map(u32::from).collect())
    }
}

/// A tokenizer that gives one id per byte, plus 1000.
struct ShiftedIds;

impl llmd_sched::PromptTokenizer for ShiftedIds {
    fn encode_prompt(
        &self,
        text: &str,
        _: &llmd_sched::model::openai::OpenAiRequest,
    ) -> Result<Vec<u32>, String> {
        Ok(text.bytes().map(|b| 1000 + u32::from(b)).collect())
    }
    fn encode_chat(
        &self,
        req: &llmd_sched::model::openai::OpenAiRequest,
        _: Option<&str>,
    ) -> Result<Vec<u32>, String> {
        Ok(req
            .estimate_text()
            .bytes()
            .map(|b| 1000 + u32::from(b))
            .collect())
    }
}

/// A LoRA adapter's own tokenizer is used for bodies naming the adapter,
/// before the one set for every model; the base model's own comes next.
#[test]
fn an_adapters_own_tokenizer_comes_before_the_catch_all() {
    let (s, _) = sched(&single("- type: queue-scorer\n"));
    let mut e = ep("e1", metrics(0, 0, 0.0));
    e.model = Some("m".into());
    e.lora_adapters = vec!["lora1".into()];
    s.add_endpoint(e).unwrap();
    let ids = |model: &str| {
        let body = format!(r#"{{"model": "{model}", "prompt": "a"}}"#);
        let (r, _) = s
            .request_from_openai("r", "/v1/completions", body.as_bytes(), &Default::default())
            .unwrap();
        match r.prompt {
            llmd_sched::Prompt::Tokens(t) => t,
            p => panic!("{p:?}"),
        }
    };
    s.set_tokenizer("", std::sync::Arc::new(ByteIds));
    s.set_tokenizer("lora1", std::sync::Arc::new(ShiftedIds));
    assert_eq!(ids("lora1"), [1000 + u32::from(b'a')]);
    assert_eq!(ids("m"), [u32::from(b'a')]);
    // The base model's own tokenizer serves its adapters without one.
    assert!(s.remove_tokenizer("lora1"));
    s.set_tokenizer("m", std::sync::Arc::new(ShiftedIds));
    assert_eq!(ids("lora1"), [1000 + u32::from(b'a')]);
}

/// An OpenAI body routed on estimated ids says why, in the explanation, and
/// is counted by reason: no tokenizer for the model, a multimodal chat its
/// tokenizer cannot render, a field the router does not render; a
/// tokenized body carries no such note.
#[test]
fn openai_picks_say_why_their_ids_are_estimated() {
    let (s, _) = sched(&single("- type: queue-scorer\n- type: max-score-picker\n"));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let notes = |id: &str, path: &str, body: &str| {
        let d = s
            .pick_openai(id, path, body.as_bytes(), &Default::default())
            .unwrap();
        s.on_complete(id, Some(0));
        d.explanation.full().notes.clone()
    };
    let text = r#"{"model": "m", "prompt": "hello there"}"#;
    let chat = r#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#;
    let media = r#"{"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}"#;
    let estimate = vec![llmd_sched::ESTIMATE_NOTE.to_string()];
    assert_eq!(notes("a", "/v1/completions", text), estimate);
    assert_eq!(notes("b", "/v1/chat/completions", chat), estimate);
    assert_eq!(notes("c", "/v1/chat/completions", media), estimate);
    s.set_tokenizer("m", std::sync::Arc::new(ByteIds));
    assert!(notes("d", "/v1/completions", text).is_empty());
    assert!(notes("e", "/v1/chat/completions", chat).is_empty());
    assert_eq!(
        notes("f", "/v1/chat/completions", media),
        vec![llmd_sched::MULTIMODAL_ESTIMATE_NOTE.to_string()]
    );
    // Token ids are used as they are, with or without a tokenizer.
    let ids = r#"{"model": "m", "prompt": [1, 2, 3]}"#;
    assert!(notes("g", "/v1/completions", ids).is_empty());
    assert!(s.remove_tokenizer("m"));
    assert!(notes("h", "/v1/completions", ids).is_empty());
    // A field the router does not render: estimated, said so.
    let suffix = r#"{"model": "m", "prompt": "hello", "suffix": " there"}"#;
    assert_eq!(notes("i", "/v1/completions", suffix).len(), 1);
    // Each estimate is counted by reason; exact picks are not.
    let count = |reason: &str| {
        metric(
            &s,
            &format!("llmd_openai_prompts_estimated_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(count("no_tokenizer"), Some(3.0));
    assert_eq!(count("multimodal"), Some(1.0));
    assert_eq!(count("suffix"), Some(1.0));
    assert_eq!(count("chat_template"), None);
}

/// llm-d's block caps: `maxPrefixTokensToMatch` below the block size hashes
/// nothing (no match, ever), where `maxPrefixBlocksToMatch: 0` alone means
/// the whole prompt; the deprecated `blockSize` maps into a
/// `blockSizeTokens` left at its default (16), given or not.
#[test]
fn approx_prefix_caps_and_legacy_block_size_follow_llm_d() {
    let prompt = tokens(512, 7);
    let score_again = |params: &str| {
        let y = single(&format!("- type: approx-prefix-cache-producer\n  parameters: {{autoTune: false, {params}}}\n- type: prefix-cache-scorer\n- type: max-score-picker\n"));
        let (s, _) = sched(&y);
        s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
        s.pick(&Request::with_tokens("a", "m", prompt.clone()))
            .unwrap();
        raw_scores(
            &s,
            &Request::with_tokens("b", "m", prompt.clone()),
            "default",
            "prefix-cache-scorer",
        )["e1"]
    };
    assert_eq!(
        score_again("blockSizeTokens: 64, maxPrefixTokensToMatch: 32"),
        0.0
    );
    assert!(approx(
        score_again("blockSizeTokens: 64, maxPrefixTokensToMatch: 0, maxPrefixBlocksToMatch: 0"),
        1.0
    ));
    assert!(approx(
        score_again("blockSizeTokens: 64, maxPrefixTokensToMatch: 128"),
        1.0
    ));
    // blockSize 128 wins over an explicit blockSizeTokens 16: 4 blocks of
    // 128; a token cap of 256 then keeps 2 of the 4, all matched.
    let y = single("- type: approx-prefix-cache-producer\n  parameters: {autoTune: false, blockSize: 128, blockSizeTokens: 16}\n- type: prefix-cache-scorer\n- type: max-score-picker\n");
    let (s, _) = sched(&y);
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let d = s
        .pick(&Request::with_tokens("a", "m", prompt.clone()))
        .unwrap();
    let text = d.explanation.full().notes.join("\n");
    assert!(text.contains("128"), "{text}");
}
