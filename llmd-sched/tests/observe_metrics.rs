//! Public-API tests of the metrics: a scripted request lifecycle and the
//! values it must produce.

use llmd_kvindex::Tier;
use llmd_sched::observe::{
    DecisionRecord, ErrorKind, EventStreamCounts, Leg, Metrics, MetricsConfig, RejectReason,
    RejectRecord, Sample, SloTargets, Usage,
};
use std::time::Duration;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn get(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<&Sample> = s.iter().filter(|x| x.matches(name, labels)).collect();
    assert_eq!(hits.len(), 1, "{name} {labels:?}: {hits:?}");
    hits[0].value
}

fn decision<'a>(id: &'a str, ep: &'a str, prefill: Option<Leg<'a>>) -> DecisionRecord<'a> {
    DecisionRecord {
        request_id: id,
        model: "m",
        profile: "decode",
        arrived: ms(1000),
        decided: ms(1002),
        prompt_tokens: 100,
        block_size: 16,
        decode: Leg {
            endpoint: ep,
            predicted_hit_blocks: 4,
        },
        prefill,
        encode: false,
        slo: SloTargets::default(),
        kv_bytes_per_token: None,
        opening: 0,
    }
}

fn config() -> MetricsConfig {
    MetricsConfig {
        default_slo: SloTargets {
            ttft: Some(ms(200)),
            tpot: Some(ms(30)),
            e2e: None,
        },
        ..MetricsConfig::default()
    }
}

#[test]
fn colocated_request_lifecycle() {
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("e1", Some("decode"));
    m.on_decision(&decision("r1", "e1", None));
    let s = m.samples(ms(0));
    let ep = [("endpoint", "e1"), ("pool", "decode")];
    assert_eq!(get(&s, "llmd_router_inflight_requests", &ep), 1.0);
    assert_eq!(get(&s, "llmd_router_inflight_tokens", &ep), 100.0);
    assert_eq!(get(&s, "llmd_observe_tracked_requests", &[]), 1.0);

    assert!(m.on_first_token("r1", ms(1102))); // TTFT 102 ms
    assert!(m.on_tokens("r1", 4, ms(1182))); // 4 tokens, 20 ms apart
    assert!(m.on_tokens("r1", 5, ms(1282))); // 5 tokens, 20 ms apart
    let usage = Usage {
        prompt_tokens: None,
        output_tokens: None,
        cached_tokens: Some(48),
    };
    assert!(m.on_complete("r1", usage, ms(1300)));
    assert!(!m.on_complete("r1", usage, ms(1301)), "completed twice");

    let s = m.samples(ms(0));
    let mp = [("model", "m"), ("pool", "decode")];
    assert_eq!(get(&s, "llmd_router_inflight_requests", &ep), 0.0);
    assert_eq!(get(&s, "llmd_router_inflight_tokens", &ep), 0.0);
    assert_eq!(get(&s, "llmd_inference_ttft_count", &mp), 1.0);
    assert!((get(&s, "llmd_inference_ttft_sum", &mp) - 0.102).abs() < 1e-9);
    // 0.102 is above the 0.1 bound and below the 0.2 SLO edge that was added.
    let le = |v: &'static str| [("model", "m"), ("pool", "decode"), ("le", v)];
    assert_eq!(get(&s, "llmd_inference_ttft_bucket", &le("0.1")), 0.0);
    assert_eq!(get(&s, "llmd_inference_ttft_bucket", &le("0.2")), 1.0);
    // TPOT = (1282 - 1102) / (10 - 1) = 20 ms.
    assert!((get(&s, "llmd_inference_tpot_seconds_sum", &mp) - 0.020).abs() < 1e-9);
    assert_eq!(
        get(&s, "llmd_inference_inter_token_latency_seconds_count", &mp),
        9.0
    );
    assert!((get(&s, "llmd_inference_inter_token_latency_seconds_sum", &mp) - 0.18).abs() < 1e-9);
    assert!((get(&s, "llmd_inference_e2e_latency_seconds_sum", &mp) - 0.3).abs() < 1e-9);
    assert!((get(&s, "llmd_router_queue_time_seconds_sum", &mp) - 0.002).abs() < 1e-9);
    let col = [("model", "m"), ("pool", "decode"), ("mode", "colocated")];
    assert!((get(&s, "llmd_inference_prefill_time_seconds_sum", &col) - 0.1).abs() < 1e-9);
    assert!((get(&s, "llmd_inference_decode_time_seconds_sum", &col) - 0.18).abs() < 1e-9);
    let ok = [
        ("model", "m"),
        ("pool", "decode"),
        ("profile", "decode"),
        ("endpoint", "e1"),
        ("outcome", "ok"),
    ];
    assert_eq!(get(&s, "llmd_inference_requests_total", &ok), 1.0);
    assert_eq!(get(&s, "llmd_inference_output_tokens_sum", &ok), 10.0);
    assert_eq!(get(&s, "llmd_inference_input_tokens_sum", &mp), 100.0);
    assert_eq!(get(&s, "llmd_inference_cached_tokens_sum", &mp), 48.0);
    // KV: predicted 4 blocks x 16 = 64 tokens; engine reported 48.
    assert_eq!(get(&s, "llmd_kvcache_requests_total", &mp), 1.0);
    assert_eq!(get(&s, "llmd_kvcache_hits_total", &mp), 1.0);
    assert_eq!(get(&s, "llmd_kvcache_predicted_hits_total", &mp), 1.0);
    let src = |v| [("model", "m"), ("pool", "decode"), ("source", v)];
    assert_eq!(
        get(&s, "llmd_kvcache_cached_tokens_total", &src("predicted")),
        64.0
    );
    assert_eq!(
        get(&s, "llmd_kvcache_cached_tokens_total", &src("reported")),
        48.0
    );
    // Goodput: TTFT 102 <= 200, TPOT 20 <= 30, no e2e objective.
    let slo = |k| [("model", "m"), ("pool", "decode"), ("slo", k)];
    for k in ["ttft", "tpot", "all"] {
        assert_eq!(get(&s, "llmd_goodput_requests_total", &slo(k)), 1.0, "{k}");
        assert_eq!(get(&s, "llmd_slo_requests_total", &slo(k)), 1.0, "{k}");
    }
    assert_eq!(get(&s, "llmd_slo_requests_total", &slo("e2e")), 0.0);
    let dec = [("model", "m"), ("decision", "decode-only")];
    assert_eq!(get(&s, "llmd_router_decisions_total", &dec), 1.0);
}

