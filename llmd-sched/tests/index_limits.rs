//! The prefix indexes' limits are visible: endpoint slots never leak under
//! churn, an endpoint over the slot limit is refused at `add_endpoint` (and
//! counted), sizes out of range are configuration errors, and blocks that
//! are not placed are counted by reason, never as stored.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use llmd_kvindex::events::EventLayout;
use llmd_sched::{Request, ScheduleError, Scheduler};

fn precise(params: &str) -> String {
    single(&format!(
        "- name: kv\n  type: precise-prefix-cache-producer\n  parameters:\n    tokenProcessorConfig: {{blockSizeTokens: 16}}\n{params}- type: prefix-cache-scorer\n  parameters: {{prefixMatchInfoProducerName: kv}}\n- type: max-score-picker\n"
    ))
}

/// Registered slots of the scheduler's (first) precise index.
fn slots(s: &Scheduler) -> usize {
    s.pipeline().kv_backends[0].index().stats().endpoints.len()
}

#[test]
fn an_endpoint_over_the_slot_limit_is_refused_and_counted() {
    for producer in [
        precise("    maxEndpoints: 2\n"),
        single("- name: kv\n  type: approx-prefix-cache-producer\n  parameters: {maxEndpoints: 2}\n- type: prefix-cache-scorer\n  parameters: {prefixMatchInfoProducerName: kv}\n- type: max-score-picker\n"),
    ] {
        let (s, _) = sched(&producer);
        s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
        s.add_endpoint(ep("e2", metrics(0, 0, 0.0))).unwrap();
        let e = s.add_endpoint(ep("e3", metrics(0, 0, 0.0))).unwrap_err();
        assert!(matches!(e, ScheduleError::Index(_)), "{e}");
        assert!(e.to_string().contains("all 2 slots"), "{e}");
        assert_eq!(metric(&s, "llmd_kvindex_endpoints_refused_total"), Some(1.0));
        // Not in the pool: never picked.
        for i in 0..20 {
            let d = s
                .pick(&Request::with_tokens(format!("r{i}"), "m", tokens(64, i)))
                .unwrap();
            assert_ne!(d.targets[0].name, "e3");
        }
        // Replacing a registered endpoint at the limit works.
        s.replace_endpoint(ep("e2", metrics(1, 0, 0.0))).unwrap();
        // A freed slot is usable again.
        s.remove_endpoint("e1").unwrap();
        s.add_endpoint(ep("e3", metrics(0, 0, 0.0))).unwrap();
        assert_eq!(metric(&s, "llmd_kvindex_endpoints_refused_total"), Some(1.0));
    }
}

#[test]
fn slot_limits_and_sizes_out_of_range_are_config_errors() {
    for (params, field) in [
        ("    maxEndpoints: 0\n", "maxEndpoints"),
        ("    maxEndpoints: 65537\n", "maxEndpoints"),
        (
            "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: .nan}}}\n",
            "size",
        ),
        (
            "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: .inf}}}\n",
            "size",
        ),
        (
            "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: 1.5}}}\n",
            "size",
        ),
        (
            "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: -1}}}\n",
            "size",
        ),
        (
            "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: 0}}}\n",
            "size",
        ),
        // Within range, but ~1.7 TB of table: refused, not an abort.
        (
            "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: 68719476736}}}\n",
            "inMemoryConfig.size",
        ),
    ] {
        let e = match Scheduler::from_config_str(&precise(params)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{params} was accepted"),
        };
        assert!(e.contains(field), "{params}: {e}");
    }
    // An integral float is an integer.
    Scheduler::from_config_str(&precise(
        "    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: 4096.0}}}\n",
    ))
    .unwrap();
}

#[test]
fn blocks_not_placed_are_counted_by_reason_and_not_as_stored() {
    let (s, _) = sched(&precise(""));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let p = tokens(64, 5);
    // Two blocks of a chain whose parent was never stored, one event on an
    // unknown medium, then one good block.
    let r = s
        .ingest_kv_events(
            "e1",
            &payload(
                vec![
                    stored(10, Some(999), &p[16..48], None),
                    stored(20, None, &p[..16], Some("NVME")),
                    stored(1, None, &p[..16], None),
                ],
                EventLayout::V0_33,
            ),
            None,
        )
        .unwrap();
    let st = r.stats;
    assert_eq!(
        (
            st.stored,
            st.skipped,
            st.skipped_unknown_parent,
            st.skipped_unknown_medium
        ),
        (1, 3, 2, 1)
    );
    assert_eq!(st.stored_by_tier, [1, 0, 0]);
    let text = s.render_metrics();
    let find = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        find("llmd_kvindex_blocks{endpoint=\"e1\",tier=\"gpu\"}"),
        "1"
    );
    assert_eq!(
        find("llmd_kvindex_blocks_skipped_total{endpoint=\"e1\",reason=\"unknown_parent\"}"),
        "2"
    );
    assert_eq!(
        find("llmd_kvindex_blocks_skipped_total{endpoint=\"e1\",reason=\"unknown_medium\"}"),
        "1"
    );
    // The unknown-medium event was not applied.
    assert_eq!(
        find("llmd_kvindex_events_applied_total{endpoint=\"e1\"}"),
        "2"
    );
}

