//! Unit tests of the index through its public API (router keys, speculative
//! entries, approximate mode, capacity).

use super::router::{router_chain, router_root};
use super::*;
use crate::events::{BlockRemoved, BlockStored, EventBatch, HashValue, KvEvent};
use crate::types::BlockKey;

fn batch(events: Vec<KvEvent>) -> EventBatch {
    EventBatch {
        ts: 0.0,
        data_parallel_rank: Some(0),
        events,
        skipped_events: 0,
    }
}

fn stored(hashes: &[u64], parent: Option<u64>, tokens: Vec<u64>, medium: &str) -> KvEvent {
    KvEvent::BlockStored(BlockStored {
        block_hashes: hashes.iter().map(|&h| HashValue::Int(h.into())).collect(),
        parent_block_hash: parent.map(|p| HashValue::Int(p.into())),
        token_ids: tokens,
        block_size: 4,
        medium: Some(medium.to_string()),
        ..BlockStored::default()
    })
}

/// A GPU `BlockStored` of engine blocks of `block_size` tokens.
fn stored_sized(hashes: &[u64], parent: Option<u64>, tokens: Vec<u64>, block_size: i64) -> KvEvent {
    let mut e = stored(hashes, parent, tokens, "GPU");
    if let KvEvent::BlockStored(b) = &mut e {
        b.block_size = block_size;
    }
    e
}

fn removed(hashes: &[u64], medium: &str) -> KvEvent {
    KvEvent::BlockRemoved(BlockRemoved {
        block_hashes: hashes.iter().map(|&h| HashValue::Int(h.into())).collect(),
        medium: Some(medium.to_string()),
        ..BlockRemoved::default()
    })
}

fn router_keys(model: &str, tokens: &[u64]) -> Vec<BlockKey> {
    let mut out = Vec::new();
    router_chain(
        router_root(model, None, None),
        4,
        tokens.iter().copied(),
        &mut Vec::new(),
        &mut out,
    );
    out.into_iter().map(BlockKey).collect()
}

/// The run of `ep` for the prompt `toks` under model "m" (router keys of
/// 4-token blocks).
fn router_run(idx: &KvIndex, ep: EndpointId, toks: &[u64]) -> u32 {
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &router_keys("m", toks), &mut out);
    out.get(ep).map_or(0, |m| m.consecutive_blocks)
}

fn router_index() -> KvIndex {
    router_index_mapping(IndexConfig::default().engine_map_capacity_per_endpoint)
}

/// [`router_index`] keeping `mappings` engine-key mappings per endpoint.
fn router_index_mapping(mappings: usize) -> KvIndex {
    KvIndex::new(IndexConfig {
        capacity_blocks: 4096,
        key_mode: KeyMode::RouterKeys { block_size: 4 },
        engine_map_capacity_per_endpoint: mappings,
        ..IndexConfig::default()
    })
    .unwrap()
}

/// A router-key index of `block_size`-token router blocks.
fn router_index_of(block_size: usize) -> KvIndex {
    KvIndex::new(IndexConfig {
        capacity_blocks: 1 << 14,
        key_mode: KeyMode::RouterKeys { block_size },
        ..IndexConfig::default()
    })
    .unwrap()
}

/// The run of `ep` for the prompt `toks` under model "m", router keys of
/// `block_size`-token blocks.
fn router_run_of(idx: &KvIndex, ep: EndpointId, block_size: usize, toks: &[u64]) -> usize {
    let mut keys = Vec::new();
    let root = router_root("m", None, None);
    router_chain(
        root,
        block_size,
        toks.iter().copied(),
        &mut Vec::new(),
        &mut keys,
    );
    let keys: Vec<BlockKey> = keys.into_iter().map(BlockKey).collect();
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &keys, &mut out);
    out.get(ep).map_or(0, |m| m.consecutive_blocks as usize)
}

/// A shared prefix that later events only name as their parent stays in
/// the endpoint's engine-key map while children come and go: its uses
/// refresh it, so its continuations keep being placed.
#[test]
fn a_parent_in_use_stays_in_the_engine_key_map() {
    let idx = router_index_mapping(8);
    let ep = idx.register_endpoint("a").unwrap();
    let prefix: Vec<u64> = (0..4).collect();
    idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored(&[1], None, prefix.clone(), "GPU")]),
    );
    for child in 0..40u64 {
        let tokens: Vec<u64> = (100 + child * 4..104 + child * 4).collect();
        let r = idx.apply_batch(
            ep,
            "m",
            &batch(vec![stored(
                &[1000 + child],
                Some(1),
                tokens.clone(),
                "GPU",
            )]),
        );
        assert_eq!(r.unplaceable, 0, "child {child}");
        let mut all = prefix.clone();
        all.extend(&tokens);
        let mut out = PrefixMatches::new();
        idx.match_prefix("m", &router_keys("m", &all), &mut out);
        assert_eq!(
            out.get(ep).map(|m| m.consecutive_blocks),
            Some(2),
            "child {child}"
        );
    }
}

#[test]
fn router_keys_place_children_through_parents_and_tiers() {
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let b = idx.register_endpoint("b").unwrap();
    assert_eq!(idx.register_endpoint("a").unwrap(), a);
    let toks: Vec<u64> = (1..=16).collect();
    let r = idx.apply_batch(
        a,
        "m",
        &batch(vec![
            stored(&[100, 101], None, toks[..8].to_vec(), "GPU"),
            stored(&[102, 103], Some(101), toks[8..].to_vec(), "GPU"),
            stored(&[102], None, vec![], "cpu"),
        ]),
    );
    assert_eq!((r.stored, r.unplaceable), (5, 0));
    // b: parent unknown → dropped and counted.
    let r = idx.apply_batch(
        b,
        "m",
        &batch(vec![stored(&[7], Some(6), toks[..4].to_vec(), "GPU")]),
    );
    assert_eq!((r.stored, r.unplaceable), (0, 1));
    let keys = router_keys("m", &toks);
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &keys, &mut out);
    assert_eq!(out.total_blocks(), 4);
    let m = *out.get(a).unwrap();
    assert_eq!(m.consecutive_blocks, 4);
    assert!((m.weighted_score - 4.0).abs() < 1e-9);
    assert!(out.get(b).is_none());
    // GPU copy of block 2 removed: CPU copy remains with weight 0.8.
    let r = idx.apply_batch(a, "m", &batch(vec![removed(&[102], "GPU")]));
    assert_eq!(r.removed, 1);
    idx.match_prefix("m", &keys, &mut out);
    let m = *out.get(a).unwrap();
    assert_eq!(m.consecutive_blocks, 4);
    assert!((m.weighted_score - 3.8).abs() < 1e-9);
    // A hole at block 1 cuts the run.
    idx.apply_batch(a, "m", &batch(vec![removed(&[101], "GPU")]));
    idx.match_prefix("m", &keys, &mut out);
    assert_eq!(out.get(a).unwrap().consecutive_blocks, 1);
    // Other model, other keys.
    idx.match_prefix("other", &keys, &mut out);
    assert!(out.is_empty());
    let s = idx.stats();
    assert_eq!(s.endpoints[0].blocks, [2, 1, 0]);
    idx.apply_batch(a, "m", &batch(vec![KvEvent::AllBlocksCleared]));
    idx.match_prefix("m", &keys, &mut out);
    assert!(out.is_empty());
    assert_eq!(idx.stats().entries, 0);
}