#[test]
fn pd_legs_are_split_and_released() {
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("d1", Some("decode"));
    m.register_endpoint("p1", Some("prefill"));
    let leg = Leg {
        endpoint: "p1",
        predicted_hit_blocks: 0,
    };
    m.on_decision(&decision("r", "d1", Some(leg)));
    let s = m.samples(ms(0));
    let p = [("endpoint", "p1"), ("pool", "prefill")];
    assert_eq!(get(&s, "llmd_router_inflight_requests", &p), 1.0);
    assert!(m.on_prefill_done("r", ms(1252))); // prefill leg 250 ms
    let s = m.samples(ms(0));
    assert_eq!(get(&s, "llmd_router_inflight_requests", &p), 0.0);
    assert!(m.on_first_token("r", ms(1302))); // hand-off 50 ms, TTFT 302 ms
    assert!(m.on_complete("r", Usage::default(), ms(1303)));
    let s = m.samples(ms(0));
    let pf = [
        ("model", "m"),
        ("pool", "prefill"),
        ("mode", "disaggregated"),
    ];
    assert!((get(&s, "llmd_inference_prefill_time_seconds_sum", &pf) - 0.25).abs() < 1e-9);
    let h = [("model", "m"), ("pool", "prefill")];
    assert!((get(&s, "llmd_inference_pd_handoff_seconds_sum", &h) - 0.05).abs() < 1e-9);
    let dec = [("model", "m"), ("decision", "prefill-decode")];
    assert_eq!(get(&s, "llmd_router_decisions_total", &dec), 1.0);
    // One token: no TPOT observation, TPOT counts as 0 (met); TTFT missed.
    let d = [("model", "m"), ("pool", "decode")];
    assert_eq!(get(&s, "llmd_inference_tpot_seconds_count", &d), 0.0);
    let slo = |k| [("model", "m"), ("pool", "decode"), ("slo", k)];
    assert_eq!(get(&s, "llmd_goodput_requests_total", &slo("tpot")), 1.0);
    assert_eq!(get(&s, "llmd_goodput_requests_total", &slo("ttft")), 0.0);
    assert_eq!(get(&s, "llmd_goodput_requests_total", &slo("all")), 0.0);
    // No cache usage reported: the KV counters stay at zero.
    assert_eq!(get(&s, "llmd_kvcache_requests_total", &h), 0.0);
}

