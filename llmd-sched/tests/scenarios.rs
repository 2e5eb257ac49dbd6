//! End-to-end scenarios: P/D disaggregation, precise prefix routing over KV events.

mod common;

use common::*;
use llmd_kvindex::events::{
    encode_event_batch, BlockStored, EventBatch, EventLayout, HashValue, KvEvent,
};
use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig, RequestExtras};
use llmd_sched::{Endpoint, LoadOptions, Request, Scheduler};

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../testdata/llm-d-configs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn pd_fleet(s: &Scheduler) {
    for (n, role) in [
        ("d1", "decode"),
        ("d2", "decode"),
        ("p3", "prefill"),
        ("p4", "prefill"),
    ] {
        s.add_endpoint(ep(n, metrics(0, 0, 0.0)).with_label("llm-d.ai/role", role))
            .unwrap();
    }
}

#[test]
fn long_uncached_prompt_gets_remote_prefill_cached_prompt_does_not() {
    let (s, _) = sched(&example("03-pd-disaggregation-prefix-decider.yaml"));
    pd_fleet(&s);
    let prompt = tokens(2000, 11);
    let d = s
        .pick(&Request::with_tokens("r1", "m", prompt.clone()))
        .unwrap();
    assert!(
        d.targets[0].name.starts_with('d'),
        "decode pick must be a decode endpoint"
    );
    let pf = d
        .prefill_target
        .clone()
        .expect("long uncached prompt must be disaggregated");
    assert!(pf.name.starts_with('p'));
    assert_eq!(d.header("x-prefiller-host-port"), Some(pf.address.as_str()));
    assert_eq!(
        d.header("x-gateway-destination-endpoint"),
        Some(d.targets[0].address.as_str())
    );
    assert_eq!(d.explanation.decision_type, Some("prefill-decode"));
    assert!(d.remove_headers.is_empty());
    // The prefill pick holds the prompt until the first token, the decode pick until completion.
    let pst = s.endpoint_state(&pf.name).unwrap();
    assert_eq!(pst.inflight_requests(), 1);
    s.on_first_token("r1");
    assert_eq!(pst.inflight_requests(), 0);
    s.on_complete("r1", Some(0));

    // Same prompt again: the approximate index now holds it on the decode pick.
    let d2 = s.pick(&Request::with_tokens("r2", "m", prompt)).unwrap();
    assert_eq!(
        d2.targets[0].name, d.targets[0].name,
        "prefix affinity keeps the decode endpoint"
    );
    assert!(d2.prefill_target.is_none());
    assert_eq!(d2.header("x-prefiller-host-port"), None);
    assert_eq!(d2.remove_headers, vec!["x-prefiller-host-port".to_string()]);
    assert_eq!(d2.explanation.decision_type, Some("decode-only"));

    // Routing headers a client sends are never passed on: those the
    // decision sets are overwritten, the others removed.
    let mut r3 = Request::with_tokens("r3", "m", tokens(8, 3));
    for h in [
        "x-prefiller-host-port",
        "X-Encoder-Hosts-Ports",
        "x-data-parallel-host-port",
        "x-kv-cache-source-host-port",
    ] {
        r3.headers.insert(h.to_string(), "evil:80".to_string());
    }
    let d3 = s.pick(&r3).unwrap();
    let mut removed = d3.remove_headers.clone();
    removed.sort();
    let mut set: Vec<&str> = d3.headers.iter().map(|(k, _)| k.as_str()).collect();
    set.sort();
    let mut all: Vec<String> = removed.clone();
    all.extend(set.iter().map(|k| k.to_string()));
    for h in [
        "x-prefiller-host-port",
        "x-encoder-hosts-ports",
        "x-data-parallel-host-port",
        "x-kv-cache-source-host-port",
    ] {
        assert_eq!(
            all.iter().filter(|k| k.eq_ignore_ascii_case(h)).count(),
            1,
            "{h}: set {set:?}, removed {removed:?}"
        );
    }
    assert!(
        d3.headers.iter().all(|(_, v)| v != "evil:80"),
        "{:?}",
        d3.headers
    );
}

