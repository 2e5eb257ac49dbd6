//! Prefix matches must not depend on the order of the candidates: each
//! endpoint is matched under the model its own events are indexed under.
//! Pools mix endpoints registered with the request's model, endpoints
//! registered without a model (serving any) and endpoints serving the model
//! as an adapter of another base model, in both key modes.

mod common;

use std::collections::HashMap;

use common::*;
use llmd_kvindex::events::{
    encode_event_batch, BlockStored, EventBatch, EventLayout, HashValue, KvEvent,
};
use llmd_kvindex::hash::{BlockHasher, HashAlgo, HasherConfig, RequestExtras};
use llmd_sched::{Endpoint, LoadOptions, Request, Scheduler};
use proptest::prelude::*;

const BS: usize = 16;

/// A precise producer (router keys unless `engine` is given) and the prefix
/// scorer alone, so raw scores are match ratios.
fn precise(speculative: bool, engine: Option<&HasherConfig>) -> Scheduler {
    let yaml = single(&format!(
        "- name: kv\n  type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {{blockSizeTokens: {BS}}}\n    speculativeIndexing: {speculative}\n- type: prefix-cache-scorer\n  parameters: {{prefixMatchInfoProducerName: kv}}\n- type: max-score-picker\n"
    ));
    let opts = LoadOptions {
        engine_hasher: engine.cloned(),
        ..Default::default()
    };
    Scheduler::from_config_str_with(&yaml, opts)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_seed(7)
}

/// How an endpoint is registered.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Served model "m".
    Model,
    /// No model: serves any.
    Any,
    /// Base model "base" with adapter "m".
    Adapter,
}

fn endpoint(name: &str, kind: Kind) -> Endpoint {
    let mut e = ep(name, metrics(0, 0, 0.0));
    match kind {
        Kind::Model => e.model = Some("m".into()),
        Kind::Any => {}
        Kind::Adapter => {
            e.model = Some("base".into());
            e.lora_adapters = vec!["m".into()];
        }
    }
    e
}

/// One `BlockStored` of the first `blocks` blocks of `prompt`, keyed by the
/// engine hasher when given (else arbitrary engine keys `base..`).
fn store(prompt: &[u32], blocks: usize, base: u64, hasher: Option<&BlockHasher>) -> Vec<u8> {
    let toks = &prompt[..blocks * BS];
    let keys: Vec<u64> = match hasher {
        Some(h) => h
            .block_keys(toks, &RequestExtras::default())
            .unwrap()
            .iter()
            .map(|k| k.0)
            .collect(),
        None => (0..blocks as u64).map(|i| base + i).collect(),
    };
    let ev = KvEvent::BlockStored(BlockStored {
        block_hashes: keys.iter().map(|&k| HashValue::Int(k as i128)).collect(),
        parent_block_hash: None,
        token_ids: toks.iter().map(|&t| u64::from(t)).collect(),
        block_size: BS as i64,
        ..Default::default()
    });
    encode_event_batch(
        &EventBatch {
            ts: 1.0,
            data_parallel_rank: None,
            events: vec![ev],
            skipped_events: 0,
        },
        EventLayout::V0_33,
    )
}

/// Cached blocks per endpoint name, from the prefix scorer's raw ratio.
fn matched(s: &Scheduler, id: &str, prompt: &[u32]) -> (HashMap<String, u32>, String) {
    let total = (prompt.len() / BS) as f64;
    let r = Request::with_tokens(id, "m", prompt.to_vec());
    let d = s.pick(&r).unwrap_or_else(|e| panic!("{e}"));
    let p = d.explanation.profile("default").unwrap();
    let sc = p.scorer("prefix-cache-scorer").unwrap();
    let by = p
        .scored
        .iter()
        .map(|n| n.to_string())
        .zip(sc.raw.iter().map(|&x| (x * total).round() as u32))
        .collect();
    (by, d.targets[0].name.clone())
}

/// Builds a pool in `order`, endpoint `i` of `pool` holding `pool[i].2`
/// blocks of `prompt`, and returns the matches.
fn run(
    pool: &[(&str, Kind, usize)],
    order: &[usize],
    prompt: &[u32],
    engine: Option<&HasherConfig>,
) -> HashMap<String, u32> {
    let s = precise(false, engine);
    let hasher = engine.map(|c| BlockHasher::new(c.clone()).unwrap());
    for &i in order {
        s.add_endpoint(endpoint(pool[i].0, pool[i].1)).unwrap();
    }
    for (i, &(name, _, blocks)) in pool.iter().enumerate() {
        if blocks > 0 {
            let payload = store(prompt, blocks, 1000 * (i as u64 + 1), hasher.as_ref());
            s.ingest_kv_events(name, &payload, None).unwrap();
        }
    }
    matched(&s, "r", prompt).0
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..=p.len() {
            let mut q = p.clone();
            q.insert(at, n - 1);
            out.push(q);
        }
    }
    out
}

