//! Entries lost below capacity, and what it costs: the shared-prefix workload
//! of the index's fidelity check, run with the table sized at a multiple of
//! the entries stored.
//!
//! Workload: groups of 16 chains of 1000 blocks; the chains of a group share
//! a prefix of 64–512 blocks (per group), the rest of each chain is its own.
//! Chain `c` of a group is held by endpoint `c % 8`, so each of the 8
//! endpoints holds every group's prefix once (≈ 14 % of holdings) and two
//! tails. Events are engine-parity `BlockStored`s of 16 blocks each, parent
//! chained, applied on one thread. Then 4,000 chains are looked up (1000
//! blocks each) for their own endpoint: every lookup must match all 1000.
//!
//! `LLMD_LOSS_BLOCKS` (default 1,000,000; 10,000,000 for the full check) sets
//! the distinct blocks stored; `LLMD_LOSS_SIZING` (default 1.25) the table
//! capacity as a multiple of the entries stored. Prints one line of results;
//! no criterion run (`cargo bench -p llmd-benches --bench index_loss`).
//! `LLMD_LOSS_HOT` (default 2,000) sets the hot lookups, for a profiler.
//!
//! Lookup timings: `cold` is each query's first lookup (no checkpoint of it
//! exists yet; the lookup writes them). Then the same 4,000 queries are run
//! again in passes that alternate the checkpointed lookup and the
//! block-by-block walk (`match_prefix_walk`), each pass touching far more
//! memory than the caches hold, so every pass is memory-cold; `hot` repeats
//! one query, alternating the two in rounds of 100.

use std::time::Instant;

use llmd_kvindex::events::{BlockRemoved, BlockStored, EventBatch, HashValue, KvEvent};
use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig};
use llmd_kvindex::index::{IndexConfig, KeyMode, KvIndex, PrefixMatches};
use llmd_kvindex::BlockKey;

const CHAIN: usize = 1000;
const CHAINS_PER_GROUP: usize = 16;
const ENDPOINTS: usize = 8;
const EVENT_BLOCKS: usize = 16;
const LOOKUPS: usize = 4000;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn prefix_len(group: usize) -> usize {
    64 + (mix(group as u64 ^ 0xabcd) % 449) as usize
}

