//! A scripted, deterministic workload for the metrics tests, plus the raw
//! values it produced so tests can compute expected query results without
//! reading the metrics back.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod promql;

use llmd_kvindex::Tier;
use llmd_sched::observe::{
    DecisionRecord, ErrorKind, EventStreamCounts, Leg, Metrics, MetricsConfig, ProfileSeries,
    RejectReason, RejectRecord, SloTargets, StageSeries, Usage,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// Decode endpoints (pool `decode`) and the prefill endpoint (pool `prefill`).
pub const D1: &str = "10.0.0.1:8000";
/// Second decode endpoint.
pub const D2: &str = "10.0.0.2:8000";
/// Prefill endpoint.
pub const P1: &str = "10.0.0.3:8000";
/// Scorers of both profiles, in run order.
pub const SCORERS: [&str; 3] = [
    "prefix-cache-scorer",
    "queue-scorer",
    "kv-cache-utilization-scorer",
];

/// Raw values one phase produced.
#[derive(Debug, Default)]
pub struct Raw {
    /// TTFT of every request that produced a first token (seconds).
    pub ttft: Vec<f64>,
    /// Final weighted score of every pick.
    pub routing_scores: Vec<f64>,
    /// (output tokens sum, request count) per (model, pool, profile, endpoint, outcome).
    pub output_tokens: BTreeMap<Vec<(String, String)>, (f64, f64)>,
    /// (engine-reported hits, requests with reported usage) per pool.
    pub kv_hits: BTreeMap<String, (f64, f64)>,
}

impl Raw {
    fn finish(
        &mut self,
        model: &str,
        pool: &str,
        profile: &str,
        ep: &str,
        outcome: &str,
        tokens: u64,
    ) {
        let key = [
            ("model", model),
            ("pool", pool),
            ("profile", profile),
            ("endpoint", ep),
            ("outcome", outcome),
        ]
        .iter()
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
        ..MetricsConfig::default()
    }
}

/// Pre-resolved handles, as a scheduler would hold them.
pub struct Handles {
    decode: ProfileSeries,
    prefill: ProfileSeries,
    stages: Vec<StageSeries>,
}

/// Declares the fleet and resolves the handles.
pub fn setup(m: &Metrics) -> Handles {
    m.register_endpoint(D1, Some("decode"));
    m.register_endpoint(D2, Some("decode"));
    m.register_endpoint(P1, Some("prefill"));
    Handles {
        decode: m.profile_series("decode", &SCORERS),
        prefill: m.profile_series("prefill", &SCORERS),
        stages: ["total", "filter", "score", "pick"]
            .iter()
            .map(|s| m.stage_series(s))
            .collect(),
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Runs one phase; phases with different `phase` numbers are identical
/// except for request ids and the clock offset, so every counter grows by
/// the same amount in each.
pub fn run_phase(m: &Metrics, h: &Handles, phase: u64) -> Raw {
    let mut raw = Raw::default();
    let t0 = phase * 1_000_000; // ms
    let slo = SloTargets::default();
    // 12 colocated requests: model "llama" on D1, "qwen" on D2.
    for i in 0..12u64 {
        let (model, ep) = if i % 3 == 2 {
            ("qwen", D2)
        } else {
            ("llama", D1)
        };
        let id = format!("p{phase}-c{i}");
        let arrived = ms(t0 + i * 1000);
        let decided = arrived + Duration::from_micros(200 + 50 * i);
        let blocks = (i % 4) as u32;
        m.on_decision(&DecisionRecord {
            request_id: &id,
            model,
            profile: "decode",
            arrived,
            decided,
            prompt_tokens: 256 + 16 * i as u32,
            block_size: 16,
            decode: Leg {
                endpoint: ep,
                predicted_hit_blocks: blocks,
            },
            prefill: None,
            slo,
        });
        let raw_scores = [blocks as f64 / 4.0, 1.0 - i as f64 / 12.0, 0.5];
        let total = 3.0 * raw_scores[0] + 2.0 * raw_scores[1] + 2.0 * raw_scores[2];
        h.decode
            .record(&raw_scores, total, Some(total - 0.05 * (i % 5) as f64));
        raw.routing_scores.push(total);
        for (k, s) in h.stages.iter().enumerate() {
            s.observe(Duration::from_micros(5 + 3 * i + 10 * k as u64));
        }
        let ttft = 30 + 45 * i; // 30 ms .. 525 ms
        let first = arrived + ms(ttft);
        m.on_first_token(&id, first);
        raw.ttft.push(ttft as f64 / 1000.0);
        let n_out = 1 + 3 * i;
        let mut t = first;
        let mut sent = 1;
        while sent < n_out {
            let chunk = (n_out - sent).min(4);
            t += ms(12 * chunk + i);
            m.on_tokens(&id, chunk as u32, t);
            sent += chunk;
        }
        let cached = if i % 3 == 0 { 0 } else { 16 * (i as u32 % 4) };
        m.on_complete(
            &id,
            Usage {
                prompt_tokens: None,
                output_tokens: None,
                cached_tokens: Some(cached),
            },
            t + ms(1),
        );
        raw.finish(model, "decode", "decode", ep, "ok", n_out);
        let e = raw.kv_hits.entry("decode".into()).or_default();
        e.0 += f64::from(u8::from(cached > 0));
        e.1 += 1.0;
    }
    // 4 P/D requests: prefill on P1, decode on D2.
    for i in 0..4u64 {
        let id = format!("p{phase}-pd{i}");
        let arrived = ms(t0 + 20_000 + i * 1000);
        let decided = arrived + ms(1);
        m.on_decision(&DecisionRecord {
            request_id: &id,
            model: "llama",
            profile: "decode",
            arrived,
            decided,
            prompt_tokens: 4096,
            block_size: 16,
            decode: Leg {
                endpoint: D2,
                predicted_hit_blocks: 0,
            },
            prefill: Some(Leg {
                endpoint: P1,
                predicted_hit_blocks: 64 * i as u32,
            }),
            slo,
        });
        let d_scores = [0.0, 0.8, 0.6];
        h.decode.record(&d_scores, 2.8, Some(2.5));
        let p_scores = [i as f64 / 4.0, 0.9, 0.7];
        let p_total = 3.0 * p_scores[0] + 2.0 * p_scores[1] + 2.0 * p_scores[2];
        h.prefill.record(&p_scores, p_total, None);
        raw.routing_scores.extend([2.8, p_total]);
        m.on_prefill_done(&id, decided + ms(150 + 20 * i));
        let ttft = 1 + 150 + 20 * i + 30;
        m.on_first_token(&id, arrived + ms(ttft));
        raw.ttft.push(ttft as f64 / 1000.0);
        m.on_tokens(&id, 15, arrived + ms(ttft + 150));
        let cached = 1024 * i as u32;
        m.on_complete(
            &id,
            Usage {
                prompt_tokens: Some(4096),
                output_tokens: Some(16),
                cached_tokens: Some(cached),
            },
            arrived + ms(ttft + 151),
        );
        raw.finish("llama", "decode", "decode", D2, "ok", 16);
        let e = raw.kv_hits.entry("prefill".into()).or_default();
        e.0 += f64::from(u8::from(cached > 0));
        e.1 += 1.0;
    }
    // 2 engine errors on D1 after a few tokens.
    for i in 0..2u64 {
        let id = format!("p{phase}-err{i}");
        let arrived = ms(t0 + 30_000 + i * 1000);
        m.on_decision(&DecisionRecord {
            request_id: &id,
            model: "llama",
            profile: "decode",
            arrived,
            decided: arrived + ms(1),
            prompt_tokens: 512,
            block_size: 16,
            decode: Leg {
                endpoint: D1,
                predicted_hit_blocks: 1,
            },
            prefill: None,
            slo,
        });
        h.decode.record(&[0.25, 0.5, 0.5], 2.75, Some(2.7));
        raw.routing_scores.push(2.75);
        m.on_first_token(&id, arrived + ms(90));
        raw.ttft.push(0.09);
        m.on_tokens(&id, 2, arrived + ms(130));
        m.on_error(&id, ErrorKind::Engine, arrived + ms(400));
        raw.finish("llama", "decode", "decode", D1, "error_engine", 3);
    }
    // One 429 and one 503.
    for (i, reason) in [RejectReason::Saturated, RejectReason::NoEndpoints]
        .into_iter()
        .enumerate()
    {
        let arrived = ms(t0 + 40_000 + i as u64 * 1000);
        m.on_rejected(&RejectRecord {
            model: "qwen",
            profile: "decode",
            reason,
            arrived,
            decided: arrived + ms(2),
            slo,
        });
        let outcome = if i == 0 {
            "rejected_429"
        } else {
            "rejected_503"
        };
        raw.finish("qwen", "default", "decode", "none", outcome, 0);
    }
    // Two requests left in flight on D1 (first token seen).
    for i in 0..2u64 {
        let id = format!("p{phase}-open{i}");
        let arrived = ms(t0 + 50_000 + i * 1000);
        m.on_decision(&DecisionRecord {
            request_id: &id,
            model: "llama",
            profile: "decode",
            arrived,
            decided: arrived + ms(1),
            prompt_tokens: 1000,
            block_size: 16,
            decode: Leg {
                endpoint: D1,
                predicted_hit_blocks: 0,
            },
            prefill: None,
            slo,
        });
        h.decode.record(&[0.0, 0.4, 0.5], 1.8, Some(1.7));
        raw.routing_scores.push(1.8);
        m.on_first_token(&id, arrived + ms(60));
        raw.ttft.push(0.06);
    }
    // Event streams and index sizes.
    for (k, ep) in [D1, D2, P1].into_iter().enumerate() {
        let k = k as u64;
        m.on_event_batch(
            ep,
            &EventStreamCounts {
                applied: 100 + 10 * k,
                unknown_tags: k,
                decode_errors: u64::from(k == 2),
                sequence_gaps: 1,
                restarts: u64::from(k == 1),
            },
            ms(t0 + 55_000 + 1000 * k),
        );
        m.set_index_blocks(ep, Tier::Gpu, 1000 * (phase + 1) + k);
        m.set_index_blocks(ep, Tier::Cpu, 10 * k);
    }
    raw
}

/// The clock reading at the end of `phase`.
pub fn end_of(phase: u64) -> Duration {
    ms(phase * 1_000_000 + 60_000)
}