#[test]
fn short_prompt_stays_local_and_failed_prefill_degrades() {
    let (s, _) = sched(&example("03-pd-disaggregation-prefix-decider.yaml"));
    pd_fleet(&s);
    let d = s
        .pick(&Request::with_tokens("r", "m", tokens(800, 1)))
        .unwrap();
    assert!(d.prefill_target.is_none(), "below promptTokens 1024");
    // No prefill endpoints: the prefill profile fails, the request falls back to decode-only.
    let (s, _) = sched(&example("03-pd-disaggregation-prefix-decider.yaml"));
    s.add_endpoint(ep("d1", metrics(0, 0, 0.0)).with_label("llm-d.ai/role", "decode"))
        .unwrap();
    let d = s
        .pick(&Request::with_tokens("r", "m", tokens(3000, 1)))
        .unwrap();
    assert!(d.prefill_target.is_none());
    assert!(d.explanation.profile("prefill").unwrap().error.is_some());
    // No decode endpoints: 429 from the decode profile.
    let (s, _) = sched(&example("03-pd-disaggregation-prefix-decider.yaml"));
    s.add_endpoint(ep("p1", metrics(0, 0, 0.0)).with_label("llm-d.ai/role", "prefill"))
        .unwrap();
    let e = s
        .pick(&Request::with_tokens("r", "m", tokens(3000, 1)))
        .unwrap_err();
    assert_eq!(e.code(), 429);
}

