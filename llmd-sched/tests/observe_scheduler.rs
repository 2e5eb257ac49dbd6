//! The scheduler records into its metrics: a scripted workload through
//! `Scheduler::pick` and the lifecycle calls, checked against the raw numbers.

mod observe_support;

use llmd_sched::observe::{decision_attributes, decision_spans, AttrValue, Metrics, Sample};
use llmd_sched::Request;
use observe_support::{config, end_of, run_phase, scheduler};
use std::sync::Arc;

fn total(s: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    s.iter()
        .filter(|x| x.matches(name, want))
        .map(|x| x.value)
        .sum()
}

#[test]
fn workload_through_the_scheduler_is_counted() {
    let m = Arc::new(Metrics::new(config()).unwrap());
    let (s, raw) = run_phase(&m, 0);
    let text = s.render_metrics();
    let at_clock = m.render(std::time::Duration::from_nanos(s.now_ns()));
    assert!(
        text == at_clock,
        "render_metrics renders at the scheduler clock"
    );
    let smp = m.samples(end_of(0));

    for (key, (tokens, count)) in &raw.output_tokens {
        let want: Vec<(&str, &str)> = key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            total(&smp, "llmd_inference_requests_total", &want),
            *count,
            "{key:?}"
        );
        assert_eq!(
            total(&smp, "llmd_inference_output_tokens_sum", &want),
            *tokens,
            "{key:?}"
        );
    }
    let requests: f64 = raw.output_tokens.values().map(|(_, c)| c).sum();
    assert_eq!(total(&smp, "llmd_inference_requests_total", &[]), requests);
    assert_eq!(
        total(&smp, "llmd_inference_ttft_count", &[]),
        raw.ttft.len() as f64
    );
    let ttft_sum: f64 = raw.ttft.iter().sum();
    assert!((total(&smp, "llmd_inference_ttft_sum", &[]) - ttft_sum).abs() < 1e-9);
    for (pool, (hits, n)) in &raw.kv_hits {
        assert_eq!(
            total(&smp, "llmd_kvcache_hits_total", &[("pool", pool)]),
            *hits
        );
        assert_eq!(
            total(&smp, "llmd_kvcache_requests_total", &[("pool", pool)]),
            *n
        );
    }
    let pd = [("decision", "prefill-decode")];
    assert_eq!(
        total(&smp, "llmd_router_decisions_total", &pd),
        raw.disaggregated as f64
    );
    assert_eq!(
        total(
            &smp,
            "llmd_inference_prefill_time_seconds_count",
            &[("mode", "disaggregated")]
        ),
        raw.disaggregated as f64
    );
    assert_eq!(
        total(&smp, "llmd_router_routing_score_count", &[]),
        raw.routing_scores.len() as f64
    );
    let sum: f64 = raw.routing_scores.iter().sum();
    assert!((total(&smp, "llmd_router_routing_score_sum", &[]) - sum).abs() < 1e-9);
    // Two requests are still open, one on each decode endpoint or both on one.
    assert_eq!(total(&smp, "llmd_router_inflight_requests", &[]), 2.0);
    assert_eq!(total(&smp, "llmd_observe_tracked_requests", &[]), 2.0);
    // Event streams: d1 saw a gap, p3 a restart, d2 an undecodable payload.
    assert_eq!(
        total(
            &smp,
            "llmd_kvindex_sequence_gaps_total",
            &[("endpoint", "d1")]
        ),
        1.0
    );
    assert_eq!(
        total(
            &smp,
            "llmd_kvindex_stream_restarts_total",
            &[("endpoint", "p3")]
        ),
        1.0
    );
    assert_eq!(
        total(
            &smp,
            "llmd_kvindex_decode_errors_total",
            &[("endpoint", "d2")]
        ),
        1.0
    );
    let blocks = |ep, tier| {
        total(
            &smp,
            "llmd_kvindex_blocks",
            &[("endpoint", ep), ("tier", tier)],
        )
    };
    assert_eq!(blocks("d1", "gpu"), 6.0); // 4 + 3 stored, 1 removed
    assert_eq!(blocks("d1", "cpu"), 2.0);
    assert_eq!(blocks("p3", "gpu"), 2.0); // cleared by the restart, then 2 stored
                                          // Every P/D decision records its KV transfer, in blocks and bytes.
    let pd = |name| total(&smp, name, &[]);
    assert_eq!(
        pd("llmd_inference_pd_kv_transfer_blocks_count"),
        raw.disaggregated as f64
    );
    let blocks_sum = pd("llmd_inference_pd_kv_transfer_blocks_sum");
    assert!(blocks_sum > 0.0);
    // Bytes count the tokens sent (the approximate producer's 64-token
    // blocks, the last of each request partial): at most the blocks' worth.
    let bytes = pd("llmd_inference_pd_kv_transfer_bytes_sum") / 131_072.0;
    let n = raw.disaggregated as f64;
    assert!(
        bytes <= blocks_sum * 64.0 && bytes > (blocks_sum - n) * 64.0,
        "{bytes} tokens for {blocks_sum} blocks"
    );
    // KV movement on c1 (a precise index): 2 offloads, 1 reload; the index
    // holds 4 blocks on GPU and 2 on CPU; the engine's own view beside it.
    let moves = |from, to| {
        total(
            &smp,
            "llmd_kvindex_block_moves_total",
            &[("endpoint", "c1"), ("from", from), ("to", to)],
        )
    };
    assert_eq!((moves("gpu", "cpu"), moves("cpu", "gpu")), (2.0, 1.0));
    assert_eq!(
        smp.iter()
            .filter(|x| x.name == "llmd_kvindex_block_moves_total")
            .count(),
        2
    );
    assert_eq!((blocks("c1", "gpu"), blocks("c1", "cpu")), (4.0, 2.0));
    let engine = |name| total(&smp, name, &[("endpoint", "c1")]);
    assert_eq!(engine("llmd_endpoint_kv_cache_usage_ratio"), 0.5);
    assert_eq!(engine("llmd_endpoint_kv_cache_capacity_blocks"), 1000.0);
    // 16-token blocks of 131,072 bytes per token.
    assert_eq!(engine("llmd_endpoint_kv_block_bytes"), 16.0 * 131_072.0);
    // Removing an endpoint drops its gauges.
    s.remove_endpoint("d1").unwrap();
    let smp = m.samples(end_of(0));
    assert_eq!(
        total(&smp, "llmd_kvindex_blocks", &[("endpoint", "d1")]),
        0.0
    );
    assert!(!smp
        .iter()
        .any(|x| x.name == "llmd_router_inflight_requests" && x.label("endpoint") == Some("d1")));
}