/// A `BlockStored` with tokens but no block hashes (router keys): its router
/// blocks have no engine key to be held under; counted, not dropped
/// silently.
#[test]
fn tokens_without_block_hashes_are_counted() {
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let r = idx.apply_batch(
        a,
        "m",
        &batch(vec![stored(&[], None, (1..=8).collect(), "GPU")]),
    );
    assert_eq!((r.stored, r.unplaceable), (0, 2), "{r:?}");
}

/// In a batch of several `AllBlocksCleared`, the events before the last
/// are not applied (the clear erases them; each clear of a held slot would
/// scan the table): counted as superseded, and the index is as if they had
/// been applied.
#[test]
fn events_before_a_batchs_last_clear_are_superseded() {
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let r = idx.apply_batch(
        a,
        "m",
        &batch(vec![
            stored(&[1], None, vec![1, 2, 3, 4], "GPU"),
            KvEvent::AllBlocksCleared,
            stored(&[2], None, vec![5, 6, 7, 8], "GPU"),
            KvEvent::AllBlocksCleared,
            stored(&[3], None, vec![9, 10, 11, 12], "GPU"),
        ]),
    );
    assert_eq!((r.superseded, r.cleared, r.stored), (3, 1, 1));
    let mut out = PrefixMatches::new();
    for (toks, held) in [
        (vec![1, 2, 3, 4], false),
        (vec![5, 6, 7, 8], false),
        (vec![9, 10, 11, 12], true),
    ] {
        idx.match_prefix("m", &router_keys("m", &toks), &mut out);
        assert_eq!(out.get(a).is_some(), held, "{toks:?}");
    }
    assert_eq!(idx.stats().entries, 1);
}

#[test]
fn unknown_media_and_unregistered_endpoints_are_counted() {
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let r = idx.apply_batch(
        a,
        "m",
        &batch(vec![stored(&[1], None, vec![1, 2, 3, 4], "tape")]),
    );
    assert_eq!(r.unknown_media, 1);
    let r = idx.apply_batch(EndpointId(9), "m", &batch(vec![KvEvent::AllBlocksCleared]));
    assert_eq!(r.ignored, 1);
    idx.remove_endpoint(a);
    assert_eq!(idx.endpoint_id("a"), None);
    let r = idx.apply_batch(a, "m", &batch(vec![KvEvent::AllBlocksCleared]));
    assert_eq!(r.ignored, 1);
    assert_eq!(idx.stats().ignored_events, 2);
}

#[test]
fn speculative_entries_expire_or_get_confirmed() {
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (1..=8).collect();
    let keys = router_keys("m", &toks);
    idx.insert_speculative(a, "m", &keys, 1_000);
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &keys, &mut out);
    let m = *out.get(a).unwrap();
    assert_eq!(m.consecutive_blocks, 2);
    assert!((m.weighted_score - 1.8).abs() < 1e-9);
    // Block 0 confirmed by an event; block 1 expires.
    idx.apply_batch(
        a,
        "m",
        &batch(vec![stored(&[5], None, toks[..4].to_vec(), "GPU")]),
    );
    idx.tick(1_000 + idx.config().speculative_ttl_ns);
    idx.match_prefix("m", &keys, &mut out);
    let m = *out.get(a).unwrap();
    assert_eq!(m.consecutive_blocks, 1);
    assert!((m.weighted_score - 1.0).abs() < 1e-9);
    let s = idx.stats();
    assert_eq!((s.speculative_confirmed, s.speculative_expired), (1, 1));
    assert_eq!(s.endpoints[0].speculative, 0);
}

#[test]
fn approximate_mode_keeps_a_bounded_lru_per_endpoint() {
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 4096,
        key_mode: KeyMode::Approximate { block_size: 4 },
        approx_capacity_per_endpoint: 3,
        ..IndexConfig::default()
    })
    .unwrap();
    let a = idx.register_endpoint("a").unwrap();
    let k: Vec<BlockKey> = (0..5).map(BlockKey).collect();
    idx.record_routing(a, "m", &k[..2], 0);
    idx.record_routing(a, "m", &k[..1], 0); // refresh block 0
    idx.record_routing(a, "m", &k[2..4], 0); // evicts block 1
    assert_eq!(idx.stats().endpoints[0].blocks[0], 3);
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &k, &mut out);
    assert_eq!(out.get(a).unwrap().consecutive_blocks, 1);
    let r = idx.apply_batch(a, "m", &batch(vec![KvEvent::AllBlocksCleared]));
    assert_eq!(r.ignored, 1);
}

#[test]
fn endpoints_fill_up_and_slots_are_reused() {
    let idx = KvIndex::new(IndexConfig {
        max_endpoints: 2,
        ..IndexConfig::default()
    })
    .unwrap();
    let a = idx.register_endpoint("a").unwrap();
    idx.register_endpoint("b").unwrap();
    assert_eq!(
        idx.register_endpoint("c"),
        Err(IndexError::EndpointsFull { max: 2 })
    );
    idx.remove_endpoint(a);
    let c = idx.register_endpoint("c").unwrap();
    assert_eq!(c, a);
    assert_eq!(idx.endpoint_name(c).as_deref(), Some("c"));
}

#[test]
fn invalid_config_is_an_error() {
    let e = KvIndex::new(IndexConfig {
        capacity_blocks: 0,
        ..IndexConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("capacity_blocks"));
    // A block size no engine uses, which buffers would be sized from.
    let e = KvIndex::new(IndexConfig {
        key_mode: KeyMode::RouterKeys {
            block_size: 1 << 40,
        },
        ..IndexConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("block_size"), "{e}");
    // Capacities past what the bounded maps address are refused, not
    // clamped to a bound the caller did not ask for.
    for cfg in [
        IndexConfig {
            speculative_capacity: super::MAX_LRU_CAPACITY + 1,
            ..IndexConfig::default()
        },
        IndexConfig {
            approx_capacity_per_endpoint: usize::MAX,
            ..IndexConfig::default()
        },
        IndexConfig {
            engine_map_capacity_per_endpoint: super::MAX_LRU_CAPACITY + 1,
            ..IndexConfig::default()
        },
    ] {
        let e = KvIndex::new(cfg).unwrap_err();
        assert!(e.to_string().contains("2^32-2"), "{e}");
    }
}

/// Clearing an endpoint that holds nothing (a batch of repeated
/// `AllBlocksCleared`) leaves it usable and holding nothing.
#[test]
fn clearing_an_empty_endpoint_is_a_no_op() {
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 1 << 12,
        key_mode: KeyMode::Approximate { block_size: 4 },
        ..IndexConfig::default()
    })
    .unwrap();
    let ep = idx.register_endpoint("e").unwrap();
    let keys: Vec<BlockKey> = (0..8).map(BlockKey).collect();
    idx.record_routing(ep, "m", &keys, 0);
    for _ in 0..3 {
        idx.clear_endpoint(ep);
    }
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &keys, &mut out);
    assert!(out.get(ep).is_none());
    idx.record_routing(ep, "m", &keys[..3], 0);
    idx.match_prefix("m", &keys, &mut out);
    assert_eq!(out.get(ep).map(|m| m.consecutive_blocks), Some(3));
}

