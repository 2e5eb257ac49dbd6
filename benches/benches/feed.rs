//! The feed's targets (issue: llmd-feed): ingest from ZMQ frames to the
//! index ≥ 1M blocks/s on one core, event-to-index lag p99 ≤ 1 ms on
//! loopback at 100k blocks/s, and no cost added to `pick`.
//!
//! Three measurements, printed one line each (no criterion run;
//! `cargo bench -p llmd-benches --bench feed`):
//! 1. throughput: a publisher (this crate's vLLM-style PUB) sends batches of
//!    64 chained blocks as fast as it can over loopback to a feed with one
//!    ingest worker; blocks/s until all are in the index. Beside it, the
//!    same payloads through `Scheduler::ingest_kv_events` on one thread (the
//!    worker's own cost, without sockets). Both key modes: engine parity
//!    (llm-d's precise config; parent-less blocks re-hashed as a check) and
//!    router keys (every block's tokens hashed).
//! 2. lag: 100 blocks every millisecond (100k blocks/s) for 3 s; the lag
//!    from each batch's timestamp to its ingest, from the feed's histogram
//!    (bucket upper bounds).
//! 3. pick: p50 of a 1024-token pick over 8 endpoints, alternating rounds
//!    with and without the feed ingesting 100k blocks/s.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use llmd_feed::zmq::Publisher;
use llmd_feed::{Feed, FeedOptions, PodSpec};
use llmd_kvindex::events::{
    encode_event_batch, BlockStored, EventBatch, EventLayout, HashValue, KvEvent,
};
use llmd_sched::{Request, Scheduler};

const ENGINE: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {blockSizeTokens: 16, hashSeed: '42'}\n    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: 4000000}}}\n    kvEventsConfig: {discoverPods: false}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n  - pluginRef: max-score-picker\n";

