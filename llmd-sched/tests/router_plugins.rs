//! Plugin types llm-d-router added after llm-d-inference-scheduler:
//! `header-based-testing-filter`, the multi-cluster variants and
//! `p2p-source-producer`, with llm-d's semantics.

mod common;

use common::*;
use llmd_sched::{Request, Scheduler};

fn with_headers(id: &str, headers: &[(&str, &str)]) -> Request {
    let mut r = Request::with_tokens(id, "m", tokens(64, 1));
    for (k, v) in headers {
        r.headers.insert(k.to_string(), v.to_string());
    }
    r
}

fn fleet(s: &Scheduler, n: usize) {
    for i in 1..=n {
        s.add_endpoint(ep(&format!("e{i}"), metrics(0, 0, 0.1)))
            .unwrap();
    }
}

#[test]
fn header_based_testing_filter_keeps_the_named_endpoints_in_order() {
    let (s, _) = sched(&single(
        "- type: header-based-testing-filter\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: 5}\n",
    ));
    fleet(&s, 3);
    let h = "test-epp-endpoint-selection";
    let d = s
        .pick(&with_headers(
            "a",
            &[(h, " 10.0.0.3:8000 , 10.0.0.1,10.0.0.3:8000,10.0.0.9")],
        ))
        .unwrap();
    let names: Vec<_> = d.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["e3", "e1"],
        "header order, once per IP, unknown skipped"
    );
    // A port that does not match names nothing; no header keeps nothing.
    assert!(s.pick(&with_headers("b", &[(h, "10.0.0.2:9999")])).is_err());
    assert!(s.pick(&with_headers("c", &[])).is_err());
    assert!(s.pick(&with_headers("d", &[(h, "  ")])).is_err());
}

#[test]
fn multicluster_scorers_read_the_peer_pool_labels() {
    let (s, _) = sched(&single(
        "- type: multicluster-queue-scorer\n- type: multicluster-kv-cache-utilization-scorer\n- type: max-score-picker\n",
    ));
    let peer = |name: &str, q: &str, kv: &str| {
        let mut e = ep(name, metrics(0, 0, 0.0));
        if !q.is_empty() {
            e = e.with_label("llm-d.ai/multicluster-queue-size", q);
        }
        if !kv.is_empty() {
            e = e.with_label("llm-d.ai/multicluster-kv-cache-utilization", kv);
        }
        e
    };
    s.add_endpoint(peer("e1", "2", "0.25")).unwrap();
    s.add_endpoint(peer("e2", "10", "0.5")).unwrap();
    s.add_endpoint(peer("e3", "", "")).unwrap();
    let r = with_headers("r", &[]);
    let q = raw_scores(&s, &r, "default", "multicluster-queue-scorer");
    assert_eq!((q["e1"], q["e2"], q["e3"]), (1.0, 0.0, 0.0));
    let kv = raw_scores(
        &s,
        &r,
        "default",
        "multicluster-kv-cache-utilization-scorer",
    );
    assert_eq!((kv["e1"], kv["e2"], kv["e3"]), (0.75, 0.5, 0.0));
}

#[test]
fn multicluster_delegating_variants_load_as_the_stock_plugins() {
    let yaml = format!(
        "{HEAD}plugins:\n- name: mc-approx\n  type: multicluster-approx-prefix-cache-producer\n  parameters: {{blockSizeTokens: 64}}\n- type: multicluster-prefix-cache-scorer\n  parameters: {{prefixMatchInfoProducerName: mc-approx}}\n- type: multicluster-session-affinity-filter\n- type: max-score-picker\n"
    );
    let (s, _) = sched(&yaml);
    fleet(&s, 2);
    // The first pick seats the prompt on e-x; the same prompt then scores there.
    let r = Request::with_tokens("r1", "m", tokens(512, 3));
    let first = s.pick(&r).unwrap().targets[0].name.clone();
    let r2 = Request::with_tokens("r2", "m", tokens(512, 3));
    let by = raw_scores(&s, &r2, "default", "multicluster-prefix-cache-scorer");
    assert!(by[&first] > 0.9, "{by:?}");
}