#[test]
fn events_a_later_clear_erases_are_reported_as_superseded() {
    use llmd_kvindex::events::KvEvent;
    let (s, _) = sched(&precise(""));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let p = tokens(64, 6);
    // Store, clear, store, clear, store: the first three events are erased
    // by the last clear and are in no other count.
    let r = s
        .ingest_kv_events(
            "e1",
            &batch(vec![
                stored(1, None, &p, None),
                KvEvent::AllBlocksCleared,
                stored(1, None, &p, None),
                KvEvent::AllBlocksCleared,
                stored(1, None, &p[..32], None),
            ]),
            None,
        )
        .unwrap();
    let st = r.stats;
    assert_eq!(
        (st.superseded, st.cleared, st.stored, st.skipped),
        (3, 1, 2, 0)
    );
    // The index ends as if every event had been applied.
    assert_eq!(st.stored_by_tier, [2, 0, 0]);
    assert!(s
        .render_metrics()
        .contains("llmd_kvindex_events_applied_total{endpoint=\"e1\"} 5"));
    // A batch with one clear is applied whole: nothing is superseded (2 new
    // blocks before the clear, the 2 held already not counted, 1 after).
    let r = s
        .ingest_kv_events(
            "e1",
            &batch(vec![
                stored(1, None, &p, None),
                KvEvent::AllBlocksCleared,
                stored(1, None, &p[..16], None),
            ]),
            None,
        )
        .unwrap();
    assert_eq!(
        (r.stats.superseded, r.stats.cleared, r.stats.stored),
        (0, 1, 3)
    );
}

#[test]
fn array_form_parent_zero_is_a_chain_root() {
    // llm-d-inference-sim's default (array) form names parent 0 for a
    // chain's first block; llm-d reads it as "no parent".
    let (s, _) = sched(&precise(""));
    s.add_endpoint(ep("e1", metrics(0, 0, 0.0))).unwrap();
    let p = tokens(64, 8);
    let r = s
        .ingest_kv_events(
            "e1",
            &payload(vec![stored(1, Some(0), &p, None)], EventLayout::V0_10_2),
            Some(1),
        )
        .unwrap();
    assert_eq!((r.stats.stored, r.stats.skipped), (4, 0));
    let d = s.pick(&Request::with_tokens("r", "m", p)).unwrap();
    let note = note_with(&d, "kv:");
    assert!(note.contains("best consecutive match 4"), "{note}");
}

/// Endpoints are added and removed thousands of times while other threads
/// pick (with speculative indexing) and ingest for the churned names: at
/// the end the index holds exactly one slot per live endpoint.
#[test]
fn endpoint_churn_under_picks_and_ingest_leaks_no_slot() {
    let (s, _) = sched(&precise(
        "    speculativeIndexing: true\n    indexerConfig: {kvBlockIndexConfig: {inMemoryConfig: {size: 4096}}}\n",
    ));
    let s = Arc::new(s);
    // Only churned endpoints: every pick lands on one that is about to go.
    let stop = Arc::new(AtomicBool::new(false));
    let prompt = tokens(64, 3);
    let events = payload(vec![stored(1, None, &prompt, None)], EventLayout::V0_33);
    let mut workers = Vec::new();
    for t in 0..2 {
        let (s, stop, prompt) = (s.clone(), stop.clone(), prompt.clone());
        workers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = Request::with_tokens(format!("p{t}-{n}"), "m", prompt.clone());
                if let Ok(d) = s.pick(&r) {
                    s.on_complete(&r.id, None);
                    let _ = d;
                }
                n += 1;
            }
        }));
    }
    {
        let (s, stop, events) = (s.clone(), stop.clone(), events.clone());
        workers.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Unknown names fail; names being churned race with removal.
                let _ = s.ingest_kv_events(&format!("churn{}", i % 8), &events, None);
                i += 1;
            }
        }));
    }
    let start = Instant::now();
    let mut churns = 0;
    while churns < 2_500 && start.elapsed() < Duration::from_secs(60) {
        let name = format!("churn{}", churns % 8);
        let e = ep(&name, metrics(0, 0, 0.0));
        if s.endpoint_names().contains(&name) {
            s.replace_endpoint(e).unwrap();
        } else {
            s.add_endpoint(e).unwrap();
        }
        // Let picks and ingest see it before it goes.
        std::thread::yield_now();
        if churns % 4 != 0 {
            s.remove_endpoint(&name).unwrap();
        }
        churns += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(churns >= 500, "only {churns} churns in 60 s");
    let live = s.endpoint_names().len();
    assert_eq!(slots(&s), live, "after {churns} churns");
    // Every live endpoint can still be indexed.
    for e in s.endpoint_names() {
        let r = s.ingest_kv_events(&e, &events, None).unwrap();
        assert_eq!(r.stats.skipped, 0, "{e}");
    }
    for e in s.endpoint_names() {
        s.remove_endpoint(&e).unwrap();
    }
    assert_eq!(slots(&s), 0);
}
