//! Cost of recording metrics: what the decision path adds per pick, what the
//! host's lifecycle calls cost per request, and one exposition; and, on a
//! real `Scheduler` (llm-d's default pipeline, 8k-token prompt), a whole
//! `pick` next to the `record_pick` it contains, so the overhead can be read
//! as a fraction of the decision.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llmd_sched::observe::{
    DecisionRecord, Leg, Metrics, MetricsConfig, PickFacts, ProfileSeries, StageSeries, Usage,
};
use llmd_sched::{Endpoint, EndpointMetrics, ManualClock, Request, RequestErrorKind, Scheduler};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENDPOINTS: usize = 16;
const MODELS: [&str; 2] = ["llama", "qwen"];

struct Fixture {
    m: Metrics,
    endpoints: Vec<String>,
    profile: ProfileSeries,
    stages: Vec<StageSeries>,
}

fn fixture() -> Fixture {
    let m = Metrics::new(MetricsConfig::default()).expect("config");
    let endpoints: Vec<String> = (0..ENDPOINTS).map(|i| format!("10.0.0.{i}:8000")).collect();
    for e in &endpoints {
        m.register_endpoint(e, Some("decode"));
    }
    let profile = m.profile_series(
        "default",
        &[
            "prefix-cache-scorer",
            "queue-scorer",
            "kv-cache-utilization-scorer",
        ],
    );
    let stages = ["total", "filter", "score", "pick"]
        .iter()
        .map(|s| m.stage_series(s))
        .collect();
    Fixture {
        m,
        endpoints,
        profile,
        stages,
    }
}

fn decide(f: &Fixture, id: &str, i: usize) {
    let t = Duration::from_micros(i as u64);
    f.m.on_decision(&DecisionRecord {
        request_id: id,
        model: MODELS[i % 2],
        profile: "default",
        arrived: t,
        decided: t + Duration::from_micros(20),
        prompt_tokens: 2048,
        block_size: 16,
        decode: Leg {
            endpoint: &f.endpoints[i % ENDPOINTS],
            predicted_hit_blocks: (i % 64) as u32,
        },
        prefill: None,
        encode: false,
        slo: Default::default(),
        kv_bytes_per_token: None,
        opening: 0,
    });
    f.profile.record(&[0.5, 0.25, 0.75], 3.5, Some(3.25));
    for s in &f.stages {
        s.observe(Duration::from_micros(15));
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(1));
    let f = fixture();
    // About a thousand requests in flight, as in a busy router: the
    // lifecycle table stays at a realistic size between batches.
    let ids: Vec<String> = (0..1024).map(|i| format!("req-{i}")).collect();

    // What Scheduler::pick adds: the decision record, scores and stage times.
    g.bench_function("decision_path", |b| {
        b.iter_custom(|iters| {
            let n = iters as usize;
            let mut spent = Duration::ZERO;
            for chunk in (0..n).collect::<Vec<_>>().chunks(ids.len()) {
                let start = Instant::now();
                for &i in chunk {
                    decide(&f, &ids[i % ids.len()], i);
                }
                spent += start.elapsed();
                for &i in chunk {
                    f.m.on_error(
                        &ids[i % ids.len()],
                        llmd_sched::observe::ErrorKind::Cancelled,
                        Duration::ZERO,
                    );
                }
            }
            spent
        })
    });

    // What the host's response path adds per request: first token, three
    // streamed chunks, completion with usage.
    g.bench_function("lifecycle_calls", |b| {
        b.iter_custom(|iters| {
            let n = iters as usize;
            let mut spent = Duration::ZERO;
            for chunk in (0..n).collect::<Vec<_>>().chunks(ids.len()) {
                for &i in chunk {
                    decide(&f, &ids[i % ids.len()], i);
                }
                let start = Instant::now();
                for &i in chunk {
                    let id = &ids[i % ids.len()];
                    let t = Duration::from_millis(100 + i as u64);
                    f.m.on_first_token(id, t);
                    for k in 1..=3u64 {
                        f.m.on_tokens(id, 4, t + Duration::from_millis(40 * k));
                    }
                    let usage = Usage {
                        prompt_tokens: None,
                        output_tokens: None,
                        cached_tokens: Some(512),
                    };
                    f.m.on_complete(id, usage, t + Duration::from_millis(130));
                }
                spent += start.elapsed();
            }
            spent
        })
    });

    // One scrape of a 16-endpoint, 2-model scheduler.
    g.bench_function("render_16_endpoints", |b| {
        b.iter(|| black_box(f.m.render(Duration::from_secs(1)).len()))
    });
    g.finish();
}

fn prompt(seed: u32) -> Vec<u32> {
    (0..8192u32)
        .map(|i| i.wrapping_mul(2_654_435_761).wrapping_add(seed) % 128_256)
        .collect()
}

fn scheduler(endpoints: usize) -> Scheduler {
    let clock = Arc::new(ManualClock::new(1_000_000_000));
    let s = Scheduler::default().with_clock(clock).with_seed(1);
    for i in 0..endpoints {
        let m = EndpointMetrics {
            waiting_queue_size: (i % 7) as u32,
            kv_cache_usage: (i % 10) as f64 / 10.0,
            updated_at_ns: 1_000_000_000,
            ..Default::default()
        };
        s.add_endpoint(
            Endpoint::new(
                format!("ep{i}"),
                format!("10.0.{}.{}:8000", i / 250, i % 250),
            )
            .with_metrics(m),
        )
        .expect("endpoint");
    }
    s
}

fn bench_scheduler(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe_pick");
    g.throughput(Throughput::Elements(1));
    for n in [10usize, 100] {
        let s = scheduler(n);
        let prompts: Vec<Vec<u32>> = (0..8).map(prompt).collect();
        // Warm the prefix index so later picks see hits.
        for (i, p) in prompts.iter().enumerate() {
            let id = format!("warm-{i}");
            s.pick(&Request::with_tokens(&id, "m", p.clone()))
                .expect("pick");
            s.on_complete(&id, Some(0));
        }
        let reqs: Vec<Request> = (0..64)
            .map(|i| Request::with_tokens(format!("r{i}"), "m", prompts[i % 8].clone()))
            .collect();
        g.bench_function(format!("pick_{n}_endpoints"), |b| {
            let mut i = 0usize;
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let r = &reqs[i % reqs.len()];
                    i += 1;
                    let start = Instant::now();
                    let d = s.pick(r);
                    spent += start.elapsed();
                    black_box(&d);
                    s.on_error(&r.id, RequestErrorKind::Cancelled);
                }
                spent
            })
        });
        let m = s.metrics().clone();
        let d = s.pick(&reqs[0]);
        s.on_error(&reqs[0].id, RequestErrorKind::Cancelled);
        let facts = PickFacts {
            start: 1_000_000_000,
            produced: 1_000_010_000,
            profiled: 1_000_020_000,
            end: 1_000_030_000,
            block_size: 64,
            primary_hit_blocks: 100,
            prefill_hit_blocks: 0,
            kv_bytes_per_token: None,
            lookup_queried_blocks: 130,
            lookup_probed_blocks: 3,
            opening: 0,
        };
        g.bench_function(format!("record_pick_{n}_endpoints"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    m.record_pick(&reqs[0], &d, &facts);
                    spent += start.elapsed();
                    m.on_error(
                        &reqs[0].id,
                        llmd_sched::observe::ErrorKind::Cancelled,
                        Duration::ZERO,
                    );
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_scheduler);
criterion_main!(benches);