#[test]
fn p2p_source_names_the_peer_with_more_of_the_prefix() {
    let yaml = format!(
        "{HEAD}plugins:\n- name: kv\n  type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {{blockSizeTokens: 16}}\n- type: p2p-source-producer\n  parameters: {{prefixMatchInfoProducerName: kv, minCachedTokenDelta: 32}}\n- type: queue-scorer\n- type: max-score-picker\n"
    );
    let (s, _) = sched(&yaml);
    // e1 is busy but holds the prompt; e2 is idle and holds nothing.
    s.add_endpoint(ep("e1", metrics(10, 0, 0.1))).unwrap();
    s.add_endpoint(ep("e2", metrics(0, 0, 0.1))).unwrap();
    let prompt = tokens(160, 9);
    let stored = llmd_kvindex::events::KvEvent::BlockStored(llmd_kvindex::events::BlockStored {
        block_hashes: (1..=10).map(llmd_kvindex::events::HashValue::Int).collect(),
        token_ids: prompt.iter().map(|&t| u64::from(t)).collect(),
        block_size: 16,
        ..Default::default()
    });
    s.ingest_kv_batch(
        "e1",
        &llmd_kvindex::events::EventBatch {
            ts: 0.0,
            data_parallel_rank: None,
            events: vec![stored],
            skipped_events: 0,
        },
    )
    .unwrap();
    let mut r = Request::with_tokens("p1", "m", prompt.clone());
    r.headers
        .insert("x-kv-cache-source-host-port".into(), "1.2.3.4:1".into());
    let d = s.pick(&r).unwrap();
    assert_eq!(
        d.targets[0].name, "e2",
        "the queue scorer picks the idle endpoint"
    );
    assert_eq!(
        d.header("x-kv-cache-source-host-port"),
        Some("10.0.0.1:8000")
    );
    // Computing where the blocks are: no source header, and the client's is stripped.
    let (s2, _) = sched(&yaml.replace("- type: queue-scorer\n", ""));
    s2.add_endpoint(ep("e1", metrics(0, 0, 0.1))).unwrap();
    let d = s2.pick(&r).unwrap();
    assert_eq!(d.header("x-kv-cache-source-host-port"), None);
    assert!(d
        .remove_headers
        .iter()
        .any(|h| h == "x-kv-cache-source-host-port"));
    // Bad parameters are refused.
    let bad = yaml.replace("minCachedTokenDelta: 32", "minCachedTokenDelta: 0");
    let err = Scheduler::from_config_str(&bad).unwrap_err().to_string();
    assert!(err.contains("minCachedTokenDelta"), "{err}");
}

#[test]
fn mm_embeddings_cache_sends_images_back_where_they_were_encoded() {
    // The scorer alone: the producer is created as its default producer.
    let (s, _) = sched(&single(
        "- type: mm-embeddings-cache-scorer\n- type: max-score-picker\n",
    ));
    fleet(&s, 3);
    let body = br#"{"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}"#;
    let mut r = Request::from_openai("/v1/chat/completions", body).unwrap();
    assert!(r.multimodal);
    let cat = format!(
        "{:x}",
        xxhash_rust::xxh64::xxh64(b"https://example.com/cat.png", 0)
    );
    assert_eq!(r.mm_items.len(), 2, "duplicates count once");
    assert_eq!(r.mm_items[0], cat);
    r.id = "first".into();
    let first = s.pick(&r).unwrap().targets[0].name.clone();
    // The same images again: the endpoint that encoded them scores 1, the others 0.
    r.id = "again".into();
    let by = raw_scores(&s, &r, "default", "mm-embeddings-cache-scorer");
    for (name, score) in &by {
        assert_eq!(*score, if *name == first { 1.0 } else { 0.0 }, "{by:?}");
    }
    // Half of the items cached: 0.5; none: 0.
    r.mm_items = vec![cat, "unseen".into()];
    r.id = "half".into();
    let by = raw_scores(&s, &r, "default", "mm-embeddings-cache-scorer");
    assert_eq!(by[&first], 0.5);
    let mut plain = Request::with_tokens("plain", "m", tokens(16, 1));
    plain.mm_items.clear();
    let by = raw_scores(&s, &plain, "default", "mm-embeddings-cache-scorer");
    assert!(by.values().all(|v| *v == 0.0));
    // A removed endpoint forgets its items.
    s.remove_endpoint(&first).unwrap();
    s.add_endpoint(ep(&first, metrics(0, 0, 0.1))).unwrap();
    r.id = "after".into();
    let by = raw_scores(&s, &r, "default", "mm-embeddings-cache-scorer");
    assert_eq!(by[&first], 0.0);
}
