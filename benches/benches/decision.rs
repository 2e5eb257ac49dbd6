//! Decision latency of `Scheduler::pick` with 10 / 100 / 1000 endpoints and an
//! 8k-token prompt, for llm-d's default pipeline (approximate prefix, queue,
//! KV utilization) and for precise prefix routing (vLLM `sha256_cbor` keys,
//! block 16) with P/D disaggregation. Hashing is timed on its own so the rest
//! of the decision can be read off.
//!
//! Criterion reports means; before it runs, a plain timing loop prints p50 and
//! p99 per case (each sample is one `pick`; the explanation is built only when
//! read, so the 100-endpoint cases are also timed with it read). The
//! clock advances 100 µs per request, as a host at 10k requests/s would see,
//! so speculative entries expire on their TTL as they would in production.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use llmd_kvindex::events::{BlockStored, EventBatch, HashValue, KvEvent};
use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig, RequestExtras};
use llmd_sched::plugins::producers::approx_hash::approx_block_hashes;
use llmd_sched::{
    Endpoint, EndpointMetrics, LoadOptions, ManualClock, Request, Scheduler, TraceContext,
};

const PROMPT_TOKENS: usize = 8192;
const FLEETS: [usize; 3] = [10, 100, 1000];

const PRECISE_PD: &str = r#"
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: decode-filter
- type: prefill-filter
- type: precise-prefix-cache-producer
  parameters:
    tokenProcessorConfig: {blockSizeTokens: 16, hashSeed: "42"}
    speculativeIndexing: true
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
- type: inflight-load-producer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
- type: active-request-scorer
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: always-disagg-pd-decider
- type: disagg-profile-handler
  parameters:
    deciders: {prefill: always-disagg-pd-decider}
- type: max-score-picker
schedulingProfiles:
- name: decode
  plugins:
  - {pluginRef: decode-filter}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: active-request-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer}
- name: prefill
  plugins:
  - {pluginRef: prefill-filter}
  - {pluginRef: prefix-cache-scorer, weight: 2}
  - {pluginRef: queue-scorer}
"#;

/// Seeded xorshift64* stream.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn prompt(seed: u64) -> Vec<u32> {
    let mut r = Rng(seed | 1);
    (0..PROMPT_TOKENS)
        .map(|_| (r.next() % 128_256) as u32)
        .collect()
}

fn engine() -> HasherConfig {
    HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 16, Some("42"))
        .expect("valid hasher config")
}

#[derive(Clone, Copy, Debug)]
enum Pipeline {
    Default,
    PrecisePd,
    /// llm-d's default scorers written out, without / with the latency model.
    Scorers,
    SloAware,
    /// The default scorers with the latency model and llmd's
    /// `fleet-latency-scorer`.
    FleetLatency,
}

/// llm-d's default scorers (queue 2, kv-util 2, prefix 3) under a max-score
/// picker, after the `extra` plugins (YAML list items) and their profile
/// references `filters` (first) and `scorers` (after the default three).
fn default_scorers_with(extra: &str, filters: &str, scorers: &str) -> String {
    format!(
        "apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
{extra}- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
{filters}  - {{pluginRef: queue-scorer, weight: 2}}
  - {{pluginRef: kv-cache-utilization-scorer, weight: 2}}
  - {{pluginRef: prefix-cache-scorer, weight: 3}}
{scorers}  - {{pluginRef: max-score-picker}}
"
    )
}

/// The streaming predicted-latency producer.
const LATENCY_PRODUCER: &str =
    "- type: predicted-latency-producer\n  parameters: {streamingMode: true}\n";