#[test]
fn errors_rejections_and_expiry_are_counted_once() {
    let m = Metrics::new(config()).unwrap();
    m.on_decision(&decision("a", "e1", None));
    m.on_decision(&decision("b", "e1", None));
    m.on_first_token("a", ms(1100));
    m.on_tokens("a", 2, ms(1120));
    assert!(m.on_error("a", ErrorKind::Timeout, ms(2000)));
    m.on_rejected(&RejectRecord {
        model: "m",
        profile: "decode",
        reason: RejectReason::Saturated,
        arrived: ms(0),
        decided: ms(1),
        slo: SloTargets::default(),
    });
    assert_eq!(m.expire(ms(5000), ms(1000)), 1);
    assert!(!m.on_first_token("b", ms(5001)));
    let s = m.samples(ms(0));
    let base = [("model", "m"), ("pool", "default"), ("endpoint", "e1")];
    let with = |o| {
        let mut v = base.to_vec();
        v.push(("outcome", o));
        v
    };
    assert_eq!(
        get(&s, "llmd_inference_requests_total", &with("error_timeout")),
        1.0
    );
    assert_eq!(
        get(
            &s,
            "llmd_inference_output_tokens_sum",
            &with("error_timeout")
        ),
        3.0
    );
    assert_eq!(
        get(&s, "llmd_inference_requests_total", &with("expired")),
        1.0
    );
    assert_eq!(get(&s, "llmd_inference_requests_total", &with("ok")), 0.0);
    let rej = [("endpoint", "none"), ("outcome", "rejected_429")];
    assert_eq!(get(&s, "llmd_inference_requests_total", &rej), 1.0);
    let slo = [("model", "m"), ("pool", "default"), ("slo", "all")];
    assert_eq!(get(&s, "llmd_slo_requests_total", &slo), 3.0);
    assert_eq!(get(&s, "llmd_goodput_requests_total", &slo), 0.0);
    assert_eq!(
        get(&s, "llmd_observe_unknown_request_calls_total", &[]),
        1.0
    );
    assert_eq!(get(&s, "llmd_observe_tracked_requests", &[]), 0.0);
    let ep = [("endpoint", "e1"), ("pool", "default")];
    assert_eq!(get(&s, "llmd_router_inflight_requests", &ep), 0.0);
    assert_eq!(get(&s, "llmd_router_inflight_tokens", &ep), 0.0);
}

