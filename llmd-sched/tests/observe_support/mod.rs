//! A scripted, deterministic workload driven through a real `Scheduler`
//! (llm-d's P/D example config, two decode and one prefill endpoint, a
//! manual clock), plus the raw values it produced so tests can compute
//! expected query results without reading the metrics back.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod promql;

use llmd_kvindex::events::{
    encode_event_batch, BlockRemoved, BlockStored, EventBatch, EventLayout, HashValue, KvEvent,
};
use llmd_sched::observe::{Metrics, MetricsConfig, SloTargets};
use llmd_sched::{
    Endpoint, EndpointMetrics, ManualClock, Request, RequestErrorKind, ScheduleError, Scheduler,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Labels of one request series.
pub type Key = Vec<(String, String)>;

/// Raw values one phase produced.
#[derive(Debug, Default)]
pub struct Raw {
    /// TTFT of every request that produced a first token (seconds).
    pub ttft: Vec<f64>,
    /// Final weighted score of every profile pick.
    pub routing_scores: Vec<f64>,
    /// (output tokens sum, request count) per (model, pool, profile, endpoint, outcome).
    pub output_tokens: BTreeMap<Key, (f64, f64)>,
    /// (engine-reported hits, requests with reported usage) per pool.
    pub kv_hits: BTreeMap<String, (f64, f64)>,
    /// Decisions that used a prefill endpoint.
    pub disaggregated: usize,
}

impl Raw {
    fn finish(&mut self, labels: [&str; 5], tokens: u64) {
        let key = ["model", "pool", "profile", "endpoint", "outcome"]
            .iter()
            .zip(labels)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = self.output_tokens.entry(key).or_default();
        e.0 += tokens as f64;
        e.1 += 1.0;
    }
}

/// The metrics configuration the workload is judged against.
pub fn config() -> MetricsConfig {
    MetricsConfig {
        default_slo: SloTargets {
            ttft: Some(Duration::from_millis(300)),
            tpot: Some(Duration::from_millis(40)),
            e2e: Some(Duration::from_secs(2)),
        },
        // Llama 3 8B in bf16: 2 × 32 layers × 8 KV heads × 128 × 2 bytes.
        kv_bytes_per_token: [("llama".to_owned(), 131_072)].into_iter().collect(),
        ..MetricsConfig::default()
    }
}

const MS: u64 = 1_000_000;

/// A precise prefix index (KV-movement metrics need one).
const PRECISE: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- name: kv\n  type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {blockSizeTokens: 16}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: kv}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";

/// Clock origin of a phase (ns); phases are far apart and equally far from 0.
pub fn t0(phase: u64) -> u64 {
    (phase + 1) * 1_000_000 * MS
}

/// The clock reading at the end of `phase`.
pub fn end_of(phase: u64) -> Duration {
    Duration::from_nanos(t0(phase) + 100_000 * MS)
}

fn tokens(n: usize, offset: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761).wrapping_add(offset))
        .collect()
}

/// A scheduler for `phase` recording into `m`: same config, seed and fleet
/// every time, so each phase makes the same decisions.
pub fn scheduler(m: &Arc<Metrics>, phase: u64) -> (Scheduler, Arc<ManualClock>) {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/llm-d-configs/03-pd-disaggregation-prefix-decider.yaml"
    ))
    .expect("example config");
    // The latency model's producer (it changes no decision) so its metrics
    // have samples.
    let yaml = yaml.replacen(
        "plugins:\n",
        "plugins:\n- type: predicted-latency-producer\n",
        1,
    );
    assert!(yaml.contains("predicted-latency-producer"));
    let clock = Arc::new(ManualClock::new(t0(phase)));
    let s = Scheduler::from_config_str(&yaml)
        .expect("config loads")
        .with_clock(clock.clone())
        .with_seed(7)
        .with_metrics(m.clone());
    for (name, role) in [("d1", "decode"), ("d2", "decode"), ("p3", "prefill")] {
        let digit = &name[1..];
        let mut e = Endpoint::new(name, format!("10.0.0.{digit}:8000"))
            .with_label("llm-d.ai/role", role)
            .with_metrics(EndpointMetrics {
                updated_at_ns: t0(phase),
                ..Default::default()
            });
        e.model = Some("llama".into());
        s.add_endpoint(e).expect("endpoint");
    }
    (s, clock)
}

fn role(name: &str) -> &'static str {
    if name.starts_with('p') {
        "prefill"
    } else {
        "decode"
    }
}