fn pipeline_config(p: Pipeline) -> String {
    match p {
        Pipeline::Scorers => default_scorers_with("", "", ""),
        Pipeline::SloAware => default_scorers_with(
            &format!(
                "{LATENCY_PRODUCER}- type: slo-headroom-tier-filter\n- type: latency-scorer\n"
            ),
            "  - {pluginRef: slo-headroom-tier-filter}\n",
            "  - {pluginRef: latency-scorer, weight: 2}\n",
        ),
        Pipeline::FleetLatency => default_scorers_with(
            &format!("{LATENCY_PRODUCER}- type: fleet-latency-scorer\n"),
            "",
            "  - {pluginRef: fleet-latency-scorer, weight: 1}\n",
        ),
        Pipeline::Default | Pipeline::PrecisePd => unreachable!("built in"),
    }
}

impl Pipeline {
    fn name(self) -> &'static str {
        match self {
            Pipeline::Default => "default",
            Pipeline::PrecisePd => "precise+pd",
            Pipeline::Scorers => "scorers",
            Pipeline::SloAware => "slo-aware",
            Pipeline::FleetLatency => "fleet-latency",
        }
    }
}

/// Clock step per request.
const STEP_NS: u64 = 100_000;

/// A scheduler over `n` endpoints with seeded metrics, and its clock; for the
/// precise pipeline every fourth endpoint holds a prefix of the benchmark prompt.
fn fixture(p: Pipeline, n: usize, prompt: &[u32]) -> (Scheduler, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000_000_000));
    let s = match p {
        Pipeline::Default => Scheduler::default(),
        Pipeline::PrecisePd => {
            let opts = LoadOptions {
                engine_hasher: Some(engine()),
                ..Default::default()
            };
            Scheduler::from_config_str_with(PRECISE_PD, opts).expect("bench config loads")
        }
        Pipeline::Scorers | Pipeline::SloAware | Pipeline::FleetLatency => {
            Scheduler::from_config_str(&pipeline_config(p)).expect("bench config loads")
        }
    }
    .with_clock(clock.clone())
    .with_seed(7);
    let mut r = Rng(0x5eed);
    for i in 0..n {
        let m = EndpointMetrics {
            waiting_queue_size: (r.next() % 20) as u32,
            running_requests_size: (r.next() % 40) as u32,
            kv_cache_usage: (r.next() % 1000) as f64 / 1000.0,
            cache_block_size: 16,
            cache_num_blocks: 30_000,
            updated_at_ns: 1_000_000_000,
            ..Default::default()
        };
        let role = if i % 2 == 0 { "decode" } else { "prefill" };
        let mut ep = Endpoint::new(
            format!("pod-{i}"),
            format!("10.{}.{}.{}:8000", i / 65536, (i / 256) % 256, i % 256),
        )
        .with_label("llm-d.ai/role", role)
        .with_metrics(m);
        ep.model = Some("m".into());
        s.add_endpoint(ep).expect("endpoint");
    }
    if let Pipeline::PrecisePd = p {
        let hasher = BlockHasher::new(engine()).expect("hasher");
        let keys = hasher
            .block_keys(prompt, &RequestExtras::default())
            .expect("keys");
        for i in (0..n).step_by(4) {
            let held = 64 + (i * 37) % (keys.len() - 64);
            let ev = KvEvent::BlockStored(BlockStored {
                block_hashes: keys[..held]
                    .iter()
                    .map(|k| HashValue::Int(k.0 as i128))
                    .collect(),
                token_ids: prompt[..held * 16].iter().map(|&t| t as u64).collect(),
                block_size: 16,
                ..Default::default()
            });
            let batch = EventBatch {
                ts: 0.0,
                data_parallel_rank: None,
                events: vec![ev],
                skipped_events: 0,
            };
            s.ingest_kv_batch(&format!("pod-{i}"), &batch)
                .expect("ingest");
        }
    }
    (s, clock)
}

fn request(prompt: &[u32], i: u64) -> Request {
    Request::with_tokens(format!("r{i}"), "m", prompt.to_vec())
}

/// Times `pick` alone: building the request and completing it are outside the sample.
fn time_picks(
    fixture: &(Scheduler, Arc<ManualClock>),
    prompt: &[u32],
    iters: usize,
) -> (Duration, Duration) {
    time_picks_with(fixture, prompt, iters, false)
}