#[test]
fn many_endpoints_across_clusters_match() {
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 1 << 16,
        key_mode: KeyMode::Approximate { block_size: 4 },
        ..IndexConfig::default()
    })
    .unwrap();
    let keys: Vec<BlockKey> = (0..20).map(BlockKey).collect();
    let ids: Vec<EndpointId> = (0..1024)
        .map(|i| idx.register_endpoint(&format!("e{i}")).unwrap())
        .collect();
    for (i, &ep) in ids.iter().enumerate() {
        idx.record_routing(ep, "m", &keys[..i % 21], 0);
    }
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &keys, &mut out);
    for (i, &ep) in ids.iter().enumerate() {
        let want = (i % 21) as u32;
        assert_eq!(
            out.get(ep).map_or(0, |m| m.consecutive_blocks),
            want,
            "endpoint {i}"
        );
    }
    assert_eq!(idx.stats().evictions, 0);
}

fn parity_index(seed: &str) -> KvIndex {
    use crate::hash::{BlockHasher, HashAlgo, HasherConfig};
    let cfg = HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 16, Some(seed)).unwrap();
    KvIndex::new(IndexConfig {
        capacity_blocks: 4096,
        key_mode: KeyMode::EngineParity(BlockHasher::new(cfg).unwrap()),
        ..IndexConfig::default()
    })
    .unwrap()
}

/// vLLM 0.33, sha256_cbor, seed "42", tokens 1..32, block 16 (SPEC vectors).
const PARITY_KEY0: u64 = 16300212363532267629;

#[test]
fn engine_parity_self_check_flags_a_wrong_seed() {
    let tokens: Vec<u64> = (1..=32).collect();
    let mut ev = BlockStored {
        block_hashes: vec![HashValue::Int(PARITY_KEY0.into()), HashValue::Int(7)],
        token_ids: tokens.clone(),
        block_size: 16,
        extra_keys: Some(vec![None, None]),
        ..BlockStored::default()
    };
    for (seed, mismatches) in [("42", 0), ("0", 1)] {
        let idx = parity_index(seed);
        let a = idx.register_endpoint("a").unwrap();
        let r = idx.apply_batch(a, "m", &batch(vec![KvEvent::BlockStored(ev.clone())]));
        assert_eq!(
            (r.parity_checks, r.parity_mismatches, r.stored),
            (1, mismatches, 2)
        );
        assert_eq!(idx.stats().parity_mismatches, mismatches as u64);
        // The prompt hashes to the published keys when the seed is right.
        let keys = idx.prompt_keys("m", &tokens, &Default::default()).unwrap();
        assert_eq!(keys[0].0 == PARITY_KEY0, mismatches == 0);
    }
    // Not checkable: a parent, another block size, or a multimodal extra key.
    let idx = parity_index("0");
    let a = idx.register_endpoint("a").unwrap();
    ev.parent_block_hash = Some(HashValue::Int(1));
    let mut other_size = ev.clone();
    other_size.parent_block_hash = None;
    other_size.block_size = 32;
    let mut mm = other_size.clone();
    mm.block_size = 16;
    mm.extra_keys = Some(vec![
        Some(vec![crate::events::ExtraValue::Str("img".into())]),
        None,
    ]);
    // A sliding-window group's event from a release without
    // `kv_cache_spec_kind`: its masked first block is not hashed, so its
    // token ids span more blocks than its keys and its first key is not
    // block 0's.
    let mut masked = mm.clone();
    masked.extra_keys = None;
    masked.block_hashes = vec![HashValue::Int(7)];
    masked.group_idx = Some(1);
    let evs = [ev, other_size, mm, masked]
        .map(KvEvent::BlockStored)
        .to_vec();
    let r = idx.apply_batch(a, "m", &batch(evs));
    assert_eq!((r.parity_checks, r.parity_mismatches), (0, 0));
}

#[test]
fn router_prompt_keys_follow_model_and_lora() {
    use crate::hash::{LoraRef, RequestExtras};
    let idx = router_index();
    let tokens: Vec<u32> = (1..=9).collect();
    let plain = idx
        .prompt_keys("m", &tokens, &RequestExtras::default())
        .unwrap();
    assert_eq!(plain.len(), 2);
    let toks64: Vec<u64> = tokens.iter().map(|&t| t.into()).collect();
    assert_eq!(plain, router_keys("m", &toks64[..8]));
    let lora = RequestExtras {
        lora: Some(LoraRef {
            name: Some("ad".into()),
            ..LoraRef::default()
        }),
        ..RequestExtras::default()
    };
    assert_ne!(idx.prompt_keys("m", &tokens, &lora).unwrap()[0], plain[0]);
    assert_ne!(
        idx.prompt_keys("n", &tokens, &RequestExtras::default())
            .unwrap()[0],
        plain[0]
    );
}

