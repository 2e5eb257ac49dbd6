//! The prefix producers over the real KV-block index: sequence handling,
//! capacity bounds, tiers, endpoint removal.

mod common;

use common::*;
use llmd_kvindex::events::{BlockRemoved, HashValue, KvEvent, SeqStatus};
use llmd_sched::{Request, Scheduler};

fn precise(extra: &str) -> String {
    single(&format!(
        "- name: kv\n  type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {{blockSizeTokens: 16}}\n{extra}- type: prefix-cache-scorer\n  parameters: {{prefixMatchInfoProducerName: kv}}\n- type: max-score-picker\n"
    ))
}

fn fleet(s: &Scheduler) {
    for i in 1..=3 {
        let mut e = ep(&format!("e{i}"), metrics(0, 0, 0.0));
        e.model = Some("m".into());
        s.add_endpoint(e).unwrap();
    }
}

/// Raw prefix scores and the producer's "best match" note.
fn probe(
    s: &Scheduler,
    id: &str,
    prompt: &[u32],
) -> (std::collections::HashMap<String, f64>, String) {
    let r = Request::with_tokens(id, "m", prompt.to_vec());
    let d = s.pick(&r).unwrap();
    let note = d
        .explanation
        .notes
        .iter()
        .find(|n| n.contains("best"))
        .cloned()
        .unwrap_or_default();
    let p = d.explanation.profile("default").unwrap();
    let sc = p.scorer("prefix-cache-scorer").unwrap();
    let by = p
        .scored
        .iter()
        .map(|n| n.to_string())
        .zip(sc.raw.iter().copied())
        .collect();
    (by, note)
}

#[test]
fn sequence_gap_is_applied_and_restart_clears_the_endpoint() {
    let (s, _) = sched(&precise(""));
    fleet(&s);
    let prompt = tokens(64, 3);
    let r = s
        .ingest_kv_events(
            "e2",
            &batch(vec![stored(100, None, &prompt[..32], None)]),
            Some(5),
        )
        .unwrap();
    assert_eq!((r.stats.stored, r.seq), (2, Some(SeqStatus::First)));
    // Sequence 7 after 5: one batch lost. Reported, and still applied.
    let r = s
        .ingest_kv_events(
            "e2",
            &batch(vec![stored(102, Some(101), &prompt[32..], None)]),
            Some(7),
        )
        .unwrap();
    assert_eq!(r.seq, Some(SeqStatus::Gap { missing: 1 }));
    assert_eq!(r.stats.stored, 2);
    let (by, note) = probe(&s, "a", &prompt);
    assert!(note.contains("best consecutive match 4"), "{note}");
    assert!(by["e2"] > 0.0 && by["e1"] == 0.0, "{by:?}");
    // The publisher restarted (sequence went back): its old blocks are gone.
    let r = s.ingest_kv_events("e2", &batch(vec![]), Some(0)).unwrap();
    assert_eq!((r.stats.cleared, r.seq), (1, Some(SeqStatus::Restart)));
    let (by, note) = probe(&s, "b", &prompt);
    assert!(note.contains("best consecutive match 0"), "{note}");
    assert_eq!(by["e2"], 0.0);
    let st = s.pipeline().kv_backends[0].index().stats();
    assert_eq!(st.holdings, 0, "{st:?}");
}

#[test]
fn router_keys_follow_parents_and_count_unknown_parents_as_skipped() {
    let (s, _) = sched(&precise(""));
    fleet(&s);
    let prompt = tokens(64, 11);
    // A child whose parent was never announced cannot be placed.
    let r = s
        .ingest_kv_events(
            "e1",
            &batch(vec![stored(7, Some(999), &prompt[16..32], None)]),
            None,
        )
        .unwrap();
    assert_eq!((r.stats.stored, r.stats.skipped), (0, 1));
    s.ingest_kv_events(
        "e1",
        &batch(vec![stored(1, None, &prompt[..16], None)]),
        None,
    )
    .unwrap();
    s.ingest_kv_events(
        "e1",
        &batch(vec![stored(2, Some(1), &prompt[16..48], None)]),
        None,
    )
    .unwrap();
    let (_, note) = probe(&s, "a", &prompt);
    assert!(note.contains("best consecutive match 3"), "{note}");
    // Removing the middle block (engine key 2) cuts the run after block 0.
    let rm = KvEvent::BlockRemoved(BlockRemoved {
        block_hashes: vec![HashValue::Int(2)],
        ..Default::default()
    });
    assert_eq!(
        s.ingest_kv_events("e1", &batch(vec![rm]), None)
            .unwrap()
            .stats
            .removed,
        1
    );
    let (_, note) = probe(&s, "b", &prompt);
    assert!(note.contains("best consecutive match 1"), "{note}");
}