/// [`time_picks`], optionally reading the full explanation inside the sample.
fn time_picks_with(
    (s, clock): &(Scheduler, Arc<ManualClock>),
    prompt: &[u32],
    iters: usize,
    explain: bool,
) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(iters);
    for i in 0..(iters + iters / 10) {
        let req = request(prompt, i as u64);
        clock.advance_ns(STEP_NS);
        let t = Instant::now();
        let d = s.pick(&req);
        if explain {
            if let Ok(d) = &d {
                black_box(d.explanation.full());
            }
        }
        let el = t.elapsed();
        black_box(d.ok());
        s.on_complete(&req.id, None);
        if i >= iters / 10 {
            samples.push(el);
        }
    }
    percentiles(samples)
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort_unstable();
    (v[v.len() / 2], v[(v.len() * 99) / 100])
}

fn time_loop(iters: usize, mut f: impl FnMut(u64)) -> (Duration, Duration) {
    for i in 0..(iters / 10).max(20) {
        f(i as u64);
    }
    let mut samples = Vec::with_capacity(iters);
    for i in 0..iters {
        let t = Instant::now();
        f(1_000_000 + i as u64);
        samples.push(t.elapsed());
    }
    percentiles(samples)
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

/// The percentile report printed before criterion runs.
fn report() {
    let p = prompt(1);
    let hasher = BlockHasher::new(engine()).expect("hasher");
    let (h50, h99) = time_loop(2000, |_| {
        black_box(
            hasher
                .block_keys(black_box(&p), &RequestExtras::default())
                .ok(),
        );
    });
    let (a50, a99) = time_loop(2000, |_| {
        black_box(approx_block_hashes("m", "", black_box(&p), 64, 2048));
    });
    println!("decision latency, 8192-token prompt (p50 / p99, microseconds)");
    println!(
        "  hashing only: sha256_cbor/16 {:.1} / {:.1}; approx xxh64/64 {:.1} / {:.1}",
        us(h50),
        us(h99),
        us(a50),
        us(a99)
    );
    for pipe in [Pipeline::Default, Pipeline::PrecisePd] {
        let hash = if let Pipeline::Default = pipe {
            (a50, a99)
        } else {
            (h50, h99)
        };
        for n in FLEETS {
            let s = fixture(pipe, n, &p);
            let iters = if n >= 1000 { 1000 } else { 3000 };
            let (p50, p99) = time_picks(&s, &p, iters);
            let (s50, s99) = time_picks(&s, &p[..8], iters);
            println!(
                "  {:<11} {:>4} endpoints: pick {:>7.1} / {:>7.1}; minus hashing {:>7.1} / {:>7.1}; 8-token prompt (no full block) {:>6.1} / {:>6.1}",
                pipe.name(),
                n,
                us(p50),
                us(p99),
                us(p50.saturating_sub(hash.0)),
                us(p99.saturating_sub(hash.0)),
                us(s50),
                us(s99)
            );
            if n == 100 {
                let (e50, e99) = time_picks_with(&s, &p, iters, true);
                println!(
                    "  {:<11} {:>4} endpoints, explanation read: pick {:>7.1} / {:>7.1}",
                    pipe.name(),
                    n,
                    us(e50),
                    us(e99)
                );
            }
        }
    }
}

/// The SLO-aware fixture at 100 endpoints with every endpoint's model
/// trained, and the scorers-only fixture beside it, over a 64-token prompt.
fn latency_fixtures(short: &[u32]) -> [(Scheduler, Arc<ManualClock>); 3] {
    let train = |s: &(Scheduler, Arc<ManualClock>)| {
        for i in 0..4000u64 {
            let id = format!("t{i}");
            let mut r = Request::with_tokens(id.clone(), "m", short.to_vec());
            r.slo.ttft_ms = Some(200.0);
            if s.0.pick(&r).is_ok() {
                s.1.advance_ns(20_000_000 + (i % 7) * 1_000_000);
                s.0.on_first_token(&id);
                s.1.advance_ns(100_000_000);
                s.0.on_tokens(&id, 9);
                s.0.on_complete(&id, None);
            }
        }
    };
    let base = fixture(Pipeline::Scorers, 100, short);
    let slo = fixture(Pipeline::SloAware, 100, short);
    train(&slo);
    let fleet = fixture(Pipeline::FleetLatency, 100, short);
    train(&fleet);
    [base, slo, fleet]
}

/// TTFT and TPOT objectives (ms) most endpoints of the trained fixture are
/// predicted to miss (its training met one endpoint state; the others are
/// predicted at about a second: docs/benchmarks.md); the report prints how
/// many meet them.
const MISSED_SLO: (f64, f64) = (200.0, 50.0);
/// Objectives every endpoint meets: the common path.
const MET_SLO: (f64, f64) = (60_000.0, 1_000.0);

/// Times `n` picks of requests with TTFT and TPOT objectives `slo` (p50,
/// p99 of the samples after the first 10%).
fn time_slo_picks(
    (s, clock): &(Scheduler, Arc<ManualClock>),
    short: &[u32],
    n: u64,
    slo: (f64, f64),
) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..(n + n / 10) {
        let mut r = Request::with_tokens(format!("b{i}"), "m", short.to_vec());
        (r.slo.ttft_ms, r.slo.tpot_ms) = (Some(slo.0), Some(slo.1));
        clock.advance_ns(STEP_NS);
        let t = Instant::now();
        let d = s.pick(&r);
        let el = t.elapsed();
        black_box(d.ok());
        s.on_complete(&r.id, None);
        if i >= n / 10 {
            samples.push(el);
        }
    }
    percentiles(samples)
}