fn router_keys_config() -> String {
    ENGINE.replace(
        "    tokenProcessorConfig: {blockSizeTokens: 16, hashSeed: '42'}\n",
        "",
    )
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Batch `i`: one chain of `n` blocks (keys from `i`), 16 tokens each.
fn batch(i: u64, n: u64) -> Vec<u8> {
    let base = (i + 1) << 20;
    let ev = KvEvent::BlockStored(BlockStored {
        block_hashes: (0..n).map(|k| HashValue::Int((base + k) as i128)).collect(),
        parent_block_hash: None,
        token_ids: (0..n * 16).map(|t| (i * 7919 + t) % 50_000).collect(),
        block_size: 16,
        ..Default::default()
    });
    encode_event_batch(
        &EventBatch {
            ts: now_s(),
            data_parallel_rank: Some(0),
            events: vec![ev],
            skipped_events: 0,
        },
        EventLayout::V0_33,
    )
}

fn feed_for(sched: &Arc<Scheduler>, ev: &str) -> Feed {
    feed_with(sched, ev, 1)
}

fn feed_with(sched: &Arc<Scheduler>, ev: &str, concurrency: usize) -> Feed {
    let feed = Feed::new(
        sched.clone(),
        FeedOptions {
            concurrency,
            queue_capacity: 100_000,
            ..FeedOptions::default()
        },
    );
    let mut spec = PodSpec::new("pod-0", "127.0.0.1:9").with_events(ev);
    spec.scrape = false;
    feed.add_pod(spec).unwrap();
    feed.start().unwrap();
    feed
}

fn wait_subscribed(p: &Publisher) {
    while p.subscribed() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn throughput(name: &str, config: &str) {
    const BATCHES: u64 = 3000;
    const BLOCKS: u64 = 64;
    let payloads: Vec<Vec<u8>> = (0..BATCHES).map(|i| batch(i, BLOCKS)).collect();
    // A long-running router's table has its pages mapped: warm it with as
    // many other blocks first (a fresh 4M-entry table pays a page fault per
    // first touch, which is not the steady state).
    let warm: Vec<Vec<u8>> = (0..BATCHES).map(|i| batch(BATCHES + i, BLOCKS)).collect();
    // The worker's cost alone: decode + apply on this thread.
    let direct = Scheduler::from_config_str(config).unwrap();
    direct
        .add_endpoint(llmd_sched::Endpoint::new("pod-0", "127.0.0.1:9"))
        .unwrap();
    for p in &warm {
        direct.ingest_kv_events("pod-0", p, None).unwrap();
    }
    let t0 = Instant::now();
    for (i, p) in payloads.iter().enumerate() {
        direct.ingest_kv_events("pod-0", p, Some(i as u64)).unwrap();
    }
    let direct_rate = (BATCHES * BLOCKS) as f64 / t0.elapsed().as_secs_f64();
    // Through the sockets.
    let sched = Arc::new(Scheduler::from_config_str(config).unwrap());
    let mut publisher = Publisher::new("kv@127.0.0.1:9@m", 16);
    let ev = publisher.bind("tcp://127.0.0.1:0").unwrap().to_string();
    let feed = feed_for(&sched, &ev);
    wait_subscribed(&publisher);
    for p in &warm {
        publisher.publish(p);
    }
    while feed.stats()["pod-0"].blocks < BATCHES * BLOCKS {
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    for p in &payloads {
        publisher.publish(p);
    }
    let total = 2 * BATCHES * BLOCKS;
    while feed.stats()["pod-0"].blocks < total {
        assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", feed.stats());
        std::thread::sleep(Duration::from_micros(200));
    }
    let rate = (BATCHES * BLOCKS) as f64 / t0.elapsed().as_secs_f64();
    let st = &feed.stats()["pod-0"];
    println!(
        "feed throughput [{name}]: {:.2} M blocks/s through loopback ZMQ (1 ingest worker), {:.2} M blocks/s decode+apply on one thread; {} batches of {BLOCKS}, drops {}, gaps {}",
        rate / 1e6,
        direct_rate / 1e6,
        BATCHES,
        st.queue_drops,
        st.gaps
    );
    feed.stop();
    publisher.close();
}

/// Upper bucket bound at quantile `q` of the feed's lag histogram.
fn lag_quantile(text: &str, q: f64) -> String {
    let mut buckets: Vec<(String, f64)> = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("llmd_feed_event_lag_seconds_bucket{pod=\"pod-0\",le=\"")
        {
            let (le, v) = rest.split_once("\"} ").unwrap();
            buckets.push((le.to_string(), v.parse().unwrap()));
        }
    }
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map_or("?".into(), |(le, _)| le.clone())
}

/// Publishes 100 blocks per millisecond until `stop`.
fn pump(publisher: &Publisher, first: u64, batches: u64) {
    let start = Instant::now();
    for i in 0..batches {
        let due = start + Duration::from_millis(i);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        publisher.publish(&batch(first + i, 100));
    }
}

fn lag(concurrency: usize) {
    let sched = Arc::new(Scheduler::from_config_str(ENGINE).unwrap());
    let mut publisher = Publisher::new("kv@127.0.0.1:9@m", 16);
    let ev = publisher.bind("tcp://127.0.0.1:0").unwrap().to_string();
    let feed = feed_with(&sched, &ev, concurrency);
    wait_subscribed(&publisher);
    pump(&publisher, 0, 3000);
    let t0 = Instant::now();
    while feed.stats()["pod-0"].events < 3000 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let text = feed.render_metrics();
    println!(
        "feed lag at 100k blocks/s for 3 s, concurrency {concurrency}: p50 <= {} s, p99 <= {} s, p99.9 <= {} s (bucket bounds; {} batches)",
        lag_quantile(&text, 0.5),
        lag_quantile(&text, 0.99),
        lag_quantile(&text, 0.999),
        feed.stats()["pod-0"].events
    );
    feed.stop();
    publisher.close();
}

fn pick_p50(sched: &Scheduler, rounds: usize) -> f64 {
    let tokens: Vec<u32> = (0..1024).collect();
    let mut t = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let id = format!("r{i}");
        let req = Request::with_tokens(id.clone(), "", tokens.clone());
        let t0 = Instant::now();
        let _ = sched.pick(&req).unwrap();
        t.push(t0.elapsed().as_secs_f64());
        sched.on_error(&id, llmd_sched::RequestErrorKind::Cancelled);
    }
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn pick_overhead() {
    let sched = Arc::new(Scheduler::from_config_str(ENGINE).unwrap());
    for i in 1..8 {
        sched
            .add_endpoint(llmd_sched::Endpoint::new(
                format!("other-{i}"),
                format!("127.0.0.{i}:9"),
            ))
            .unwrap();
    }
    let mut publisher = Publisher::new("kv@127.0.0.1:9@m", 16);
    let ev = publisher.bind("tcp://127.0.0.1:0").unwrap().to_string();
    let feed = feed_for(&sched, &ev);
    wait_subscribed(&publisher);
    let publisher = Arc::new(publisher);
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    let mut first = 0;
    for _ in 0..4 {
        quiet.push(pick_p50(&sched, 5000));
        let p = publisher.clone();
        let f = first;
        let h = std::thread::spawn(move || pump(&p, f, 400));
        busy.push(pick_p50(&sched, 5000));
        h.join().unwrap();
        first += 400;
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (q, b) = (med(&mut quiet), med(&mut busy));
    println!(
        "pick p50 (8 endpoints, 1024 tokens): {:.2} us quiet, {:.2} us while the feed ingests 100k blocks/s (ratio {:.2}; 4 alternating rounds of 5000)",
        q * 1e6,
        b * 1e6,
        b / q
    );
    feed.stop();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    throughput("engine parity", ENGINE);
    throughput("router keys", &router_keys_config());
    lag(1);
    lag(0);
    pick_overhead();
}