#[test]
fn scores_stages_and_index_health() {
    let m = Metrics::new(MetricsConfig::default()).unwrap();
    let p = m.profile_series("default", &["prefix-cache-scorer", "queue-scorer"]);
    p.record(&[0.75, 0.5], 2.75, Some(2.5));
    p.record(&[0.0, 1.0], 2.0, None);
    m.stage_series("total").observe(Duration::from_micros(30));
    m.on_event_batch(
        "e1",
        &EventStreamCounts {
            applied: 10,
            unknown_tags: 1,
            decode_errors: 2,
            sequence_gaps: 3,
            restarts: 4,
        },
        ms(1000),
    );
    m.set_index_blocks("e1", Tier::Gpu, 42);
    let s = m.samples(ms(3500));
    let sc = |n| [("profile", "default"), ("scorer", n)];
    assert_eq!(
        get(
            &s,
            "llmd_router_scorer_score_sum",
            &sc("prefix-cache-scorer")
        ),
        0.75
    );
    assert_eq!(
        get(&s, "llmd_router_scorer_score_count", &sc("queue-scorer")),
        2.0
    );
    let pr = [("profile", "default")];
    assert_eq!(get(&s, "llmd_router_routing_score_sum", &pr), 4.75);
    assert_eq!(get(&s, "llmd_router_score_margin_count", &pr), 1.0);
    assert!((get(&s, "llmd_router_score_margin_sum", &pr) - 0.25).abs() < 1e-12);
    let st = [("stage", "total"), ("le", "5e-05")];
    assert_eq!(
        get(&s, "llmd_router_scheduler_duration_seconds_bucket", &st),
        1.0
    );
    let e = [("endpoint", "e1")];
    assert_eq!(get(&s, "llmd_kvindex_events_applied_total", &e), 10.0);
    assert_eq!(get(&s, "llmd_kvindex_unknown_tags_total", &e), 1.0);
    assert_eq!(get(&s, "llmd_kvindex_decode_errors_total", &e), 2.0);
    assert_eq!(get(&s, "llmd_kvindex_sequence_gaps_total", &e), 3.0);
    assert_eq!(get(&s, "llmd_kvindex_stream_restarts_total", &e), 4.0);
    assert_eq!(get(&s, "llmd_kvindex_stream_staleness_seconds", &e), 2.5);
    assert_eq!(
        get(
            &s,
            "llmd_kvindex_blocks",
            &[("endpoint", "e1"), ("tier", "gpu")]
        ),
        42.0
    );
    m.remove_endpoint("e1");
    let s = m.samples(ms(4000));
    assert!(!s.iter().any(|x| x.name == "llmd_kvindex_blocks"));
    assert!(!s
        .iter()
        .any(|x| x.name == "llmd_kvindex_stream_staleness_seconds"));
    // No series of the removed endpoint is left (with pods coming and going
    // under new names, kept ones would grow without bound), and a batch of
    // it still on the way does not bring them back.
    m.on_event_batch(
        "e1",
        &EventStreamCounts {
            applied: 1,
            ..Default::default()
        },
        ms(4100),
    );
    let text = m.render(ms(4200));
    assert!(!text.contains("endpoint=\"e1\""), "{text}");
}

#[test]
fn model_label_is_capped() {
    let cfg = MetricsConfig {
        max_models: 2,
        ..MetricsConfig::default()
    };
    let m = Metrics::new(cfg).unwrap();
    for (i, model) in ["a", "b", "c", "d"].iter().enumerate() {
        let id = format!("r{i}");
        let mut d = decision(&id, "e1", None);
        d.model = model;
        m.on_decision(&d);
    }
    let s = m.samples(ms(0));
    let models: std::collections::BTreeSet<&str> = s
        .iter()
        .filter(|x| x.name == "llmd_router_decisions_total")
        .filter_map(|x| x.label("model"))
        .collect();
    assert_eq!(
        models.into_iter().collect::<Vec<_>>(),
        vec!["a", "b", "other"]
    );
    assert!(!s
        .iter()
        .any(|x| x.labels.iter().any(|(k, _)| k == "request_id")));
    let dec = [("model", "other"), ("decision", "decode-only")];
    assert_eq!(get(&s, "llmd_router_decisions_total", &dec), 2.0);
}

/// A model name longer than a label value may be (a client's 1 MB
/// "model") is `other`, whatever room the cap has left.
#[test]
fn long_model_names_are_other() {
    let m = Metrics::new(MetricsConfig::default()).unwrap();
    let long = "x".repeat(100_000);
    let mut d = decision("r1", "e1", None);
    d.model = &long;
    m.on_decision(&d);
    let text = m.render(ms(0));
    assert!(text.len() < 100_000, "{} bytes", text.len());
    let s = m.samples(ms(0));
    let dec = [("model", "other"), ("decision", "decode-only")];
    assert_eq!(get(&s, "llmd_router_decisions_total", &dec), 1.0);
}

