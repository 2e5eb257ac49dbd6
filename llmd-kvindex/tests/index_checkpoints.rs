//! Verified-prefix checkpoints: long lookups (which read and write
//! checkpoints) must answer exactly as the block-by-block walk on the same
//! index state, through holes, removals, tier changes, evictions,
//! `AllBlocksCleared`, endpoint removal and slot reuse, out-of-order
//! parents, speculative entries and concurrent writers; and a lookup of a
//! stored chain (ingest-time checkpoints) or a repeated one (lookup-time
//! checkpoints) must probe far fewer blocks than the walk.

mod common;

use common::batch;
use llmd_kvindex::events::{BlockRemoved, BlockStored, HashValue, KvEvent};
use llmd_kvindex::index::{EndpointId, IndexConfig, KeyMode, KvIndex, PrefixMatches};
use llmd_kvindex::BlockKey;
use proptest::prelude::*;
use std::sync::Arc;

const MODELS: [&str; 2] = ["llama", "qwen"];
const MEDIA: [&str; 3] = ["GPU", "cpu", "STORAGE"];
/// Slots in three 64-endpoint groups and two clusters.
const SLOTS: [usize; 5] = [0, 1, 63, 64, 129];
/// Distinct blocks per model; prompts are prefixes of 0, 1, 2, ...
const UNIVERSE: u16 = 120;

fn key(model: usize, i: u16) -> u64 {
    (model as u64) << 16 | u64::from(i)
}

fn index(capacity: usize) -> KvIndex {
    let cfg = IndexConfig {
        speculative_ttl_ns: 100,
        ..IndexConfig::default()
    };
    common::parity_index_with(capacity, cfg)
}

fn store(idx: &KvIndex, ep: EndpointId, model: usize, tier: usize, blocks: &[u16], parent: bool) {
    let ev = KvEvent::BlockStored(BlockStored {
        block_hashes: blocks
            .iter()
            .map(|&b| HashValue::Int(key(model, b).into()))
            .collect(),
        parent_block_hash: blocks
            .first()
            .filter(|&&b| parent && b > 0)
            .map(|&b| HashValue::Int(key(model, b - 1).into())),
        block_size: 16,
        medium: Some(MEDIA[tier].to_string()),
        ..BlockStored::default()
    });
    idx.apply_batch(ep, MODELS[model], &batch(ev));
}

fn remove(idx: &KvIndex, ep: EndpointId, model: usize, tier: usize, blocks: &[u16]) {
    let ev = KvEvent::BlockRemoved(BlockRemoved {
        block_hashes: blocks
            .iter()
            .map(|&b| HashValue::Int(key(model, b).into()))
            .collect(),
        medium: Some(MEDIA[tier].to_string()),
        ..BlockRemoved::default()
    });
    idx.apply_batch(ep, MODELS[model], &batch(ev));
}

fn prompt(model: usize, len: u16) -> Vec<BlockKey> {
    (0..len).map(|i| BlockKey(key(model, i))).collect()
}

/// The checkpointed lookup and the walk agree exactly (scores bit for bit).
fn assert_same(idx: &KvIndex, model: usize, keys: &[BlockKey], out: &mut PrefixMatches) {
    assert_same_in(idx, MODELS[model], keys, out);
}