#[test]
fn router_keys_pair_engine_blocks_of_another_size() {
    // Engine blocks of 8 tokens, router blocks of 4: two router keys each.
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (1..=24).collect();
    let first = stored_sized(&[10, 11], None, toks[..16].to_vec(), 8);
    let child = stored_sized(&[12], Some(11), toks[16..].to_vec(), 8);
    let r = idx.apply_batch(a, "m", &batch(vec![first, child]));
    assert_eq!((r.stored, r.unplaceable), (6, 0));
    assert_eq!(router_run(&idx, a, &toks), 6);
    // Removing engine block 11 clears both router blocks it held (tokens
    // 8..16): what is left is engine block 10, router blocks 0 and 1.
    let r = idx.apply_batch(a, "m", &batch(vec![removed(&[11], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (2, 0));
    assert_eq!(router_run(&idx, a, &toks), 2);
    // Offloading engine block 10 (a placeholder naming it, no tokens)
    // holds both of its router blocks in the CPU tier too.
    let r = idx.apply_batch(a, "m", &batch(vec![stored(&[10], None, vec![], "CPU")]));
    assert_eq!((r.stored, r.unplaceable), (2, 0));
}

/// An engine block's derived mappings (router blocks smaller than its own)
/// age with it in the bounded map: naming it as a parent refreshes them
/// too, so its removal still clears every router block it held.
#[test]
fn derived_mappings_age_with_their_engine_block() {
    let idx = router_index_mapping(4);
    let a = idx.register_endpoint("a").unwrap();
    let ev = |hashes: &[u64], parent: Option<u64>, t: Vec<u64>| stored_sized(hashes, parent, t, 8);
    // Two mappings per engine block; the map holds two blocks' worth.
    idx.apply_batch(a, "m", &batch(vec![ev(&[10], None, (0..8).collect())]));
    idx.apply_batch(a, "m", &batch(vec![ev(&[11], Some(10), (8..16).collect())]));
    // Block 10 named as a parent again: it and its derived mapping become
    // the most recent, so block 12's mappings push out block 11's.
    let r = idx.apply_batch(
        a,
        "m",
        &batch(vec![ev(&[12], Some(10), (16..24).collect())]),
    );
    assert_eq!((r.stored, r.unplaceable), (2, 0));
    let r = idx.apply_batch(a, "m", &batch(vec![removed(&[10], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (2, 0));
    let r = idx.apply_batch(a, "m", &batch(vec![removed(&[11], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (0, 1));
}

/// An engine block spanning more router blocks than a mapping names
/// (`MAX_COVERED` before its last): the ones it cannot map are counted, not
/// dropped silently.
#[test]
fn router_blocks_an_engine_block_cannot_map_are_counted() {
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 1 << 18,
        key_mode: KeyMode::RouterKeys { block_size: 1 },
        ..IndexConfig::default()
    })
    .unwrap();
    let a = idx.register_endpoint("a").unwrap();
    let n = super::router::MAX_COVERED + 3;
    let ev = stored_sized(&[7], None, (0..n as u64).collect(), n as i64);
    let r = idx.apply_batch(a, "m", &batch(vec![ev]));
    // n router blocks stored; the last and MAX_COVERED before it mapped,
    // the first two not.
    assert_eq!((r.stored, r.unplaceable), (n as u32, 2));
    // Named again and again (an offload placeholder, a removal from a tier
    // it is not in): each name costs its derived mappings once per event.
    let many = vec![7u64; 100_000];
    let r = idx.apply_batch(
        a,
        "m",
        &batch(vec![
            stored(&many, None, vec![], "CPU"),
            removed(&many, "DISK"),
        ]),
    );
    // The repeats are counted (the removal's), not redone.
    assert_eq!(r.unplaceable, 99_999, "the repeats of the removal: {r:?}");
}

/// Router blocks that straddle two engine blocks (engine 6 tokens, router
/// 4): removing an engine block clears every router block holding any of
/// its tokens, not only the one holding its last.
#[test]
fn a_removed_engine_block_clears_every_router_block_it_was_part_of() {
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (1..=24).collect();
    let ev = stored_sized(&[20, 21, 22, 23], None, toks.clone(), 6);
    let r = idx.apply_batch(a, "m", &batch(vec![ev]));
    assert_eq!((r.stored, r.unplaceable), (6, 0));
    assert_eq!(router_run(&idx, a, &toks), 6);
    // Engine block 21 holds tokens 6..12: router blocks 1 (4..8) and 2
    // (8..12). Without it only router block 0 is whole.
    let r = idx.apply_batch(a, "m", &batch(vec![removed(&[21], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (2, 0));
    assert_eq!(router_run(&idx, a, &toks), 1);
}

#[test]
fn a_table_that_cannot_be_allocated_is_an_error() {
    // 2^36 entries need ~1.7 TB of buckets: refused, not an abort.
    let e = KvIndex::new(IndexConfig {
        capacity_blocks: 1 << 36,
        ..IndexConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(e, IndexError::OutOfMemory { capacity_blocks, bytes }
            if capacity_blocks == 1 << 36 && bytes > 1 << 40),
        "{e}"
    );
    assert!(
        e.to_string().contains("capacity_blocks = 68719476736"),
        "{e}"
    );
}

#[test]
fn record_routing_is_speculative_outside_approximate_mode() {
    let idx = router_index();
    let ep = idx.register_endpoint("a").unwrap();
    let keys = router_keys("m", &(0..16).collect::<Vec<u64>>());
    idx.record_routing(ep, "m", &keys, 1_000);
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &keys, &mut out);
    let m = out.get(ep).copied().unwrap();
    assert_eq!(m.consecutive_blocks, 4);
    // Speculative weight (0.9 by default), not GPU's.
    assert!((m.weighted_score - 3.6).abs() < 1e-9, "{m:?}");
    assert_eq!(idx.stats().endpoints[0].speculative, 4);
    // They expire with the TTL like any speculative entry.
    idx.tick(1_000 + idx.config().speculative_ttl_ns);
    idx.match_prefix("m", &keys, &mut out);
    assert!(out.is_empty());
}

#[test]
fn parent_zero_is_no_parent() {
    // llm-d-inference-sim's array form: a chain's first block names parent 0.
    let idx = router_index();
    let ep = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (0..8).collect();
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored(&[11, 12], Some(0), toks.clone(), "GPU")]),
    );
    assert_eq!((r.stored, r.unplaceable), (2, 0), "{r:?}");
    assert_eq!(r.stored_by_tier, [2, 0, 0]);
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &router_keys("m", &toks), &mut out);
    assert_eq!(out.get(ep).map(|m| m.consecutive_blocks), Some(2));
}

#[test]
fn reports_count_per_tier_since_the_last_clear() {
    let idx = router_index();
    let ep = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (0..8).collect();
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![
            stored(&[1, 2], None, toks.clone(), "GPU"),
            KvEvent::AllBlocksCleared,
            stored(&[1], None, toks[..4].to_vec(), "CPU"),
            stored(&[5], Some(99), toks[4..].to_vec(), "GPU"),
            removed(&[1], "CPU"),
            stored(&[1], None, toks[..4].to_vec(), "CPU"),
        ]),
    );
    // One clear: the batch is applied whole (the store before it counted).
    assert_eq!(
        (r.stored, r.removed, r.cleared, r.unplaceable, r.superseded),
        (4, 1, 1, 1, 0)
    );
    assert_eq!(
        (r.stored_by_tier, r.removed_by_tier),
        ([0, 2, 0], [0, 1, 0])
    );
}

#[test]
fn moves_between_tiers_are_counted() {
    let idx = router_index();
    let ep = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (0..8).collect();
    let apply = |events| idx.apply_batch(ep, "m", &batch(events)).moves;
    let (gpu, cpu, disk) = (0, 1, 2);
    assert_eq!(
        apply(vec![stored(&[1, 2], None, toks.clone(), "GPU")]),
        [[0; 3]; 3]
    );
    // Copied to CPU while still on GPU: an offload.
    let m = apply(vec![stored(&[1], None, toks[..4].to_vec(), "CPU")]);
    assert_eq!((m[gpu][cpu], m.iter().flatten().sum::<u32>()), (1, 1));
    // Evicted from GPU, then stored on CPU in the same batch: an offload.
    let m = apply(vec![
        removed(&[2], "GPU"),
        stored(&[2], Some(1), toks[4..].to_vec(), "CPU"),
    ]);
    assert_eq!((m[gpu][cpu], m.iter().flatten().sum::<u32>()), (1, 1));
    // Block 1 leaves the GPU; loaded back from CPU later: a reload.
    assert_eq!(apply(vec![removed(&[1], "GPU")]), [[0; 3]; 3]);
    let m = apply(vec![stored(&[1], None, toks[..4].to_vec(), "GPU")]);
    assert_eq!((m[cpu][gpu], m.iter().flatten().sum::<u32>()), (1, 1));
    // Storage tier: CPU to disk is an offload too.
    let m = apply(vec![stored(&[2], Some(1), toks[4..].to_vec(), "DISK")]);
    assert_eq!(m[cpu][disk], 1);
    // Gone from every tier in an earlier batch, then stored: no move.
    apply(vec![removed(&[2], "CPU"), removed(&[2], "DISK")]);
    assert_eq!(
        apply(vec![stored(&[2], Some(1), toks[4..].to_vec(), "GPU")]),
        [[0; 3]; 3]
    );
    // A clear forgets the batch's removals.
    let m = apply(vec![
        removed(&[1], "GPU"),
        KvEvent::AllBlocksCleared,
        stored(&[1], None, toks[..4].to_vec(), "CPU"),
    ]);
    assert_eq!(m, [[0; 3]; 3]);
}

/// Distinct fingerprints from a seeded xorshift (never 0).
fn fingerprints(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> super::bucket::TAG_BITS).max(1)
        })
        .collect()
}

#[test]
fn nothing_is_evicted_below_capacity() {
    for (capacity, endpoints) in [(1_000, 1), (50_000, 3), (300_000, 8), (100_000, 200)] {
        let idx = KvIndex::new(IndexConfig {
            capacity_blocks: capacity,
            max_endpoints: 256,
            ..IndexConfig::default()
        })
        .unwrap();
        // Every entry distinct: (fingerprint, tier 0, group of the endpoint).
        let groups = (endpoints as usize).div_ceil(64);
        let per_group = capacity / groups;
        for g in 0..groups {
            for fp in fingerprints(per_group, 7 + g as u64) {
                assert!(idx.table.set(fp, 0, (g * 64) as u16, 0).newly);
            }
        }
        let st = idx.stats();
        assert_eq!(
            st.entries,
            (per_group * groups) as u64,
            "capacity {capacity}"
        );
        assert_eq!(
            (st.evictions, st.displacement_failures),
            (0, 0),
            "capacity {capacity}: {st:?}"
        );
        // Full: every further entry evicts exactly one, and the table never
        // holds more than its capacity.
        for fp in fingerprints(capacity / 10, 99) {
            idx.table.set(fp, 1, 0, 0);
        }
        let st = idx.stats();
        assert!(st.entries <= capacity as u64, "{st:?}");
        assert!(st.evictions >= (capacity / 10 - (capacity - per_group * groups)) as u64);
    }
}

#[test]
fn every_entry_stays_findable_after_moves() {
    // Fill to capacity (many entries end up moved to their alternates), then
    // look each one up and clear it.
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 20_000,
        ..IndexConfig::default()
    })
    .unwrap();
    let fps = fingerprints(20_000, 3);
    for &fp in &fps {
        idx.table.set(fp, 0, 5, 0);
    }
    assert!(
        idx.stats().moves > 0,
        "no entry was moved: the test shows nothing"
    );
    for &fp in &fps {
        assert!(!idx.table.set(fp, 0, 5, 0).newly, "fp {fp} was lost");
    }
    for &fp in &fps {
        assert!(idx.table.clear(fp, 0, 5), "fp {fp} not found");
    }
    assert_eq!(idx.stats().entries, 0);
}