/// The endpoint-label cap counts live endpoints: a removed endpoint's place
/// goes to the next one. Past the cap, endpoints share `other`, and removing
/// one of them leaves the shared series to the others.
#[test]
fn endpoint_labels_of_removed_endpoints_are_freed() {
    let cfg = MetricsConfig {
        max_endpoints: 2,
        ..MetricsConfig::default()
    };
    let m = Metrics::new(cfg).unwrap();
    for e in ["e1", "e2", "e3", "e4"] {
        m.register_endpoint(e, Some("p"));
        m.on_decision(&decision(&format!("r-{e}"), e, None));
    }
    let s = m.samples(ms(0));
    let other = [("endpoint", "other"), ("pool", "p")];
    assert_eq!(get(&s, "llmd_router_inflight_requests", &other), 2.0);
    m.remove_endpoint("e4");
    let s = m.samples(ms(0));
    assert_eq!(get(&s, "llmd_router_inflight_requests", &other), 2.0);
    m.remove_endpoint("e1");
    m.register_endpoint("e5", Some("p"));
    m.on_decision(&decision("r-e5", "e5", None));
    let s = m.samples(ms(0));
    let e5 = [("endpoint", "e5"), ("pool", "p")];
    assert_eq!(get(&s, "llmd_router_inflight_requests", &e5), 1.0);
}

#[test]
fn zero_caps_are_refused() {
    let cfg = MetricsConfig {
        max_tracked_requests: 0,
        ..MetricsConfig::default()
    };
    assert!(Metrics::new(cfg).is_err());
}

#[test]
fn concurrent_lifecycles_balance() {
    let m = Metrics::new(config()).unwrap();
    let threads = 4;
    let per = 2000;
    std::thread::scope(|s| {
        for t in 0..threads {
            let m = &m;
            s.spawn(move || {
                for i in 0..per {
                    let id = format!("t{t}-{i}");
                    let ep = ["e1", "e2", "e3"][i % 3];
                    m.on_decision(&decision(&id, ep, None));
                    m.on_first_token(&id, ms(1100));
                    m.on_tokens(&id, 3, ms(1130));
                    if i % 10 == 0 {
                        m.on_error(&id, ErrorKind::Transport, ms(1200));
                    } else {
                        m.on_complete(&id, Usage::default(), ms(1200));
                    }
                }
            });
        }
    });
    let s = m.samples(ms(0));
    let total: f64 = s
        .iter()
        .filter(|x| x.name == "llmd_inference_requests_total")
        .map(|x| x.value)
        .sum();
    assert_eq!(total, (threads * per) as f64);
    let ttft: f64 = s
        .iter()
        .filter(|x| x.name == "llmd_inference_ttft_count")
        .map(|x| x.value)
        .sum();
    assert_eq!(ttft, (threads * per) as f64);
    for x in s
        .iter()
        .filter(|x| x.name.starts_with("llmd_router_inflight_"))
    {
        assert_eq!(x.value, 0.0, "{x:?}");
    }
    assert_eq!(get(&s, "llmd_observe_tracked_requests", &[]), 0.0);
}

/// An E/PD pick counts under llm-d's own decision type, not as decode-only.
#[test]
fn encode_decisions_keep_their_type() {
    let yaml = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: encode-filter\n- type: decode-filter\n- type: queue-scorer\n- name: mm\n  type: always-disagg-multimodal-decider\n- type: disagg-profile-handler\n  parameters:\n    profiles: {decode: decode, encode: encode}\n    deciders: {encode: mm}\n- type: max-score-picker\nschedulingProfiles:\n- name: decode\n  plugins: [{pluginRef: decode-filter}, {pluginRef: queue-scorer}, {pluginRef: max-score-picker}]\n- name: encode\n  plugins: [{pluginRef: encode-filter}, {pluginRef: queue-scorer}, {pluginRef: max-score-picker}]\n";
    let s = llmd_sched::Scheduler::from_config_str(yaml).unwrap_or_else(|e| panic!("{e}"));
    for (n, role) in [("d", "decode"), ("e", "encode")] {
        s.add_endpoint(
            llmd_sched::Endpoint::new(
                n,
                format!("10.0.0.{}:8000", n.len() + (role == "encode") as usize),
            )
            .with_label("llm-d.ai/role", role),
        )
        .unwrap();
    }
    let mut r = llmd_sched::Request::with_tokens("mm1", "m", (0..32).collect());
    r.multimodal = true;
    let d = s.pick(&r).unwrap();
    assert_eq!(d.explanation.decision_type, Some("encode-decode"));
    let text = s.render_metrics();
    assert!(
        text.lines()
            .any(|l| l.contains("decision=\"encode-decode\"") && l.ends_with(" 1")),
        "{text}"
    );
}

