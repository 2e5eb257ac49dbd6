//! KV-block index: event ingestion (both key modes), prefix matching (cold and
//! hot, by prompt length, fleet size and index size; the checkpointed lookup
//! and the block-by-block walk, `-walk`), matching beside a
//! full-speed writer, and memory per entry.
//!
//! The 10M-block variants are heavy (≈ 0.5 GB, tens of seconds to fill); they
//! run only with `LLMD_BENCH_10M=1`; `LLMD_BENCH_EPS=8` limits the fleets filled.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llmd_kvindex::events::{BlockRemoved, BlockStored, EventBatch, HashValue, KvEvent};
use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig};
use llmd_kvindex::index::{EndpointId, IndexConfig, KeyMode, KvIndex, PrefixMatches};
use llmd_kvindex::BlockKey;

const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";
const BLOCK_SIZE: usize = 16;
/// Blocks per indexed chain (one long document / conversation each).
const CHAIN: usize = 1000;
/// Chains whose keys are kept for cold queries.
const QUERY_CHAINS: usize = 1000;

/// splitmix64: deterministic keys and choices.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A prefix lookup: the checkpointed one or the block-by-block walk.
type Lookup = fn(&KvIndex, &str, &[BlockKey], &mut PrefixMatches);

fn chain_key(chain: usize, pos: usize) -> u64 {
    mix((chain * CHAIN + pos) as u64)
}

fn parity_mode() -> KeyMode {
    let cfg = HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, BLOCK_SIZE, Some("42"))
        .expect("valid hasher config");
    KeyMode::EngineParity(BlockHasher::new(cfg).expect("valid hasher"))
}

fn index(mode: KeyMode, capacity: usize, endpoints: usize) -> (KvIndex, Vec<EndpointId>) {
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: capacity,
        key_mode: mode,
        max_endpoints: endpoints.max(1024),
        ..IndexConfig::default()
    })
    .expect("valid config");
    let eps = (0..endpoints)
        .map(|i| {
            idx.register_endpoint(&format!("10.0.{}.{}:8000", i / 256, i % 256))
                .expect("slot")
        })
        .collect();
    (idx, eps)
}

fn batch(events: Vec<KvEvent>) -> EventBatch {
    EventBatch {
        ts: 0.0,
        data_parallel_rank: Some(0),
        events,
        skipped_events: 0,
    }
}

/// 64 `BlockStored` events of 16 blocks continuing earlier blocks (parent
/// set), with token ids, and the matching `BlockRemoved` batch.
fn ingest_batches(seed: u64, n: usize) -> Vec<(EventBatch, EventBatch)> {
    (0..n)
        .map(|b| {
            let mut stored = Vec::new();
            let mut removed = Vec::new();
            for e in 0..64u64 {
                let base = seed ^ ((b as u64) << 20 | e << 8);
                let keys: Vec<u64> = (0..16).map(|j| mix(base + j)).collect();
                // The first event of each batch starts at block 0 (router keys
                // can place it); the rest chain onto the previous event.
                let parent = (e > 0).then(|| HashValue::Int(mix(base - 256 + 15).into()));
                stored.push(KvEvent::BlockStored(BlockStored {
                    block_hashes: keys.iter().map(|&k| HashValue::Int(k.into())).collect(),
                    parent_block_hash: parent,
                    token_ids: (0..256).map(|t| mix(base + 1000 + t) % 151_936).collect(),
                    block_size: BLOCK_SIZE as i64,
                    medium: Some("GPU".into()),
                    ..BlockStored::default()
                }));
                removed.push(KvEvent::BlockRemoved(BlockRemoved {
                    block_hashes: keys.iter().map(|&k| HashValue::Int(k.into())).collect(),
                    medium: Some("GPU".into()),
                    ..BlockRemoved::default()
                }));
            }
            (batch(stored), batch(removed))
        })
        .collect()
}