#[test]
fn concurrent_writers_never_exceed_capacity() {
    let idx = std::sync::Arc::new(
        KvIndex::new(IndexConfig {
            capacity_blocks: 5_000,
            ..IndexConfig::default()
        })
        .unwrap(),
    );
    for t in 0..3 {
        idx.register_endpoint(&format!("e{t}")).unwrap();
    }
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let idx = idx.clone();
            std::thread::spawn(move || {
                // Odd seeds: `fingerprints` sets the low bit, so 12 and 13
                // would give two writers the same blocks (two bits an entry).
                for fp in fingerprints(20_000, 11 + 2 * t) {
                    idx.table.set(fp, 0, t as u16, 0);
                    assert!(idx.table.live() <= 5_000);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let st = idx.stats();
    assert_eq!(st.entries, 5_000, "{st:?}");
    assert_eq!(st.holdings, 5_000);
}

/// Lookups served from checkpoints do not probe the pinned blocks; when the
/// table is full they refresh those blocks' reference bits a window at a
/// time, so CLOCK still sees the prefix in use. Below capacity, nothing.
#[test]
fn pinned_blocks_stay_referenced_when_the_table_is_full() {
    let keys: Vec<u64> = (0..1000u64).map(|i| keys::mix64(i ^ 0xfeed)).collect();
    let query: Vec<BlockKey> = keys.iter().map(|&k| BlockKey(k)).collect();
    let seed = keys::model_seed("m");
    let all_referenced = |idx: &KvIndex, ep: EndpointId| {
        keys.iter()
            .filter(|&&k| idx.table.referenced(keys::fingerprint(seed, k), 0, ep.0))
            .count()
    };
    for full in [false, true] {
        let idx = KvIndex::new(IndexConfig {
            capacity_blocks: if full { 1000 } else { 4000 },
            key_mode: KeyMode::Approximate { block_size: 16 },
            ..IndexConfig::default()
        })
        .unwrap();
        let ep = idx.register_endpoint("a").unwrap();
        idx.record_routing(ep, "m", &query, 0);
        assert_eq!(idx.table.full(), full);
        idx.table.clear_references();
        let mut out = PrefixMatches::new();
        for _ in 0..(992 / super::lookup::TOUCHES) {
            idx.match_prefix("m", &query, &mut out);
            assert_eq!(out.get(ep).map(|m| m.consecutive_blocks), Some(1000));
            assert!(out.probed_blocks() <= 9);
        }
        let touched = all_referenced(&idx, ep);
        if full {
            assert_eq!(touched, 1000, "every block of the prefix refreshed");
        } else {
            // Only block 0 and the walked tail past the last checkpoint.
            assert!(touched <= 9, "{touched}");
        }
    }
}

/// Chains stored through events, several times the table's capacity: the
/// groups' shared prefixes outlive the chains' own tails, and an orphan
/// (a block whose parent its endpoint does not hold) goes first of all.
#[test]
fn shared_prefixes_outlive_tails_under_eviction() {
    use crate::hash::{BlockHasher, HashAlgo, HasherConfig};
    const PREFIX: usize = 64;
    const TAIL: usize = 448;
    const CHAINS: usize = 8;
    let cfg = HasherConfig::for_vllm("0.33.0", HashAlgo::Sha256Cbor, 16, Some("1")).unwrap();
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 20_000,
        key_mode: KeyMode::EngineParity(BlockHasher::new(cfg).unwrap()),
        ..IndexConfig::default()
    })
    .unwrap();
    let eps: Vec<_> = (0..CHAINS)
        .map(|c| idx.register_endpoint(&format!("e{c}")).unwrap())
        .collect();
    let key = |g: u64, c: u64, i: u64| keys::mix64(g << 40 | c << 20 | i) | 1;
    let events = |keys: &[u64], parent: Option<u64>| {
        keys.chunks(16)
            .enumerate()
            .map(|(j, chunk)| {
                let parent = if j == 0 {
                    parent
                } else {
                    Some(keys[j * 16 - 1])
                };
                stored(chunk, parent, vec![], "GPU")
            })
            .collect::<Vec<_>>()
    };
    let groups = 12u64; // 12 × (64 + 8 × 448) = 43,776 entries into 20,000
    for g in 0..groups {
        let prefix: Vec<u64> = (0..PREFIX as u64).map(|i| key(g, 0, i)).collect();
        for (c, &ep) in eps.iter().enumerate() {
            // Each endpoint stores the prefix (one entry for all eight), then
            // its own tail continuing it, as vLLM publishes a request.
            let tail: Vec<u64> = (0..TAIL as u64).map(|i| key(g, c as u64 + 1, i)).collect();
            let mut evs = events(&prefix, None);
            evs.extend(events(&tail, prefix.last().copied()));
            idx.apply_batch(ep, "m", &batch(evs));
        }
    }
    let seed = keys::model_seed("m");
    let held = |k: u64, ep: EndpointId| idx.table.holds(keys::fingerprint(seed, k), 0, ep.0);
    let (mut prefix_lost, mut tail_lost, mut prefix_all, mut tail_all) = (0, 0, 0, 0);
    for g in 0..groups {
        for (c, &ep) in eps.iter().enumerate() {
            for i in 0..PREFIX as u64 {
                prefix_all += 1;
                prefix_lost += usize::from(!held(key(g, 0, i), ep));
            }
            for i in 0..TAIL as u64 {
                tail_all += 1;
                tail_lost += usize::from(!held(key(g, c as u64 + 1, i), ep));
            }
        }
    }
    assert!(idx.stats().evictions >= 20_000, "{:?}", idx.stats());
    let (p, t) = (
        prefix_lost as f64 / prefix_all as f64,
        tail_lost as f64 / tail_all as f64,
    );
    assert!(t > 0.5, "tails lost {t}");
    // With every entry equally evictable (plain CLOCK) both lose alike; a
    // prefix unused for 16 sweeps still goes, as in LRU (no lookups here).
    assert!(p * 4.0 < t, "prefix blocks lost {p}, tail blocks {t}");

    // Orphan segments (their parents never stored) go before the shallow
    // blocks of rooted chains stored with them.
    let orphans: Vec<Vec<u64>> = (0..20)
        .map(|s| (0..16).map(|i| key(99, s, i)).collect())
        .collect();
    let roots: Vec<Vec<u64>> = (0..20)
        .map(|s| (0..16).map(|i| key(98, s, i)).collect())
        .collect();
    for (o, r) in orphans.iter().zip(&roots) {
        idx.apply_batch(eps[0], "m", &batch(events(o, Some(key(97, 0, o[0])))));
        idx.apply_batch(eps[0], "m", &batch(events(r, None)));
    }
    idx.table.clear_references();
    for k in 0..5_000 {
        idx.apply_batch(eps[1], "m", &batch(events(&[key(96, 0, k)], None)));
    }
    let lost = |segs: &[Vec<u64>]| segs.iter().flatten().filter(|&&k| !held(k, eps[0])).count();
    let (orphans_lost, roots_lost) = (lost(&orphans), lost(&roots));
    assert!(
        orphans_lost >= 4 * roots_lost.max(1),
        "orphan blocks lost {orphans_lost} of 320, rooted blocks {roots_lost} of 320"
    );
}

/// Fills a table of 20,000 entries (entry `i` set by `fill(i, fp)`), marks
/// them all unused, then stores 5,000 new entries: one eviction each.
/// Returns how many of the even and of the odd entries were lost.
fn evict_a_quarter(fill: impl Fn(&KvIndex, usize, u64)) -> (usize, usize) {
    let capacity = 20_000;
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: capacity,
        ..IndexConfig::default()
    })
    .unwrap();
    let fps = fingerprints(capacity, 21);
    for (i, &fp) in fps.iter().enumerate() {
        fill(&idx, i, fp);
    }
    assert!(idx.table.full());
    idx.table.clear_references();
    for fp in fingerprints(capacity / 4, 23) {
        idx.table.set(fp, 0, 9, 0);
    }
    let lost = |parity: usize| {
        fps.iter()
            .enumerate()
            .filter(|&(i, &fp)| i % 2 == parity && !idx.table.holds(fp, 0, 0))
            .count()
    };
    let (even, odd) = (lost(0), lost(1));
    assert_eq!(even + odd, capacity / 4, "one eviction per insert");
    (even, odd)
}