/// A non-streaming host with a TPOT objective: its successes are not judged
/// on TPOT (it cannot be measured), and neither are its failures before a
/// token, so TPOT attainment does not read 0 % from failures alone; `all`
/// judges every request with an objective.
#[test]
fn a_non_streaming_hosts_tpot_objective_counts_no_failures_alone() {
    let m = Metrics::new(MetricsConfig {
        default_slo: SloTargets {
            tpot: Some(ms(50)),
            ..SloTargets::default()
        },
        ..MetricsConfig::default()
    })
    .unwrap();
    m.register_endpoint("e1", Some("decode"));
    let done = Usage {
        prompt_tokens: None,
        output_tokens: Some(200),
        cached_tokens: None,
    };
    for i in 0..3 {
        let id = format!("ok{i}");
        m.on_decision(&decision(&id, "e1", None));
        assert!(m.on_complete(&id, done, ms(3000)));
    }
    m.on_decision(&decision("bad", "e1", None));
    assert!(m.on_error("bad", ErrorKind::Timeout, ms(2000)));
    let s = m.samples(ms(4000));
    let slo = |k| [("model", "m"), ("pool", "decode"), ("slo", k)];
    assert_eq!(get(&s, "llmd_slo_requests_total", &slo("tpot")), 0.0);
    assert_eq!(get(&s, "llmd_slo_requests_total", &slo("all")), 4.0);
    assert_eq!(get(&s, "llmd_goodput_requests_total", &slo("all")), 3.0);
}

/// A host that reports only the first token, then the engine's usage: the
/// tokens after the first came by completion, so TPOT is (completion −
/// first token) / (n − 1), not 0.
#[test]
fn tpot_spans_to_completion_when_usage_reports_uncounted_tokens() {
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("e1", Some("decode"));
    m.on_decision(&decision("r", "e1", None));
    assert!(m.on_first_token("r", ms(1100)));
    let usage = Usage {
        prompt_tokens: None,
        output_tokens: Some(201),
        cached_tokens: None,
    };
    assert!(m.on_complete("r", usage, ms(3100)));
    let s = m.samples(ms(4000));
    let mp = [("model", "m"), ("pool", "decode")];
    // 2,000 ms over 200 tokens: 10 ms each.
    assert!((get(&s, "llmd_inference_tpot_seconds_sum", &mp) - 0.010).abs() < 1e-9);
}

/// A host predictor's value that is no duration is left out of the
/// prediction histograms (one infinity would hold their `_sum` for good).
#[test]
fn predictions_that_are_no_duration_are_left_out() {
    use llmd_sched::framework::LatencyPrediction;
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("e1", Some("decode"));
    for (ttft_ms, tpot_ms) in [
        (f64::INFINITY, Some(-1.0)),
        (f64::NAN, Some(f64::NAN)),
        (-5.0, None),
    ] {
        m.observe_predicted_latency("e1", &LatencyPrediction { ttft_ms, tpot_ms });
    }
    m.observe_predicted_latency(
        "e1",
        &LatencyPrediction {
            ttft_ms: 100.0,
            tpot_ms: Some(20.0),
        },
    );
    let s = m.samples(ms(0));
    let ep = [("endpoint", "e1")];
    assert_eq!(get(&s, "llmd_predicted_ttft_seconds_count", &ep), 1.0);
    assert!((get(&s, "llmd_predicted_ttft_seconds_sum", &ep) - 0.1).abs() < 1e-12);
    assert_eq!(get(&s, "llmd_predicted_tpot_seconds_count", &ep), 1.0);
}