/// Ingestion on one core: store a 1024-block batch and remove the one stored
/// 128 batches earlier (≈ 128k live blocks), so inserts, removals and bucket
/// reuse all happen as in steady state.
fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("index/ingest");
    g.throughput(Throughput::Elements(2 * 64 * 16));
    let batches = ingest_batches(1, 256);
    for (name, mode) in [
        ("engine_parity", parity_mode()),
        (
            "router_keys",
            KeyMode::RouterKeys {
                block_size: BLOCK_SIZE,
            },
        ),
    ] {
        let (idx, eps) = index(mode, 1 << 20, 8);
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                let ep = eps[i % 8];
                let r1 = idx.apply_batch(ep, MODEL, &batches[i % 256].0);
                let r2 = idx.apply_batch(ep, MODEL, &batches[(i + 128) % 256].1);
                i += 1;
                black_box((r1, r2))
            })
        });
    }
    g.finish();
}

/// An index of `blocks` distinct blocks in chains of 1000: each chain is held
/// whole by one endpoint, its first half by a second and its first quarter by
/// a third, so a matching walk goes through the whole prompt.
fn filled(blocks: usize, endpoints: usize) -> (KvIndex, Vec<Vec<BlockKey>>) {
    let chains = blocks / CHAIN;
    let (idx, eps) = index(parity_mode(), blocks * 2, endpoints);
    for ch in 0..chains {
        let keys: Vec<HashValue> = (0..CHAIN)
            .map(|p| HashValue::Int(chain_key(ch, p).into()))
            .collect();
        for (h, len) in [(0u64, CHAIN), (1, CHAIN / 2), (2, CHAIN / 4)] {
            let ep = eps[(mix(ch as u64 * 3 + h) % endpoints as u64) as usize];
            let ev = KvEvent::BlockStored(BlockStored {
                block_hashes: keys[..len].to_vec(),
                block_size: BLOCK_SIZE as i64,
                medium: Some("GPU".into()),
                ..BlockStored::default()
            });
            idx.apply_batch(ep, MODEL, &batch(vec![ev]));
        }
    }
    let s = idx.stats();
    println!(
        "index: {blocks} blocks, {endpoints} endpoints: {} entries, {} (block, endpoint) holdings, \
         table {:.1} MB = {:.1} B/entry, {:.1} B/holding, {} evictions",
        s.entries,
        s.holdings,
        s.table_bytes as f64 / 1e6,
        s.table_bytes as f64 / s.entries as f64,
        s.table_bytes as f64 / s.holdings as f64,
        s.evictions,
    );
    let query = (0..QUERY_CHAINS.min(chains))
        .map(|q| {
            let ch = (mix(q as u64 ^ 0xabc) % chains as u64) as usize;
            (0..CHAIN).map(|p| BlockKey(chain_key(ch, p))).collect()
        })
        .collect();
    (idx, query)
}

fn sizes() -> Vec<usize> {
    let mut s = vec![1_000_000];
    if std::env::var_os("LLMD_BENCH_10M").is_some() {
        s.push(10_000_000);
    }
    s
}

/// Fleet sizes to fill; `LLMD_BENCH_EPS=8,100` narrows the (slow) fills to
/// the ones a run needs.
fn fleets() -> Vec<usize> {
    let all = vec![8, 100, 1000];
    match std::env::var("LLMD_BENCH_EPS") {
        Ok(v) => {
            let picked: Vec<usize> = v.split(',').filter_map(|s| s.trim().parse().ok()).collect();
            if picked.is_empty() {
                all
            } else {
                picked
            }
        }
        Err(_) => all,
    }
}

fn matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("index/match");
    for blocks in sizes() {
        for endpoints in fleets() {
            let (idx, query) = filled(blocks, endpoints);
            let mut out = PrefixMatches::new();
            for len in [64, 512, 1000] {
                g.throughput(Throughput::Elements(len as u64));
                let id = |t: &str| {
                    BenchmarkId::new(format!("{t}/{}M/{endpoints}ep", blocks / 1_000_000), len)
                };
                // The checkpointed lookup, then the same probing every block
                // (no checkpoints): the baseline it is compared with.
                let lookups: [(&str, Lookup); 2] = [
                    ("", KvIndex::match_prefix),
                    ("-walk", KvIndex::match_prefix_walk),
                ];
                for (suffix, lookup) in lookups {
                    // Cold: each query another chain (≈ 128 MB of buckets apart).
                    let mut q = 0usize;
                    g.bench_function(id(&format!("cold{suffix}")), |b| {
                        b.iter(|| {
                            q = (q + 1) % query.len();
                            lookup(&idx, MODEL, &query[q][..len], &mut out);
                            black_box(out.len())
                        })
                    });
                    g.bench_function(id(&format!("hot{suffix}")), |b| {
                        b.iter(|| {
                            lookup(&idx, MODEL, &query[0][..len], &mut out);
                            black_box(out.len())
                        })
                    });
                }
            }
        }
    }
    g.finish();
}