/// At capacity, among entries the CLOCK hand finds unused, the deeper in
/// their chain go first (`depth.rs`): shallow entries outlive deep ones.
#[test]
fn eviction_takes_deep_entries_before_shallow_ones() {
    // Alternate shallow (class 0) and deep (class 6) entries.
    let (shallow, deep) = evict_a_quarter(|idx, i, fp| {
        idx.table.set(fp, 0, 0, if i % 2 == 0 { 0 } else { 6 });
    });
    // A shallow entry may go on one sweep in 16, a deep one on every sweep.
    assert!(
        shallow * 8 <= shallow + deep,
        "shallow entries lost {shallow}, deep {deep}"
    );
}

/// At the same depth, an entry several endpoints hold (it stands for that
/// many cached blocks) outlives one a single endpoint holds.
#[test]
fn eviction_takes_single_holder_entries_before_shared_ones() {
    let (shared, single) = evict_a_quarter(|idx, i, fp| {
        for ep in 0..if i % 2 == 0 { 4 } else { 1 } {
            idx.table.set(fp, 0, ep, 6);
        }
    });
    // A shared entry may go on one sweep in 4, a single holder's on each.
    assert!(
        shared * 3 <= shared + single,
        "shared entries lost {shared}, single-holder {single}"
    );
}

/// Router blocks larger than the engine's (8 tokens vs 4): an engine block
/// ending inside a complete router block maps to it (its removal clears
/// it) but cannot parent a later event, whose tokens would chain at the
/// wrong offset (counted as not placed, never stored under a wrong key);
/// engine blocks past the last full router block wait for the event that
/// completes it, as decode-time events do one engine block at a time.
#[test]
fn router_blocks_larger_than_the_engines_chain_from_aligned_parents_and_tails() {
    let idx = router_index_of(8);
    let ep = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (1..=24).collect();
    let matched = || router_run_of(&idx, ep, 8, &toks);
    // Engine blocks 1, 2, 3 (tokens 1-12): one full router block; block 3
    // ends past it and waits.
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored(&[1, 2, 3], None, toks[..12].to_vec(), "GPU")]),
    );
    assert_eq!((r.stored, r.unplaceable), (1, 0));
    // A child of block 3 completes router block 1 (tokens 9-16) and leaves
    // block 5 waiting; a child of block 1 (ends mid-router-block, its
    // block's tokens not kept) is not placed.
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![
            stored(&[4, 5], Some(3), toks[12..20].to_vec(), "GPU"),
            stored(&[6, 7], Some(1), toks[4..12].to_vec(), "GPU"),
        ]),
    );
    assert_eq!((r.stored, r.unplaceable), (1, 2));
    assert_eq!(matched(), 2);
    // One engine block at a time: block 8 completes router block 2.
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored(&[8], Some(5), toks[20..24].to_vec(), "GPU")]),
    );
    assert_eq!((r.stored, r.unplaceable), (1, 0));
    assert_eq!(matched(), 3);
    // Block 3, completed by its child, maps to router block 1.
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[3], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (1, 0));
    assert_eq!(matched(), 1);
    // A child of block 2 (ends with router block 0) continues the chain.
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored(
            &[9, 10, 11, 12],
            Some(2),
            toks[8..24].to_vec(),
            "GPU",
        )]),
    );
    assert_eq!((r.stored, r.unplaceable), (1, 0));
    assert_eq!(matched(), 3);
    // Removing engine block 1 clears router block 0: the prefix is gone.
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[1], "GPU")]));
    assert_eq!(r.removed, 1);
    assert_eq!(matched(), 0);
}

