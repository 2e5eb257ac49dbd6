//! Differential test of `KvIndex` against a plain locked reference model
//! (engine-parity keys), over random sequences of stores (with and without
//! parents), removals, clears and endpoint removals, across several models,
//! tiers and endpoint groups; plus a flood that must never exceed capacity.

mod common;

use common::{batch, parity_index};
use llmd_kvindex::events::{BlockRemoved, BlockStored, HashValue, KvEvent};
use llmd_kvindex::index::{EndpointId, PrefixMatches};
use llmd_kvindex::BlockKey;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

const MODELS: [&str; 2] = ["llama", "qwen"];
const MEDIA: [&str; 3] = ["GPU", "cpu", "STORAGE"];
const WEIGHTS: [f64; 3] = [1.0, 0.8, 0.5];
/// Endpoint names used by the ops; registered at these slots so that three
/// 64-endpoint groups and two clusters are exercised.
const SLOTS: [usize; 6] = [0, 1, 63, 64, 127, 129];
const UNIVERSE: u64 = 14;

fn key(model: usize, i: u8) -> u64 {
    // Small integers on purpose: the index must mix them itself.
    (model as u64) << 8 | u64::from(i)
}

#[derive(Clone, Debug)]
enum Op {
    Store {
        ep: usize,
        model: usize,
        tier: usize,
        blocks: Vec<u8>,
        parent: Option<u8>,
    },
    Remove {
        ep: usize,
        model: usize,
        tier: usize,
        blocks: Vec<u8>,
    },
    Clear {
        ep: usize,
    },
    RemoveEndpoint {
        ep: usize,
    },
    Match {
        model: usize,
        len: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let ep = 0..SLOTS.len();
    let blocks = prop::collection::vec(0..UNIVERSE as u8, 1..6);
    prop_oneof![
        6 => (ep.clone(), 0..2usize, 0..3usize, blocks.clone(), prop::option::of(0..UNIVERSE as u8))
            .prop_map(|(ep, model, tier, blocks, parent)| Op::Store { ep, model, tier, blocks, parent }),
        3 => (ep.clone(), 0..2usize, 0..3usize, blocks)
            .prop_map(|(ep, model, tier, blocks)| Op::Remove { ep, model, tier, blocks }),
        1 => ep.clone().prop_map(|ep| Op::Clear { ep }),
        1 => ep.prop_map(|ep| Op::RemoveEndpoint { ep }),
        4 => (0..2usize, 1..=UNIVERSE as u8).prop_map(|(model, len)| Op::Match { model, len }),
    ]
}

/// The reference: (endpoint name index, model, key) → tiers held.
#[derive(Default)]
struct Reference {
    held: Mutex<HashMap<(usize, usize, u64), [bool; 3]>>,
}

impl Reference {
    fn matches(&self, ep: usize, model: usize, prompt: &[u64]) -> (u32, f64) {
        let held = self.held.lock().unwrap();
        let mut n = 0;
        let mut score = 0.0;
        for &k in prompt {
            let Some(t) = held.get(&(ep, model, k)).filter(|t| t.iter().any(|&x| x)) else {
                break;
            };
            n += 1;
            score += (0..3)
                .filter(|&i| t[i])
                .map(|i| WEIGHTS[i])
                .fold(0.0, f64::max);
        }
        (n, score)
    }
}

fn run(ops: Vec<Op>) {
    let idx = parity_index(1 << 16);
    let mut ids: Vec<EndpointId> = Vec::new();
    for slot in 0..=*SLOTS.iter().max().unwrap() {
        let id = idx.register_endpoint(&format!("ep-{slot}")).unwrap();
        assert_eq!(id.0 as usize, slot);
    }
    for &s in &SLOTS {
        ids.push(EndpointId(s as u16));
    }
    let reference = Reference::default();
    let mut out = PrefixMatches::new();
    for op in ops {
        match op {
            Op::Store {
                ep,
                model,
                tier,
                blocks,
                parent,
            } => {
                let ev = KvEvent::BlockStored(BlockStored {
                    block_hashes: blocks
                        .iter()
                        .map(|&b| HashValue::Int(key(model, b).into()))
                        .collect(),
                    parent_block_hash: parent.map(|p| HashValue::Int(key(model, p).into())),
                    block_size: 16,
                    medium: Some(MEDIA[tier].to_string()),
                    ..BlockStored::default()
                });
                let r = idx.apply_batch(ids[ep], MODELS[model], &batch(ev));
                let mut held = reference.held.lock().unwrap();
                let mut newly = 0;
                for &b in &blocks {
                    let t = held.entry((ep, model, key(model, b))).or_default();
                    newly += u32::from(!t[tier]);
                    t[tier] = true;
                }
                assert_eq!(r.stored, newly);
            }
            Op::Remove {
                ep,
                model,
                tier,
                blocks,
            } => {
                let ev = KvEvent::BlockRemoved(BlockRemoved {
                    block_hashes: blocks
                        .iter()
                        .map(|&b| HashValue::Int(key(model, b).into()))
                        .collect(),
                    medium: Some(MEDIA[tier].to_string()),
                    ..BlockRemoved::default()
                });
                let r = idx.apply_batch(ids[ep], MODELS[model], &batch(ev));
                let mut held = reference.held.lock().unwrap();
                let mut gone = 0;
                for &b in &blocks {
                    if let Some(t) = held.get_mut(&(ep, model, key(model, b))) {
                        gone += u32::from(t[tier]);
                        t[tier] = false;
                    }
                }
                assert_eq!(r.removed, gone);
            }
            Op::Clear { ep } => {
                idx.apply_batch(ids[ep], MODELS[0], &batch(KvEvent::AllBlocksCleared));
                reference.held.lock().unwrap().retain(|k, _| k.0 != ep);
            }
            Op::RemoveEndpoint { ep } => {
                idx.remove_endpoint(ids[ep]);
                assert_eq!(idx.endpoint_id(&format!("ep-{}", SLOTS[ep])), None);
                // Re-registering reuses the freed slot.
                ids[ep] = idx.register_endpoint(&format!("ep-{}", SLOTS[ep])).unwrap();
                reference.held.lock().unwrap().retain(|k, _| k.0 != ep);
            }
            Op::Match { model, len } => {
                let prompt: Vec<u64> = (0..len).map(|i| key(model, i)).collect();
                let keys: Vec<BlockKey> = prompt.iter().map(|&k| BlockKey(k)).collect();
                idx.match_prefix(MODELS[model], &keys, &mut out);
                assert_eq!(out.total_blocks(), u32::from(len));
                for (ep, &id) in ids.iter().enumerate() {
                    let (n, score) = reference.matches(ep, model, &prompt);
                    let got = out
                        .get(id)
                        .map_or((0, 0.0), |m| (m.consecutive_blocks, m.weighted_score));
                    assert_eq!(got.0, n, "endpoint slot {} consecutive blocks", SLOTS[ep]);
                    assert!(
                        (got.1 - score).abs() < 1e-9,
                        "endpoint slot {} score {} vs {}",
                        SLOTS[ep],
                        got.1,
                        score
                    );
                }
                assert_eq!(
                    out.len(),
                    ids.iter()
                        .enumerate()
                        .filter(|(ep, _)| reference.matches(*ep, model, &prompt).0 > 0)
                        .count()
                );
            }
        }
    }
    // Counters agree with the reference at the end.
    let stats = idx.stats();
    assert_eq!(stats.evictions, 0, "capacity chosen to avoid eviction");
    let held = reference.held.lock().unwrap();
    for (ep, &id) in ids.iter().enumerate() {
        let s = stats.endpoints.iter().find(|s| s.id == id).unwrap();
        for tier in 0..3 {
            let want = held.iter().filter(|(k, t)| k.0 == ep && t[tier]).count() as u64;
            assert_eq!(s.blocks[tier], want, "slot {} tier {tier}", SLOTS[ep]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_reference_model(ops in prop::collection::vec(op(), 1..80)) {
        run(ops);
    }
}

#[test]
fn a_flood_never_exceeds_capacity() {
    let capacity = 1_000;
    let idx = parity_index(capacity);
    let eps: Vec<EndpointId> = (0..100)
        .map(|i| idx.register_endpoint(&format!("e{i}")).unwrap())
        .collect();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..2_000u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let ep = eps[(rng % 100) as usize];
        let ev = KvEvent::BlockStored(BlockStored {
            block_hashes: (0..64)
                .map(|j| HashValue::Int(i128::from(round * 64 + j)))
                .collect(),
            block_size: 16,
            medium: Some(MEDIA[(rng >> 20) as usize % 3].to_string()),
            ..BlockStored::default()
        });
        idx.apply_batch(ep, "m", &batch(ev));
        let s = idx.stats();
        assert!(
            s.entries <= capacity as u64,
            "{} entries > capacity {capacity}",
            s.entries
        );
    }
    let s = idx.stats();
    assert!(s.evictions >= 128_000 - capacity as u64);
    assert!(
        s.entries >= (capacity as u64) * 9 / 10,
        "the table should stay nearly full"
    );
    let holdings: u64 = s
        .endpoints
        .iter()
        .map(|e| e.blocks.iter().sum::<u64>())
        .sum();
    assert_eq!(holdings, s.holdings);
    assert!(holdings <= s.entries, "one endpoint per block here");
    // The newest blocks are still found, by their own endpoint only.
    let mut out = PrefixMatches::new();
    let last: Vec<BlockKey> = (1_999 * 64..1_999 * 64 + 8).map(BlockKey).collect();
    idx.match_prefix("m", &last, &mut out);
    assert_eq!(out.len(), 1);
}
