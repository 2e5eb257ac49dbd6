//! Cost of recording metrics: what the decision path adds per pick, what the
//! host's lifecycle calls cost per request, and one exposition.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llmd_sched::observe::{
    DecisionRecord, Leg, Metrics, MetricsConfig, ProfileSeries, StageSeries, Usage,
};
use std::hint::black_box;
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
        slo: Default::default(),
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

criterion_group!(benches, bench);
criterion_main!(benches);