/// [`assert_same`] under a model name.
fn assert_same_in(idx: &KvIndex, model: &str, keys: &[BlockKey], out: &mut PrefixMatches) {
    let mut walk = PrefixMatches::new();
    idx.match_prefix_walk(model, keys, &mut walk);
    idx.match_prefix(model, keys, out);
    let view = |m: &PrefixMatches| {
        m.iter()
            .map(|e| (e.endpoint, e.consecutive_blocks, e.weighted_score.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        view(out),
        view(&walk),
        "{} blocks of model {model}",
        keys.len()
    );
}

#[derive(Clone, Debug)]
enum Op {
    /// A run of consecutive blocks, chained to its predecessor or not.
    Store {
        ep: usize,
        model: usize,
        tier: usize,
        start: u16,
        len: u16,
        parent: bool,
    },
    /// A few blocks anywhere (holes in the middle of chains).
    Remove {
        ep: usize,
        model: usize,
        tier: usize,
        blocks: Vec<u16>,
    },
    Clear {
        ep: usize,
    },
    RemoveEndpoint {
        ep: usize,
    },
    Speculate {
        ep: usize,
        model: usize,
        len: u16,
    },
    Tick {
        by: u64,
    },
    Match {
        model: usize,
        len: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let ep = 0..SLOTS.len();
    prop_oneof![
        6 => (ep.clone(), 0..2usize, 0..3usize, 0..UNIVERSE, 1..80u16, any::<bool>())
            .prop_map(|(ep, model, tier, start, len, parent)| Op::Store { ep, model, tier, start, len, parent }),
        3 => (ep.clone(), 0..2usize, 0..3usize, prop::collection::vec(0..UNIVERSE, 1..4))
            .prop_map(|(ep, model, tier, blocks)| Op::Remove { ep, model, tier, blocks }),
        1 => ep.clone().prop_map(|ep| Op::Clear { ep }),
        1 => ep.clone().prop_map(|ep| Op::RemoveEndpoint { ep }),
        2 => (ep, 0..2usize, 1..UNIVERSE).prop_map(|(ep, model, len)| Op::Speculate { ep, model, len }),
        1 => (1..80u64).prop_map(|by| Op::Tick { by }),
        8 => (0..2usize, 32..=UNIVERSE).prop_map(|(model, len)| Op::Match { model, len }),
    ]
}

fn run(ops: Vec<Op>, capacity: usize) {
    let idx = index(capacity);
    for slot in 0..=*SLOTS.iter().max().unwrap() {
        idx.register_endpoint(&format!("ep-{slot}")).unwrap();
    }
    let mut ids: Vec<EndpointId> = SLOTS.iter().map(|&s| EndpointId(s as u16)).collect();
    let mut now = 0;
    let mut out = PrefixMatches::new();
    for op in ops {
        match op {
            Op::Store {
                ep,
                model,
                tier,
                start,
                len,
                parent,
            } => {
                let end = (start + len).min(UNIVERSE);
                let blocks: Vec<u16> = (start..end).collect();
                store(&idx, ids[ep], model, tier, &blocks, parent);
            }
            Op::Remove {
                ep,
                model,
                tier,
                blocks,
            } => remove(&idx, ids[ep], model, tier, &blocks),
            Op::Clear { ep } => {
                idx.apply_batch(ids[ep], MODELS[0], &batch(KvEvent::AllBlocksCleared));
            }
            Op::RemoveEndpoint { ep } => {
                idx.remove_endpoint(ids[ep]);
                ids[ep] = idx.register_endpoint(&format!("ep-{}", SLOTS[ep])).unwrap();
            }
            Op::Speculate { ep, model, len } => {
                idx.insert_speculative(ids[ep], MODELS[model], &prompt(model, len), now);
            }
            Op::Tick { by } => {
                now += by;
                idx.tick(now);
            }
            Op::Match { model, len } => {
                let keys = prompt(model, len);
                assert_same(&idx, model, &keys, &mut out);
                // Again with the checkpoints just written: same answer.
                let first = out.probed_blocks();
                assert_same(&idx, model, &keys, &mut out);
                assert!(out.probed_blocks() <= first);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn checkpointed_lookups_match_the_walk(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, 1 << 16);
    }

    /// A table far smaller than the blocks stored: evictions everywhere.
    #[test]
    fn checkpointed_lookups_match_the_walk_under_eviction(
        ops in prop::collection::vec(op(), 1..120),
    ) {
        run(ops, 150);
    }
}

#[test]
fn a_long_lookup_probes_only_the_tail() {
    let idx = index(1 << 16);
    let a = idx.register_endpoint("a").unwrap();
    let b = idx.register_endpoint("b").unwrap();
    let all: Vec<u16> = (0..1000).collect();
    store(&idx, a, 0, 0, &all, false);
    store(&idx, b, 0, 0, &all[..300], false);
    let keys = prompt(0, 1000);
    let mut out = PrefixMatches::new();
    idx.match_prefix("llama", &keys, &mut out);
    let m = |out: &PrefixMatches, ep| out.get(ep).map(|m| m.consecutive_blocks);
    assert_eq!((m(&out, a), m(&out, b)), (Some(1000), Some(300)));
    // Block 0, the 12 blocks after b's last checkpoint (288..300) and the 8
    // after a's (992..1000).
    assert!(out.probed_blocks() <= 1 + 13 + 8, "{}", out.probed_blocks());

    // A hole in the middle: exact at once, and cheap again afterwards.
    remove(&idx, a, 0, 0, &[500]);
    idx.match_prefix("llama", &keys, &mut out);
    assert_eq!(m(&out, a), Some(500));
    store(&idx, a, 0, 0, &[500], true);
    idx.match_prefix("llama", &keys, &mut out);
    assert_eq!(m(&out, a), Some(1000));
    idx.match_prefix("llama", &keys, &mut out);
    assert!(out.probed_blocks() <= 1 + 13 + 8);

    // A better tier for one block re-weighs the prefix.
    store(&idx, b, 0, 1, &all[..300], false);
    remove(&idx, b, 0, 0, &[7]);
    idx.match_prefix("llama", &keys, &mut out);
    let sb = out.get(b).unwrap();
    assert_eq!(sb.consecutive_blocks, 300);
    assert_eq!(sb.weighted_score, 299.0 + 0.8);
    store(&idx, b, 0, 0, &[7], true);
    idx.match_prefix("llama", &keys, &mut out);
    assert_eq!(out.get(b).unwrap().weighted_score, 300.0);

    // Another prompt sharing the first 400 blocks: its own checkpoints.
    let mut other = prompt(0, 400);
    other.extend((0..600).map(|i| BlockKey(key(1, i))));
    idx.match_prefix("llama", &other, &mut out);
    assert_eq!(m(&out, a), Some(400));
    assert_eq!(m(&out, b), Some(300));
}

/// An engine whose cache is full evicts between any two lookups. A removal
/// raises its endpoint's epoch, but the block it removed is logged: a
/// checkpoint whose prefix does not hold it still proves that prefix, so
/// lookups stay cheap under churn and exact when the prefix itself loses a
/// block; once the log has moved past a checkpoint, lookups walk and
/// rewrite it.
#[test]
fn removals_elsewhere_keep_checkpoints_and_removals_inside_cut_them() {
    let idx = index(1 << 16);
    let a = idx.register_endpoint("a").unwrap();
    let all: Vec<u16> = (0..1000).collect();
    store(&idx, a, 0, 0, &all, false);
    // Another model's chain, removed block by block while model 0's prompt
    // is looked up: none of its blocks is in the prompt.
    store(&idx, a, 1, 0, &all[..400], false);
    let keys = prompt(0, 1000);
    let mut out = PrefixMatches::new();
    let cheap = 1 + 8;
    for (n, b) in (0..40u16).rev().enumerate() {
        remove(&idx, a, 1, 0, &[399 - b]);
        assert_same(&idx, 0, &keys, &mut out);
        assert_eq!(out.get(a).map(|m| m.consecutive_blocks), Some(1000));
        assert!(
            out.probed_blocks() <= cheap,
            "lookup {n}: {} probed",
            out.probed_blocks()
        );
    }
    // A block of the prompt itself: the checkpoints past it are cut, the
    // ones before it (written at ingestion, 41 raises ago) still hold: at
    // most the 13 blocks past the last one before 700 (688..=700) are
    // probed.
    remove(&idx, a, 0, 0, &[700]);
    assert_same(&idx, 0, &keys, &mut out);
    assert_eq!(out.get(a).map(|m| m.consecutive_blocks), Some(700));
    assert!(
        out.probed_blocks() <= 1 + 13,
        "{} probed",
        out.probed_blocks()
    );
    // Many removals since that lookup re-stamped the checkpoint it used:
    // still within the log (64 raises at this size).
    for b in 240..300 {
        remove(&idx, a, 1, 0, &[b]);
    }
    assert_same(&idx, 0, &keys, &mut out);
    assert!(
        out.probed_blocks() <= 1 + 13,
        "{} probed",
        out.probed_blocks()
    );
    // More raises than the log holds (64 at this size): the old checkpoints
    // cannot be checked; the lookup walks once, exactly, and rewrites them.
    for b in 0..200 {
        remove(&idx, a, 1, 0, &[b]);
    }
    assert_same(&idx, 0, &keys, &mut out);
    assert_eq!(out.get(a).map(|m| m.consecutive_blocks), Some(700));
    assert!(out.probed_blocks() > 600, "{} probed", out.probed_blocks());
    assert_same(&idx, 0, &keys, &mut out);
    assert!(
        out.probed_blocks() <= 1 + 13,
        "{} probed",
        out.probed_blocks()
    );
}

/// A lookup reads at most 16 raises per prompt block (4,096 at least) from
/// its candidates' logs: 100 endpoints, each 60 raises past its checkpoints,
/// need 6,000 for a 64-block prompt. Past the budget, checkpoints count as
/// stale: the answer stays exact, those endpoints are walked (and their
/// checkpoints rewritten), and the next lookup is cheap again.
#[test]
fn a_lookup_reads_a_bounded_share_of_the_logs() {
    let idx = index(1 << 16);
    let chain: Vec<u16> = (0..64).collect();
    let other: Vec<u16> = (0..60).collect();
    let eps: Vec<EndpointId> = (0..100)
        .map(|i| idx.register_endpoint(&format!("e{i}")).unwrap())
        .collect();
    for &e in &eps {
        store(&idx, e, 0, 0, &chain, false);
        store(&idx, e, 1, 0, &other, false);
    }
    let keys = prompt(0, 64);
    let mut out = PrefixMatches::new();
    assert_same(&idx, 0, &keys, &mut out);
    assert!(out.probed_blocks() <= 1, "{} probed", out.probed_blocks());
    for &e in &eps {
        for b in 0..60 {
            remove(&idx, e, 1, 0, &[b]);
        }
    }
    assert_same(&idx, 0, &keys, &mut out);
    assert_eq!(out.len(), 100);
    assert!(out.iter().all(|m| m.consecutive_blocks == 64));
    assert!(
        out.probed_blocks() > 1,
        "past the budget, some endpoints walk"
    );
    assert_same(&idx, 0, &keys, &mut out);
    assert!(out.probed_blocks() <= 1, "{} probed", out.probed_blocks());
}

#[test]
fn concurrent_writers_and_readers_leave_only_valid_checkpoints() {
    let idx = Arc::new(index(1 << 14));
    let eps: Vec<EndpointId> = (0..4)
        .map(|i| idx.register_endpoint(&format!("e{i}")).unwrap())
        .collect();
    let full: Vec<u16> = (0..UNIVERSE).collect();
    for &ep in &eps {
        store(&idx, ep, 0, 0, &full, false);
    }
    for round in 0..20u64 {
        let mut threads = Vec::new();
        for w in 0..2usize {
            let (idx, eps) = (idx.clone(), eps.clone());
            threads.push(std::thread::spawn(move || {
                let mut rng = round * 7 + w as u64 + 1;
                for _ in 0..300 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let ep = eps[(rng % 4) as usize];
                    let b = (rng >> 8) as u16 % UNIVERSE;
                    match rng >> 40 & 3 {
                        0 => remove(&idx, ep, 0, 0, &[b]),
                        1 => store(&idx, ep, 0, 0, &[b], true),
                        2 => store(&idx, ep, 0, 1, &[b], true),
                        _ => idx.insert_speculative(ep, "llama", &prompt(0, b + 1), 0),
                    }
                }
            }));
        }
        for r in 0..2u16 {
            let idx = idx.clone();
            threads.push(std::thread::spawn(move || {
                let mut out = PrefixMatches::new();
                for i in 0..300u16 {
                    let len = 32 + (i * 7 + r * 13) % (UNIVERSE - 32);
                    idx.match_prefix("llama", &prompt(0, len), &mut out);
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        let mut out = PrefixMatches::new();
        for len in 32..=UNIVERSE {
            assert_same(&idx, 0, &prompt(0, len), &mut out);
        }
        idx.tick(u64::MAX);
    }
}

#[test]
fn endpoints_sharing_a_prefix_read_few_checkpoints() {
    // Seven endpoints hold a shared 300-block prefix and then a suffix of
    // their own; one holds the whole 1000-block prompt (a group's system
    // prompt, one member's conversation).
    let idx = index(1 << 16);
    let all: Vec<u16> = (0..1000).collect();
    let full = idx.register_endpoint("full").unwrap();
    store_chained(&idx, full, 0, &all, 16);
    let mut sharing = Vec::new();
    for e in 0..7u16 {
        let ep = idx.register_endpoint(&format!("s{e}")).unwrap();
        store_chained(&idx, ep, 0, &all[..300], 16);
        let own: Vec<u16> = (0..200).map(|i| 1000 + e * 200 + i).collect();
        store(&idx, ep, 0, 0, &own, false);
        sharing.push(ep);
    }
    let keys = prompt(0, 1000);
    let mut out = PrefixMatches::new();
    for _ in 0..2 {
        assert_same(&idx, 0, &keys, &mut out);
        assert_eq!(out.get(full).map(|m| m.consecutive_blocks), Some(1000));
        for &ep in &sharing {
            assert_eq!(out.get(ep).map(|m| m.consecutive_blocks), Some(300));
        }
        // Eight first probes (the last checkpoint, 61), one candidate's
        // bisection of 0..61 (six reads), then two reads (checkpoints 17
        // and 18 around the boundary it found) for each of the six others:
        // 26, where bisecting each candidate alone reads 8 + 7 × 6 = 50.
        assert!(
            out.checkpoint_reads() <= 8 + 6 + 6 * 2,
            "{}",
            out.checkpoint_reads()
        );
        // Block 0, the 13 blocks past the shared pin (288..=300, where the
        // sharing endpoints stop) and the 8 past full's.
        assert!(out.probed_blocks() <= 1 + 13 + 8, "{}", out.probed_blocks());
    }
    // One sharing endpoint loses a block inside the prefix: its checkpoints
    // go stale, the hint misleads it, and it bisects the rest: still exact.
    remove(&idx, sharing[3], 0, 0, &[100]);
    assert_same(&idx, 0, &keys, &mut out);
    assert_eq!(out.get(sharing[3]).map(|m| m.consecutive_blocks), Some(100));
    assert_eq!(out.get(sharing[4]).map(|m| m.consecutive_blocks), Some(300));
    // A short prompt reads none.
    idx.match_prefix("llama", &keys[..20], &mut out);
    assert_eq!(out.checkpoint_reads(), 0);
}

/// Stores `chain` for `ep` as vLLM publishes it: events of `per` blocks,
/// each naming the previous event's last block as its parent.
fn store_chained(idx: &KvIndex, ep: EndpointId, model: usize, blocks: &[u16], per: usize) {
    for part in blocks.chunks(per) {
        store(idx, ep, model, 0, part, true);
    }
}

#[test]
fn ingest_writes_checkpoints_along_followed_chains() {
    let idx = index(1 << 16);
    let a = idx.register_endpoint("a").unwrap();
    let b = idx.register_endpoint("b").unwrap();
    let all: Vec<u16> = (0..1000).collect();
    store_chained(&idx, a, 0, &all, 7);
    // b's chain starts mid-way (its parent is not a followed tail): nothing
    // is checkpointed for it at ingestion.
    store_chained(&idx, b, 0, &all[..600], 50);
    remove(&idx, b, 0, 0, &all[..50]);
    store(&idx, b, 0, 0, &all[..50], false);
    let keys = prompt(0, 1000);
    let mut out = PrefixMatches::new();
    assert_same(&idx, 0, &keys, &mut out);
    let m = |out: &PrefixMatches, ep| out.get(ep).map(|m| m.consecutive_blocks);
    assert_eq!((m(&out, a), m(&out, b)), (Some(1000), Some(600)));
    // First lookup of this index: a from its ingest-time checkpoints, b
    // walked from its first checkpoint (block 50 re-stored as a new chain
    // of 50 blocks gives one at block 47) and checkpointed on the way.
    let mut fresh = PrefixMatches::new();
    let idx2 = index(1 << 16);
    let a2 = idx2.register_endpoint("a").unwrap();
    store_chained(&idx2, a2, 0, &all, 7);
    idx2.match_prefix("llama", &keys, &mut fresh);
    assert_eq!(m(&fresh, a2), Some(1000));
    assert!(fresh.probed_blocks() <= 1 + 8, "{}", fresh.probed_blocks());

    // A removal makes the followed chain stale: its later events write
    // nothing, and lookups stay exact.
    let c = idx2.register_endpoint("c").unwrap();
    store_chained(&idx2, c, 0, &all[..500], 100);
    remove(&idx2, c, 0, 0, &[10]);
    store_chained(&idx2, c, 0, &all[500..], 100);
    assert_same(&idx2, 0, &keys, &mut fresh);
    assert_eq!(m(&fresh, c), Some(10));
}

#[test]
fn router_keys_and_approximate_mode_checkpoint_at_ingestion() {
    // Router keys: events carry tokens; the index chains its own keys.
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 1 << 16,
        key_mode: KeyMode::RouterKeys { block_size: 4 },
        ..IndexConfig::default()
    })
    .unwrap();
    let ep = idx.register_endpoint("r").unwrap();
    let tokens: Vec<u32> = (0..4 * 200).collect();
    let mut parent = None;
    for (j, part) in tokens.chunks(4 * 25).enumerate() {
        let ev = KvEvent::BlockStored(BlockStored {
            block_hashes: (0..25)
                .map(|i| HashValue::Int((1_000 + j * 25 + i) as i128))
                .collect(),
            parent_block_hash: parent.map(HashValue::Int),
            token_ids: part.iter().map(|&t| u64::from(t)).collect(),
            block_size: 4,
            medium: Some("GPU".into()),
            ..BlockStored::default()
        });
        idx.apply_batch(ep, "m", &batch(ev));
        parent = Some((1_000 + j * 25 + 24) as i128);
    }
    let keys = idx.prompt_keys("m", &tokens, &Default::default()).unwrap();
    assert_eq!(keys.len(), 200);
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &keys, &mut out);
    assert_eq!(out.get(ep).map(|m| m.consecutive_blocks), Some(200));
    assert!(out.probed_blocks() <= 1 + 8, "{}", out.probed_blocks());

    // Approximate mode: a routed prompt is checkpointed as it is recorded.
    let idx = KvIndex::new(IndexConfig {
        key_mode: KeyMode::Approximate { block_size: 16 },
        ..IndexConfig::default()
    })
    .unwrap();
    let ep = idx.register_endpoint("x").unwrap();
    let keys: Vec<BlockKey> = (0..300u64).map(|i| BlockKey(i * 31 + 7)).collect();
    idx.record_routing(ep, "m", &keys, 0);
    idx.match_prefix("m", &keys, &mut out);
    assert_eq!(out.get(ep).map(|m| m.consecutive_blocks), Some(300));
    assert!(out.probed_blocks() <= 1 + 12, "{}", out.probed_blocks());
}

/// Router-key mode: the index chains its own keys from the events' tokens
/// (checkpoints follow those chains); lookups still answer as the walk.
#[derive(Clone, Debug)]
enum RouterOp {
    Store {
        ep: usize,
        start: u16,
        len: u16,
        tier: usize,
    },
    Remove {
        ep: usize,
        blocks: Vec<u16>,
    },
    Clear {
        ep: usize,
    },
    Match {
        len: u16,
    },
}

fn router_op() -> impl Strategy<Value = RouterOp> {
    prop_oneof![
        // Half the stores start a chain at block 0, the rest continue one.
        6 => (0..3usize, prop_oneof![Just(0u16), 0..UNIVERSE], 1..60u16, 0..2usize)
            .prop_map(|(ep, start, len, tier)| RouterOp::Store { ep, start, len, tier }),
        3 => (0..3usize, prop::collection::vec(0..UNIVERSE, 1..4))
            .prop_map(|(ep, blocks)| RouterOp::Remove { ep, blocks }),
        1 => (0..3usize).prop_map(|ep| RouterOp::Clear { ep }),
        6 => (32..=UNIVERSE).prop_map(|len| RouterOp::Match { len }),
    ]
}

const ROUTER_BLOCK: u16 = 4;

/// The tokens of blocks `blocks` of `size` tokens each (token ids count up
/// from 0 across the universe, whatever the block size).
fn router_tokens(blocks: std::ops::Range<u16>, size: u16) -> Vec<u64> {
    (u64::from(blocks.start) * u64::from(size)..u64::from(blocks.end) * u64::from(size)).collect()
}

/// `engine_block`: the engine's block size; other than the router's, events
/// end inside router blocks (waiting tails, derived mappings).
fn run_router(ops: Vec<RouterOp>, capacity: usize, engine_block: u16) {
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: capacity,
        key_mode: KeyMode::RouterKeys {
            block_size: ROUTER_BLOCK as usize,
        },
        ..IndexConfig::default()
    })
    .unwrap();
    let eps: Vec<EndpointId> = (0..3)
        .map(|i| idx.register_endpoint(&format!("r{i}")).unwrap())
        .collect();
    let engine = |b: u16| HashValue::Int(i128::from(b) + 7_000);
    let mut out = PrefixMatches::new();
    for op in ops {
        match op {
            RouterOp::Store {
                ep,
                start,
                len,
                tier,
            } => {
                let end = (start + len).min(UNIVERSE);
                let ev = KvEvent::BlockStored(BlockStored {
                    block_hashes: (start..end).map(engine).collect(),
                    parent_block_hash: (start > 0).then(|| engine(start - 1)),
                    token_ids: router_tokens(start..end, engine_block),
                    block_size: i64::from(engine_block),
                    medium: Some(MEDIA[tier].to_string()),
                    ..BlockStored::default()
                });
                idx.apply_batch(eps[ep], "m", &batch(ev));
            }
            RouterOp::Remove { ep, blocks } => {
                let ev = KvEvent::BlockRemoved(BlockRemoved {
                    block_hashes: blocks.iter().map(|&b| engine(b)).collect(),
                    ..BlockRemoved::default()
                });
                idx.apply_batch(eps[ep], "m", &batch(ev));
            }
            RouterOp::Clear { ep } => {
                idx.apply_batch(eps[ep], "m", &batch(KvEvent::AllBlocksCleared));
            }
            RouterOp::Match { len } => {
                let tokens = router_tokens(0..len, ROUTER_BLOCK);
                let keys = idx.prompt_keys("m", &tokens, &Default::default()).unwrap();
                // Twice: the second lookup uses what the first wrote.
                assert_same_in(&idx, "m", &keys, &mut out);
                assert_same_in(&idx, "m", &keys, &mut out);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn router_key_lookups_match_the_walk(ops in prop::collection::vec(router_op(), 1..100)) {
        run_router(ops, 1 << 14, ROUTER_BLOCK);
    }

    #[test]
    fn router_key_lookups_match_the_walk_under_eviction(
        ops in prop::collection::vec(router_op(), 1..100),
    ) {
        run_router(ops, 120, ROUTER_BLOCK);
    }

    /// Engine blocks smaller than the router's (tails), and straddling
    /// them (derived mappings).
    #[test]
    fn router_key_lookups_match_the_walk_with_other_engine_blocks(
        ops in prop::collection::vec(router_op(), 1..100),
        engine_block in prop_oneof![Just(1u16), Just(2), Just(3), Just(6)],
        capacity in prop_oneof![Just(120usize), Just(1 << 14)],
    ) {
        run_router(ops, capacity, engine_block);
    }
}