#[test]
fn text_prompts_use_the_estimate_tokenizer() {
    let (s, _) = sched(&example("03-pd-disaggregation-prefix-decider.yaml"));
    pd_fleet(&s);
    let text: String = (0..6000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let d = s.pick(&Request::with_text("t", "m", text)).unwrap();
    assert_eq!(d.explanation.prompt_tokens, 1500);
    assert!(d.prefill_target.is_some());
}

fn stored(keys: &[u64], parent: Option<u64>, toks: &[u32], bs: i64) -> KvEvent {
    KvEvent::BlockStored(BlockStored {
        block_hashes: keys.iter().map(|&k| HashValue::Int(k as i128)).collect(),
        parent_block_hash: parent.map(|p| HashValue::Int(p as i128)),
        token_ids: toks.iter().map(|&t| t as u64).collect(),
        block_size: bs,
        ..Default::default()
    })
}

fn precise_fleet() -> Vec<Endpoint> {
    (1..=3)
        .map(|i| {
            let mut e = ep(&format!("e{i}"), metrics(0, 0, 0.0));
            e.model = Some("m".into());
            e
        })
        .collect()
}

#[test]
fn precise_engine_parity_routes_to_the_endpoint_holding_the_blocks() {
    let cfg = HasherConfig::for_vllm("latest", HashAlgo::Sha256Cbor, 16, Some("12345")).unwrap();
    let hasher = BlockHasher::new(cfg.clone()).unwrap();
    let opts = LoadOptions {
        engine_hasher: Some(cfg),
        ..Default::default()
    };
    let s = Scheduler::from_config_str_with(&example("02-precise-prefix-kv-events.yaml"), opts)
        .unwrap()
        .with_seed(1);
    for e in precise_fleet() {
        s.add_endpoint(e).unwrap();
    }
    let prompt = tokens(160, 5); // 10 blocks
    let keys: Vec<u64> = hasher
        .block_keys(&prompt, &RequestExtras::default())
        .unwrap()
        .iter()
        .map(|k| k.0)
        .collect();
    // e2 holds the first 6 blocks on GPU, e3 the first 2.
    let b2 = EventBatch {
        ts: 1.0,
        data_parallel_rank: None,
        events: vec![stored(&keys[..6], None, &prompt[..96], 16)],
        skipped_events: 0,
    };
    let b3 = EventBatch {
        ts: 1.0,
        data_parallel_rank: None,
        events: vec![stored(&keys[..2], None, &prompt[..32], 16)],
        skipped_events: 0,
    };
    let r = s
        .ingest_kv_events("e2", &encode_event_batch(&b2, EventLayout::V0_33), Some(1))
        .unwrap();
    assert_eq!(r.stats.stored, 6);
    s.ingest_kv_events("e3", &encode_event_batch(&b3, EventLayout::V0_22), Some(1))
        .unwrap();
    let d = s
        .pick(&Request::with_tokens("q", "m", prompt.clone()))
        .unwrap();
    assert_eq!(d.targets[0].name, "e2");
    let p = d.explanation.profile("default").unwrap();
    let raw = &p.scorer("prefix-cache-scorer").unwrap().raw;
    let by: std::collections::HashMap<&str, f64> = p
        .scored
        .iter()
        .map(|n| &**n)
        .zip(raw.iter().copied())
        .collect();
    // score = 0.2 * min(1, matched_tokens/8192)^2 + 0.8 * matched/total
    let expect = |m: f64| 0.2 * (m * 16.0 / 8192.0f64).min(1.0).powi(2) + 0.8 * m / 10.0;
    assert!(
        approx(by["e2"], expect(6.0)) && approx(by["e3"], expect(2.0)) && by["e1"] == 0.0,
        "{by:?}"
    );
    // A duplicate batch is ignored; a restart clears the publisher first.
    assert!(
        s.ingest_kv_events("e2", &encode_event_batch(&b2, EventLayout::V0_33), Some(1))
            .unwrap()
            .ignored
    );
    let empty = EventBatch {
        ts: 2.0,
        data_parallel_rank: None,
        events: vec![],
        skipped_events: 0,
    };
    let r = s
        .ingest_kv_events(
            "e2",
            &encode_event_batch(&empty, EventLayout::V0_33),
            Some(0),
        )
        .unwrap();
    assert_eq!(r.stats.cleared, 1);
    assert!(s.ingest_kv_events("e2", b"\xc1garbage", None).is_err());
}

#[test]
fn precise_router_keys_and_speculative_entries() {
    let (s, clock) = sched(&example("02-precise-prefix-kv-events.yaml"));
    for e in precise_fleet() {
        s.add_endpoint(e).unwrap();
    }
    let prompt = tokens(64, 9); // 4 blocks of 16
                                // Engine keys are arbitrary: router-key mode re-hashes the token ids.
    let b = EventBatch {
        ts: 1.0,
        data_parallel_rank: None,
        events: vec![stored(&[101, 102, 103], None, &prompt[..48], 16)],
        skipped_events: 0,
    };
    s.ingest_kv_batch("e3", &b).unwrap();
    let d = s
        .pick(&Request::with_tokens("a", "m", prompt.clone()))
        .unwrap();
    assert_eq!(d.targets[0].name, "e3");
    // Removal by engine key drops the match.
    let rm = EventBatch {
        ts: 2.0,
        data_parallel_rank: None,
        events: vec![KvEvent::BlockRemoved(llmd_kvindex::events::BlockRemoved {
            block_hashes: vec![HashValue::Int(101)],
            ..Default::default()
        })],
        skipped_events: 0,
    };
    assert_eq!(s.ingest_kv_batch("e3", &rm).unwrap().removed, 1);
    // Speculative indexing (2 s TTL): a fresh prompt routed to X is matched on X right away.
    let fresh = tokens(64, 1234);
    let first = s
        .pick(&Request::with_tokens("b", "m", fresh.clone()))
        .unwrap()
        .targets[0]
        .name
        .clone();
    let again = s
        .pick(&Request::with_tokens("c", "m", fresh.clone()))
        .unwrap();
    assert_eq!(again.targets[0].name, first);
    assert!(
        again
            .explanation
            .notes
            .iter()
            .any(|n| n.contains("best consecutive match 4")),
        "{:?}",
        again.explanation.notes
    );
    clock.advance_ns(3_000_000_000);
    s.tick();
    let later = s.pick(&Request::with_tokens("d", "m", fresh)).unwrap();
    assert!(
        later
            .explanation
            .notes
            .iter()
            .any(|n| n.contains("best consecutive match 0")),
        "speculative entries expire after the TTL: {:?}",
        later.explanation.notes
    );
}

#[test]
fn decisions_are_reproducible_with_a_seed() {
    let run = || {
        let (s, _) = sched(&single("- type: random-picker\n"));
        for i in 1..=8 {
            s.add_endpoint(ep(&format!("e{i}"), metrics(0, 0, 0.0)))
                .unwrap();
        }
        (0..20)
            .map(|i| {
                s.pick(&Request::with_tokens(format!("r{i}"), "m", vec![1]))
                    .unwrap()
                    .targets[0]
                    .name
                    .clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn explanation_serializes() {
    let (s, _) = sched(&example("01-default-load-and-prefix.yaml"));
    s.add_endpoint(ep("e1", metrics(1, 0, 0.2))).unwrap();
    s.add_endpoint(ep("e2", metrics(3, 0, 0.4))).unwrap();
    let d = s.pick(&Request::with_text("r", "m", "hello")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&d.explanation.to_json()).unwrap();
    assert_eq!(v["candidates"].as_array().unwrap().len(), 2);
    assert_eq!(v["profiles"][0]["scorers"][0]["name"], "queue-scorer");
    assert_eq!(v["profiles"][0]["scorers"][0]["weight"], 2.0);
    assert!(serde_json::to_string(&d).is_ok());
}

#[test]
fn scheduler_is_send_sync_and_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Scheduler>();
    let (s, _) = sched(&example("01-default-load-and-prefix.yaml"));
    for i in 1..=4 {
        s.add_endpoint(ep(&format!("e{i}"), metrics(0, 0, 0.0)))
            .unwrap();
    }
    let s = std::sync::Arc::new(s);
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let id = format!("t{t}-{i}");
                    s.pick(&Request::with_tokens(id.clone(), "m", tokens(300, i)))
                        .unwrap();
                    s.on_first_token(&id);
                    s.on_complete(&id, None);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(s.open_requests(), 0);
}