#[test]
fn in_memory_size_bounds_the_index() {
    let cfg =
        "    indexerConfig:\n      kvBlockIndexConfig:\n        inMemoryConfig: {size: 256}\n";
    let (s, _) = sched(&precise(cfg));
    fleet(&s);
    for i in 0..40u32 {
        let p = tokens(16 * 32, 1000 + i);
        s.ingest_kv_events(
            "e1",
            &batch(vec![stored(u64::from(i) << 20, None, &p, None)]),
            None,
        )
        .unwrap();
    }
    let st = s.pipeline().kv_backends[0].index().stats();
    assert_eq!(st.capacity, 256);
    assert!(st.entries <= 256 && st.evictions > 0, "{st:?}");
}

#[test]
fn tier_weights_come_from_kv_cache_backend_configs() {
    let cfg = "    indexerConfig:\n      kvCacheBackendConfigs: [{name: gpu, weight: 1.0}, {name: cpu, weight: 0.5}]\n";
    let (s, _) = sched(&precise(cfg));
    fleet(&s);
    let prompt = tokens(64, 5);
    s.ingest_kv_events("e1", &batch(vec![stored(1, None, &prompt, None)]), None)
        .unwrap();
    s.ingest_kv_events(
        "e2",
        &batch(vec![stored(1, None, &prompt, Some("CPU"))]),
        None,
    )
    .unwrap();
    let (by, _) = probe(&s, "a", &prompt);
    // prefix-cache-scorer: matched (tier-weighted, floored) blocks / total.
    assert!(approx(by["e1"], 1.0) && approx(by["e2"], 0.5), "{by:?}");
    // A bad weight is a configuration error.
    let bad = "    indexerConfig:\n      kvCacheBackendConfigs: [{name: gpu, weight: -1}]\n";
    assert!(Scheduler::from_config_str(&precise(bad)).is_err());
}

#[test]
fn removing_an_endpoint_drops_its_entries() {
    let (s, _) = sched(&precise(""));
    fleet(&s);
    let prompt = tokens(64, 21);
    s.ingest_kv_events("e3", &batch(vec![stored(1, None, &prompt, None)]), None)
        .unwrap();
    let ix = s.pipeline().kv_backends[0].clone();
    assert_eq!(ix.index().stats().holdings, 4);
    s.remove_endpoint("e3").unwrap();
    assert_eq!(ix.index().stats().holdings, 0);
    let (_, note) = probe(&s, "a", &prompt);
    assert!(note.contains("best consecutive match 0"), "{note}");
}

#[test]
fn approximate_lru_capacity_per_server_evicts_the_oldest_prompt() {
    let (s, _) = sched(&single(
        "- type: approx-prefix-cache-producer\n  parameters: {autoTune: false, blockSizeTokens: 64, lruCapacityPerServer: 4}\n- type: prefix-cache-scorer\n- type: max-score-picker\n",
    ));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let a = tokens(256, 1); // 4 blocks of 64
    let b = tokens(256, 2);
    let best = |id: &str, p: &[u32]| {
        let d = s.pick(&Request::with_tokens(id, "m", p.to_vec())).unwrap();
        d.explanation
            .notes
            .iter()
            .find(|n| n.contains("best match"))
            .cloned()
            .unwrap_or_default()
    };
    assert!(best("1", &a).contains("best match 0"));
    assert!(best("2", &a).contains("best match 4"));
    // Routing b fills the endpoint's 4 slots: a is forgotten.
    assert!(best("3", &b).contains("best match 0"));
    assert!(best("4", &b).contains("best match 4"));
    assert!(best("5", &a).contains("best match 0"));
}

/// With `autoTune`, an endpoint's LRU holds the cache size it reports when
/// first routed to (`lruCapacityPerServer` while it reports none), and keeps
/// that bound until it is removed, as llm-d sizes it.
#[test]
fn auto_tune_sizes_each_endpoint_lru_when_first_routed_to() {
    let (s, _) = sched(&single(
        "- type: approx-prefix-cache-producer\n  parameters: {blockSizeTokens: 64, lruCapacityPerServer: 100}\n- type: prefix-cache-scorer\n- type: max-score-picker\n",
    ));
    let sized = |blocks: u64| {
        let mut m = metrics(0, 0, 0.0);
        m.cache_num_blocks = blocks;
        m
    };
    let a = tokens(256, 1); // 4 blocks of 64
    let b = tokens(256, 2);
    let n = std::cell::Cell::new(0);
    let best = |p: &[u32]| {
        n.set(n.get() + 1);
        let d = s
            .pick(&Request::with_tokens(n.get().to_string(), "m", p.to_vec()))
            .unwrap();
        let note = d
            .explanation
            .notes
            .iter()
            .find(|n| n.contains("best match"))
            .cloned();
        note.unwrap_or_default()
    };
    // Routing a then b: does a survive?
    let a_survives_b = || {
        best(&a);
        best(&b);
        best(&a).contains("best match 4")
    };
    // Reports 4 blocks when first routed to: 4 is the bound, and a later,
    // larger report does not change it.
    s.add_endpoint(ep("e1", sized(4))).unwrap();
    assert!(!a_survives_b(), "a 4-block LRU keeps a");
    s.update_endpoint_metrics("e1", sized(1000)).unwrap();
    assert!(!a_survives_b(), "the bound changed after the first routing");
    // Re-registered, the endpoint is sized again.
    s.remove_endpoint("e1").unwrap();
    s.add_endpoint(ep("e1", sized(1000))).unwrap();
    assert!(a_survives_b(), "a 1000-block LRU lost a");
    s.remove_endpoint("e1").unwrap();
    // No cache size when first routed to: lruCapacityPerServer (100), kept
    // when a small size is reported later.
    s.add_endpoint(ep("e2", sized(0))).unwrap();
    assert!(a_survives_b(), "a 100-block LRU lost a");
    s.update_endpoint_metrics("e2", sized(4)).unwrap();
    assert!(a_survives_b(), "the bound changed after the first routing");
}