/// Keys of chain `c` of `group`: the group's prefix, then the chain's own.
fn chain_keys(group: usize, c: usize) -> Vec<u64> {
    let p = prefix_len(group);
    (0..CHAIN)
        .map(|i| {
            if i < p {
                mix(((group as u64) << 40) | i as u64)
            } else {
                mix((1 << 63) | ((group * CHAINS_PER_GROUP + c) as u64) << 20 | i as u64)
            }
        })
        .collect()
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let blocks = env("LLMD_LOSS_BLOCKS", 1e6) as usize;
    let sizing = env("LLMD_LOSS_SIZING", 1.25);
    let per_group = |g: usize| prefix_len(g) + CHAINS_PER_GROUP * (CHAIN - prefix_len(g));
    let mut groups = 0;
    let mut distinct = 0;
    while distinct < blocks {
        distinct += per_group(groups);
        groups += 1;
    }
    let cfg = HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 16, Some("42")).unwrap();
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: (distinct as f64 * sizing) as usize,
        key_mode: KeyMode::EngineParity(BlockHasher::new(cfg).unwrap()),
        ..IndexConfig::default()
    })
    .unwrap();
    let eps: Vec<_> = (0..ENDPOINTS)
        .map(|i| idx.register_endpoint(&format!("e{i}")).unwrap())
        .collect();
    // Ingest.
    let start = Instant::now();
    let mut ops = 0u64;
    let mut expected_holdings = 0u64;
    let mut prefix_holdings = 0u64;
    for g in 0..groups {
        let mut seen_prefix = [false; ENDPOINTS];
        for c in 0..CHAINS_PER_GROUP {
            let keys = chain_keys(g, c);
            let ep = c % ENDPOINTS;
            let events = keys
                .chunks(EVENT_BLOCKS)
                .enumerate()
                .map(|(j, chunk)| {
                    KvEvent::BlockStored(BlockStored {
                        block_hashes: chunk.iter().map(|&k| HashValue::Int(k.into())).collect(),
                        parent_block_hash: (j > 0)
                            .then(|| HashValue::Int(keys[j * EVENT_BLOCKS - 1].into())),
                        block_size: 16,
                        ..Default::default()
                    })
                })
                .collect();
            let batch = EventBatch {
                ts: 0.0,
                data_parallel_rank: None,
                events,
                skipped_events: 0,
            };
            idx.apply_batch(eps[ep], "m", &batch);
            ops += CHAIN as u64;
            let p = prefix_len(g) as u64;
            if !seen_prefix[ep] {
                seen_prefix[ep] = true;
                expected_holdings += p;
                prefix_holdings += p;
            }
            expected_holdings += CHAIN as u64 - p;
        }
    }
    let ingest_s = start.elapsed().as_secs_f64();
    let st = idx.stats();
    let held: u64 = st
        .endpoints
        .iter()
        .map(|e| e.blocks.iter().sum::<u64>())
        .sum();
    // Lookups: each sampled chain for its own endpoint.
    let chains = groups * CHAINS_PER_GROUP;
    let mut out = PrefixMatches::new();
    let (mut short, mut zero) = (0, 0);
    let mut cold = Vec::with_capacity(LOOKUPS);
    let queries: Vec<(usize, usize, Vec<BlockKey>)> = (0..LOOKUPS)
        .map(|i| {
            let c = (mix(i as u64 ^ 0x5eed) % chains as u64) as usize;
            let keys = chain_keys(c / CHAINS_PER_GROUP, c % CHAINS_PER_GROUP);
            (
                c % CHAINS_PER_GROUP % ENDPOINTS,
                prefix_len(c / CHAINS_PER_GROUP),
                keys.into_iter().map(BlockKey).collect(),
            )
        })
        .collect();
    // Over capacity (`LLMD_LOSS_SIZING` < 1): how much of each chain, and of
    // its group's shared prefix, is still matched.
    let (mut prefix_intact, mut matched) = (0, 0u64);
    for (ep, prefix, keys) in &queries {
        let t = Instant::now();
        idx.match_prefix("m", keys, &mut out);
        cold.push(t.elapsed().as_secs_f64() * 1e6);
        let n = out.get(eps[*ep]).map_or(0, |m| m.consecutive_blocks);
        matched += u64::from(n);
        prefix_intact += usize::from(n as usize >= *prefix);
        match n {
            n if n as usize == CHAIN => {}
            0 => {
                short += 1;
                zero += 1;
            }
            _ => short += 1,
        }
    }
    type Lookup = fn(&KvIndex, &str, &[BlockKey], &mut PrefixMatches);
    let ckpt: Lookup = KvIndex::match_prefix;
    let walk: Lookup = KvIndex::match_prefix_walk;
    let mut probed = Vec::with_capacity(LOOKUPS);
    let mut timed_pass = |f: Lookup, probed: &mut Vec<f64>| -> Vec<f64> {
        probed.clear();
        queries
            .iter()
            .map(|(_, _, keys)| {
                let t = Instant::now();
                f(&idx, "m", keys, &mut out);
                let us = t.elapsed().as_secs_f64() * 1e6;
                probed.push(f64::from(out.probed_blocks()));
                us
            })
            .collect()
    };
    let (mut again, mut again_walk) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        again.extend(timed_pass(ckpt, &mut probed));
        let probed_ckpt = p50(probed.clone());
        again_walk.extend(timed_pass(walk, &mut probed));
        probed = vec![probed_ckpt];
    }
    let probed_ckpt = probed[0];
    let hot_n = env("LLMD_LOSS_HOT", 2000.0) as usize;
    let (mut hot, mut hot_walk) = (Vec::new(), Vec::new());
    for round in 0..hot_n.div_ceil(100) * 2 {
        let (f, v) = if round % 2 == 0 {
            (ckpt, &mut hot)
        } else {
            (walk, &mut hot_walk)
        };
        for _ in 0..100 {
            let t = Instant::now();
            f(&idx, "m", &queries[0].2, &mut out);
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    // Under eviction churn: before each lookup every endpoint removes one
    // block (the deepest it still holds of one of its chains, chains taken
    // in turn: vLLM frees a finished request's blocks tail first), as a
    // full engine does while it serves. Each removal raises the endpoint's
    // epoch, so no checkpoint survives from one lookup to the next.
    let mut churn = Vec::with_capacity(LOOKUPS);
    let mut churn_probed = Vec::with_capacity(LOOKUPS);
    let mut depth = vec![CHAIN; chains];
    let mut turn = [0usize; ENDPOINTS];
    let own: Vec<Vec<usize>> = (0..ENDPOINTS)
        .map(|e| {
            (0..chains)
                .filter(|c| c % CHAINS_PER_GROUP % ENDPOINTS == e)
                .collect()
        })
        .collect();
    // Then the same churn while lookups go round a working set of 64
    // prompts (each looked up again after 64 removals per endpoint): the
    // epoch log (`epochs.rs`) keeps their checkpoints usable.
    let working_set = 64.min(queries.len());
    let mut churn_set = Vec::with_capacity(LOOKUPS);
    let mut churn_set_probed = Vec::with_capacity(LOOKUPS);
    let order = (0..queries.len()).chain((0..LOOKUPS).map(|k| k % working_set));
    for (k, q) in order.enumerate() {
        let keys = &queries[q].2;
        for e in 0..ENDPOINTS {
            let c = own[e][turn[e] % own[e].len()];
            turn[e] += 1;
            let g = c / CHAINS_PER_GROUP;
            // Tails only: the group's shared prefix stays.
            if depth[c] > prefix_len(g) {
                depth[c] -= 1;
                let key = chain_keys(g, c % CHAINS_PER_GROUP)[depth[c]];
                let batch = EventBatch {
                    ts: 0.0,
                    data_parallel_rank: None,
                    events: vec![KvEvent::BlockRemoved(BlockRemoved {
                        block_hashes: vec![HashValue::Int(key.into())],
                        ..Default::default()
                    })],
                    skipped_events: 0,
                };
                idx.apply_batch(eps[e], "m", &batch);
            }
        }
        let t = Instant::now();
        idx.match_prefix("m", keys, &mut out);
        let us = t.elapsed().as_secs_f64() * 1e6;
        if k < queries.len() {
            churn.push(us);
            churn_probed.push(f64::from(out.probed_blocks()));
        } else if k >= queries.len() + working_set {
            // After each prompt of the set was looked up once.
            churn_set.push(us);
            churn_set_probed.push(f64::from(out.probed_blocks()));
        }
    }
    println!(
        "blocks {distinct} chains {chains} entries {} capacity {} (sizing {sizing}, {:.0}% full) | \
         lost holdings {} of {expected_holdings} (prefix holdings {:.1}%) evictions {} | \
         lookups short {short} of {LOOKUPS} (to 0: {zero}), group prefix intact {prefix_intact}, \
         matched {:.1}% of blocks | ingest {:.2} M block-ops/s | \
         1000-block lookup p50 cold {:.1} us, again {:.1} us (walk {:.1} us), hot {:.2} us (walk {:.1} us), \
         blocks probed p50 again {:.0} | under churn (one removal per endpoint before each lookup) \
         p50 {:.1} us, blocks probed p50 {:.0}; over a working set of {working_set} prompts p50 {:.2} us, \
         blocks probed p50 {:.0} | table + checkpoints {} MB, {:.1} B per (block, endpoint)",
        st.entries,
        st.capacity,
        100.0 * st.entries as f64 / st.capacity as f64,
        expected_holdings.saturating_sub(held),
        100.0 * prefix_holdings as f64 / expected_holdings as f64,
        st.evictions,
        100.0 * matched as f64 / (LOOKUPS * CHAIN) as f64,
        ops as f64 / ingest_s / 1e6,
        p50(cold),
        p50(again),
        p50(again_walk),
        p50(hot),
        p50(hot_walk),
        probed_ckpt,
        p50(churn),
        p50(churn_probed),
        p50(churn_set),
        p50(churn_set_probed),
        st.table_bytes >> 20,
        st.table_bytes as f64 / expected_holdings as f64,
    );
}