/// Prediction histograms are resolved once per endpoint registration: a
/// removed endpoint's go with it and a prediction recorded after the
/// removal (a decision racing it) makes none again; registered anew, the
/// endpoint starts from empty series.
#[test]
fn a_removed_endpoints_prediction_series_are_not_made_again() {
    use llmd_sched::framework::LatencyPrediction;
    let m = Metrics::new(config()).unwrap();
    let p = LatencyPrediction {
        ttft_ms: 100.0,
        tpot_ms: Some(20.0),
    };
    let predicted = |m: &Metrics| {
        m.samples(ms(0))
            .iter()
            .filter(|x| x.name.starts_with("llmd_predicted_") && x.name.ends_with("_count"))
            .map(|x| x.value)
            .collect::<Vec<_>>()
    };
    m.register_endpoint("e1", Some("decode"));
    m.observe_predicted_latency("e1", &p);
    m.observe_predicted_latency("e1", &p);
    assert_eq!(predicted(&m), [2.0, 2.0]);
    m.remove_endpoint("e1");
    assert!(predicted(&m).is_empty());
    m.observe_predicted_latency("e1", &p);
    assert!(predicted(&m).is_empty());
    m.register_endpoint("e1", Some("decode"));
    m.observe_predicted_latency("e1", &p);
    assert_eq!(predicted(&m), [1.0, 1.0]);
}

/// Endpoints coming and going under new names leave no request series
/// behind: a removed endpoint's request and output-token series go with it,
/// the remaining endpoints' stay.
#[test]
fn a_removed_endpoints_request_series_go_with_it() {
    let m = Metrics::new(config()).unwrap();
    let series = |m: &Metrics| {
        m.samples(ms(5000))
            .iter()
            .filter(|x| x.name.starts_with("llmd_inference_requests_total"))
            .count()
    };
    m.register_endpoint("keep", Some("decode"));
    m.on_decision(&decision("k", "keep", None));
    assert!(m.on_complete("k", Usage::default(), ms(1500)));
    let base = series(&m);
    assert!(base > 0);
    for i in 0..50 {
        let name = format!("pod-{i}");
        m.register_endpoint(&name, Some("decode"));
        let id = format!("r{i}");
        m.on_decision(&decision(&id, &name, None));
        assert!(m.on_complete(&id, Usage::default(), ms(1500)));
        // One still in flight when its pod goes: it finishes uncounted,
        // and brings no series back.
        let late = format!("late{i}");
        m.on_decision(&decision(&late, &name, None));
        m.remove_endpoint(&name);
        assert!(m.on_error(&late, ErrorKind::Transport, ms(1600)));
        // A decision racing the removal makes no kept series either.
        m.on_decision(&decision(&format!("race{i}"), &name, None));
        m.on_error(&format!("race{i}"), ErrorKind::Transport, ms(1700));
    }
    assert_eq!(series(&m), base);
    let s = m.samples(ms(5000));
    assert!(s.iter().any(|x| x.name == "llmd_inference_requests_total"
        && x.matches("llmd_inference_requests_total", &[("endpoint", "keep")])));
}

/// A repeated first-token call counts nothing more (no token, no
/// inter-token gap).
#[test]
fn a_repeated_first_token_counts_nothing_more() {
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("e1", Some("decode"));
    m.on_decision(&decision("r", "e1", None));
    assert!(m.on_first_token("r", ms(1100)));
    assert!(m.on_first_token("r", ms(1150)));
    let s = m.samples(ms(1200));
    let ep = [("endpoint", "e1"), ("pool", "decode")];
    // The 100 prompt tokens and one output token, not two.
    assert_eq!(get(&s, "llmd_router_inflight_tokens", &ep), 101.0);
    let usage = Usage::default();
    assert!(m.on_complete("r", usage, ms(1300)));
    let s = m.samples(ms(1400));
    let mp = [("model", "m"), ("pool", "decode")];
    assert_eq!(
        get(&s, "llmd_inference_inter_token_latency_seconds_count", &mp),
        0.0
    );
}