/// The router blocks waiting for their end are bounded per endpoint: the
/// least recently continued goes first, and its child is counted
/// unplaceable rather than chained from nothing.
#[test]
fn waiting_router_blocks_are_bounded_and_their_loss_counted() {
    let idx = router_index_of(8);
    let ep = idx.register_endpoint("a").unwrap();
    let n = super::tails::TAILS_PER_ENDPOINT as u64 + 1;
    // n sequences of one 4-token engine block: each waits in a tail.
    for s in 0..n {
        let toks: Vec<u64> = (s * 8..s * 8 + 4).collect();
        let r = idx.apply_batch(ep, "m", &batch(vec![stored(&[s + 1], None, toks, "GPU")]));
        assert_eq!((r.stored, r.unplaceable), (0, 0));
    }
    let child = |s: u64| {
        let toks: Vec<u64> = (s * 8 + 4..s * 8 + 8).collect();
        let r = idx.apply_batch(
            ep,
            "m",
            &batch(vec![stored(&[50_000 + s], Some(s + 1), toks, "GPU")]),
        );
        (r.stored, r.unplaceable)
    };
    assert_eq!(child(0), (0, 1), "the oldest tail was dropped");
    assert_eq!(child(n - 1), (1, 0));
    assert_eq!(child(1), (1, 0));
}

/// A tail is continued once: a second child of its block (a branch inside
/// the router block) is counted unplaceable, never chained from tokens
/// another child completed. A re-sent chain leaves the blocks it completed
/// as they are, and the removal of a waiting block drops its tail.
#[test]
fn a_tail_is_continued_once_and_dropped_with_its_blocks() {
    let idx = router_index_of(8);
    let ep = idx.register_endpoint("a").unwrap();
    let ev = |hash: u64, parent: Option<u64>, toks: Vec<u64>| {
        let r = idx.apply_batch(ep, "m", &batch(vec![stored(&[hash], parent, toks, "GPU")]));
        (r.stored, r.unplaceable, r.removed)
    };
    assert_eq!(ev(1, None, vec![1, 2, 3, 4]), (0, 0, 0));
    assert_eq!(ev(2, Some(1), vec![5, 6, 7, 8]), (1, 0, 0));
    assert_eq!(ev(3, Some(1), vec![9, 9, 9, 9]), (0, 1, 0), "a branch");
    let run = |toks: &[u64]| router_run_of(&idx, ep, 8, toks);
    assert_eq!(run(&[1, 2, 3, 4, 5, 6, 7, 8]), 1);
    // The chain sent again from its start: block 1 waits again, mapped as
    // it was; its continuation completes the same router block.
    assert_eq!(ev(1, None, vec![1, 2, 3, 4]), (0, 0, 0));
    assert_eq!(ev(2, Some(1), vec![5, 6, 7, 8]), (0, 0, 0));
    // Block 1's removal clears the router block it is part of.
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[1], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (1, 0));
    assert_eq!(run(&[1, 2, 3, 4, 5, 6, 7, 8]), 0);
    // A waiting block's removal drops the tail it is in: a child of the
    // tail's last block is not placed.
    let sized = |h: &[u64], parent: Option<u64>, toks: Vec<u64>| {
        let r = idx.apply_batch(ep, "m", &batch(vec![stored_sized(h, parent, toks, 2)]));
        (r.stored, r.unplaceable)
    };
    assert_eq!(sized(&[10], None, vec![20, 21]), (0, 0));
    assert_eq!(sized(&[11], Some(10), vec![22, 23]), (0, 0));
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[10], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (0, 0));
    assert_eq!(sized(&[12, 13], Some(11), vec![24, 25, 26, 27]), (0, 2));
    // A removal from another tier first does not hide the GPU one.
    assert_eq!(sized(&[20, 21], None, vec![30, 31, 32, 33]), (0, 0));
    for medium in ["CPU", "GPU"] {
        let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[20], medium)]));
        assert_eq!((r.removed, r.unplaceable), (0, 0), "{medium}");
    }
    assert_eq!(sized(&[22, 23], Some(21), vec![34, 35, 36, 37]), (0, 2));
    // A chain sent again while held waits again; the GPU removal of any of
    // its waiting blocks drops the tail.
    assert_eq!(sized(&[60, 61], None, vec![70, 71, 72, 73]), (0, 0));
    assert_eq!(sized(&[62, 63], Some(61), vec![74, 75, 76, 77]), (1, 0));
    assert_eq!(sized(&[60, 61], None, vec![70, 71, 72, 73]), (0, 0));
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[60], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (1, 0));
    assert_eq!(sized(&[62, 63], Some(61), vec![74, 75, 76, 77]), (0, 2));
    // An event with tokens and no blocks leaves a tail to its continuation.
    assert_eq!(sized(&[40], None, vec![50, 51]), (0, 0));
    assert_eq!(sized(&[], Some(40), vec![52, 53]), (0, 0));
    assert_eq!(
        sized(&[41, 42, 43], Some(40), vec![52, 53, 54, 55, 56, 57]),
        (1, 0)
    );
}

/// A waiting engine block that straddles a complete router block holds it
/// through a derived mapping, in every tier an offload placeholder adds:
/// removing it from one tier keeps what the other tiers still hold
/// reachable for their own removal.
#[test]
fn a_waiting_blocks_other_tiers_stay_removable() {
    let idx = router_index_of(8);
    let ep = idx.register_endpoint("a").unwrap();
    // Engine blocks of 6 tokens: block 2 (tokens 7-12) ends past router
    // block 0 and waits.
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored_sized(&[1, 2], None, (1..=12).collect(), 6)]),
    );
    assert_eq!((r.stored, r.unplaceable), (1, 0));
    let r = idx.apply_batch(ep, "m", &batch(vec![stored(&[2], None, vec![], "CPU")]));
    assert_eq!(
        (r.stored, r.unplaceable),
        (1, 0),
        "router block 0 offloaded"
    );
    for medium in ["GPU", "CPU"] {
        let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[2], medium)]));
        assert_eq!((r.removed, r.unplaceable), (1, 0), "{medium}");
    }
    assert_eq!(idx.stats().entries, 0);
}

/// Router blocks of another size than the engine's, engine chains stored
/// in events of random lengths down to one engine block (decode-time):
/// every router block the stored engine blocks complete is placed, nothing
/// is counted unplaceable, and removing an engine block clears exactly the
/// complete router blocks holding its tokens, waiting ones included.
#[test]
fn engine_chains_of_any_block_size_place_every_complete_router_block() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for round in 0..400 {
        let r = [4, 8, 16][next(3)];
        let e = [3, 4, 6, 8, 12, 16, 20][next(7)];
        let idx = router_index_of(r);
        let ep = idx.register_endpoint("a").unwrap();
        let blocks = 1 + next(40);
        let toks: Vec<u64> = (0..(blocks * e) as u64).map(|t| t * 7 + 1).collect();
        let run = || router_run_of(&idx, ep, r, &toks);
        let h = |b: usize| 100 + b as u64;
        let mut done = 0;
        while done < blocks {
            let n = if next(2) == 0 { 1 } else { 1 + next(6) };
            let n = n.min(blocks - done);
            let hashes: Vec<u64> = (done..done + n).map(h).collect();
            let ev = stored_sized(
                &hashes,
                (done > 0).then(|| h(done - 1)),
                toks[done * e..(done + n) * e].to_vec(),
                e as i64,
            );
            let rep = idx.apply_batch(ep, "m", &batch(vec![ev]));
            done += n;
            let ctx = format!("round {round}: router {r}, engine {e}, {done} of {blocks}");
            assert_eq!(rep.unplaceable, 0, "{ctx}");
            assert_eq!(run(), done * e / r, "{ctx}");
        }
        let full = blocks * e / r;
        let b = next(blocks);
        let (first, last) = (b * e / r, ((b + 1) * e - 1) / r);
        let rep = idx.apply_batch(ep, "m", &batch(vec![removed(&[h(b)], "GPU")]));
        let ctx = format!("round {round}: router {r}, engine {e}, {blocks} blocks, removed {b}");
        assert_eq!(rep.unplaceable, 0, "{ctx}");
        let cleared = (first..=last).filter(|&k| k < full).count();
        assert_eq!(rep.removed as usize, cleared, "{ctx}");
        assert_eq!(run(), first.min(full), "{ctx}");
    }
}

