//! `burst-prefix-cache-producer` through `pick_batch`: a window's requests
//! that share a prompt land together, per llm-d's assignment; a plain pick is
//! a window of one; the window cap, the parameters and the report.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use llmd_sched::{Decision, Request, Scheduler};

/// llm-d's sample burst config (example 18), read from testdata.
fn example() -> String {
    std::fs::read_to_string(format!(
        "{}/../testdata/llm-d-configs/18-burst-prefix-cache.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The burst producer with `params`, a prefix-cache-scorer on it and a
/// load scorer; blocks of 16 tokens.
fn config(params: &str) -> String {
    single(&format!(
        "- type: burst-prefix-cache-producer\n  parameters: {{blockSizeTokens: 16{params}}}\n- type: prefix-cache-scorer\n  parameters: {{prefixMatchInfoProducerName: burst-prefix-cache-producer}}\n- type: queue-scorer\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n    weight: 2\n  - pluginRef: queue-scorer\n  - pluginRef: max-score-picker\n"
    ))
}

fn fleet(s: &Scheduler, n: usize, model: &str) {
    for i in 1..=n {
        let mut e = ep(&format!("{model}-{i}"), metrics(0, 0, 0.0));
        e.model = Some(model.into());
        s.add_endpoint(e).unwrap();
    }
}

/// `samples` requests for each prompt, interleaved (a, b, a, b, ...).
fn window(prompts: &[&[u32]], samples: usize, model: &str) -> Vec<Request> {
    (0..samples)
        .flat_map(|s| {
            prompts.iter().enumerate().map(move |(p, toks)| {
                Request::with_tokens(format!("p{p}-s{s}"), model, toks.to_vec())
            })
        })
        .collect()
}

fn target(d: &Decision) -> String {
    d.targets[0].name.clone()
}

/// Targets of each prompt's samples (by request id prefix `p<n>-`).
fn by_prompt(
    reqs: &[Request],
    out: &[Result<Decision, llmd_sched::ScheduleError>],
) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (r, d) in reqs.iter().zip(out) {
        let d = d.as_ref().unwrap();
        let p = r.id.split('-').next().unwrap().to_string();
        m.entry(p).or_default().push(target(d));
    }
    m
}

fn burst_count(s: &Scheduler, outcome: &str) -> Option<f64> {
    metric(
        s,
        &format!("llmd_burst_requests_total{{plugin=\"burst-prefix-cache-producer\",outcome=\"{outcome}\"}}"),
    )
}

#[test]
fn llm_d_sample_config_colocates_each_rollout_group() {
    let (s, _) = sched(&example());
    fleet(&s, 4, "m");
    let (a, b, lone) = (tokens(640, 1), tokens(640, 2), tokens(640, 3));
    let mut reqs = window(&[&a, &b], 4, "m");
    reqs.push(Request::with_tokens("p9-lone", "m", lone));
    let out = s.pick_batch(&reqs);
    assert_eq!(out.len(), reqs.len());
    let groups = by_prompt(&reqs, &out);
    for p in ["p0", "p1"] {
        let t = &groups[p];
        assert!(t.iter().all(|x| *x == t[0]), "{p}'s samples split: {t:?}");
    }
    assert_ne!(groups["p0"][0], groups["p1"][0], "two groups, two replicas");
    // The samples' notes name the replica; the lone request has none.
    let first = out[0].as_ref().unwrap();
    assert!(note_with(first, "burst-prefix-cache-producer")
        .contains(&format!("co-located on {}", target(first))));
    let lone = out.last().unwrap().as_ref().unwrap();
    assert!(note_with(lone, "burst-prefix-cache-producer").contains("shares no prefix"));
    assert_eq!(burst_count(&s, "colocated"), Some(8.0));
    assert_eq!(burst_count(&s, "no_affinity"), Some(1.0));
    assert_eq!(burst_count(&s, "batch_full"), None);
    // The prefix scorer sees a full match on the assigned replica only.
    let p = first.explanation.profile("default").unwrap();
    let raw: BTreeMap<String, f64> = p
        .scored
        .iter()
        .map(|n| n.to_string())
        .zip(p.scorer("prefix-cache-scorer").unwrap().raw.iter().copied())
        .collect();
    assert_eq!(raw.values().filter(|v| **v == 1.0).count(), 1, "{raw:?}");
    assert_eq!(raw[&target(first)], 1.0);
    // The window the host should collect, and the report saying who waits.
    assert_eq!(s.burst_window(), Some(Duration::from_millis(100)));
    let r = s.config_report();
    let rec = r.plugin("burst-prefix-cache-producer").unwrap();
    assert!(rec
        .settings_not_executed
        .iter()
        .any(|x| x.setting == "windowDurationMs" && x.reason.contains("pick_batch")));
}

#[test]
fn a_plain_pick_is_a_window_of_one() {
    let (s, _) = sched(&config(""));
    fleet(&s, 3, "m");
    let d = s
        .pick(&Request::with_tokens("r", "m", tokens(320, 1)))
        .unwrap();
    assert!(note_with(&d, "burst-prefix-cache-producer").contains("a window of one"));
    assert_eq!(burst_count(&s, "colocated"), None);
    // Without a burst producer pick_batch is pick, request by request.
    let (plain, _) = sched(&single("- type: queue-scorer\n- type: max-score-picker\n"));
    fleet(&plain, 2, "m");
    assert_eq!(plain.burst_window(), None);
    let out = plain.pick_batch(&window(&[&tokens(64, 1)], 3, "m"));
    assert!(out.iter().all(Result::is_ok));
}

#[test]
fn max_per_replica_spreads_a_group_evenly() {
    let (s, _) = sched(&config(", maxPerReplica: 2"));
    fleet(&s, 4, "m");
    let reqs = window(&[&tokens(320, 7)], 8, "m");
    let out = s.pick_batch(&reqs);
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for d in &out {
        *per.entry(target(d.as_ref().unwrap())).or_default() += 1;
    }
    assert_eq!(
        per.values().copied().collect::<Vec<_>>(),
        [2, 2, 2, 2],
        "{per:?}"
    );
}

#[test]
fn past_max_batch_size_no_affinity_is_produced_and_it_is_counted() {
    let (s, _) = sched(&config(", maxBatchSize: 3"));
    fleet(&s, 3, "m");
    let reqs = window(&[&tokens(320, 7)], 5, "m");
    let out = s.pick_batch(&reqs);
    assert!(
        out.iter().all(Result::is_ok),
        "every request is still picked"
    );
    for d in &out[3..] {
        let d = d.as_ref().unwrap();
        assert!(note_with(d, "burst-prefix-cache-producer").contains("batch full (maxBatchSize 3)"));
        let p = d.explanation.profile("default").unwrap();
        let raw = &p.scorer("prefix-cache-scorer").unwrap().raw;
        assert!(raw.iter().all(|v| *v == 0.0), "{raw:?}");
    }
    assert_eq!(burst_count(&s, "colocated"), Some(3.0));
    assert_eq!(burst_count(&s, "batch_full"), Some(2.0));
}

#[test]
fn each_model_is_assigned_over_its_own_replicas() {
    let (s, _) = sched(&config(""));
    fleet(&s, 2, "m1");
    fleet(&s, 2, "m2");
    let prompt = tokens(320, 5);
    let mut reqs = window(&[&prompt], 3, "m1");
    reqs.extend(window(&[&prompt], 3, "m2"));
    let out = s.pick_batch(&reqs);
    for (r, d) in reqs.iter().zip(&out) {
        let t = target(d.as_ref().unwrap());
        assert!(
            t.starts_with(&format!("{}-", r.model)),
            "{} went to {t}",
            r.id
        );
    }
    let t1: Vec<String> = out[..3]
        .iter()
        .map(|d| target(d.as_ref().unwrap()))
        .collect();
    let t2: Vec<String> = out[3..]
        .iter()
        .map(|d| target(d.as_ref().unwrap()))
        .collect();
    assert!(t1.iter().all(|x| *x == t1[0]) && t2.iter().all(|x| *x == t2[0]));
}

#[test]
fn parameters_are_validated_as_llm_d_does() {
    for (params, field) in [
        (", windowDurationMs: 0", "windowDurationMs"),
        (", windowDurationMs: 10001", "windowDurationMs"),
        (", maxPerReplica: 0", "maxPerReplica"),
        (", maxPerReplica: -2", "maxPerReplica"),
        (", maxPrefixTokensToMatch: 8", "maxPrefixTokensToMatch"),
        (", maxPrefixTokensToMatch: -1", "maxPrefixTokensToMatch"),
        (", minColocateBlocks: -1", "minColocateBlocks"),
        (", maxBatchSize: 0", "maxBatchSize"),
        (", balanceBy: bogus", "balanceBy"),
        (", windowDurationMs: 1.5", "windowDurationMs"),
    ] {
        let e = Scheduler::from_config_str(&config(params)).expect_err(params);
        assert!(e.to_string().contains(field), "{params}: {e}");
    }
    let e = Scheduler::from_config_str(
        &config("").replace("blockSizeTokens: 16", "blockSizeTokens: 0"),
    )
    .expect_err("block size 0");
    assert!(e.to_string().contains("blockSizeTokens"), "{e}");
    let e = Scheduler::from_config_str(
        &config("").replace("blockSizeTokens: 16", "blockSizeTokens: 4294967312"),
    )
    .expect_err("block size past 2^20 (and u32)");
    assert!(
        e.to_string().contains("blockSizeTokens") && e.to_string().contains("1..=1048576"),
        "{e}"
    );
    for ok in [", balanceBy: tokens", ", balanceBy: requests", ", maxBatchSize: -1, maxPerReplica: 3, minColocateBlocks: 2, maxPrefixTokensToMatch: 1024, windowDurationMs: 10000"] {
        Scheduler::from_config_str(&config(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn an_assigned_replica_missing_at_the_pick_is_noted_and_counted() {
    let (s, _) = sched(&config(""));
    fleet(&s, 3, "m");
    let prompt = tokens(320, 9);
    let mut reqs = window(&[&prompt], 2, "m");
    // The window goes to m-1 (least loaded, then lowest name); the second
    // request may only use m-2.
    reqs[1].headers.insert(
        "x-gateway-destination-endpoint-subset".into(),
        "10.0.0.2:8000".into(),
    );
    let out = s.pick_batch(&reqs);
    assert_eq!(target(out[0].as_ref().unwrap()), "m-1");
    let second = out[1].as_ref().unwrap();
    assert_eq!(target(second), "m-2");
    assert!(note_with(second, "burst-prefix-cache-producer").contains("not among"));
    assert_eq!(burst_count(&s, "colocated"), Some(2.0));
    assert_eq!(burst_count(&s, "assigned_absent"), Some(1.0));
}