/// The scheduler's expiry at its open-request limit drops a request's
/// record only if it is of the expired opening (or an earlier one): a later
/// request that reused the id is left to its own lifecycle. Without
/// serials, a record decided after the expiry's clock time is the later one.
#[test]
fn expiry_at_the_limit_leaves_a_later_request_with_the_id() {
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("e1", Some("decode"));
    m.on_decision(&decision("r1", "e1", None)); // decided at 1,002 ms
    let inflight = || {
        let ep = [("endpoint", "e1"), ("pool", "decode")];
        get(&m.samples(ms(0)), "llmd_router_inflight_requests", &ep)
    };
    assert!(!m.expire_request("r1", 0, ms(1001)));
    assert_eq!(inflight(), 1.0);
    assert!(m.expire_request("r1", 0, ms(1002)));
    assert_eq!(inflight(), 0.0);
    assert!(!m.expire_request("r1", 0, ms(2000)));

    let opened = |n: u64| DecisionRecord {
        opening: n,
        ..decision("r2", "e1", None)
    };
    m.on_decision(&opened(7));
    assert!(
        !m.expire_request("r2", 6, ms(2000)),
        "a later opening is left alone"
    );
    assert_eq!(inflight(), 1.0);
    assert!(
        m.expire_request("r2", 7, ms(0)),
        "its own opening, whatever the clock"
    );
    assert_eq!(inflight(), 0.0);
}

/// The scheduler's limit can expire an opening before the pick has
/// recorded its decision: the record is counted `expired` when it arrives,
/// and holds no in-flight load.
#[test]
fn an_opening_expired_before_its_record_arrives_is_expired_on_arrival() {
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("e1", Some("decode"));
    assert!(!m.expire_request("r1", 4, ms(1001)));
    m.on_decision(&DecisionRecord {
        opening: 4,
        ..decision("r1", "e1", None)
    });
    let s = m.samples(ms(0));
    let ep = [("endpoint", "e1"), ("pool", "decode")];
    assert_eq!(get(&s, "llmd_router_inflight_requests", &ep), 0.0);
    let expired = [("endpoint", "e1"), ("outcome", "expired")];
    assert_eq!(get(&s, "llmd_inference_requests_total", &expired), 1.0);
    assert!(
        !m.on_complete("r1", Usage::default(), ms(1100)),
        "no longer tracked"
    );
    // Another opening of the id is tracked as usual.
    m.on_decision(&DecisionRecord {
        opening: 5,
        ..decision("r1", "e1", None)
    });
    assert!(m.on_complete("r1", Usage::default(), ms(1100)));
}

/// Two picks of one id recorded out of order: the later opening keeps the
/// id (the scheduler's open-request and load tables agree), and the
/// earlier one is counted as expired, once.
#[test]
fn the_later_opening_keeps_a_reused_id_whatever_the_recording_order() {
    let m = Metrics::new(config()).unwrap();
    m.register_endpoint("e1", Some("decode"));
    m.register_endpoint("e2", Some("decode"));
    let later = DecisionRecord {
        opening: 9,
        ..decision("r1", "e2", None)
    };
    let earlier = DecisionRecord {
        opening: 8,
        ..decision("r1", "e1", None)
    };
    m.on_decision(&later);
    m.on_decision(&earlier);
    let s = m.samples(ms(0));
    let inflight = |ep: &str| {
        get(
            &s,
            "llmd_router_inflight_requests",
            &[("endpoint", ep), ("pool", "decode")],
        )
    };
    assert_eq!((inflight("e1"), inflight("e2")), (0.0, 1.0));
    assert!(m.on_complete("r1", Usage::default(), ms(1100)));
    let s = m.samples(ms(0));
    let done = |ep: &str, outcome: &str| {
        s.iter()
            .filter(|x| {
                x.matches(
                    "llmd_inference_requests_total",
                    &[("endpoint", ep), ("outcome", outcome)],
                )
            })
            .map(|x| x.value)
            .sum::<f64>()
    };
    assert_eq!(done("e2", "ok"), 1.0);
    assert_eq!(done("e1", "expired"), 1.0);
    assert_eq!(done("e1", "ok"), 0.0);
}