fn parity_config() -> HasherConfig {
    HasherConfig::for_vllm("latest", HashAlgo::Sha256Cbor, BS, Some("12345")).unwrap()
}

#[test]
fn a_mixed_pool_matches_the_same_in_every_order() {
    let prompt = tokens(6 * BS, 3);
    let pool = [
        ("e1", Kind::Model, 5),
        ("e2", Kind::Any, 3),
        ("e3", Kind::Adapter, 2),
        ("e4", Kind::Model, 0),
    ];
    let want: HashMap<String, u32> = pool.iter().map(|p| (p.0.to_string(), p.2 as u32)).collect();
    let cfg = parity_config();
    for engine in [None, Some(&cfg)] {
        for order in permutations(pool.len()) {
            assert_eq!(
                run(&pool, &order, &prompt, engine),
                want,
                "order {order:?}, engine parity {}",
                engine.is_some()
            );
        }
    }
}

#[test]
fn speculative_entries_go_under_the_picks_own_model() {
    // The unlabeled endpoint comes first; the pick ("e1", served model "m",
    // holding block 0) must get speculative entries of its own model, so
    // that the next request matches the whole prompt there.
    let prompt = tokens(4 * BS, 9);
    for first_any in [true, false] {
        let s = precise(true, None);
        let (a, b) = (endpoint("e1", Kind::Model), endpoint("e2", Kind::Any));
        if first_any {
            s.add_endpoint(b).unwrap();
            s.add_endpoint(a).unwrap();
        } else {
            s.add_endpoint(a).unwrap();
            s.add_endpoint(b).unwrap();
        }
        s.ingest_kv_events("e1", &store(&prompt, 1, 1, None), None)
            .unwrap();
        let (by, target) = matched(&s, "r1", &prompt);
        assert_eq!((by["e1"], by["e2"], target.as_str()), (1, 0, "e1"));
        let (by, _) = matched(&s, "r2", &prompt);
        assert_eq!((by["e1"], by["e2"]), (4, 0), "unlabeled first: {first_any}");
    }
}

#[test]
fn a_single_model_pool_does_one_lookup() {
    let s = precise(false, None);
    for i in 1..=3 {
        s.add_endpoint(endpoint(&format!("e{i}"), Kind::Model))
            .unwrap();
    }
    let r = Request::with_tokens("r", "m", tokens(4 * BS, 1));
    let d = s.pick(&r).unwrap();
    let note = note_with(&d, "kv:");
    assert!(!note.contains("groups"), "{note}");
    s.add_endpoint(endpoint("e4", Kind::Any)).unwrap();
    let d = s.pick(&r).unwrap();
    let note = note_with(&d, "kv:");
    assert!(note.contains("(2 served-model groups, "), "{note}");
}

#[test]
fn approximate_autotune_block_size_does_not_depend_on_order() {
    let yaml = single(
        "- name: ap\n  type: approx-prefix-cache-producer\n  parameters: {autoTune: true}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: ap}\n- type: max-score-picker\n",
    );
    for order in [[128u32, 256], [256, 128]] {
        let (s, _) = sched(&yaml);
        for (i, bs) in order.iter().enumerate() {
            let mut m = metrics(0, 0, 0.0);
            m.cache_block_size = *bs;
            s.add_endpoint(ep(&format!("e{}", i + 1), m)).unwrap();
        }
        let d = s
            .pick(&Request::with_tokens("r", "m", tokens(1024, 1)))
            .unwrap();
        let note = note_with(&d, "ap:");
        assert!(note.contains("blocks of 128 tokens"), "{order:?}: {note}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random pools (kinds and held prefixes), added in a shuffled order:
    /// every endpoint matches exactly what its own events stored.
    #[test]
    fn shuffled_candidates_match_what_each_endpoint_stored(
        spec in proptest::collection::vec((0u8..3, 0usize..=5), 1..6),
        order_seed in any::<u64>(),
        parity in any::<bool>(),
    ) {
        let prompt = tokens(5 * BS, 17);
        let names: Vec<String> = (1..=spec.len()).map(|i| format!("e{i}")).collect();
        let pool: Vec<(&str, Kind, usize)> = spec
            .iter()
            .zip(&names)
            .map(|(&(k, n), name)| {
                let kind = [Kind::Model, Kind::Any, Kind::Adapter][k as usize];
                (name.as_str(), kind, n)
            })
            .collect();
        // A seeded Fisher-Yates shuffle of the registration order.
        let mut order: Vec<usize> = (0..pool.len()).collect();
        let mut x = order_seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let cfg = parity_config();
        let got = run(&pool, &order, &prompt, parity.then_some(&cfg));
        for &(name, _, blocks) in &pool {
            prop_assert_eq!(got[name], blocks as u32, "{} in order {:?}", name, order);
        }
    }
}