/// A sliding-window group publishes only the blocks still in its window
/// while `token_ids` spans them all: the last published block, which ends
/// the span, maps to the span's last router block and parents the next
/// event; the others are not paired by position with the span's first
/// router blocks (removing one must not clear the shared prefix).
#[test]
fn masked_blocks_map_only_the_block_that_ends_the_span() {
    let idx = router_index();
    let ep = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (1..=24).collect();
    let matched = |n: usize| {
        let mut out = PrefixMatches::new();
        idx.match_prefix("m", &router_keys("m", &toks[..n]), &mut out);
        out.get(ep).map_or(0, |m| m.consecutive_blocks)
    };
    // 4 blocks of tokens, 2 published (blocks 3 and 4 of the span).
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored(&[13, 14], None, toks[..16].to_vec(), "GPU")]),
    );
    assert_eq!((r.stored, r.unplaceable), (4, 0));
    assert_eq!(matched(16), 4);
    // The next event chains from block 14, the span's end.
    let r = idx.apply_batch(
        ep,
        "m",
        &batch(vec![stored(
            &[15, 16],
            Some(14),
            toks[16..].to_vec(),
            "GPU",
        )]),
    );
    assert_eq!((r.stored, r.unplaceable), (2, 0));
    assert_eq!(matched(24), 6);
    // Block 13's place in the span is unknown: its removal clears nothing
    // (position-wise pairing used to clear the span's first router block).
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[13], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (0, 1));
    assert_eq!(matched(24), 6);
    // Block 14's removal clears the span's last router block.
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[14], "GPU")]));
    assert_eq!(r.removed, 1);
    assert_eq!(matched(24), 3);
}

/// A publisher that gives no block size (0) has its tokens shared evenly
/// among the published blocks: each block maps to its own router block, so
/// removing one clears it.
#[test]
fn a_missing_block_size_shares_the_tokens_evenly() {
    let idx = router_index();
    let ep = idx.register_endpoint("a").unwrap();
    let toks: Vec<u64> = (1..=8).collect();
    let ev = stored_sized(&[1, 2], None, toks.clone(), 0);
    let r = idx.apply_batch(ep, "m", &batch(vec![ev]));
    assert_eq!((r.stored, r.unplaceable), (2, 0));
    let r = idx.apply_batch(ep, "m", &batch(vec![removed(&[1], "GPU")]));
    assert_eq!((r.removed, r.unplaceable), (1, 0));
    let mut out = PrefixMatches::new();
    idx.match_prefix("m", &router_keys("m", &toks), &mut out);
    assert_eq!(out.get(ep).map_or(0, |m| m.consecutive_blocks), 0);
}

/// Routing a prompt again refreshes the blocks still held as they were
/// (without the shard lock), places again the blocks the table evicted
/// meanwhile, and deepens a block now seen further down a chain.
#[test]
fn routing_again_restores_evicted_blocks_and_deepens_classes() {
    let idx = KvIndex::new(IndexConfig {
        capacity_blocks: 64,
        key_mode: KeyMode::Approximate { block_size: 4 },
        approx_capacity_per_endpoint: 1 << 10,
        ..IndexConfig::default()
    })
    .unwrap();
    let a = idx.register_endpoint("a").unwrap();
    let b = idx.register_endpoint("b").unwrap();
    let k: Vec<BlockKey> = (1..=32).map(BlockKey).collect();
    let held = |out: &mut PrefixMatches| {
        idx.match_prefix("m", &k, out);
        out.get(a).map_or(0, |m| m.consecutive_blocks)
    };
    let mut out = PrefixMatches::new();
    idx.record_routing(a, "m", &k, 0);
    assert_eq!(held(&mut out), 32);
    // Another endpoint's prompts fill the table: some of `a`'s blocks go,
    // though `a`'s own bound still lists them.
    let other: Vec<BlockKey> = (1000..1128).map(BlockKey).collect();
    idx.record_routing(b, "m", &other, 0);
    assert!(held(&mut out) < 32, "the table evicted none of a's blocks");
    idx.record_routing(a, "m", &k, 0);
    assert_eq!(held(&mut out), 32);

    // Block 20 first routed as a chain's first block (class 0), then at
    // its place in the prompt (class of depth 20).
    let seed = super::keys::model_seed("m");
    let fp = super::keys::fingerprint(seed, k[20].0);
    idx.clear_endpoint(a);
    idx.record_routing(a, "m", &k[20..21], 0);
    assert_eq!(idx.table.depth_class(fp, a.0), Some(0));
    idx.record_routing(a, "m", &k, 0);
    assert_eq!(
        idx.table.depth_class(fp, a.0),
        Some(super::depth::class_of(20))
    );
    assert_ne!(super::depth::class_of(20), 0);
}

#[test]
fn a_prompt_speculated_again_expires_after_the_ones_since() {
    // The queue's order survives a prompt refreshed as a run (`Lru::run`):
    // P, then Q, then P again; Q's deadline comes first.
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let p = router_keys("m", &(1..=16).collect::<Vec<u64>>());
    let q = router_keys("m", &(101..=116).collect::<Vec<u64>>());
    let ttl = idx.config().speculative_ttl_ns;
    idx.insert_speculative(a, "m", &p, 1_000);
    idx.insert_speculative(a, "m", &q, 2_000);
    idx.insert_speculative(a, "m", &p, 3_000);
    idx.tick(2_000 + ttl);
    let mut out = PrefixMatches::new();
    let held = |keys: &[BlockKey], out: &mut PrefixMatches| {
        idx.match_prefix("m", keys, out);
        out.get(a).map_or(0, |m| m.consecutive_blocks)
    };
    assert_eq!(held(&q, &mut out), 0, "Q expired");
    assert_eq!(held(&p, &mut out) as usize, p.len(), "P was refreshed");
    assert_eq!(idx.stats().speculative_expired, q.len() as u64);
    idx.tick(3_000 + ttl);
    assert_eq!(held(&p, &mut out), 0);
}

#[test]
fn speculative_blocks_take_the_depth_of_their_place_in_the_prompt() {
    let idx = router_index();
    let a = idx.register_endpoint("a").unwrap();
    let keys: Vec<BlockKey> = (1..=400).map(BlockKey).collect();
    let fp = |k: BlockKey| super::keys::fingerprint(super::keys::model_seed("m"), k.0);
    // Blocks 300.. of a prompt whose first 300 are held already.
    idx.insert_speculative_from(a, "m", &keys[300..], 300, 0);
    for d in [300, 350, 399] {
        assert_eq!(
            idx.table.depth_class(fp(keys[d]), a.0),
            Some(super::depth::class_of(d)),
            "block {d}"
        );
    }
    assert_ne!(super::depth::class_of(300), 0);
    idx.insert_speculative(a, "m", &keys[..2], 0);
    assert_eq!(idx.table.depth_class(fp(keys[0]), a.0), Some(0));
}