#[test]
fn lookup_cost_is_counted_and_checkpoints_cut_it() {
    let (s, _) = sched(&precise(""));
    fleet(&s);
    let queried = |s: &Scheduler| metric(s, "llmd_kvindex_lookup_blocks_total{kind=\"queried\"}");
    let probed = |s: &Scheduler| metric(s, "llmd_kvindex_lookup_blocks_total{kind=\"probed\"}");
    // No lookup yet: no series.
    assert_eq!(queried(&s), None);
    // A 4-block prompt nobody holds: the walk stops at block 0.
    let short = tokens(64, 11);
    let (_, note) = probe(&s, "short", &short);
    assert!(note.contains("(1 probed)"), "{note}");
    assert_eq!((queried(&s), probed(&s)), (Some(4.0), Some(1.0)));
    // A 96-block prompt e2 holds whole: its checkpoints vouch for most of it.
    let long = tokens(96 * 16, 5);
    s.ingest_kv_events("e2", &batch(vec![stored(500, None, &long, None)]), None)
        .unwrap();
    let (by, note) = probe(&s, "long", &long);
    assert!(note.contains("best consecutive match 96"), "{note}");
    assert!(by["e2"] > by["e1"], "{by:?}");
    assert_eq!(queried(&s), Some(100.0));
    // Block 0 finds the holders; ingestion left a checkpoint every 16
    // blocks of the stored chain, so at most the tail past the last one
    // (none here) is walked.
    let spent = probed(&s).unwrap() - 1.0;
    assert!(
        (1.0..=16.0).contains(&spent),
        "{spent} of 96 blocks probed: {note}"
    );
    assert!(note.contains(&format!("({spent} probed)")), "{note}");
}

/// A prefix index's size and evictions are exported: entries against
/// capacity, and entries evicted to place others, by reason, matching the
/// index's own counts.
#[test]
fn index_size_and_evictions_are_exported() {
    let (s, _) = sched(&precise(
        "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: 256}}}\n",
    ));
    fleet(&s);
    // 64 chains of 16 blocks on e1: 1,024 blocks for a 256-entry table.
    for c in 0..64u32 {
        let toks = tokens(256, 10_000 + c * 300);
        let ev = stored(u64::from(c) * 100 + 1, None, &toks, None);
        s.ingest_kv_events("e1", &batch(vec![ev]), None).unwrap();
    }
    let st = s.pipeline().kv_backends[0].index().stats();
    assert!(st.evictions > 0, "{st:?}");
    let text = s.render_metrics();
    let value = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        value("llmd_kvindex_entries{producer=\"kv\"}"),
        st.entries as f64
    );
    assert_eq!(
        value("llmd_kvindex_capacity_entries{producer=\"kv\"}"),
        st.capacity as f64
    );
    let capacity = value("llmd_kvindex_entries_evicted_total{producer=\"kv\",reason=\"capacity\"}");
    let displaced =
        value("llmd_kvindex_entries_evicted_total{producer=\"kv\",reason=\"displacement\"}");
    assert_eq!(capacity + displaced, st.evictions as f64);
    assert_eq!(displaced, st.displacement_failures as f64);
    // Counters follow the index on the next exposition, never going back.
    s.ingest_kv_events(
        "e1",
        &batch(vec![stored(90_001, None, &tokens(256, 90_000), None)]),
        None,
    )
    .unwrap();
    let st2 = s.pipeline().kv_backends[0].index().stats();
    let text = s.render_metrics();
    let after: f64 = ["capacity", "displacement"]
        .iter()
        .map(|r| {
            let series =
                format!("llmd_kvindex_entries_evicted_total{{producer=\"kv\",reason=\"{r}\"}}");
            text.lines()
                .find_map(|l| l.strip_prefix(series.as_str())?.trim().parse::<f64>().ok())
                .unwrap()
        })
        .sum();
    assert_eq!(after, st2.evictions as f64);
    assert!(st2.evictions >= st.evictions);
}