#[test]
fn decisions_explain_themselves_as_span_attributes() {
    let m = Arc::new(Metrics::new(config()).unwrap());
    let (s, _) = scheduler(&m, 0);
    let prompt: Vec<u32> = (0..2000).collect();
    let d = s
        .pick(&Request::with_tokens("r1", "llama", prompt))
        .unwrap();
    let attrs = decision_attributes(&d);
    let get = |k: &str| {
        attrs
            .iter()
            .find(|a| a.key == k)
            .map(|a| a.value.clone())
            .unwrap_or_else(|| panic!("missing {k}"))
    };
    assert_eq!(get("gen_ai.request.id"), AttrValue::Str("r1".into()));
    assert_eq!(get("gen_ai.request.model"), AttrValue::Str("llama".into()));
    assert_eq!(
        get("llm_d.epp.pd.disaggregation_used"),
        AttrValue::Bool(d.prefill_target.is_some())
    );
    let addr = d.primary().unwrap().address.clone();
    assert_eq!(
        get("server.address"),
        AttrValue::Str(addr.split(':').next().unwrap().into())
    );
    match get("llm_d.epp.picker.top_scores") {
        AttrValue::F64Array(v) => assert!(v.windows(2).all(|w| w[0] >= w[1]), "{v:?}"),
        v => panic!("{v:?}"),
    }
    let spans = decision_spans(&d);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "run_scheduler_profile")
            .count(),
        d.explanation.profiles.len()
    );
    assert!(
        names.contains(&"llm_d.epp.scorer.prefix-cache-scorer"),
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"prepare_disaggregation"));
}