/// Runs one phase on a fresh scheduler recording into `m`. Returns the
/// scheduler (it holds requests left open) and the raw values.
pub fn run_phase(m: &Arc<Metrics>, phase: u64) -> (Scheduler, Raw) {
    let (s, clock) = scheduler(m, phase);
    let mut raw = Raw::default();
    let at = |ms: u64| clock.set_ns(t0(phase) + ms * MS);
    let long: Vec<Vec<u32>> = (0..4)
        .map(|i| tokens(2000 + 100 * i, 1000 * i as u32))
        .collect();
    for i in 0..12u64 {
        let prompt = match i % 3 {
            0 => long[(i / 3) as usize].clone(), // new long prompt: P/D
            1 => tokens(600 + 20 * i as usize, 7 * i as u32), // short: local prefill
            _ => long[(i / 3) as usize].clone(), // the long prompt again: cached
        };
        let id = format!("p{phase}-r{i}");
        let arrival = 1000 * i;
        at(arrival);
        let d = s
            .pick(&Request::with_tokens(&id, "llama", prompt))
            .expect("pick");
        for t in &d.explanation.profiles {
            if let Some(w) = t.picked.first() {
                raw.routing_scores
                    .push(t.total_of(w).expect("winner scored"));
            }
        }
        let decode = d.targets[0].name.clone();
        let pd = d.prefill_target.as_ref().map(|t| t.name.clone());
        raw.disaggregated += usize::from(pd.is_some());
        let mut now = arrival;
        if pd.is_some() {
            now += 120 + 10 * i;
            at(now);
            assert!(s.on_prefill_done(&id));
            now += 30;
        } else {
            now += 40 + 25 * i;
        }
        at(now);
        assert!(s.on_first_token(&id));
        raw.ttft.push((now - arrival) as f64 / 1000.0);
        let n_out = 2 + i;
        let mut sent = 1;
        while sent < n_out {
            let chunk = (n_out - sent).min(3);
            now += 15 * chunk + i;
            at(now);
            s.on_tokens(&id, chunk);
            sent += chunk;
        }
        at(now + 1);
        let pool = role(&decode);
        if i == 4 {
            s.on_error(&id, RequestErrorKind::Upstream);
            raw.finish(["llama", pool, "decode", &decode, "error_engine"], n_out);
            continue;
        }
        let cached = if i % 3 == 2 { 1024 } else { 0 };
        s.on_complete(&id, Some(cached));
        raw.finish(["llama", pool, "decode", &decode, "ok"], n_out);
        let kv_pool = role(pd.as_deref().unwrap_or(&decode)).to_owned();
        let e = raw.kv_hits.entry(kv_pool).or_default();
        e.0 += f64::from(u8::from(cached > 0));
        e.1 += 1.0;
    }
    // Two requests left open after their first token.
    for i in 0..2u64 {
        let id = format!("p{phase}-open{i}");
        let arrival = 20_000 + 1000 * i;
        at(arrival);
        let d = s
            .pick(&Request::with_tokens(
                &id,
                "llama",
                tokens(300, 99 + i as u32),
            ))
            .expect("pick");
        for t in &d.explanation.profiles {
            if let Some(w) = t.picked.first() {
                raw.routing_scores
                    .push(t.total_of(w).expect("winner scored"));
            }
        }
        at(arrival + 70);
        assert!(s.on_first_token(&id));
        raw.ttft.push(0.07);
    }
    // Rejections: a model nobody serves (503), and a subset holding only the
    // prefill endpoint, which the decode profile filters out (429).
    at(30_000);
    let e = s
        .pick(&Request::with_tokens(
            format!("p{phase}-x"),
            "qwen",
            tokens(10, 1),
        ))
        .unwrap_err();
    assert!(matches!(e, ScheduleError::NoEndpoints { .. }));
    raw.finish(["qwen", "default", "none", "none", "rejected_503"], 0);
    let r = Request::with_tokens(format!("p{phase}-y"), "llama", tokens(10, 2))
        .header("x-gateway-destination-endpoint-subset", "10.0.0.3:8000");
    let e = s.pick(&r).unwrap_err();
    assert_eq!(e.code(), 429, "{e}");
    let profile = match &e {
        ScheduleError::ResourceExhausted {
            profile: Some(p), ..
        } => p.clone(),
        _ => "none".into(),
    };
    raw.finish(["llama", "default", &profile, "none", "rejected_429"], 0);
    // KV events: in order, a gap, a restart, an undecodable payload.
    let stored = |n: u64, medium: Option<&str>| {
        KvEvent::BlockStored(BlockStored {
            block_hashes: (0..n).map(|k| HashValue::Int(i128::from(k + 1))).collect(),
            token_ids: (0..n * 16).collect(),
            block_size: 16,
            medium: medium.map(str::to_owned),
            ..Default::default()
        })
    };
    let batch = |events: Vec<KvEvent>| {
        encode_event_batch(
            &EventBatch {
                ts: 0.0,
                data_parallel_rank: None,
                events,
                skipped_events: 0,
            },
            EventLayout::V0_33,
        )
    };
    at(40_000);
    for (ep, seq, events) in [
        ("d1", 1, vec![stored(4, None), stored(2, Some("CPU"))]),
        (
            "d1",
            2,
            vec![KvEvent::BlockRemoved(BlockRemoved {
                block_hashes: vec![HashValue::Int(1)],
                ..Default::default()
            })],
        ),
        ("d1", 5, vec![stored(3, None)]),
        ("p3", 3, vec![stored(5, None)]),
        ("p3", 1, vec![stored(2, None)]),
    ] {
        s.ingest_kv_events(ep, &batch(events), Some(seq))
            .expect("events");
    }
    assert!(s.ingest_kv_events("d2", b"\xc1 not msgpack", None).is_err());
    // KV movement, on an endpoint of a precise index recording into the same
    // metrics: two blocks offloaded to CPU, one evicted from the GPU and
    // reloaded from CPU; the engine reports its cache usage and capacity.
    let kv = Scheduler::from_config_str(PRECISE)
        .expect("precise config")
        .with_clock(clock.clone())
        .with_seed(7)
        .with_metrics(m.clone());
    let c1 = Endpoint::new("c1", "10.0.0.9:8000")
        .with_label(llmd_sched::model::KV_BYTES_LABEL, "131072")
        .with_metrics(EndpointMetrics {
            kv_cache_usage: 0.5,
            cache_num_blocks: 1000,
            cache_block_size: 16,
            updated_at_ns: t0(phase),
            ..Default::default()
        });
    kv.add_endpoint(c1).expect("endpoint");
    for events in [
        vec![stored(4, None), stored(2, Some("CPU"))],
        vec![KvEvent::BlockRemoved(BlockRemoved {
            block_hashes: vec![HashValue::Int(1)],
            ..Default::default()
        })],
        vec![stored(1, None)],
    ] {
        kv.ingest_kv_events("c1", &batch(events), None)
            .expect("events");
    }
    at(50_000);
    (s, raw)
}
