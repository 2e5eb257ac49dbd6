//! KV movement is visible: blocks offloaded from GPU to CPU or storage and
//! reloaded back are counted per endpoint from its KV events, and the
//! engine's own KV-cache usage and capacity stand beside the index's view.

mod common;

use common::*;
use llmd_kvindex::events::{BlockRemoved, HashValue, KvEvent};
use llmd_sched::EndpointMetrics;

fn precise() -> String {
    single("- name: kv\n  type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {blockSizeTokens: 16}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: kv}\n- type: max-score-picker\n")
}

fn removed(keys: &[u64], medium: &str) -> KvEvent {
    KvEvent::BlockRemoved(BlockRemoved {
        block_hashes: keys.iter().map(|&k| HashValue::Int(k.into())).collect(),
        medium: Some(medium.to_string()),
        ..Default::default()
    })
}

fn moves(s: &llmd_sched::Scheduler, ep: &str, from: &str, to: &str) -> f64 {
    metric(
        s,
        &format!("llmd_kvindex_block_moves_total{{endpoint=\"{ep}\",from=\"{from}\",to=\"{to}\"}}"),
    )
    .unwrap_or(0.0)
}

#[test]
fn offloads_and_reloads_are_counted_from_events() {
    let (s, _) = sched(&precise());
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let p = tokens(64, 3);
    let ingest = |events| s.ingest_kv_events("e1", &batch(events), None).unwrap();
    // Four blocks computed on the GPU.
    ingest(vec![stored(1, None, &p, None)]);
    assert_eq!(moves(&s, "e1", "gpu", "cpu"), 0.0);
    // The connector copies the first two to CPU, then the GPU evicts them.
    let r = ingest(vec![stored(1, None, &p[..32], Some("CPU"))]);
    assert_eq!(r.stats.moves[0][1], 2);
    ingest(vec![removed(&[1, 2], "GPU")]);
    // Blocks 3 and 4: evicted first, then stored on CPU in the same batch.
    ingest(vec![
        removed(&[3, 4], "GPU"),
        stored(3, Some(2), &p[32..], Some("CPU")),
    ]);
    assert_eq!(moves(&s, "e1", "gpu", "cpu"), 4.0);
    // Block 1 moves on to storage; blocks 1 and 2 come back to the GPU.
    ingest(vec![stored(1, None, &p[..16], Some("DISK"))]);
    assert_eq!(moves(&s, "e1", "cpu", "storage"), 1.0);
    ingest(vec![stored(1, None, &p[..32], None)]);
    assert_eq!(moves(&s, "e1", "cpu", "gpu"), 2.0);
    assert_eq!(moves(&s, "e1", "storage", "gpu"), 0.0);
    // The index's per-tier view follows: GPU holds 1 and 2, CPU 1..4, storage 1.
    let blocks = |tier: &str| {
        metric(
            &s,
            &format!("llmd_kvindex_blocks{{endpoint=\"e1\",tier=\"{tier}\"}}"),
        )
        .unwrap()
    };
    assert_eq!(
        (blocks("gpu"), blocks("cpu"), blocks("storage")),
        (2.0, 4.0, 1.0)
    );
    // Removed and stored again in the same tier: not a move.
    ingest(vec![removed(&[2], "GPU"), stored(1, None, &p[..32], None)]);
    assert_eq!(
        moves(&s, "e1", "cpu", "gpu"),
        3.0,
        "block 2 is still on CPU: a reload"
    );
    ingest(vec![removed(&[2], "CPU"), removed(&[2], "GPU")]);
    ingest(vec![stored(1, None, &p[..32], None)]);
    assert_eq!(
        moves(&s, "e1", "cpu", "gpu"),
        3.0,
        "held nowhere else: a plain store"
    );
}

#[test]
fn the_engines_cache_usage_stands_beside_the_index() {
    let (s, _) = sched(&precise());
    s.add_endpoint(ep("e1", metrics(0, 0, 0.25))).unwrap();
    let usage =
        |s: &llmd_sched::Scheduler| metric(s, "llmd_endpoint_kv_cache_usage_ratio{endpoint=\"e1\"");
    let capacity = |s: &llmd_sched::Scheduler| {
        metric(s, "llmd_endpoint_kv_cache_capacity_blocks{endpoint=\"e1\"")
    };
    assert_eq!(usage(&s), Some(0.25));
    assert_eq!(capacity(&s), None, "unknown capacity has no series");
    s.update_endpoint_metrics_text(
        "e1",
        "vllm:kv_cache_usage_perc{engine=\"0\"} 0.5\nvllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"27000\",engine=\"0\"} 1.0\n",
    )
    .unwrap();
    assert_eq!((usage(&s), capacity(&s)), (Some(0.5), Some(27000.0)));
    let m = EndpointMetrics {
        kv_cache_usage: f64::NAN,
        ..EndpointMetrics::default()
    };
    s.update_endpoint_metrics("e1", m).unwrap();
    assert_eq!((usage(&s), capacity(&s)), (Some(0.0), None));
    // Registered again in another pool: the old pool's series goes.
    let e = ep("e1", metrics(0, 0, 0.75)).with_label("llm-d.ai/role", "prefill");
    s.replace_endpoint(e).unwrap();
    let text = s.render_metrics();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("llmd_endpoint_kv_cache_usage_ratio{"))
        .collect();
    assert_eq!(series.len(), 1, "{series:?}");
    assert!(series[0].contains("pool=\"prefill\"") && series[0].ends_with(" 0.75"));
    // A removed endpoint's gauges go with it.
    s.remove_endpoint("e1").unwrap();
    assert_eq!(usage(&s), None);
}

#[test]
fn a_pd_decision_reports_its_kv_transfer() {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/llm-d-configs/03-pd-disaggregation-prefix-decider.yaml"
    ))
    .unwrap();
    let s = llmd_sched::Scheduler::from_config_str(&yaml)
        .unwrap()
        .with_seed(1);
    for (name, role) in [("d1", "decode"), ("p1", "prefill")] {
        let mut e = ep(name, metrics(0, 0, 0.0)).with_label("llm-d.ai/role", role);
        e.model = Some("m".into());
        if role == "decode" {
            // The model's KV bytes per token, on the decode endpoint.
            e = e.with_label(llmd_sched::model::KV_BYTES_LABEL, "1000");
        }
        s.add_endpoint(e).unwrap();
    }
    // A label that is not a positive integer is refused, naming it.
    let bad = ep("d9", metrics(0, 0, 0.0)).with_label(llmd_sched::model::KV_BYTES_LABEL, "lots");
    let e = s.add_endpoint(bad).unwrap_err().to_string();
    assert!(e.contains(llmd_sched::model::KV_BYTES_LABEL), "{e}");
    let d = s
        .pick(&llmd_sched::Request::with_tokens("r", "m", tokens(2000, 1)))
        .unwrap();
    assert!(d.prefill_target.is_some(), "a P/D decision");
    // 2,000 tokens in the approximate producer's 64-token blocks: 32 blocks
    // (the last one partial), none cached on the decode endpoint, all sent.
    let get = |n: &str| {
        metric(&s, &format!("{n}{{model=\"m\",pool=\"decode\"}}"))
            .unwrap_or_else(|| panic!("no {n} in\n{}", s.render_metrics()))
    };
    assert_eq!(get("llmd_inference_pd_kv_transfer_blocks_sum"), 32.0);
    assert_eq!(
        get("llmd_inference_pd_kv_transfer_bytes_sum"),
        2000.0 * 1000.0
    );
}