/// What the latency model adds to a pick at 100 endpoints: llm-d's default
/// scorers alone vs the same with `predicted-latency-producer` (a prediction
/// per endpoint), `slo-headroom-tier-filter` and `latency-scorer`, the
/// request carrying TTFT/TPOT objectives, every endpoint's model trained
/// first. Rounds alternate between the two; a 64-token prompt keeps hashing
/// out of the difference (target: <= 2 us at p99).
/// Endpoints the producer predicts to meet objectives `slo` in one pick.
fn endpoints_meeting(
    (s, clock): &(Scheduler, Arc<ManualClock>),
    short: &[u32],
    slo: (f64, f64),
) -> usize {
    let mut r = Request::with_tokens("probe".to_string(), "m", short.to_vec());
    (r.slo.ttft_ms, r.slo.tpot_ms) = (Some(slo.0), Some(slo.1));
    clock.advance_ns(STEP_NS);
    let Ok(d) = s.pick(&r) else { return 0 };
    let meeting = d
        .explanation
        .full()
        .predicted_latency
        .iter()
        .filter(|p| p.info.ttft_valid && p.info.tpot_valid)
        .count();
    s.on_complete(&r.id, None);
    meeting
}

fn report_latency_model() {
    let p = prompt(3);
    let short = &p[..64];
    let [base, slo, fleet] = latency_fixtures(short);
    // Which path each row takes: how many endpoints meet its objectives.
    let paths = |when: &str| {
        for (objectives, name) in [(MISSED_SLO, "missed"), (MET_SLO, "met")] {
            let meeting = endpoints_meeting(&slo, short, objectives);
            println!(
                "  {when}, objectives {name}: {meeting} of 100 endpoints predicted to meet them"
            );
        }
    };
    paths("before the rounds");
    println!("latency model at 100 endpoints, 64-token prompt (p50 / p99, microseconds; rounds alternate)");
    for round in 0..3 {
        let (b50, b99) = time_slo_picks(&base, short, 2000, MISSED_SLO);
        let (s50, s99) = time_slo_picks(&slo, short, 2000, MISSED_SLO);
        let (f50, f99) = time_slo_picks(&fleet, short, 2000, MISSED_SLO);
        let (m50, m99) = time_slo_picks(&slo, short, 2000, MET_SLO);
        // p50 / p99 of a path, and what it adds to the scorers alone.
        let added = |p50: Duration, p99: Duration| {
            format!(
                "{:.2} / {:.2}; added {:.2} / {:.2}",
                us(p50),
                us(p99),
                us(p50.saturating_sub(b50)),
                us(p99.saturating_sub(b99))
            )
        };
        println!(
            "  round {round}: scorers {:.2} / {:.2}; with the latency model {}",
            us(b50),
            us(b99),
            added(s50, s99)
        );
        println!(
            "           producer + fleet-latency-scorer {}",
            added(f50, f99)
        );
        println!(
            "           with the latency model, objectives met everywhere {}",
            added(m50, m99)
        );
    }
    paths("after the rounds");
}