/// Cold 512-block lookups alone and beside a writer thread ingesting at full
/// speed into the same index (other keys, same table).
fn concurrent(c: &mut Criterion) {
    let mut g = c.benchmark_group("index/match_beside_writer");
    g.throughput(Throughput::Elements(512));
    let (idx, query) = filled(1_000_000, 100);
    let idx = Arc::new(idx);
    let batches = Arc::new(ingest_batches(7, 256));
    for writer in [false, true] {
        g.bench_function(if writer { "with_writer" } else { "alone" }, |b| {
            let stop = Arc::new(AtomicBool::new(false));
            let handle = writer.then(|| {
                let (idx, batches, stop) = (idx.clone(), batches.clone(), stop.clone());
                thread::spawn(move || {
                    let ep = EndpointId(99);
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        idx.apply_batch(ep, MODEL, &batches[i % 256].0);
                        idx.apply_batch(ep, MODEL, &batches[(i + 128) % 256].1);
                        i += 1;
                    }
                })
            });
            let mut out = PrefixMatches::new();
            let mut q = 0usize;
            b.iter(|| {
                q = (q + 1) % query.len();
                idx.match_prefix(MODEL, &query[q][..512], &mut out);
                black_box(out.len())
            });
            stop.store(true, Ordering::Relaxed);
            if let Some(h) = handle {
                h.join().expect("writer thread");
            }
        });
    }
    g.finish();
}

/// Approximate mode's routing record (llm-d's default pipeline records every
/// pick's 128 blocks for the picked endpoint): `hot` records one prompt again
/// and again; `cold` records prompts drawn from 16,384 over 64 endpoints
/// (2M blocks, tables far past the caches), each routed before to the same
/// endpoint; `fresh` records prompts never seen (the table fills during
/// the run and then evicts).
fn routing_record(c: &mut Criterion) {
    const BLOCKS: usize = 128;
    const PROMPTS: usize = 16_384;
    const EPS: usize = 64;
    let mut g = c.benchmark_group("index/routing_record");
    g.throughput(Throughput::Elements(BLOCKS as u64));
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 4 << 20,
        key_mode: KeyMode::Approximate {
            block_size: BLOCK_SIZE,
        },
        approx_capacity_per_endpoint: 1 << 20,
        ..IndexConfig::default()
    })
    .expect("valid config");
    let eps: Vec<EndpointId> = (0..EPS)
        .map(|i| {
            idx.register_endpoint(&format!("10.1.0.{i}:8000"))
                .expect("slot")
        })
        .collect();
    let prompts: Vec<Vec<BlockKey>> = (0..PROMPTS)
        .map(|p| {
            (0..BLOCKS)
                .map(|b| BlockKey(mix((p * BLOCKS + b) as u64 ^ 0xA99)))
                .collect()
        })
        .collect();
    for (p, keys) in prompts.iter().enumerate() {
        idx.record_routing(eps[p % EPS], MODEL, keys, 0);
    }
    g.bench_function("hot", |b| {
        b.iter(|| idx.record_routing(eps[0], MODEL, black_box(&prompts[0]), 0))
    });
    let mut i = 0u64;
    g.bench_function("cold", |b| {
        b.iter(|| {
            i += 1;
            let p = (mix(i) % PROMPTS as u64) as usize;
            idx.record_routing(eps[p % EPS], MODEL, black_box(&prompts[p]), 0)
        })
    });
    let mut fresh = vec![BlockKey(0); BLOCKS];
    let mut n = 0u64;
    g.bench_function("fresh", |b| {
        b.iter(|| {
            n += 1;
            for (i, k) in fresh.iter_mut().enumerate() {
                *k = BlockKey(mix((n << 8 | i as u64) ^ 0xF7E5));
            }
            idx.record_routing(eps[(n % EPS as u64) as usize], MODEL, black_box(&fresh), 0)
        })
    });
    g.finish();
}

criterion_group!(benches, ingest, matching, concurrent, routing_record);
criterion_main!(benches);