/// What a `traceparent` adds to a pick: parsing it, deriving the scheduling
/// span and writing the header to forward (target: <= 300 ns).
fn bench_trace_context(c: &mut Criterion) {
    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut g = c.benchmark_group("decision/trace_context");
    let mut now = 0u64;
    g.bench_function("child_span_and_header", |b| {
        b.iter(|| {
            now += 1;
            let (t, _) = TraceContext::child_of(Some(black_box(TP)), None, "req-1", now);
            t.map(|t| t.traceparent())
        })
    });
    g.bench_function("absent", |b| {
        b.iter(|| TraceContext::child_of(black_box(None), None, "req-1", 0))
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    bench_trace_context(c);
    let p = prompt(1);
    for pipe in [Pipeline::Default, Pipeline::PrecisePd] {
        let mut g = c.benchmark_group(format!("decision/{}", pipe.name()));
        g.throughput(Throughput::Elements(1));
        for n in FLEETS {
            let (s, clock) = fixture(pipe, n, &p);
            let mut i = 0u64;
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter_batched(
                    || {
                        i += 1;
                        clock.advance_ns(STEP_NS);
                        request(&p, i)
                    },
                    |req| {
                        let d = s.pick(&req);
                        s.on_complete(&req.id, None);
                        d.ok()
                    },
                    criterion::BatchSize::SmallInput,
                )
            });
        }
        g.finish();
    }
}

/// `LLMD_DECISION_PROFILE=default:100[:tokens]` (or `precise+pd:...`,
/// `slo-aware`, `fleet-latency`): picks
/// in a loop for ~5 s over that one case and exits, for a profiler to attach to.
fn profile_one(case: &str) {
    let mut parts = case.split(':');
    let pipe = parts.next().unwrap_or("default");
    let n = parts.next().unwrap_or("100");
    let tokens: usize = parts
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(PROMPT_TOKENS)
        .min(PROMPT_TOKENS);
    if pipe == "slo-aware" || pipe == "fleet-latency" {
        // A latency model's pipeline, trained as in its report.
        let p = prompt(3);
        let [_, slo, fleet] = latency_fixtures(&p[..64]);
        let s = if pipe == "slo-aware" { slo } else { fleet };
        let t = Instant::now();
        let mut picks = 0u64;
        while t.elapsed() < Duration::from_secs(5) {
            time_slo_picks(&s, &p[..64], 1000, MISSED_SLO);
            picks += 1100;
        }
        println!("{pipe} 100: {picks} picks");
        return;
    }
    let pipe = match pipe {
        "precise+pd" => Pipeline::PrecisePd,
        _ => Pipeline::Default,
    };
    let n: usize = n.parse().unwrap_or(100);
    let p = prompt(1);
    let s = fixture(pipe, n, &p);
    let t = Instant::now();
    let mut picks = 0usize;
    while t.elapsed() < Duration::from_secs(5) {
        time_picks(&s, &p[..tokens], 1000);
        picks += 1100;
    }
    println!("{} {n}: {picks} picks", pipe.name());
}

fn main() {
    if let Ok(case) = std::env::var("LLMD_DECISION_PROFILE") {
        return profile_one(&case);
    }
    if std::env::var_os("LLMD_DECISION_LATENCY_MODEL").is_some() {
        return report_latency_model();
    }
    report();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
